"""Nearest-centroid assignment of N rows to K centers, in the same run: gio_rs (the kernel behind
`KMeans.predict`) against numpy's BLAS argmin of ‖c‖² − 2x·c (‖x‖² does not change the argmin,
so the peer skips it) and faiss `IndexFlatL2.search(k=1)`; and each one's GFLOP/s (2·N·K·d per
assignment) against numpy's GEMM on the same shape, the machine's practical ceiling.

    python benches/bench_assign.py [--shape 100000,128,1000] [--dtype float32|float64]

numpy should run its best OpenBLAS kernel (DESIGN.md §3): run this with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset (or `OPENBLAS_CORETYPE=SkylakeX` on AVX-512); the kernel in use is printed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import gio_rs
from gio_rs import _core

# Rows per numpy block: its N×K score matrix never exists whole (as in gio_rs and faiss).
NUMPY_BLOCK = 32768


def make_data(n: int, k: int, d: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows around k centers (so nearest centers are meaningful) and k centers near them."""
    rng = np.random.default_rng(0)
    means = rng.normal(0, 2, (k, d))
    x = (means[rng.integers(0, k, n)] + rng.normal(0, 1, (n, d))).astype(dtype)
    c = means + rng.normal(0, 0.1, (k, d))
    return x, c


def numpy_argmin(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    c = c.astype(x.dtype)
    c_t = np.ascontiguousarray(c.T)
    c_norms = (c * c).sum(axis=1)
    labels = np.empty(len(x), dtype=np.int64)
    scores = np.empty((min(NUMPY_BLOCK, len(x)), len(c)), dtype=x.dtype)
    for start in range(0, len(x), NUMPY_BLOCK):
        block = x[start : start + NUMPY_BLOCK]
        out = scores[: len(block)]
        np.matmul(block, c_t, out=out)
        out *= -2
        out += c_norms
        labels[start : start + len(block)] = out.argmin(axis=1)
    return labels


def numpy_gemm(x: np.ndarray, c: np.ndarray) -> None:
    """The GEMM alone (same blocks, same output buffer): the ceiling for any of the three."""
    c_t = np.ascontiguousarray(c.astype(x.dtype).T)
    out = np.empty((min(NUMPY_BLOCK, len(x)), len(c)), dtype=x.dtype)
    for start in range(0, len(x), NUMPY_BLOCK):
        block = x[start : start + NUMPY_BLOCK]
        np.matmul(block, c_t, out=out[: len(block)])


def exact_sq(x: np.ndarray, c: np.ndarray, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    diff = x[rows].astype(np.float64) - c[labels[rows]]
    return (diff * diff).sum(axis=1)


def blas_kernels() -> dict:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    return {
        info.get("filepath", "").rsplit("/", 1)[-1]: info.get("architecture")
        for info in threadpool_info()
        if info.get("internal_api") == "openblas"
    }


def interleaved_best(fns: dict, rounds: int) -> tuple[dict, dict]:
    """Best time and last value of each function, timed in turn within each round: on a shared
    machine, load spikes then hit every implementation alike instead of one of them."""
    best = dict.fromkeys(fns, float("inf"))
    values: dict = {}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            values[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, values


def measure(n: int = 100_000, k: int = 1000, d: int = 128, dtype: str = "float32", rounds: int = 5) -> dict:
    """Seconds and GFLOP/s of each implementation; where gio_rs and numpy disagree, which label
    is nearer by exact float64 differences (gio_rs's labels are exact: it must never lose)."""
    x, c = make_data(n, k, d, dtype)
    flop = 2.0 * n * k * d
    out: dict = {"n": n, "k": k, "d": d, "dtype": dtype, "simd": gio_rs.simd_level(), "blas": blas_kernels()}
    fns = {
        "gio_rs": lambda: _core.kmeans_assign(x, c)[0],
        "numpy_gemm": lambda: numpy_gemm(x, c),
        "numpy_argmin": lambda: numpy_argmin(x, c),
    }
    try:
        import faiss
    except ImportError:
        out["faiss_s"] = None
    else:
        index = faiss.IndexFlatL2(d)
        index.add(c.astype(np.float32))
        x32 = np.ascontiguousarray(x, dtype=np.float32)  # faiss is float32 only; the cast is not timed
        fns["faiss"] = lambda: index.search(x32, 1)
    for fn in fns.values():  # warm-up: thread pools, page faults
        fn()
    best, values = interleaved_best(fns, rounds)
    out.update({f"{name}_s": seconds for name, seconds in best.items()})
    labels, np_labels = values["gio_rs"], values["numpy_argmin"]
    differ = np.flatnonzero(labels != np_labels)
    ours_sq, theirs_sq = exact_sq(x, c, differ, labels), exact_sq(x, c, differ, np_labels)
    out["labels_differ"] = len(differ)
    out["gio_rs_farther"] = int((ours_sq > theirs_sq).sum())
    out["numpy_farther"] = int((theirs_sq > ours_sq).sum())
    for name in ("gio_rs", "numpy_gemm", "numpy_argmin", "faiss"):
        seconds = out[f"{name}_s"]
        out[f"{name}_gflops"] = None if seconds is None else flop / seconds / 1e9
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", action="append", help="N,K,d (repeatable)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()
    for shape in args.shape or ["100000,1000,128", "20000,1000,768"]:
        n, k, d = (int(v) for v in shape.split(","))
        r = measure(n, k, d, args.dtype)
        print(f"\nN={n}, K={k}, d={d}, {args.dtype}; gio_rs SIMD {r['simd']}; OpenBLAS {r['blas']}")
        for name, label in [
            ("gio_rs", "gio_rs"),
            ("numpy_argmin", "numpy argmin"),
            ("faiss", "faiss IndexFlatL2"),
            ("numpy_gemm", "numpy GEMM alone"),
        ]:
            seconds = r[f"{name}_s"]
            if seconds is None:
                print(f"  {label:18s} not installed")
                continue
            print(
                f"  {label:18s} {seconds * 1e3:9.1f} ms {r[f'{name}_gflops']:7.1f} GFLOP/s"
                f"  time / gio_rs: {seconds / r['gio_rs_s']:5.2f}x"
            )
        print(
            f"  labels differ from numpy's on {r['labels_differ']} rows: gio_rs's is farther (exact "
            f"differences) on {r['gio_rs_farther']}, numpy's on {r['numpy_farther']}"
        )


if __name__ == "__main__":
    main()
