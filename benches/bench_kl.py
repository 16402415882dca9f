"""KL estimator at n = m = 2000, d = 768 (float32): gio_rs vs gio_rs.reference vs grad-info-opt's
`calculate_statistical_distance` (JAX, warm), in the same run. Prints seconds and ratios.

    python benches/bench_kl.py [--n 2000] [--d 768]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import gio_rs
from gio_rs import reference

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path(os.environ.get("GIO_REFERENCE_VENV", REPO / ".venv-reference"))


def best_of(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def grad_info_opt_kl(x: np.ndarray, y: np.ndarray, k: int, venv: Path) -> dict | None:
    """grad-info-opt's estimator run in its own venv (warm, best of 5); None when not installed."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(inp, x=x, y=y, k=k, dtype="float32")
        env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
        runner = str(REPO / "benches" / "reference_runner.py")
        subprocess.run([str(python), runner, "--kl", str(inp), str(out)], check=True, env=env)
        return json.loads(out.read_text())


def measure(n: int = 2000, d: int = 768, k: int = 5, reference_venv: Path = DEFAULT_VENV) -> dict:
    """Seconds and values of the three implementations on the same data (grad-info-opt: None
    when its venv is missing)."""
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 1.0, (n, d)).astype(np.float32)
    y = rng.normal(0.0, 1.0, (n, d)).astype(np.float32)
    ours, value = best_of(lambda: gio_rs.kl_divergence(x, y, k=k), 5)
    slow, slow_value = best_of(lambda: reference.kl_divergence(x, y, k=k), 1)
    real = grad_info_opt_kl(x, y, k, reference_venv)
    return {
        "n": n,
        "d": d,
        "k": k,
        "gio_rs_s": ours,
        "gio_rs_kl": value,
        "reference_s": slow,
        "reference_kl": slow_value,
        "grad_info_opt_s": None if real is None else real["seconds_kl"],
        "grad_info_opt_kl": None if real is None else real["value"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--reference-venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args()

    print(f"KL(x || y), n = m = {args.n}, d = {args.d}, float32, SIMD: {gio_rs.simd_level()}")
    r = measure(args.n, args.d, args.k, args.reference_venv)
    ours = r["gio_rs_s"]
    print(f"  gio_rs            {ours * 1e3:9.1f} ms  (KL = {r['gio_rs_kl']:.6f})")
    print(
        f"  gio_rs.reference  {r['reference_s'] * 1e3:9.1f} ms  (KL = {r['reference_kl']:.6f})"
        f"  -> gio_rs is {r['reference_s'] / ours:.1f}x faster"
    )
    real = r["grad_info_opt_s"]
    if real is None:
        print(f"  grad-info-opt     not installed ({args.reference_venv}); run benches/install_reference.sh")
        return
    print(
        f"  grad-info-opt     {real * 1e3:9.1f} ms  (KL = {r['grad_info_opt_kl']:.6f}, JAX float32, warm)"
        f"  -> gio_rs is {real / ours:6.2f}x {'faster' if real > ours else 'slower'}"
    )


if __name__ == "__main__":
    main()
