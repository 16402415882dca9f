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


def measure(
    rows: int = 1_000_000,
    target: int = 50_000,
    dim: int = 64,
    clusters: int = 1000,
    kmeans_max_iter: int = 30,
) -> dict:
    """Seconds of quantise + select + explode, what was selected, and the peak RSS (this process,
    the input included) against the input size."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (200, dim)).astype(np.float32)

    def blobs(n: int, n_centers: int) -> np.ndarray:
        # Filled in slices so that generating the data does not inflate the peak memory.
        out = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, 65536):
            stop = min(n, start + 65536)
            out[start:stop] = centers[rng.integers(0, n_centers, stop - start)]
            out[start:stop] += rng.standard_normal((stop - start, dim), dtype=np.float32)
        return out

    pool = blobs(rows, 200)
    target_rows = blobs(target, 20)
    input_bytes = pool.nbytes + target_rows.nbytes
    base = peak_rss_bytes()
    start = time.perf_counter()
    sel = gio_rs.select(
        pool,
        target_rows,
        n_clusters=clusters,
        seed=0,
        v_init="jump",
        stop_criterion="data_size",
        max_data_size=0.1,
        kmeans_max_iter=kmeans_max_iter,
    )
    seconds = time.perf_counter() - start
    q = sel.quantization
    return {
        "rows": rows,
        "target": target,
        "dim": dim,
        "clusters": clusters,
        "seconds": seconds,
        "pool_iterations": q.train_model.n_iter_,
        "target_iterations": q.target_model.n_iter_,
        "chosen_clusters": len(sel.clusters),
        "repeated_clusters": len(sel.repeated_clusters),
        "stop_reason": sel.stop_reason,
        "selected_rows": len(sel.indices),
        "input_bytes": input_bytes,
        "rss_before_bytes": base,
        "peak_rss_bytes": peak_rss_bytes(),
    }


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

    r = measure(args.rows, args.target, args.dim, args.clusters, args.kmeans_max_iter)
    mib = 2**20
    print(
        f"pool ({args.rows}, {args.dim}) + target ({args.target}, {args.dim}), float32: "
        f"{r['input_bytes'] / mib:.0f} MiB of input; "
        f"process before the run: {r['rss_before_bytes'] / mib:.0f} MiB"
    )
    print(
        f"quantise + select + explode: {r['seconds']:.1f} s "
        f"(pool K-Means {r['pool_iterations']} iterations, target {r['target_iterations']})"
    )
    print(
        f"chosen clusters: {r['chosen_clusters']} ({r['repeated_clusters']} repeated), "
        f"stop: {r['stop_reason']}; selected pool rows: {r['selected_rows']}"
    )
    peak = r["peak_rss_bytes"]
    print(
        f"peak RSS {peak / mib:.0f} MiB = {peak / r['input_bytes']:.2f}x the input "
        f"(the process held {r['rss_before_bytes'] / mib:.0f} MiB before, the input included)"
    )


if __name__ == "__main__":
    main()
