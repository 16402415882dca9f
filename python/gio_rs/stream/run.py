"""The stream's driver: `select_stream` runs the stages in order (see `gio_rs.stream`)."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Optional

import numpy as np

from .. import _core, memory, ranking
from .._util.arrays import check_int
from .._util.errors import os_error_line
from ..io.batches import DEFAULT_BATCH_ROWS
from .choose import choose_clusters
from .clusters import fit_clusters
from .context import Context
from .explode import explode
from .labels import assign_labels
from .ratio_run import check_ratio_options, run_ratio
from .resources import peak_rss_bytes
from .result import StreamSelection
from .scan import scan
from .target import quantise_target

DEDUP_MODES = ("exact", "none")


def _run(ctx: Context) -> StreamSelection:
    """The stages in order, each handed what the earlier ones found."""
    pool = scan(ctx)
    target = quantise_target(ctx, pool)
    clusters = fit_clusters(ctx, pool, target)
    labels = assign_labels(ctx, pool, clusters)
    choice = choose_clusters(ctx, pool, target, clusters.centers, labels)
    rows = explode(ctx, pool, target, clusters.k, labels, choice)
    chosen = choice.selection
    return StreamSelection(
        indices=rows.indices,
        cluster_of_row=rows.cluster_of_row,
        clusters=np.asarray(chosen.indices, dtype=np.int64),
        repeated_clusters=_repeated(chosen.indices),
        selection=chosen,
        centers=clusters.centers,
        target_centers=target.centers,
        pool_rows=pool.pool_rows,
        kept_rows=pool.kept_rows,
        sample_rows=clusters.sample_rows,
        kmeans_inertia=clusters.inertia,
        kmeans_iterations=clusters.iterations,
        pool_inertia=labels.pool_inertia,
        duplicates=pool.duplicates,
        target_duplicates=target.duplicates,
        dedup=ctx.options["dedup"],
        output=rows.output,
        reused=list(ctx.reused),
        timings=dict(ctx.timings),
        peak_rss_bytes=peak_rss_bytes(),
    )


def _repeated(chosen: np.ndarray) -> np.ndarray:
    values, counts = np.unique(np.asarray(chosen, dtype=np.int64), return_counts=True)
    repeated = set(values[counts > 1].tolist())
    return np.array([c for c in ranking.first_occurrences(chosen).tolist() if c in repeated], dtype=np.int64)


def select_stream(
    train: Any,
    target: Any,
    *,
    n_clusters: Optional[int] = None,
    n_clusters_target: Optional[int] = None,
    init: Any = None,
    budget_rows: Optional[int] = None,
    out: Any = None,
    out_format: Optional[str] = None,
    shard_bytes: Optional[int] = None,
    overwrite: bool = False,
    dedup: str = "exact",
    kmeans_sample_rows: Optional[int] = None,
    kmeans_max_iter: int = 300,
    seed: Optional[int] = 0,
    work_dir: Any = None,
    wait: bool = False,
    features_col: Optional[str] = None,
    feature_columns: Optional[list] = None,
    text_column: Optional[str] = None,
    train_format: Optional[str] = None,
    target_format: Optional[str] = None,
    init_format: Optional[str] = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: bool = False,
    report: Optional[Callable[[str], None]] = None,
    memory_budget: Any = None,
    embed_options: Optional[dict] = None,
    train_name: str = "train",
    target_name: str = "target",
    **select_options: Any,
) -> StreamSelection:
    """GIO at scale on a pool read in pieces (see the module docstring for the stages); with
    `method="ratio"` the density-ratio selection instead (gio_rs.stream.ratio_run: no clusters,
    `budget_rows` required, `ratio_estimator` and `ratio_mode` as `gio_rs.select`).

    Parameters
    ----------
    train : path, list of paths, array, list of arrays, callable or iterator of batches
        The pool.
    target, init : path or array
        Read whole. `init`: rows already selected (D), passed to the selection among centroids.
    n_clusters, n_clusters_target, kmeans_max_iter, seed : as `gio_rs.select` (the pool's K-Means
        is seeded with `seed`, the target's with `seed + 1`; the selection with `seed`).
    budget_rows : int, optional
        Exactly this many pool rows (fewer only when the pool has fewer), see `gio_rs.ranking`.
    out, out_format, shard_bytes, overwrite : where to write the selected rows (a file, or a
        folder ending in "/" for part files of about `shard_bytes`; see `gio_rs.io.writers`); with
        `out=None` only the indices are returned.
    dedup : "exact" (default) or "none": leave exact duplicate pool rows out, or keep them.
    kmeans_sample_rows : int, optional
        Fit K-Means on this many sampled rows (default: every row if it fits the memory budget,
        else as many as fit, computed from the budget, the inputs and the options, never from the
        memory in use: an explicit budget gives the same sample on every run and machine).
    work_dir : path, optional
        Keep the stages here; a rerun with the same inputs and options reuses them (each
        verified against the hashes recorded with it; docs/scale.md). Locked for the run: a
        second run on it raises GioError naming the process that holds it.
    wait : with `work_dir`, wait for a run holding it to finish instead of raising.
    features_col, feature_columns, text_column, train_format, target_format, init_format : how to
        read the files (gio_rs.io).
    batch_rows : rows per piece read.
    progress : progress bars on stderr; report: called with one line per finished stage.
    memory_budget : the budget for this call (as `gio_rs.set_memory_budget`); default: the one set.
    train_name, target_name : what errors call the inputs (e.g. "--train").
    **select_options : any other option of `gio_rs.select` (k, stop_criterion, v_init, ...).
    """
    if not isinstance(dedup, str) or dedup not in DEDUP_MODES:
        raise _core.GioError(f"dedup: expected one of {DEDUP_MODES}, got {dedup!r}")
    if select_options.pop("callback", None) is not None:
        raise TypeError("callback: not supported by select_stream (progress=True shows the stages)")
    if seed is not None:
        seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)  # as select; K-Means takes seed + 1
    ratio_options = check_ratio_options(n_clusters, budget_rows, select_options)
    if budget_rows is not None:
        ranking.check_budget(budget_rows, select_options)
    kmeans_max_iter = check_int("kmeans_max_iter", kmeans_max_iter, minimum=1)
    _check_output(out, overwrite)
    options = dict(
        n_clusters=n_clusters,
        n_clusters_target=n_clusters_target,
        init=init,
        budget_rows=budget_rows,
        out=out,
        out_format=out_format,
        shard_bytes=shard_bytes,
        overwrite=overwrite,
        dedup=dedup,
        kmeans_sample_rows=kmeans_sample_rows,
        kmeans_max_iter=kmeans_max_iter,
        seed=seed,
        work_dir=None if work_dir is None else os.fspath(work_dir),
        wait=bool(wait),
        features_col=features_col,
        feature_columns=feature_columns,
        text_column=text_column,
        train_format=train_format,
        target_format=target_format,
        init_format=init_format,
        batch_rows=batch_rows,
        progress=bool(progress),
        report=report or (lambda line: None),
        embed_options=embed_options,
        train_name=train_name,
        target_name=target_name,
        select_options=select_options,
        **(ratio_options or {}),
    )
    try:
        return _execute(train, target, options, memory_budget)
    except OSError as exc:  # a full disk, a folder made read-only, a disk error: one clear line
        raise _core.GioError(os_error_line(exc)) from exc


def _check_output(out: Any, overwrite: bool) -> None:
    if out is not None:
        from ..io.writers import check_output

        check_output(out, overwrite=overwrite)


def _execute(train: Any, target: Any, options: dict, memory_budget: Any) -> Any:
    """The run, under `memory_budget` when one is given."""
    budget = contextlib.nullcontext()
    if memory_budget is not None:
        limit = memory.parse_budget("memory_budget", memory_budget)
        budget = memory.temporary_budget(limit, "memory_budget")
    with budget:
        ctx = Context.open(train, target, options)  # locks the work dir
        try:
            return _run(ctx) if "ratio_mode" not in options else run_ratio(ctx)
        finally:
            ctx.work.close()
