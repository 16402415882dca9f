"""`gio-rs select`: read, select in memory, write output + summary (+ plot); `--clusters` goes to
the streaming path (cli.stream), `--method ratio` to the ratio's (cli.ratio), `--engine spark` to
Spark (cli.spark)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Any, Callable, Optional

import numpy as np

from .. import io, selection
from .._core import GioError, __version__, simd_level
from ..io import dedup, writers
from .common import finite_or_none, floats, show_progress, summary_path, write_json
from .parser import select_parameters
from .plot import plot_selection
from .ratio import run_ratio
from .spark import run_select_spark
from .stream import run_stream


def _describe(table: io.Table) -> dict[str, Any]:
    return {
        "path": table.path,
        "format": table.fmt,
        "rows": len(table),
        "dim": int(table.features.shape[1]),
        "dtype": str(table.features.dtype),
        "features_col": table.features_col,
    }


def _texts(table: io.Table, args: argparse.Namespace) -> Optional[list]:
    """The sentences a table's vectors were embedded from, or None for vector input."""
    if table.fmt == "text" or args.text_column is not None:
        return table.columns.column(table.features_col).to_pylist()
    return None


def run_select(args: argparse.Namespace, *, report: Callable[[str], None]) -> dict[str, Any]:
    """The `select` command: read, select, write output + summary (+ plot). Returns the summary."""
    if args.engine == "spark":
        return run_select_spark(args, report=report)
    if args.method == "ratio":  # read in pieces whatever the size: the rows are the in-memory ones
        return run_ratio(args, {p.name: getattr(args, p.name) for p in select_parameters()}, report=report)
    if args.n_clusters is not None:  # the pool is read in pieces, whatever its size
        options = {p.name: getattr(args, p.name) for p in select_parameters()}
        return run_stream(args, options, report=report)
    started = time.perf_counter()
    summary_file = summary_path(args.out, args.summary)
    outputs = [args.out, summary_file] + ([args.plot] if args.plot else [])
    if len(set(map(os.path.abspath, outputs))) != len(outputs):
        raise GioError(f"--out/--summary/--plot: must be different files, got {outputs}")
    writers.check_output(args.out, overwrite=args.overwrite)  # fail before the long work, not after it
    for path in outputs[1:]:
        io.check_writable(path, overwrite=args.overwrite)
    out_format = writers.output_format(args.out, args.out_format)
    read = _read_inputs(args)
    train, target = read["train"], read["target"]
    timings = {"read": time.perf_counter() - started}
    report(
        f"read {len(train)} pool rows, {len(target)} target rows"
        + (f", {len(read['init'])} initial rows" if "init" in read else "")
        + f" of dimension {train.features.shape[1]} in {timings['read']:.2f} s"
    )

    options = {p.name: getattr(args, p.name) for p in select_parameters()}
    unique = _deduplicated(args, read)
    select_started = time.perf_counter()
    result = selection.select(
        unique["pool"],
        unique["target"],
        init=read["init"].features if "init" in read else None,
        progress=show_progress(args),
        **options,
    )
    kept = unique["kept"]
    if kept is not None:  # rows of the deduplicated pool back to rows of the file
        result = dataclasses.replace(
            result,
            indices=kept[result.indices],
            init_indices=None if result.init_indices is None else kept[result.init_indices],
        )
    timings["select"] = time.perf_counter() - select_started

    write_started = time.perf_counter()
    _write_selection(args, train, target, result, out_format)
    timings["write"] = time.perf_counter() - write_started
    timings["total"] = time.perf_counter() - started
    summary = _summary(args, options, read, unique, result, out_format, timings)
    write_json(summary_file, summary, overwrite=args.overwrite)
    report(
        f"selected {len(result)} rows ({result.stop_reason}) in {timings['select']:.2f} s; "
        f"KL {result.kl_start:.4g} -> {result.kl_final:.4g}"
    )
    report(f"wrote {args.out}, {summary_file}" + (f", {args.plot}" if args.plot else ""))
    return summary


def _read_inputs(args: argparse.Namespace) -> dict[str, io.Table]:
    """--train, --target and (when given) --init as tables of one vector dimension."""
    columns = [c.strip() for c in args.feature_columns.split(",")] if args.feature_columns else None
    read = {}
    for side in ("train", "target", "init"):
        path = getattr(args, side)
        if path is not None:
            read[side] = io.read_table(
                path,
                fmt=getattr(args, f"{side}_format"),
                features_col=args.features_col,
                feature_columns=columns,
                text_column=args.text_column,
                embed_options={"progress": show_progress(args)},
            )
    train = read["train"]
    for side, table in read.items():
        if table.features.shape[1] != train.features.shape[1]:
            raise GioError(
                f"--{side}: {table.path} has vectors of {table.features.shape[1]} components "
                f"but --train {train.path} has {train.features.shape[1]}"
            )
    return read


def _deduplicated(args: argparse.Namespace, read: dict[str, io.Table]) -> dict[str, Any]:
    """The pool's and the target's exact duplicates (by text for text input: the same text can
    embed to vectors that differ in the last bits); the target without them, and the pool without
    them with --dedup exact (`kept`: the rows left, None when none are dropped)."""
    train, target = read["train"], read["target"]
    pool_texts = _texts(train, args)
    if pool_texts is None:
        pool_duplicates = dedup.find_duplicates(train.features)
    else:
        pool_duplicates = dedup.find_text_duplicates(pool_texts)
    target_features, target_duplicates = dedup.drop_duplicates(
        target.features, "--target", _texts(target, args)
    )
    kept = None
    pool_features = train.features
    if args.dedup == "exact" and len(pool_duplicates):
        kept = np.delete(np.arange(len(train)), pool_duplicates.rows)
        pool_features = train.features[kept]
    return {
        "pool": pool_features,
        "target": target_features,
        "kept": kept,
        "pool_duplicates": pool_duplicates,
        "target_duplicates": target_duplicates,
    }


def _write_selection(
    args: argparse.Namespace, train: io.Table, target: io.Table, result: Any, out_format: str
) -> None:
    """The selected rows to --out (a file, or part files in a folder), and the plot to --plot
    when asked."""
    if out_format == "jsonl" or writers.is_folder_output(args.out):
        rows = io.selected_rows(train, result.indices, result.cluster_of_row)
        text_col = train.features_col if (args.text_column or train.fmt == "text") else None
        with writers.RowWriter(
            args.out,
            out_format,
            overwrite=args.overwrite,
            shard_bytes=args.shard_bytes,
            vector_col=None if text_col else (train.features_col or "features"),
            text_col=text_col,
            n_rows=len(result.indices),
        ) as writer:
            writer.write(rows)
    else:
        io.write_selection(
            args.out, train, result.indices, result.cluster_of_row, fmt=out_format, overwrite=args.overwrite
        )
    if args.plot:
        plot_selection(
            args.plot,
            target=target.features,
            selected=train.features[result.indices],
            kl_trace=result.kl_trace,
            kl_start=result.kl_start,
            pool=train.features,
            title=f"GIO: {len(result)} of {len(train)} pool rows selected",
            overwrite=args.overwrite,
            seed=args.seed or 0,
        )


def _summary(
    args: argparse.Namespace,
    options: dict[str, Any],
    read: dict[str, io.Table],
    unique: dict[str, Any],
    result: Any,
    out_format: str,
    timings: dict[str, float],
) -> dict[str, Any]:
    """The JSON summary of a local `select` run."""
    return {
        "gio_rs_version": __version__,
        "simd_level": simd_level(),
        "command": "select",
        "parameters": options,
        "inputs": {side: _describe(table) for side, table in read.items()},
        "output": {"path": args.out, "format": out_format, "rows": len(result)},
        "plot": args.plot,
        "stop_reason": result.stop_reason,
        "kl_start": finite_or_none(result.kl_start),
        "kl_final": finite_or_none(result.kl_final),
        "kl_trace": floats(result.kl_trace),
        "candidate_kl": floats(result.candidate_kl),
        "counts": {
            "pool_rows": len(read["train"]),
            "target_rows": len(read["target"]),
            "init_rows": len(read["init"]) if "init" in read else 0,
            "selected_rows": len(result),
            "distinct_selected_rows": int(len(np.unique(result.indices))),
            "candidates_evaluated": len(result.candidate_kl),
            "resets": result.n_resets,
            "clusters_chosen": None if result.clusters is None else len(np.unique(result.clusters)),
        },
        "duplicates": {
            "mode": args.dedup,
            "pool": unique["pool_duplicates"].report(dropped=args.dedup == "exact"),
            "target": unique["target_duplicates"].report(dropped=True),
        },
        "indices": result.indices.tolist(),
        "clusters": None if result.clusters is None else result.clusters.tolist(),
        "timings_seconds": timings,
    }
