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

    def blobs(n: int, n_centers: int) -> np.ndarray:
        # Filled in slices so that generating the data does not inflate the peak memory.
        out = np.empty((n, args.dim), dtype=np.float32)
        for start in range(0, n, 65536):
            stop = min(n, start + 65536)
            out[start:stop] = centers[rng.integers(0, n_centers, stop - start)]
            out[start:stop] += rng.standard_normal((stop - start, args.dim), dtype=np.float32)
        return out

    pool = blobs(args.rows, 200)
    target = blobs(args.target, 20)
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
        stop_criterion="data_size",
        max_data_size=0.1,
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
