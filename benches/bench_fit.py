"""GIOKL.fit at n = M = 1500, d = 768 (float32): gio_rs vs gio_rs.reference (the pure-NumPy
version) vs grad-info-opt (the real reference, when its venv exists), in the same run.

Prints seconds per selected row and the ratios. Usage:

    python benches/bench_fit.py [--rows 51] [--reference-rows 6] [--gio-rows 11]

The real reference needs its own venv (benches/install_reference.sh creates .venv-reference);
it takes about 4 s per row here, so it runs fewer rows (per-row cost is flat in the row count).
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
DEFAULT_VENV = Path(os.environ.get("GIO_REFERENCE_VENV", REPO / ".venv-reference"))


def make_problem(n: int, M: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    train = rng.normal(0.0, 1.0, (M, d)).astype(np.float32)
    X = rng.normal(0.3, 1.0, (n, d)).astype(np.float32)
    D = rng.normal(-0.2, 1.0, (20, d)).astype(np.float32)
    return train, X, D


def fit_kwargs(rows: int) -> dict:
    # data_size with max_data_size=1 runs exactly max_iter + 1 rows (docs/reference.md).
    return dict(k=5, max_iter=rows - 1, stop_criterion="data_size", max_data_size=1)


def time_gio_rs(train, X, D, rows, repeats=5):
    """Best of `repeats` (the machine is shared: the minimum is the least disturbed run)."""
    model = gio_rs.GIOKL(dim=X.shape[1], verbose=False)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        W, kl, _ = model.fit(train, X, D=D, **fit_kwargs(rows))
        best = min(best, time.perf_counter() - start)
    return best, len(kl), W


def time_numpy_reference(train, X, D, rows):
    start = time.perf_counter()
    W, kl, _ = reference.fit(train, X, D=D, **fit_kwargs(rows))
    return time.perf_counter() - start, len(kl), W


def time_grad_info_opt(train, X, D, rows, venv: Path):
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(inp, train=train, X=X, D=D, kwargs_json=json.dumps(fit_kwargs(rows)), dtype="float32")
        env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
        subprocess.run(
            [str(python), str(REPO / "benches" / "reference_runner.py"), str(inp), str(out)],
            check=True,
            env=env,
        )
        result = json.loads(out.read_text())
    return result["seconds_fit"], result["n_selected"], result.get("selected_train_indices")


def measure(
    n: int = 1500,
    M: int = 1500,
    d: int = 768,
    rows: int = 51,
    numpy_rows: int = 11,
    reference_rows: int = 6,
    reference_venv: Path = DEFAULT_VENV,
) -> dict:
    """Seconds, rows and agreement of the three implementations on one problem (grad-info-opt:
    None when its venv is missing; the two slow ones select fewer rows, per-row cost is flat)."""
    train, X, D = make_problem(n, M, d)
    ours, ours_rows, W = time_gio_rs(train, X, D, rows)
    slow, slow_rows, W_slow = time_numpy_reference(train, X, D, numpy_rows)
    out = {
        "n": n,
        "M": M,
        "d": d,
        "gio_rs_s": ours,
        "gio_rs_rows": ours_rows,
        "reference_s": slow,
        "reference_rows": slow_rows,
        "reference_same_rows": bool(np.array_equal(W_slow[len(D) :], W[len(D) : len(D) + slow_rows])),
        "grad_info_opt_s": None,
        "grad_info_opt_rows": None,
        "grad_info_opt_same_rows": None,
    }
    real = time_grad_info_opt(train, X, D, reference_rows, reference_venv)
    if real is not None:
        seconds, real_rows, idx = real
        out.update(grad_info_opt_s=seconds, grad_info_opt_rows=real_rows)
        if idx is not None:
            ours_idx = [int(np.flatnonzero((train == r).all(1))[0]) for r in W[len(D) : len(D) + real_rows]]
            out["grad_info_opt_same_rows"] = ours_idx == idx
    return out


def measure_large_pool(n: int = 2000, M: int = 1_000_000, d: int = 64, rows: int = 21) -> dict:
    """`gio_rs.select` against a large pool (few rows selected: the snap scans over the pool
    dominate), best of 3; for thread scaling. `select` rather than `GIOKL.fit`, which returns the
    unused pool as the reference does (a copy of it that would dominate here). The pool is
    generated in slices to keep the peak memory low."""
    rng = np.random.default_rng(1)
    train = np.empty((M, d), dtype=np.float32)
    for start in range(0, M, 65536):
        stop = min(M, start + 65536)
        train[start:stop] = rng.standard_normal((stop - start, d), dtype=np.float32)
    X = (rng.standard_normal((n, d), dtype=np.float32) + np.float32(0.3)).astype(np.float32)
    D = (rng.standard_normal((20, d), dtype=np.float32) - np.float32(0.2)).astype(np.float32)
    best, best_cpu, selected = float("inf"), 0.0, 0
    for _ in range(3):
        start, cpu = time.perf_counter(), time.process_time()
        sel = gio_rs.select(train, X, init=D, **fit_kwargs(rows))
        seconds = time.perf_counter() - start
        if seconds < best:
            best, best_cpu = seconds, time.process_time() - cpu
        selected = len(sel.indices)
    return {"n": n, "M": M, "d": d, "gio_rs_s": best, "gio_rs_cpu_s": best_cpu, "gio_rs_rows": selected}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--M", type=int, default=1500)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--rows", type=int, default=51, help="rows selected by gio_rs")
    parser.add_argument("--numpy-rows", type=int, default=11, help="rows selected by gio_rs.reference")
    parser.add_argument("--reference-rows", type=int, default=6, help="rows selected by grad-info-opt")
    parser.add_argument("--reference-venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args()

    print(
        f"GIOKL.fit, n={args.n} target, M={args.M} pool, d={args.d}, float32, SIMD: {gio_rs.simd_level()}, "
        f"threads: {os.environ.get('RAYON_NUM_THREADS', os.cpu_count())}"
    )
    r = measure(args.n, args.M, args.d, args.rows, args.numpy_rows, args.reference_rows, args.reference_venv)
    per_row = r["gio_rs_s"] / r["gio_rs_rows"]
    print(
        f"  gio_rs            {r['gio_rs_s']:9.3f} s for {r['gio_rs_rows']:3d} rows"
        f" = {per_row * 1e3:9.2f} ms/row"
    )
    slow_per_row = r["reference_s"] / r["reference_rows"]
    print(
        f"  gio_rs.reference  {r['reference_s']:9.3f} s for {r['reference_rows']:3d} rows"
        f" = {slow_per_row * 1e3:9.2f} ms/row"
        f"   -> gio_rs is {slow_per_row / per_row:8.1f}x faster (same rows: {r['reference_same_rows']})"
    )
    if r["grad_info_opt_s"] is None:
        print(f"  grad-info-opt     not installed ({args.reference_venv}); run benches/install_reference.sh")
        return
    real_per_row = r["grad_info_opt_s"] / r["grad_info_opt_rows"]
    print(
        f"  grad-info-opt     {r['grad_info_opt_s']:9.3f} s for {r['grad_info_opt_rows']:3d} rows"
        f" = {real_per_row * 1e3:9.2f} ms/row   -> gio_rs is {real_per_row / per_row:8.1f}x faster"
    )
    print(f"  same rows as grad-info-opt: {r['grad_info_opt_same_rows']}")


if __name__ == "__main__":
    main()
