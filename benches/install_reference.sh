#!/usr/bin/env bash
# Create a venv holding the real reference (grad-info-opt 0.1.2, module GIO, class GIOKL)
# so benchmarks and comparison tests can run it beside gio_rs (see docs/reference.md,
# "Running the reference beside gio_rs").
#
#   benches/install_reference.sh            # venv at $REPO/.venv-reference
#   GIO_REFERENCE_VENV=/some/dir benches/install_reference.sh
#
# Environment:
#   GIO_REFERENCE_VENV   venv path (default: $REPO/.venv-reference)
#   GIO_REFERENCE_PYTHON interpreter used to create it (default: python3.11)
#   GIO_REFERENCE_FORCE  set to 1 to reinstall the packages even if they import
#
# Idempotent: if the venv exists and imports GIO, jax and pyspark at the pinned versions,
# nothing is downloaded. Running the reference needs Java 17 on PATH and
# SPARK_LOCAL_IP=127.0.0.1 (GIOKL.__init__ starts a local SparkSession).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GIO_REFERENCE_VENV:-$REPO/.venv-reference}"
PYTHON="${GIO_REFERENCE_PYTHON:-python3.11}"
FORCE="${GIO_REFERENCE_FORCE:-0}"

# Pins: the versions docs/reference.md's measurements and tests/data's fixtures were made with.
GIO_PIN="grad-info-opt==0.1.2"
JAX_VERSION="0.10.2"
PYSPARK_VERSION="4.3.0"
RUNTIME_PINS=(
    "jax==${JAX_VERSION}"
    "jaxlib==${JAX_VERSION}"
    "pyspark==${PYSPARK_VERSION}"
    "numpy>=2.0,<3"
    "pandas>=2.2,<3"
)

VPY="$VENV/bin/python"

check_installed() {
    [[ -x "$VPY" ]] || return 1
    "$VPY" - "$JAX_VERSION" "$PYSPARK_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
import jax, jaxlib, numpy, pandas, pyspark  # noqa: F401
from GIO.GIOKL import GIOKL  # noqa: F401  (imports jax and pyspark.ml itself)
assert version("grad-info-opt") == "0.1.2"
assert jax.__version__ == sys.argv[1], jax.__version__
assert pyspark.__version__ == sys.argv[2], pyspark.__version__
EOF
}

print_versions() {
    "$VPY" - <<'EOF'
import sys
from importlib.metadata import version
names = ["grad-info-opt", "jax", "jaxlib", "numpy", "pandas", "pyspark", "py4j"]
print("python " + sys.version.split()[0] + "; " + ", ".join(f"{n} {version(n)}" for n in names))
EOF
}

print_usage() {
    cat <<EOF
To run the reference beside gio_rs (Java 17 on PATH):
  export SPARK_LOCAL_IP=127.0.0.1
  $VPY $REPO/benches/reference_runner.py INPUT.npz OUTPUT.json        # fit: train, X, D, kwargs_json[, dtype]
  $VPY $REPO/benches/reference_runner.py --kl INPUT.npz OUTPUT.json   # KL: x, y, k[, dtype]
  GIO_REFERENCE_VENV=$VENV python $REPO/benches/bench_fit.py
Recreate this venv: rm -rf $VENV && GIO_REFERENCE_VENV=$VENV $REPO/benches/install_reference.sh
EOF
}

if [[ "$FORCE" != "1" ]] && check_installed; then
    echo "reference venv already complete: $VENV"
    print_versions
    print_usage
    exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || { echo "error: $PYTHON not found (set GIO_REFERENCE_PYTHON)" >&2; exit 1; }
if ! command -v java >/dev/null 2>&1; then
    echo "warning: java not on PATH; the reference's SparkSession (GIOKL.__init__) will fail (needs Java 17)" >&2
fi

start=$SECONDS
if [[ ! -x "$VPY" ]]; then
    echo "creating venv $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
"$VPY" -m pip install --quiet --upgrade pip

# grad-info-opt declares sentence-transformers (and unpinned deps) that GIOKL never imports:
# install it without dependencies, then the packages it does import.
"$VPY" -m pip install --no-deps "$GIO_PIN"
"$VPY" -m pip install "${RUNTIME_PINS[@]}"

if ! check_installed; then
    echo "error: installed, but the import check failed; run: $VPY -c 'from GIO.GIOKL import GIOKL'" >&2
    exit 1
fi
echo "reference venv ready in $((SECONDS - start)) s: $VENV"
print_versions
print_usage
