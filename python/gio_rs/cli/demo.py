"""Data for `gio-rs demo`: scikit-learn's bundled handwritten digits (1797 images of 8×8 pixels,
no download) as a pool file and a small target file showing only 0s and 1s, the kind of small
in-domain sample GIO is made for; and a description of what was selected."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import io
from .._core import GioError
from .._util.optional import pyarrow
from .parser import build_parser
from .select import run_select

TARGET_DIGITS = (0, 1)
TARGET_SIZE = 60


def _load_digits() -> Any:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "gio-rs demo uses scikit-learn's bundled digits: pip install 'gio_rs[demo]'"
        ) from exc
    return load_digits()


def prepare_digits(folder: Path, *, seed: int, overwrite: bool) -> tuple[Path, Path]:
    """Write `pool.parquet` (image_id, digit, features) and `target.parquet` (60 images of 0s and
    1s, held out of the pool) into `folder`. Returns their paths."""
    pa = pyarrow()
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise GioError(f"--out: {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    digits = _load_digits()
    features = (digits.data / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(np.isin(labels, TARGET_DIGITS))
    target_rows = np.sort(rng.choice(candidates, size=TARGET_SIZE, replace=False))
    pool_rows = np.setdiff1d(np.arange(len(labels)), target_rows)

    def table(rows: np.ndarray) -> Any:
        values = pa.array(features[rows].reshape(-1))
        return pa.table(
            {
                "image_id": pa.array(rows.astype(np.int64)),
                "digit": pa.array(labels[rows]),
                "features": pa.FixedSizeListArray.from_arrays(values, features.shape[1]),
            }
        )

    paths = folder / "pool.parquet", folder / "target.parquet"
    for path, rows in zip(paths, (pool_rows, target_rows)):
        data = table(rows)
        io.atomic_write(path, lambda tmp, data=data: pa.parquet.write_table(data, tmp), overwrite=overwrite)
    return paths


def describe_digits(selected_file: Path, pool_file: Path) -> list[str]:
    """Lines comparing the digits of the selection with those of the pool."""
    pa = pyarrow()
    chosen = pa.parquet.read_table(selected_file, columns=["digit"]).column("digit").to_numpy()
    pool = pa.parquet.read_table(pool_file, columns=["digit"]).column("digit").to_numpy()
    lines = ["digit   share of pool   share of selection"]
    for digit in range(10):
        sel_share = float(np.mean(chosen == digit)) if len(chosen) else 0.0
        marker = "  <- target" if digit in TARGET_DIGITS else ""
        lines.append(f"  {digit}      {np.mean(pool == digit):6.1%}          {sel_share:6.1%}{marker}")
    in_target = float(np.mean(np.isin(chosen, TARGET_DIGITS))) if len(chosen) else 0.0
    lines.append(
        f"{in_target:.1%} of the selected images show a target digit (the pool has "
        f"{np.mean(np.isin(pool, TARGET_DIGITS)):.1%}); the selection never saw a label"
    )
    return lines


def run_demo(args: argparse.Namespace, *, report: Callable[[str], None]) -> dict[str, Any]:
    """Select digits for a target of 0s and 1s from scikit-learn's bundled digits, from files."""
    folder = Path(args.out)
    pool_file, target_file = prepare_digits(folder, seed=args.seed, overwrite=args.overwrite)
    parser = build_parser()
    select_args = parser.parse_args(
        [
            "select",
            "--train", str(pool_file),
            "--target", str(target_file),
            "--out", str(folder / "selected.parquet"),
            "--plot", str(folder / "selection.png"),
            "--v-init", "jump",
            "--max-iter", "400",
            "--seed", str(args.seed),
        ]
        + (["--overwrite"] if args.overwrite else [])
        + (["--quiet"] if args.quiet else [])
        + (["--progress"] if args.progress else [])
    )  # fmt: skip
    summary = run_select(select_args, report=report)
    for line in describe_digits(folder / "selected.parquet", pool_file):
        report(line)
    return summary
