#!/usr/bin/env bash
# The main job, end to end on a fresh machine: build gio_rs, then select training rows from a real
# data set (scikit-learn's bundled handwritten digits) for a target sample and print the selection.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GIO_VENV:-.venv}
scripts/setup.sh
"$venv/bin/python" -m pip install --quiet "scikit-learn>=1.3,<2"
"$venv/bin/python" examples/select_digits.py "$@"
