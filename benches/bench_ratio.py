"""Density-ratio selection on an M x d float32 pool, against NumPy's pool covariance `P.T @ P`
in the same run (issue 25's speed target: `gio_rs.select(method="ratio",
ratio_estimator="gaussian")` end to end within 3x NumPy's `P.T @ P`): the core's moments pass
alone, the closed form through `gio_rs.select` (one pass for the summary, the 5-fold calibration,
one scoring pass, top-B), and once the default "combined" estimator (adds the k-NN counts of every
pool row against target + 20 000 sampled rows, and the logistic fits). Interleaved repeats, best
of each; prints seconds, ratios, the CPU, SIMD level and load.

    python benches/bench_ratio.py [--rows 1000000] [--dim 384] [--target 1000] [--repeats 2]
        [--no-combined]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import gio_rs
from gio_rs import _core


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def moments(pool: np.ndarray) -> None:
    acc = _core.MomentsAccumulator(pool.shape[1])
    acc.add(pool)
    acc.finish()


def ratio_select(pool: np.ndarray, target: np.ndarray, budget: int, estimator: str) -> np.ndarray:
    return gio_rs.select(
        pool, target, method="ratio", budget_rows=budget, ratio_estimator=estimator, seed=0
    ).indices


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--target", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-combined", action="store_true", help="skip the default estimator")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pool = rng.standard_normal((args.rows, args.dim), dtype=np.float32)
    pool += np.linspace(0, 3, args.dim, dtype=np.float32)
    target = rng.standard_normal((args.target, args.dim), dtype=np.float32) + 0.5
    jobs = {
        "numpy P.T @ P": lambda: pool.T @ pool,
        "moments": lambda: moments(pool),
        "select gaussian": lambda: ratio_select(pool, target, args.rows // 10, "gaussian"),
    }
    best = {name: float("inf") for name in jobs}
    for _ in range(args.repeats):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            best[name] = min(best[name], time.perf_counter() - start)
    if not args.no_combined:  # minutes at 1 M rows: once
        start = time.perf_counter()
        ratio_select(pool, target, args.rows // 10, "combined")
        best["select combined (1 run)"] = time.perf_counter() - start
    numpy_time = best["numpy P.T @ P"]
    print(
        f"cpu: {cpu_name()}, simd: {gio_rs.simd_level()}, threads: {os.cpu_count()}, "
        f"load: {os.getloadavg()[0]:.1f}, pool {args.rows} x {args.dim} float32"
    )
    for name, seconds in best.items():
        print(f"{name:24s} {seconds:8.3f} s   {seconds / numpy_time:6.2f}x numpy P.T @ P")
    ratio = best["select gaussian"] / numpy_time
    print(f"target: select gaussian <= 3x numpy P.T @ P: {ratio:.2f}x ({'met' if ratio <= 3 else 'NOT met'})")


if __name__ == "__main__":
    main()
