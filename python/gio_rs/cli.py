"""The `gio-rs` command (also `python -m gio_rs`): GIO selection from files, without writing Python.

    gio-rs select --train POOL --target X [--init D] [--clusters K] [options] --out OUT
    gio-rs demo [--out DIR]

Every option of `gio_rs.select` is a flag (`--max-iter`, `--stop`, `--v-init`, `--budget-rows`,
...). The output holds the selected rows (all their columns, in rank order) plus `row_index`,
`rank` and, when quantised, `cluster`; a JSON summary is written next to it, and `--plot` draws the
KL trace and a 2-D view. With `--clusters` the pool is always read in pieces (gio_rs.stream:
memory bounded by `--memory-budget` whatever its size; `--work-dir` to resume); without, it is read
whole and selected in memory. Errors print one line naming the file or flag and exit with status
2; Ctrl-C exits with 130. Outputs are written to a temporary file and renamed, so nothing is left
half-written.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from . import __version__, dedup, io, memory, selection, writers
from ._core import GioError, simd_level

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

# select() parameters that are not flags: the data, and Python-only hooks.
_NOT_FLAGS = {"train", "target", "init", "callback", "progress", "record_v_opts"}
# Shorter spellings, as in the synopsis; the long names work too.
_ALIASES = {
    "n_clusters": ["--clusters"],
    "stop_criterion": ["--stop"],
    "n_clusters_target": ["--clusters-target"],
}
_INT_OPTIONAL = {"n_clusters", "n_clusters_target", "seed", "budget_rows", "kmeans_sample_rows"}
_DEFAULT_SEED = 0  # a command line run is reproducible unless asked otherwise


def _size(text: str) -> int:
    value = memory.parse_budget("--shard-size", text)
    if not isinstance(value, int):
        raise argparse.ArgumentTypeError(f"expected a size such as 256MiB, got {text!r}")
    return value


def _scale_factor(text: str) -> Any:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number, got {text!r}") from None


def _select_parameters() -> list[inspect.Parameter]:
    return [
        p
        for p in inspect.signature(selection.select).parameters.values()
        if p.name not in _NOT_FLAGS and p.kind is inspect.Parameter.KEYWORD_ONLY
    ]


_HELP = {
    "method": "gradient (GIO as published) or greedy (exact greedy on the unaveraged k-NN estimator)",
    "greedy_max_bytes": "--method greedy: refuse a pool x target distance table larger than this",
    "k": "neighbour rank of the k-NN estimator",
    "max_iter": "stop after this many iterations (N+1 rows accepted, as the reference)",
    "stop_criterion": (
        "increase, min_difference, sequential_increase_tolerance, max_resets, min_kl or data_size"
    ),
    "min_difference": "min_difference: stop when KL fell by less than this",
    "resets_allowed": "refill the pool on a KL increase instead of stopping",
    "max_resets": "max_resets: resets before stopping",
    "max_data_size": "data_size: stop after this share of the pool (int(share*M)+1 rows)",
    "min_kl": "min_kl: stop once KL is below this",
    "max_sequential_increases": "sequential_increase_tolerance: consecutive increases accepted",
    "random_init_pct": "without --init: start from this share of random pool rows",
    "random_restart_prob": "probability of a 3x longer descent on an iteration",
    "scale_factor": "gradient scale: 'auto' (|v0|/|grad(v0)|) or a number",
    "v_init": "where each descent starts: mean, prev_opt or jump (a random target row)",
    "grad_desc_iter": "descent steps per iteration",
    "discard_nearest_for_xy": "estimator variant: each target row ignores its nearest selected row",
    "lr": "learning rate of the descent",
    "uniform_low": "without --init: low bound of the uniform start rows",
    "uniform_high": "without --init: high bound of the uniform start rows",
    "uniform_start_size": "without --init: number of uniform start rows",
    "normalize": "L2-normalise the uniform start rows",
    "seed": "seeds every random draw and the K-Means fits",
    "n_clusters": "quantise first: K-Means with this many pool clusters, select among centroids, explode",
    "n_clusters_target": "target clusters with --clusters (default: the same)",
    "kmeans_max_iter": "Lloyd iterations per K-Means fit",
    "budget_rows": "exactly this many pool rows, ranked (the output's `rank`: any prefix is a smaller "
    "budget); replaces --max-iter and --stop",
    "kmeans_sample_rows": "with --clusters: fit K-Means on this many sampled rows (default: every row "
    "if it fits the memory budget, else as many as fit)",
}


def _add_select_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("selection options (those of gio_rs.select)")
    for param in _select_parameters():
        name = param.name
        flags = [f"--{name.replace('_', '-')}"] + _ALIASES.get(name, [])
        default = _DEFAULT_SEED if name == "seed" else param.default
        text = _HELP.get(name, "see gio_rs.select")
        shown = "none" if default is None else default
        if isinstance(param.default, bool):
            group.add_argument(
                *flags, dest=name, action=argparse.BooleanOptionalAction, default=default, help=text
            )
            continue
        if name == "scale_factor":
            kind: Callable[[str], Any] = _scale_factor
        elif name in _INT_OPTIONAL:
            kind = int
        else:
            kind = type(param.default)
        group.add_argument(*flags, dest=name, type=kind, default=default, help=f"{text} (default: {shown})")


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", required=True, help="the pool G to select from (file or parquet folder)")
    parser.add_argument("--target", required=True, help="sample X of the target distribution")
    parser.add_argument("--init", help="rows already selected (D), optional")
    parser.add_argument(
        "--out",
        required=True,
        help="selected rows: .parquet, .jsonl[.gz|.zst], .csv, .tsv, .npy or .txt; a folder (ending in /) "
        "gets part files of at most --shard-size",
    )
    parser.add_argument("--out-format", choices=list(writers.OUTPUT_FORMATS), help="instead of by extension")
    parser.add_argument(
        "--shard-size",
        dest="shard_bytes",
        type=_size,
        help="with a folder --out: size of each part file (default 256MiB)",
    )
    parser.add_argument("--summary", help="JSON summary path (default: OUT with .summary.json)")
    parser.add_argument(
        "--plot", help="write a PNG of the KL trace and target vs selected (needs matplotlib)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument(
        "--engine",
        choices=["local", "spark"],
        default="local",
        help="spark: quantise, assign and explode on Spark (parquet/TSV files or folders; needs --clusters "
        "and gio_rs[spark]); --out is then a parquet folder",
    )
    parser.add_argument("--master", default="local[*]", help="Spark master with --engine spark")
    fmt = parser.add_argument_group("input formats")
    for side in ("train", "target", "init"):
        fmt.add_argument(
            f"--{side}-format", choices=io.FORMATS, help=f"format of --{side} (default: by extension)"
        )
    fmt.add_argument(
        "--text-column",
        help="embed this text column (all-MiniLM-L6-v2, gio_rs[text]) instead of reading vectors; "
        ".txt inputs (one sentence per line) are always embedded",
    )
    fmt.add_argument("--features-col", help="column holding the vectors (default: 'features', else '_c2')")
    fmt.add_argument(
        "--feature-columns",
        help="comma-separated numeric columns forming the vector (CSV/TSV; default: every numeric column)",
    )
    scale = parser.add_argument_group("large pools (--clusters reads the pool in pieces: gio_rs.stream)")
    scale.add_argument(
        "--dedup",
        choices=["exact", "none"],
        default="exact",
        help="exact: leave pool rows equal to an earlier row out (never selected twice); none: keep them. "
        "Both report duplicates; duplicate target rows are always dropped, with a warning",
    )
    scale.add_argument(
        "--work-dir",
        help="with --clusters: keep each finished stage here; a rerun with the same inputs and options "
        "reuses them",
    )
    scale.add_argument(
        "--batch-rows", type=int, default=32768, help="with --clusters: rows read at a time (default 32768)"
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or report")
    parser.add_argument(
        "--progress", action="store_true", help="show progress bars even when stderr is not a terminal"
    )
    parser.add_argument(
        "--memory-budget",
        help="stop at once when the work would need more memory than this ('8GiB', 'off'; "
        "default: $GIO_RS_MEMORY_BUDGET, else the memory available)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gio-rs",
        description="Fast GIO (Gradient Information Optimization) training-data selection.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gio_rs {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    select = commands.add_parser(
        "select",
        help="select pool rows for a target, files in and out",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_options(select)
    _add_select_options(select)
    _add_run_options(select)
    embed = commands.add_parser(
        "embed", help="embed one sentence per line with all-MiniLM-L6-v2 (no torch; gio_rs[text])"
    )
    embed.add_argument("--in", dest="input", required=True, help="UTF-8 text file, one sentence per line")
    embed.add_argument("--out", required=True, help="embeddings: .npy, or .parquet (sentence, features)")
    embed.add_argument("--model", help="a sentence-transformers folder (default: the packaged MiniLM)")
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _add_run_options(embed)
    demo = commands.add_parser(
        "demo", help="a real selection on scikit-learn's bundled digits, written to a folder"
    )
    demo.add_argument("--out", default="gio-rs-demo", help="output folder (default: gio-rs-demo)")
    demo.add_argument("--overwrite", action="store_true", help="replace files in an existing folder")
    demo.add_argument("--seed", type=int, default=0)
    _add_run_options(demo)
    return parser


def summary_path(out: str, summary: Optional[str]) -> str:
    if summary is not None:
        return summary
    p = Path(out)
    return str(p.with_name(p.stem + ".summary.json"))


def _finite_or_none(value: float) -> Optional[float]:
    return float(value) if math.isfinite(value) else None


def _floats(values: Any) -> list[Optional[float]]:
    return [_finite_or_none(v) for v in np.asarray(values, dtype=np.float64).tolist()]


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


def _show_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and (args.progress or sys.stderr.isatty())


def run_select(args: argparse.Namespace, *, report: Callable[[str], None]) -> dict[str, Any]:
    """The `select` command: read, select, write output + summary (+ plot). Returns the summary."""
    if args.engine == "spark":
        return run_select_spark(args, report=report)
    if args.n_clusters is not None:  # the pool is read in pieces, whatever its size
        from . import _stream_cli

        options = {p.name: getattr(args, p.name) for p in _select_parameters()}
        return _stream_cli.run(args, options, report=report)
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

    options = {p.name: getattr(args, p.name) for p in _select_parameters()}
    unique = _deduplicated(args, read)
    select_started = time.perf_counter()
    result = selection.select(
        unique["pool"],
        unique["target"],
        init=read["init"].features if "init" in read else None,
        progress=_show_progress(args),
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
    _write_json(summary_file, summary, overwrite=args.overwrite)
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
                embed_options={"progress": _show_progress(args)},
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
        from .plot import plot_selection

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
        "kl_start": _finite_or_none(result.kl_start),
        "kl_final": _finite_or_none(result.kl_final),
        "kl_trace": _floats(result.kl_trace),
        "candidate_kl": _floats(result.candidate_kl),
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


def _write_json(path: str, data: dict[str, Any], *, overwrite: bool) -> None:
    """`data` as indented JSON (strict: no NaN), written whole or not at all."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    io.atomic_write(path, write, overwrite=overwrite)


def run_select_spark(args: argparse.Namespace, *, report: Callable[[str], None]) -> dict[str, Any]:
    """`select --engine spark`: gio_rs.spark's pipeline; the selected rows go to a parquet folder."""
    from . import spark as gspark

    started = time.perf_counter()
    if args.n_clusters is None:
        raise GioError(
            "--clusters: --engine spark selects among K-Means centroids; give the number of clusters"
        )
    if args.init is not None or args.text_column is not None or args.feature_columns is not None:
        raise GioError(
            "--engine: spark reads vectors from parquet/TSV only "
            "(no --init, --text-column, --feature-columns)"
        )
    summary_file = summary_path(args.out, args.summary)
    for path in (args.out, summary_file):
        io.check_writable(path, overwrite=args.overwrite)
    features_col = args.features_col or "features"
    formats = {}
    for side in ("train", "target"):  # before Spark starts, which takes seconds
        path = getattr(args, side)
        io.check_input(path)
        fmt = getattr(args, f"{side}_format") or io.detect_format(path)
        if fmt not in ("parquet", "reference-tsv"):
            raise GioError(f"--{side}: --engine spark reads parquet or the reference's TSV, got {fmt}")
        if fmt == "reference-tsv":
            io.warn_if_cut_short(path)
        formats[side] = fmt
    session = gspark.session(args.master)
    frames = {}
    for side, fmt in formats.items():
        path = getattr(args, side)
        with io.reader_errors(path, fmt):  # reading counts each file's rows: a bad file fails here
            if fmt == "parquet":
                frames[side] = gspark.read_parquet(session, path, features_col=features_col)
            else:
                frames[side] = gspark.read_reference_tsv(session, path, features_col=features_col)
    options = {p.name: getattr(args, p.name) for p in _select_parameters()}
    spark_options = {k: v for k, v in options.items() if k not in ("n_clusters", "n_clusters_target", "seed")}
    spark_options.pop("kmeans_max_iter")
    result = gspark.select(
        frames["train"],
        frames["target"],
        n_clusters=args.n_clusters,
        n_clusters_target=args.n_clusters_target,
        features_col=features_col,
        seed=args.seed or 0,
        kmeans_max_iter=args.kmeans_max_iter,
        **spark_options,
    )
    result.write_parquet(args.out, mode="overwrite" if args.overwrite else "errorifexists")
    chosen = result.selection
    summary = {
        "gio_rs_version": __version__,
        "command": "select",
        "engine": "spark",
        "master": args.master,
        "parameters": options,
        "output": {"path": args.out, "format": "parquet folder"},
        "stop_reason": chosen.stop_reason,
        "kl_start": _finite_or_none(chosen.kl_start),
        "kl_final": _finite_or_none(chosen.kl_final),
        "kl_trace": _floats(chosen.kl_trace),
        "clusters": result.clusters.tolist(),
        "repeated_clusters": result.repeated_clusters.tolist(),
        "timings_seconds": {"total": time.perf_counter() - started},
    }
    _write_json(summary_file, summary, overwrite=args.overwrite)
    report(f"chose {len(result.clusters)} clusters ({chosen.stop_reason}); wrote {args.out}, {summary_file}")
    return summary


def run_embed(args: argparse.Namespace, *, report: Callable[[str], None]) -> None:
    """The `embed` command: sentences in, float32 embeddings out (npy or parquet)."""
    from . import embed

    io.check_writable(args.out, overwrite=args.overwrite)
    out_format = io.output_format(args.out)
    if out_format not in ("npy", "parquet"):
        raise GioError(f"--out: embeddings are written as .npy or .parquet, got {args.out}")
    # One row per line: an empty file gives none (unlike `select`, which needs rows to select).
    with io.reader_errors(args.input, "text"):
        sentences = embed.read_sentences(args.input)
    started = time.perf_counter()
    vectors = embed.embed(
        sentences, model=args.model, batch_size=args.batch_size, progress=_show_progress(args)
    )
    seconds = time.perf_counter() - started
    if out_format == "npy":

        def save(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, vectors, allow_pickle=False)

        io.atomic_write(args.out, save, overwrite=args.overwrite)
    else:
        pa = io._pyarrow()
        table = pa.table(
            {
                "sentence": pa.array(sentences, pa.string()),
                "features": pa.FixedSizeListArray.from_arrays(
                    pa.array(vectors.reshape(-1)), vectors.shape[1]
                ),
            }
        )
        io.atomic_write(args.out, lambda tmp: pa.parquet.write_table(table, tmp), overwrite=args.overwrite)
    report(f"embedded {len(sentences)} sentences in {seconds:.2f} s; wrote {args.out}")


def run_demo(args: argparse.Namespace, *, report: Callable[[str], None]) -> dict[str, Any]:
    """Select digits for a target of 0s and 1s from scikit-learn's bundled digits, from files."""
    from .demo import describe_digits, prepare_digits

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


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def report(line: str) -> None:
        if not args.quiet:
            print(f"gio-rs: {line}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(args, report)


def _one_line(message: Any) -> str:
    return " ".join(str(message).split()) or type(message).__name__


def _show_warning(message: Any, *args: Any, **kwargs: Any) -> None:
    """Warnings as one line, like errors (not Python's file:line and source line)."""
    print(f"gio-rs: warning: {_one_line(message)}", file=sys.stderr)


def _run(args: argparse.Namespace, report: Callable[[str], None]) -> int:
    try:
        budget = contextlib.nullcontext()
        if args.memory_budget is not None:
            limit = memory.parse_budget("--memory-budget", args.memory_budget)
            budget = memory.temporary_budget(limit, "--memory-budget")
        with budget:
            if args.command == "select":
                run_select(args, report=report)
            elif args.command == "embed":
                run_embed(args, report=report)
            else:
                run_demo(args, report=report)
    except KeyboardInterrupt:
        print("gio-rs: interrupted; no output was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    # Warning: a warning turned into an error (python -W error) is an error like the others.
    except (GioError, TypeError, ValueError, OSError, ImportError, Warning) as exc:
        print(f"gio-rs: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def entry_point() -> None:
    """Console script `gio-rs`."""
    sys.exit(main())
