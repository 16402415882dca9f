"""K-Means: gio_rs vs scikit-learn vs faiss-cpu in the same run, float32.

Prints, per implementation: init time, time per Lloyd iteration (from a fit started at given
centers with a fixed number of iterations, tol=0), and total time of a default fit, with ratios.

    python benches/bench_kmeans.py [--shape 100000,128,1000] [--shape 50000,768,1500]

Each peer should run at its best BLAS kernel (DESIGN.md §3): `--openblas-coretype SkylakeX`
(or Haswell) sets OPENBLAS_CORETYPE before numpy, scikit-learn and faiss load (OPENBLAS_L2_SIZE
is dropped); without it the environment decides. The kernels in use are printed when
threadpoolctl is installed. gio_rs does not use BLAS.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _set_blas_kernel_before_imports() -> None:
    if "--openblas-coretype" in sys.argv:
        os.environ["OPENBLAS_CORETYPE"] = sys.argv[sys.argv.index("--openblas-coretype") + 1]
        os.environ.pop("OPENBLAS_L2_SIZE", None)


_set_blas_kernel_before_imports()

import numpy as np  # noqa: E402

import gio_rs  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def make_blobs(n: int, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs around k random centers (clusters worth finding) and k distinct rows as
    given starting centers."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 4, (k, d)).astype(np.float32)
    X = (centers[rng.integers(0, k, n)] + rng.normal(0, 1, (n, d))).astype(np.float32)
    return X, X[rng.choice(n, k, replace=False)]


def measure_shape(n: int, d: int, k: int, iters: int, peers: bool = True, rounds: int = 3) -> list[dict]:
    """Per implementation: init seconds, seconds per Lloyd iteration (a fit from given centers,
    `iters` iterations, tol=0; the implementations take turns for `rounds` rounds, best kept, so
    load from other processes hits them alike), total seconds of a default fit capped at `iters`
    iterations, and that fit's inertia. gio_rs first; scikit-learn and faiss-cpu when installed
    and `peers`."""
    X, start = make_blobs(n, d, k)
    from_start = {"gio_rs": lambda: gio_rs.KMeans(k, init=start, max_iter=iters, tol=0).fit(X).n_iter_}
    totals = {"gio_rs": lambda: gio_rs.KMeans(k, random_state=0, max_iter=iters).fit(X).inertia_}
    if peers:
        try:
            from sklearn.cluster import KMeans as SklearnKMeans
        except ImportError:
            print("  scikit-learn not installed")
        else:
            from_start["scikit-learn"] = lambda: (
                SklearnKMeans(k, init=start, n_init=1, max_iter=iters, tol=0).fit(X).n_iter_
            )
            totals["scikit-learn"] = lambda: (
                SklearnKMeans(k, n_init=1, random_state=0, max_iter=iters).fit(X).inertia_
            )
        try:
            import faiss
        except ImportError:
            print("  faiss-cpu not installed (pip install faiss-cpu)")
        else:

            def faiss_fit(init):
                km = faiss.Kmeans(d, k, niter=iters, seed=0, max_points_per_centroid=10**9)
                km.train(X, init_centroids=init)
                return km

            def faiss_total():
                fk = faiss_fit(None)
                _, labels = fk.index.search(X, 1)
                return float(((X - fk.centroids[labels[:, 0]]) ** 2).sum())

            from_start["faiss-cpu"] = lambda: (faiss_fit(start), iters)[1]
            totals["faiss-cpu"] = faiss_total

    per_iter = dict.fromkeys(from_start, float("inf"))
    for _ in range(rounds):
        for name, fn in from_start.items():
            seconds, n_iter = timed(fn)
            per_iter[name] = min(per_iter[name], seconds / n_iter)
    rows = []
    for name, fn in totals.items():  # once each: scikit-learn's init takes minutes
        cpu = time.process_time()
        seconds, inertia = timed(fn)
        row = _row(name, seconds - per_iter[name] * iters, per_iter[name], seconds, inertia)
        row["total_cpu_s"] = time.process_time() - cpu
        rows.append(row)
    return rows


def _row(name: str, init: float, per_iter: float, total: float, inertia: float) -> dict:
    return {
        "name": name,
        "init_s": max(init, 0.0),  # total minus iters × per-iteration time
        "per_iter_s": per_iter,
        "total_s": total,
        "inertia": float(inertia),
    }


def run_shape(n: int, d: int, k: int, iters: int) -> None:
    print(f"\nN={n}, d={d}, K={k}, float32, {iters} Lloyd iterations timed")
    rows = measure_shape(n, d, k, iters)
    ours = rows[0]
    header = f"  {'':14s} {'init s':>8s} {'s/iter':>8s} {'total s':>8s} {'inertia':>14s}"
    print(header + "  peer time / gio_rs time: per iteration, total")
    for r in rows:
        print(
            f"  {r['name']:14s} {r['init_s']:8.3f} {r['per_iter_s']:8.3f} {r['total_s']:8.3f}"
            f" {r['inertia']:14.6g}"
            f"  {r['per_iter_s'] / ours['per_iter_s']:6.2f}x / {r['total_s'] / ours['total_s']:6.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", action="append", help="N,d,K (repeatable)")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--openblas-coretype", help="OPENBLAS_CORETYPE for the peers (set before imports)")
    args = parser.parse_args()
    try:
        from threadpoolctl import threadpool_info

        kernels = {info.get("internal_api"): info.get("architecture") for info in threadpool_info()}
        print("BLAS:", kernels)
    except ImportError:
        pass
    print(
        "OPENBLAS_CORETYPE:",
        os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "| gio_rs SIMD:",
        gio_rs.simd_level(),
    )
    for shape in args.shape or ["100000,128,1000", "50000,768,1500"]:
        n, d, k = (int(v) for v in shape.split(","))
        run_shape(n, d, k, args.iters)


if __name__ == "__main__":
    main()
