"""What the commands share: the summary file's name and JSON, progress on or off."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .._core import __version__, simd_level
from .._util.files import atomic_write


def summary_path(out: str, summary: Optional[str]) -> str:
    if summary is not None:
        return summary
    p = Path(out)
    return str(p.with_name(p.stem + ".summary.json"))


def finite_or_none(value: float) -> Optional[float]:
    return float(value) if math.isfinite(value) else None


def floats(values: Any) -> list[Optional[float]]:
    return [finite_or_none(v) for v in np.asarray(values, dtype=np.float64).tolist()]


def show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and (args.progress or sys.stderr.isatty())


def write_json(path: str, data: dict[str, Any], *, overwrite: bool) -> None:
    """`data` as indented JSON (strict: no NaN), written whole or not at all."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    atomic_write(path, write, overwrite=overwrite)


def stream_file_options(args: argparse.Namespace, report: Callable[[str], None]) -> dict[str, Any]:
    """select_stream's keywords that come straight from the command's file, output, work-dir and
    progress flags: the same for every pipeline the command streams (--clusters, --method ratio)."""
    from ..io import writers

    columns = [c.strip() for c in args.feature_columns.split(",")] if args.feature_columns else None
    return dict(
        init=args.init,
        out=args.out,
        out_format=writers.output_format(args.out, args.out_format),
        shard_bytes=args.shard_bytes,
        overwrite=args.overwrite,
        dedup=args.dedup,
        seed=args.seed,
        work_dir=args.work_dir,
        wait=args.wait,
        features_col=args.features_col,
        feature_columns=columns,
        text_column=args.text_column,
        train_format=args.train_format,
        target_format=args.target_format,
        init_format=args.init_format,
        batch_rows=args.batch_rows,
        progress=show_progress(args),
        report=report,
        embed_options={"progress": show_progress(args)},
        train_name="--train",
        target_name="--target",
    )


def stream_summary_head(args: argparse.Namespace, options: dict[str, Any], output: Any) -> dict[str, Any]:
    """The fields every streamed selection's JSON summary starts with (--clusters, --method ratio)."""
    return {
        "gio_rs_version": __version__,
        "simd_level": simd_level(),
        "command": "select",
        "engine": "local (out-of-core)",
        "parameters": {k: v for k, v in options.items() if not callable(v)},
        "inputs": {"train": args.train, "target": args.target, "init": args.init},
        "output": output,
    }
