"""`gio-rs select --method ratio` (local engine): the density-ratio selection of gio_rs.stream on
the command's files, read in pieces whatever their size (the rows are those `gio_rs.select(...,
method="ratio")` picks in memory), and its summary."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable

from .. import io
from .._core import GioError
from ..io import writers
from ..stream.run import select_stream
from .common import stream_file_options, stream_summary_head, summary_path, write_json

# Options of the quantised path with no meaning here (their defaults are None, None, 300).
_QUANTISED_ONLY = ("n_clusters", "n_clusters_target", "kmeans_sample_rows", "kmeans_max_iter")


def run_ratio(args: argparse.Namespace, options: dict[str, Any], *, report: Callable[[str], None]) -> dict:
    """Runs select_stream(method="ratio") with the command's inputs and options; writes the
    summary. Returns it."""
    started = time.perf_counter()
    out = os.fspath(args.out).rstrip("/" + os.sep)
    summary_file = args.summary if args.summary is not None else summary_path(out, None)
    if args.plot:
        raise GioError("--plot: not available with --method ratio (the selected rows are not held in memory)")
    if len({os.path.abspath(out), os.path.abspath(summary_file)}) != 2:
        raise GioError(f"--out/--summary: must be different files, got {[out, summary_file]}")
    for name in _QUANTISED_ONLY:
        if options.get(name) != (300 if name == "kmeans_max_iter" else None):
            raise GioError(f"--{name.replace('_', '-')}: not an option of --method ratio")
    writers.check_output(args.out, overwrite=args.overwrite)
    io.check_writable(summary_file, overwrite=args.overwrite)
    select_options = {k: v for k, v in options.items() if k not in (*_QUANTISED_ONLY, "seed", "budget_rows")}
    result = select_stream(
        args.train,
        args.target,
        budget_rows=options.get("budget_rows"),
        **stream_file_options(args, report),
        **select_options,
    )
    summary = _summary(args, options, result, started)
    write_json(summary_file, summary, overwrite=args.overwrite)
    report(f"wrote {args.out}, {summary_file}")
    return summary


def _summary(args: argparse.Namespace, options: dict[str, Any], result: Any, started: float) -> dict:
    model = result.model
    return {
        **stream_summary_head(args, options, result.output),
        "stop_reason": "budget_rows",
        "ratio": {
            "estimator": getattr(model, "estimator", options.get("ratio_estimator")),
            "mode": options.get("ratio_mode"),
            "flat": bool(getattr(model, "flat", False)),
            "spilled": result.spilled,
        },
        "counts": {
            "pool_rows": result.pool_rows,
            "pool_rows_kept": result.kept_rows,
            "selected_rows": len(result),
        },
        "duplicates": {
            "mode": result.dedup,
            "pool": result.duplicates.report(dropped=result.dedup == "exact"),
            "target": result.target_duplicates.report(dropped=True),
        },
        "indices": result.indices.tolist(),  # in rank order
        "scores": [float(s) for s in result.scores.tolist()],
        "work_dir": args.work_dir,
        "reused": result.reused,
        "peak_rss_bytes": result.peak_rss_bytes,
        "timings_seconds": {**result.timings, "total": time.perf_counter() - started},
    }
