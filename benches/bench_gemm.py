"""numpy's GEMM rate on this machine: the ceiling the kernels' shares are measured against
(float64 for the descent and the KL cross term, float32 for K-Means and the KL X-to-X term).

    python benches/bench_gemm.py [--n 2000]

Run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (benches/run_all.py does), so OpenBLAS
picks its own kernel for the CPU; the kernel it runs is printed (threadpoolctl).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def openblas_kernels() -> list[str]:
    """The OpenBLAS kernels (`architecture`) loaded in this process, by threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return sorted(
        {str(i.get("architecture")) for i in threadpool_info() if i.get("internal_api") == "openblas"}
    )


def gflops(dtype: str, n: int, repeats: int) -> float:
    """Best of `repeats` n × n × n products (all BLAS threads), in GFLOP/s (2n³ per product)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = a @ b  # warm-up: threads started, pages touched
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def measure(n: int = 2000, repeats: int = 7) -> dict:
    return {
        "n": n,
        "float64_gflops": gflops("float64", n, repeats),
        "float32_gflops": gflops("float32", n, repeats),
        "openblas_kernels": openblas_kernels(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    r = measure(args.n, args.repeats)
    print(
        f"numpy GEMM {args.n}³: float64 {r['float64_gflops']:.0f} GFLOP/s, float32 {r['float32_gflops']:.0f} "
        f"GFLOP/s (OpenBLAS kernel: {', '.join(r['openblas_kernels']) or 'unknown'})"
    )


if __name__ == "__main__":
    main()
