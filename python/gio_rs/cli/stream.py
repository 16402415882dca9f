"""`gio-rs select --clusters K` (local engine): the out-of-core pipeline of gio_rs.stream on the
command's files, its summary and plot. Kept out of cli.py, which only dispatches here."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable

import numpy as np

from .. import io
from .._core import GioError
from ..io import writers
from ..stream.run import select_stream
from .common import finite_or_none, floats, stream_file_options, stream_summary_head, summary_path, write_json
from .plot import plot_selection


def summary_file(args: argparse.Namespace) -> str:
    if args.summary is not None:
        return args.summary
    return summary_path(os.fspath(args.out).rstrip("/" + os.sep), None)


def run_stream(
    args: argparse.Namespace, options: dict[str, Any], *, report: Callable[[str], None]
) -> dict[str, Any]:
    """Runs select_stream with the command's inputs and options; writes the summary (and plot)."""

    started = time.perf_counter()
    summary_path = summary_file(args)
    outputs = [os.fspath(args.out).rstrip("/" + os.sep), summary_path] + ([args.plot] if args.plot else [])
    if len(set(map(os.path.abspath, outputs))) != len(outputs):
        raise GioError(f"--out/--summary/--plot: must be different files, got {outputs}")
    writers.check_output(args.out, overwrite=args.overwrite)
    for path in outputs[1:]:
        io.check_writable(path, overwrite=args.overwrite)
    select_options = dict(options)
    for name in ("n_clusters", "n_clusters_target", "kmeans_max_iter", "seed", "budget_rows"):
        select_options.pop(name, None)
    sample_rows = select_options.pop("kmeans_sample_rows", None)
    result = select_stream(
        args.train,
        args.target,
        n_clusters=args.n_clusters,
        n_clusters_target=args.n_clusters_target,
        budget_rows=options.get("budget_rows"),
        kmeans_sample_rows=sample_rows,
        kmeans_max_iter=args.kmeans_max_iter,
        **stream_file_options(args, report),
        **select_options,
    )
    if args.plot:
        _plot(args, result)
    summary = _summary(args, options, result, started)
    write_json(summary_path, summary, overwrite=args.overwrite)
    report(f"wrote {args.out}, {summary_path}" + (f", {args.plot}" if args.plot else ""))
    return summary


def _summary(
    args: argparse.Namespace, options: dict[str, Any], result: Any, started: float
) -> dict[str, Any]:
    """The JSON summary of a streamed selection."""
    chosen = result.selection
    return {
        **stream_summary_head(args, options, result.output),
        "stop_reason": chosen.stop_reason,
        "kl_start": finite_or_none(chosen.kl_start),
        "kl_final": finite_or_none(chosen.kl_final),
        "kl_trace": floats(chosen.kl_trace),
        "candidate_kl": floats(chosen.candidate_kl),
        "counts": {
            "pool_rows": result.pool_rows,
            "pool_rows_kept": result.kept_rows,
            "selected_rows": len(result),
            "clusters_chosen": int(len(np.unique(result.clusters))),
            "candidates_evaluated": len(chosen.candidate_kl),
            "resets": chosen.n_resets,
        },
        "kmeans": {
            "clusters": int(len(result.centers)),
            "sample_rows": result.sample_rows,
            "iterations": result.kmeans_iterations,
            "sample_inertia": result.kmeans_inertia,
            "pool_inertia": result.pool_inertia,
            "target_points": int(len(result.target_centers)),
        },
        "duplicates": {
            "mode": result.dedup,
            "pool": result.duplicates.report(dropped=result.dedup == "exact"),
            "target": result.target_duplicates.report(dropped=True),
        },
        "indices": result.indices.tolist(),  # in rank order, as the in-memory summary has them
        "clusters": result.clusters.tolist(),
        "repeated_clusters": result.repeated_clusters.tolist(),
        "work_dir": args.work_dir,
        "reused": result.reused,
        "peak_rss_bytes": result.peak_rss_bytes,
        "timings_seconds": {**result.timings, "total": time.perf_counter() - started},
    }


def _plot(args: argparse.Namespace, result: Any) -> None:
    """The KL trace and a 2-D view: the centroids stand for the pool, the chosen ones for the
    selection (the rows themselves are not held in memory)."""
    chosen = np.unique(result.clusters)
    plot_selection(
        args.plot,
        target=result.target_centers,
        selected=result.centers[chosen],
        kl_trace=result.selection.kl_trace,
        kl_start=result.selection.kl_start,
        pool=result.centers,
        title=f"GIO: {len(result)} of {result.pool_rows} pool rows selected "
        f"({len(chosen)} clusters; centroids shown)",
        overwrite=args.overwrite,
        seed=args.seed or 0,
    )
