"""GIO at scale on one machine: quantise a 1 000 000 × 64 float32 pool and a 50 000-row target
with K = 1000, select among the centroids, explode to pool rows. Prints each stage's time, the
selected rows and the peak resident memory against the input size.

    python benches/bench_pipeline.py [--rows 1000000] [--target 50000] [--dim 64] [--clusters 1000]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

import gio_rs


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--target", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--kmeans-max-iter", type=int, default=30)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (200, args.dim)).astype(np.float32)
    pool = centers[rng.integers(0, 200, args.rows)]
    pool += rng.normal(0, 1, pool.shape).astype(np.float32)
    target = centers[rng.integers(0, 20, args.target)] + rng.normal(0, 1, (args.target, args.dim)).astype(
        np.float32
    )
    target = target.astype(np.float32)
    input_bytes = pool.nbytes + target.nbytes
    base = peak_rss_bytes()
    print(
        f"pool {pool.shape} + target {target.shape}, float32: {input_bytes / 2**20:.0f} MiB of input; "
        f"process before the run: {base / 2**20:.0f} MiB"
    )

    start = time.perf_counter()
    sel = gio_rs.select(
        pool,
        target,
        n_clusters=args.clusters,
        seed=0,
        v_init="jump",
        max_iter=200,
        kmeans_max_iter=args.kmeans_max_iter,
    )
    seconds = time.perf_counter() - start
    q = sel.quantization
    peak = peak_rss_bytes()
    print(
        f"quantise + select + explode: {seconds:.1f} s "
        f"(pool K-Means {q.train_model.n_iter_} iterations, target {q.target_model.n_iter_})"
    )
    print(
        f"chosen clusters: {len(sel.clusters)} ({len(sel.repeated_clusters)} repeated), "
        f"stop: {sel.stop_reason}; selected pool rows: {len(sel.indices)}"
    )
    print(
        f"peak RSS {peak / 2**20:.0f} MiB = {peak / input_bytes:.2f}x the input "
        f"(the process held {base / 2**20:.0f} MiB before, the input included)"
    )


if __name__ == "__main__":
    main()
