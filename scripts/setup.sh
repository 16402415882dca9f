#!/usr/bin/env bash
# Creates the project venv (default .venv, or $GIO_VENV) and builds gio_rs into it in release mode,
# with the extras given as arguments (e.g. `scripts/setup.sh test`). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GIO_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "maturin>=1.9.4,<2"
extras=()
for extra in "$@"; do extras+=(--extras "$extra"); done
"$venv/bin/maturin" develop --release --quiet "${extras[@]}"
