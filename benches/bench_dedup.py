"""The exact-duplicate kernels of the stream's scan (`gio_rs.io.dedup`: `canonical_hashes`, the
grouping `_duplicates_in`) against the NumPy code they replaced (kept as the oracle in
tests/test_dedup_hashes.py), in the same run: N x d float32 rows hashed in pieces of `--batch`
rows as the scan feeds them, and N hash records grouped. Interleaved repeats, best of each; prints
wall and CPU seconds per million rows, the ratios, the CPU, SIMD level and load. Both give the
same values (checked here too).

    python benches/bench_dedup.py [--rows 1000000] [--dim 128] [--batch 32768] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import gio_rs
from gio_rs.io import dedup

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench_stream import _cpu  # noqa: E402  (the benches folder is the script's own: on sys.path)
from test_dedup_hashes import reference_canonical_hashes, reference_duplicates_in  # noqa: E402


def _timed(f, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    f(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def _hash_all(hashes, x: np.ndarray, batch: int) -> None:
    for start in range(0, len(x), batch):
        hashes(x[start : start + batch])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32768)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, args.dim)).astype(np.float32)
    x[rng.integers(0, args.rows, args.rows // 100)] = x[rng.integers(0, args.rows, args.rows // 100)]
    h1, h2 = dedup.canonical_hashes(x)
    want = reference_canonical_hashes(x)
    assert np.array_equal(h1, want[0]) and np.array_equal(h2, want[1]), "hashes differ"
    records = np.empty(args.rows, dedup._RECORD)
    records["h1"], records["h2"], records["row"] = h1, h2, np.arange(args.rows)
    got, expected = dedup._duplicates_in(records), reference_duplicates_in(records)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected)), "groups differ"
    load_before = os.getloadavg()
    cases = {
        "hash rows": (
            lambda: _timed(_hash_all, dedup.canonical_hashes, x, args.batch),
            lambda: _timed(_hash_all, reference_canonical_hashes, x, args.batch),
        ),
        "group records": (
            lambda: _timed(dedup._duplicates_in, records),
            lambda: _timed(reference_duplicates_in, records),
        ),
    }
    best = {name: [(np.inf, np.inf), (np.inf, np.inf)] for name in cases}
    for _ in range(args.repeats):
        for name, runs in cases.items():
            for i, run in enumerate(runs):
                wall, cpu = run()
                best[name][i] = (min(best[name][i][0], wall), min(best[name][i][1], cpu))
    per = 1e6 / args.rows
    print(f"CPU {_cpu()}, {os.cpu_count()} CPUs; gio_rs SIMD level {gio_rs.simd_level()}")
    print(f"N = {args.rows}, d = {args.dim}, float32, {len(got[0])} duplicate rows; best of {args.repeats}")
    for name, ((ours_wall, ours_cpu), (numpy_wall, numpy_cpu)) in best.items():
        print(
            f"{name:14s} gio_rs {ours_wall * per:6.3f} s/M (CPU {ours_cpu * per:6.3f})  "
            f"NumPy {numpy_wall * per:6.3f} s/M (CPU {numpy_cpu * per:6.3f})  "
            f"ratio {numpy_wall / ours_wall:5.1f}x wall, {numpy_cpu / max(ours_cpu, 1e-9):5.1f}x CPU"
        )
    print(f"load average before {load_before}, after {os.getloadavg()}")


if __name__ == "__main__":
    main()
