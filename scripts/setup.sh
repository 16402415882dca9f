#!/usr/bin/env bash
# Creates the project venv (default .venv, or $GIO_VENV: any folder, inside the checkout or not; a
# relative path is taken from the checkout's root) and builds gio_rs into it in release mode, with
# the extras given as arguments (e.g. `scripts/setup.sh test`). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GIO_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
venv=$(cd "$venv" && pwd)
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "maturin>=1.9.4,<2"
extras=()
for extra in "$@"; do extras+=(--extras "$extra"); done
# The editable install copies the extension into python/gio_rs/, overwriting the file in place:
# give processes already running from this checkout their own copy first, so that rebuilding
# never changes the library under them.
for lib in python/gio_rs/_core*.so; do
    if [ -f "$lib" ]; then cp -p "$lib" "$lib.tmp" && mv -f "$lib.tmp" "$lib"; fi
done
# maturin installs into $VIRTUAL_ENV, else into a .venv it finds from the current directory
# (the wrong one, or none, when $GIO_VENV is elsewhere); it refuses CONDA_PREFIX alongside.
env -u CONDA_PREFIX VIRTUAL_ENV="$venv" "$venv/bin/maturin" develop --release --quiet "${extras[@]}"
