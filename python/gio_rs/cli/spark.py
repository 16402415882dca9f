"""`gio-rs select --engine spark`: gio_rs.spark's pipeline on the command's files (K-Means, or
`--method ratio`); the selected rows go to a parquet folder."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable

from .. import io
from .._core import GioError, __version__
from .common import finite_or_none, floats, summary_path, write_json
from .parser import select_parameters


def run_select_spark(args: argparse.Namespace, *, report: Callable[[str], None]) -> dict[str, Any]:
    """`select --engine spark`: gio_rs.spark's pipeline; the selected rows go to a parquet folder."""
    from .. import spark as gspark

    started = time.perf_counter()
    ratio = args.method == "ratio"
    if args.n_clusters is None and not ratio:
        raise GioError(
            "--clusters: --engine spark selects among K-Means centroids; give the number of clusters "
            "(or use --method ratio)"
        )
    if args.init is not None or args.text_column is not None or args.feature_columns is not None:
        raise GioError(
            "--engine: spark reads vectors from parquet/TSV only "
            "(no --init, --text-column, --feature-columns)"
        )
    summary_file = summary_path(args.out, args.summary)
    if not (args.overwrite and os.path.isdir(args.out)):  # Spark's overwrite mode replaces a folder
        io.check_writable(args.out, overwrite=args.overwrite)
    io.check_writable(summary_file, overwrite=args.overwrite)
    features_col = args.features_col or "features"
    formats = _input_formats(args)  # before Spark starts, which takes seconds
    session = gspark.session(args.master)
    frames = {}
    for side, fmt in formats.items():
        path = getattr(args, side)
        with io.reader_errors(path, fmt):  # reading counts each file's rows: a bad file fails here
            if fmt == "parquet":
                frames[side] = gspark.read_parquet(session, path, features_col=features_col)
            else:
                frames[side] = gspark.read_reference_tsv(session, path, features_col=features_col)
    options = {p.name: getattr(args, p.name) for p in select_parameters()}
    if ratio:
        summary = _run_ratio(gspark, frames, options, features_col)
    else:
        summary = _run_clusters(gspark, frames, options, features_col)
    result = summary.pop("result")
    timings = dict(summary.pop("timings_seconds", {}))
    written = time.perf_counter()
    result.write_parquet(args.out, mode="overwrite" if args.overwrite else "errorifexists")
    timings["output"] = time.perf_counter() - written
    summary = {
        "gio_rs_version": __version__,
        "command": "select",
        "engine": "spark",
        "master": args.master,
        "parameters": options,
        "output": {"path": args.out, "format": "parquet folder"},
        **summary,
        "timings_seconds": {**timings, "total": time.perf_counter() - started},
    }
    write_json(summary_file, summary, overwrite=args.overwrite)
    if ratio:
        report(f"selected {len(result.indices)} rows by density ratio; wrote {args.out}, {summary_file}")
    else:
        chosen = result.selection
        report(
            f"chose {len(result.clusters)} clusters ({chosen.stop_reason}); wrote {args.out}, {summary_file}"
        )
    return summary


def _input_formats(args: argparse.Namespace) -> dict[str, str]:
    formats = {}
    for side in ("train", "target"):
        path = getattr(args, side)
        io.check_input(path)
        fmt = getattr(args, f"{side}_format") or io.detect_format(path)
        if fmt not in ("parquet", "reference-tsv"):
            raise GioError(f"--{side}: --engine spark reads parquet or the reference's TSV, got {fmt}")
        if fmt == "reference-tsv":
            io.warn_if_cut_short(path)
        formats[side] = fmt
    return formats


def _run_clusters(gspark: Any, frames: dict, options: dict, features_col: str) -> dict[str, Any]:
    """The K-Means pipeline; its part of the summary (and the result, under "result")."""
    spark_options = {k: v for k, v in options.items() if k not in ("n_clusters", "n_clusters_target", "seed")}
    spark_options.pop("kmeans_max_iter")
    result = gspark.select(
        frames["train"],
        frames["target"],
        n_clusters=options["n_clusters"],
        n_clusters_target=options["n_clusters_target"],
        features_col=features_col,
        seed=options["seed"] or 0,
        kmeans_max_iter=options["kmeans_max_iter"],
        **spark_options,
    )
    chosen = result.selection
    return {
        "result": result,
        "stop_reason": chosen.stop_reason,
        "kl_start": finite_or_none(chosen.kl_start),
        "kl_final": finite_or_none(chosen.kl_final),
        "kl_trace": floats(chosen.kl_trace),
        "clusters": result.clusters.tolist(),
        "repeated_clusters": result.repeated_clusters.tolist(),
    }


def _run_ratio(gspark: Any, frames: dict, options: dict, features_col: str) -> dict[str, Any]:
    """`--method ratio`: gio_rs.spark.select_ratio; its part of the summary (and the result)."""
    defaults = {p.name: p.default for p in select_parameters()}
    used = ("method", "seed", "budget_rows", "ratio_estimator", "ratio_mode", "progress")
    for name, value in options.items():
        if name not in used and value != defaults[name]:
            raise GioError(f"--{name.replace('_', '-')}: not used by --method ratio")
    if options["budget_rows"] is None:
        raise GioError("--budget-rows: required with --method ratio (the rows to select)")
    result = gspark.select_ratio(
        frames["train"],
        frames["target"],
        options["budget_rows"],
        estimator=options["ratio_estimator"],
        mode=options["ratio_mode"],
        seed=options["seed"] or 0,
        features_col=features_col,
    )
    return {
        "result": result,
        "stop_reason": "budget_rows",
        "rows_selected": len(result.indices),
        "timings_seconds": result.timings_seconds,
        "ratio": {"flat": bool(result.model.flat), "auc_z": float(result.model.auc_z)},
    }
