#!/usr/bin/env bash
# Builds the docs site (mkdocs.yml, docs/) into site/ with every warning an error: a broken link or
# anchor, a page missing from the nav, a docstring griffe cannot parse, a cross-reference to a name
# that does not exist (docs/hooks/). `scripts/docs.sh serve` serves it with live reload instead.
# Needs no build of the extension: the API pages are read from the sources and _core.pyi. Installs
# the `docs` extra's packages into the project venv ($GIO_VENV, default .venv; made if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GIO_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
venv=$(cd "$venv" && pwd)
# The docs extra as pyproject.toml states it (installing `.[docs]` would build the extension).
if ! "$venv/bin/python" -c 'import tomllib' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet "tomli>=1.1"  # Python < 3.11
fi
mapfile -t requirements < <("$venv/bin/python" - <<'PY'
try:
    import tomllib
except ImportError:
    import tomli as tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["docs"]))
PY
)
"$venv/bin/python" -m pip install --quiet "${requirements[@]}"
export NO_MKDOCS_2_WARNING=1  # material's banner about MkDocs 2.0 (stderr noise, not a build warning)
if [ "${1:-}" = serve ]; then
    shift
    exec "$venv/bin/mkdocs" serve --strict "$@"
fi
"$venv/bin/mkdocs" build --strict --site-dir site "$@"
