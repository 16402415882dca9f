#!/usr/bin/env bash
# The main job, end to end on a fresh machine: build gio_rs with the demo extra, then run
# `gio-rs demo`: a real selection from files (scikit-learn's bundled handwritten digits) for a
# target sample of 0s and 1s, writing selected rows, a JSON summary and a plot into demo-output/.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GIO_VENV:-.venv}
scripts/setup.sh demo
"$venv/bin/gio-rs" demo --out demo-output --overwrite "$@"
