"""Smoke test of an installed gio_rs wheel: run by scripts/wheel.sh in a fresh venv without a Rust
toolchain, and by the release workflow against each built wheel.

    python scripts/smoke_wheel.py [--no-demo]

Checks that the extension loads (on failure: the loader's own message, exit status 1), that the
package comes from site-packages and not from a checkout, that a small selection is right and
reproducible, that the estimator agrees with the pure-NumPy reference, that `gio-rs --version`
prints the package's version and (unless --no-demo: it needs the `demo` extra, whose pyarrow has
no wheel for some platforms) that `gio-rs demo` writes its files into a temporary folder.
Uses only the standard library and NumPy besides gio_rs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path


def fail(message: str) -> None:
    print(f"smoke test FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def load_gio_rs():
    try:
        import gio_rs
    except ImportError as err:  # the dynamic loader's message: missing symbol, wrong ABI, ...
        fail(f"`import gio_rs` raised {type(err).__name__}: {err}")
    return gio_rs


def check_installed_copy(gio_rs) -> None:
    site = Path(sysconfig.get_paths()["platlib"]).resolve()
    location = Path(gio_rs.__file__).resolve()
    if site not in location.parents:
        fail(f"gio_rs was imported from {location}, not from this environment's {site}")
    print(f"gio_rs {gio_rs.__version__} from {location.parent} (SIMD level {gio_rs.simd_level()})")


def check_selection(gio_rs) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    near = rng.normal(3.0, 0.3, size=(40, 8))  # rows like the target
    far = rng.normal(-3.0, 1.0, size=(160, 8))
    pool = np.vstack([far[:80], near, far[80:]])
    target = rng.normal(3.0, 0.3, size=(25, 8))
    first = gio_rs.select(pool, target, k=5, max_iter=20, seed=0)
    again = gio_rs.select(pool, target, k=5, max_iter=20, seed=0)
    if not np.array_equal(first.indices, again.indices):
        fail("the same seed gave two different selections")
    picked = np.asarray(first.indices)
    if len(picked) == 0 or not np.all(np.isfinite(first.kl_trace)):
        fail(f"empty selection or non-finite KL trace: {first}")
    near_share = float(np.mean((picked >= 80) & (picked < 120)))
    if near_share < 0.9:
        fail(f"only {near_share:.0%} of the selected rows are near the target (rows {picked})")
    fast = gio_rs.kl_divergence(target, pool[picked], k=3)
    slow = gio_rs.reference.kl_divergence(target, pool[picked], k=3)
    if not np.isclose(fast, slow, rtol=1e-9, atol=0.0):
        fail(f"kl_divergence {fast!r} differs from the NumPy reference {slow!r}")
    print(f"select: {len(picked)} rows, {near_share:.0%} near the target, KL {first.kl_trace[-1]:.4f}")


def gio_rs_command() -> Path:
    scripts = Path(sysconfig.get_paths()["scripts"])
    for name in ("gio-rs", "gio-rs.exe"):
        if (scripts / name).exists():
            return scripts / name
    fail(f"the gio-rs command is not in {scripts}")
    raise AssertionError  # unreachable: fail() exits


def run(command: list[str]) -> str:
    """Runs `command`; returns its stdout and stderr (gio-rs reports on stderr)."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


def check_cli(gio_rs, with_demo: bool) -> None:
    command = str(gio_rs_command())
    version = run([command, "--version"]).strip()
    if version != f"gio_rs {gio_rs.__version__}":
        fail(f"gio-rs --version printed {version!r}")
    print(f"gio-rs --version: {version}")
    if not with_demo:
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        report = run([command, "demo", "--out", str(out)])
        expected = ["pool.parquet", "target.parquet", "selected.parquet", "selected.summary.json"]
        expected.append("selection.png")
        missing = [name for name in expected if not (out / name).is_file()]
        if missing:
            fail(f"gio-rs demo did not write {missing} into {out}:\n{report}")
        summary = json.loads((out / "selected.summary.json").read_text())
        if not summary.get("indices"):
            fail(f"gio-rs demo selected nothing: {summary.get('stop_reason')}")
        print(f"gio-rs demo: {len(summary['indices'])} images selected ({summary['stop_reason']})")
        print(report.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-demo", action="store_true", help="skip `gio-rs demo` (needs gio_rs[demo])")
    args = parser.parse_args()
    gio_rs = load_gio_rs()
    check_installed_copy(gio_rs)
    check_selection(gio_rs)
    check_cli(gio_rs, with_demo=not args.no_demo)
    print("smoke test passed")


if __name__ == "__main__":
    main()
