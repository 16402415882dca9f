"""The command line: every option of `gio_rs.select` as a flag, the input, output and run options,
and the exit statuses."""

from __future__ import annotations

import argparse
import inspect
from typing import Any, Callable

from .. import memory, selection
from .._core import __version__
from ..io.formats import FORMATS
from ..io.writers import OUTPUT_FORMATS

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
# select() parameters that are not flags: the data, and Python-only hooks.
NOT_FLAGS = {"train", "target", "init", "callback", "progress", "record_v_opts"}
# Shorter spellings, as in the synopsis; the long names work too.
_ALIASES = {
    "n_clusters": ["--clusters"],
    "stop_criterion": ["--stop"],
    "n_clusters_target": ["--clusters-target"],
}
_INT_OPTIONAL = {"n_clusters", "n_clusters_target", "seed", "budget_rows", "kmeans_sample_rows"}
DEFAULT_SEED = 0  # a command line run is reproducible unless asked otherwise
_HELP = {
    "method": "gradient (GIO as published), greedy (exact greedy on the unaveraged k-NN estimator) or "
    "ratio (the B rows of largest density ratio target/pool; needs --budget-rows; read in pieces)",
    "ratio_estimator": "--method ratio: how log r is estimated: combined, gaussian, knn or logistic",
    "ratio_mode": "--method ratio: top (the B largest ratios, ranked) or sample (seeded importance "
    "resampling: Gumbel top-k on log r)",
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


def select_parameters() -> list[inspect.Parameter]:
    return [
        p
        for p in inspect.signature(selection.select).parameters.values()
        if p.name not in NOT_FLAGS and p.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def _add_select_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("selection options (those of gio_rs.select)")
    for param in select_parameters():
        name = param.name
        flags = [f"--{name.replace('_', '-')}"] + _ALIASES.get(name, [])
        default = DEFAULT_SEED if name == "seed" else param.default
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
    parser.add_argument("--out-format", choices=list(OUTPUT_FORMATS), help="instead of by extension")
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
            f"--{side}-format", choices=FORMATS, help=f"format of --{side} (default: by extension)"
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
        "reuses them (verified first); one run at a time: another run on it is refused",
    )
    scale.add_argument(
        "--wait",
        action="store_true",
        help="with --work-dir: wait for a run using the work dir to finish instead of refusing",
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
        help="stop at once when the work would need more memory than this; with --clusters, the "
        "whole process's peak resident memory stays under it ('8GiB', 'off'; "
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
