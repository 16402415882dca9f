"""The density ratio's k-NN counts (`_core.ratio_knn_counts`, issue 25's "combined" estimator) on
an M x d float32 pool against target + S sampled pool rows, K = 100, every sampled row excluding
itself, against a NumPy peer in the same run: float32 BLAS Gram blocks (‖q‖² + ‖r‖² − 2 q·r) and
`np.argpartition` per block of 2048 queries (approximate: no exact refinement, ties unordered).
Interleaved repeats, best of each; prints seconds, the ratio, the share of rows where the two
counts agree, the CPU, SIMD level and load.

    python benches/bench_knn.py [--rows 200000] [--dim 384] [--target 1000] [--sample 20000]
        [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from bench_ratio import cpu_name  # the benches folder is the script's own: on sys.path

import gio_rs
from gio_rs import _core

K = 100
PEER_BLOCK = 2048


def numpy_counts(pool: np.ndarray, target: np.ndarray, sample: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Target rows among each pool row's K nearest of target ∪ sample (float32 Gram form)."""
    reference = np.concatenate([target, sample])
    ref_norms = np.einsum("ij,ij->i", reference, reference)
    counts = np.empty(len(pool), dtype=np.int64)
    for start in range(0, len(pool), PEER_BLOCK):
        block = pool[start : start + PEER_BLOCK]
        d2 = np.einsum("ij,ij->i", block, block)[:, None] + ref_norms[None, :] - 2.0 * (block @ reference.T)
        rows = np.nonzero(own[start : start + PEER_BLOCK] >= 0)[0]
        d2[rows, own[start + rows]] = np.inf
        nearest = np.argpartition(d2, K - 1, axis=1)[:, :K]
        counts[start : start + len(block)] = (nearest < len(target)).sum(axis=1)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--target", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pool = rng.standard_normal((args.rows, args.dim), dtype=np.float32)
    pool += np.linspace(0, 3, args.dim, dtype=np.float32)
    target = rng.standard_normal((args.target, args.dim), dtype=np.float32) + 0.5
    sample_rows = np.sort(rng.choice(args.rows, size=args.sample, replace=False))
    sample = pool[sample_rows]
    own = np.full(args.rows, -1, dtype=np.int64)
    own[sample_rows] = args.target + np.arange(args.sample)
    jobs = {
        "gio_rs ratio_knn_counts": lambda: _core.ratio_knn_counts(pool, target, sample, K, own),
        "numpy float32 GEMM peer": lambda: numpy_counts(pool, target, sample, own),
    }
    best = {name: float("inf") for name in jobs}
    results = {}
    for _ in range(args.repeats):
        for name, job in jobs.items():
            start = time.perf_counter()
            results[name] = job()
            best[name] = min(best[name], time.perf_counter() - start)
    print(
        f"cpu: {cpu_name()}, simd: {gio_rs.simd_level()}, threads: {os.cpu_count()}, "
        f"load: {os.getloadavg()[0]:.1f}, pool {args.rows} x {args.dim} float32, "
        f"target {args.target}, sample {args.sample}, K {K}"
    )
    peer = best["numpy float32 GEMM peer"]
    for name, seconds in best.items():
        print(f"{name:26s} {seconds:9.3f} s   {seconds / peer:6.2f}x numpy peer")
    ours, theirs = results.values()
    print(f"counts equal to the peer's on {np.mean(ours == theirs):.4%} of rows")


if __name__ == "__main__":
    main()
