#!/usr/bin/env bash
# The release wheel, built and tried the way a user without Rust gets it:
#   1. maturin builds it in release mode: abi3 (one wheel for every CPython >= 3.9), linked by zig
#      (the ziglang package from PyPI) against glibc 2.17 and checked against the manylinux2014
#      policy, so it installs on any Linux with glibc >= 2.17;
#   2. checks its metadata renders on an index (twine check --strict), prints its tags and size;
#   3. installs it with the `demo` extra (binary wheels only) into a fresh venv of the oldest
#      CPython >= 3.9 found ($GIO_SMOKE_PYTHON to choose), then runs scripts/smoke_wheel.py from a
#      temporary folder with a PATH that holds no cargo, rustc or rustup.
#
#   scripts/wheel.sh              build into dist/ ($GIO_WHEEL_DIR), then the smoke test
#   scripts/wheel.sh FILE.whl     the smoke test alone, of a wheel built before
#   --no-demo                     without the `demo` extra and `gio-rs demo`
#
# Exits non-zero on any failure, a wheel whose extension cannot load included (the smoke test
# prints the loader's message). The build reuses target/ (its own target/<host triple>/
# subfolder: the zig-linked build never invalidates `scripts/setup.sh`'s).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gio_rs-wheel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

usage() {
    echo "usage: scripts/wheel.sh [--no-demo] [FILE.whl]" >&2
    exit 2
}
given=
demo=1
for arg in "$@"; do
    case "$arg" in
        --no-demo) demo= ;;
        *.whl) if [ -n "$given" ]; then usage; fi; given=$arg ;;
        *) usage ;;
    esac
done

if [ -n "$given" ]; then
    [ -f "$given" ] || { echo "scripts/wheel.sh: no such wheel: $given" >&2; exit 2; }
    wheel=$(cd "$(dirname "$given")" && pwd)/$(basename "$given")
else
    venv=${GIO_VENV:-.venv}
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    venv=$(cd "$venv" && pwd)
    "$venv/bin/python" -m pip install --quiet "maturin>=1.9.4,<2" "ziglang>=0.14,<0.18" "twine>=5,<8"
    out=${GIO_WHEEL_DIR:-dist}
    mkdir -p "$out"
    echo "== maturin build (release, abi3, zig, manylinux2014)"
    # maturin finds zig as `python3 -m ziglang` of the first python3 on PATH: the build venv's.
    env -u CONDA_PREFIX VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
        "$venv/bin/maturin" build --release --strip --zig --compatibility manylinux2014 \
        --out "$tmp/built"
    built=("$tmp"/built/*.whl)
    [ -f "${built[0]}" ] || { echo "scripts/wheel.sh: maturin built no wheel" >&2; exit 1; }
    wheel=$(cd "$out" && pwd)/$(basename "${built[0]}")
    mv -f "${built[0]}" "$wheel"
    # The metadata an index shows (README as the description, license, URLs) must render.
    "$venv/bin/python" -m twine check --strict "$wheel"
fi

echo "== wheel"
python3 - "$wheel" <<'EOF'
import os, sys, zipfile
path = sys.argv[1]
with zipfile.ZipFile(path) as whl:
    wheel_file = next(n for n in whl.namelist() if n.endswith(".dist-info/WHEEL"))
    tags = [line.split(":", 1)[1].strip() for line in whl.read(wheel_file).decode().splitlines()
            if line.startswith("Tag:")]
    unpacked = sum(info.file_size for info in whl.infolist())
print(f"file: {path}")
print(f"tags: {', '.join(tags)}")
print(f"size: {os.path.getsize(path) / 1e6:.2f} MB ({unpacked / 1e6:.2f} MB unpacked)")
EOF

# The oldest supported CPython this machine has (pyenv's versions included), else python3.
smoke_python=${GIO_SMOKE_PYTHON:-}
if [ -z "$smoke_python" ]; then
    for version in 3.9 3.10 3.11 3.12 3.13 3.14; do
        for candidate in "$(command -v "python$version" || true)" \
            "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/"python$version"; do
            if [ -x "$candidate" ] && "$candidate" -c 'import venv' 2>/dev/null; then
                smoke_python=$candidate
                break 2
            fi
        done
    done
fi
smoke_python=${smoke_python:-python3}

# A PATH with no Rust toolchain: the smoke venv and the system folders that hold none of its tools.
clean_path=$tmp/venv/bin
for dir in /usr/local/bin /usr/bin /bin; do
    if [ ! -e "$dir/cargo" ] && [ ! -e "$dir/rustc" ] && [ ! -e "$dir/rustup" ]; then
        clean_path+=":$dir"
    fi
done
without_rust=(env -u VIRTUAL_ENV -u CONDA_PREFIX -u PYTHONPATH -u PYTHONHOME -u CARGO_HOME
    -u RUSTUP_HOME -u RUSTUP_TOOLCHAIN -u CARGO -u RUSTC "PATH=$clean_path")
if found=$("${without_rust[@]}" sh -c 'command -v cargo || command -v rustc || command -v rustup'); then
    echo "scripts/wheel.sh: $found is still on the smoke test's PATH ($clean_path)" >&2
    exit 1
fi

echo "== smoke test: $("$smoke_python" --version) in a fresh venv, PATH=$clean_path (no cargo/rustc)"
"$smoke_python" -m venv "$tmp/venv"
"${without_rust[@]}" "$tmp/venv/bin/python" -m pip install --quiet --only-binary :all: \
    "$wheel${demo:+[demo]}"
cd "$tmp"  # nothing of the checkout on sys.path
smoke_args=()
if [ -z "$demo" ]; then smoke_args=(--no-demo); fi
"${without_rust[@]}" "$tmp/venv/bin/python" "$repo/scripts/smoke_wheel.py" "${smoke_args[@]}"
