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


def best_of(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--k", type=int, default=5)
    default_venv = Path(os.environ.get("GIO_REFERENCE_VENV", REPO / ".venv-reference"))
    parser.add_argument("--reference-venv", type=Path, default=default_venv)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 1.0, (args.n, args.d)).astype(np.float32)
    y = rng.normal(0.0, 1.0, (args.n, args.d)).astype(np.float32)
    print(f"KL(x || y), n = m = {args.n}, d = {args.d}, float32, SIMD: {gio_rs.simd_level()}")
    ours, value = best_of(lambda: gio_rs.kl_divergence(x, y, k=args.k), 5)
    print(f"  gio_rs            {ours * 1e3:9.1f} ms  (KL = {value:.6f})")
    slow, slow_value = best_of(lambda: reference.kl_divergence(x, y, k=args.k), 1)
    ratio = slow / ours
    print(
        f"  gio_rs.reference  {slow * 1e3:9.1f} ms  (KL = {slow_value:.6f})  -> gio_rs is {ratio:.1f}x faster"
    )
    python = args.reference_venv / "bin" / "python"
    if not python.exists():
        print(f"  grad-info-opt     not installed ({args.reference_venv}); run benches/install_reference.sh")
        return
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(inp, x=x, y=y, k=args.k, dtype="float32")
        env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
        runner = str(REPO / "benches" / "reference_runner.py")
        subprocess.run([str(python), runner, "--kl", str(inp), str(out)], check=True, env=env)
        result = json.loads(out.read_text())
    real = result["seconds_kl"]
    print(
        f"  grad-info-opt     {real * 1e3:9.1f} ms  (KL = {result['value']:.6f}, JAX float32, warm)"
        f"  -> gio_rs is {real / ours:6.2f}x {'faster' if real > ours else 'slower'}"
    )


if __name__ == "__main__":
    main()
