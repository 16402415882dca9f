"""`select_stream(method="ratio")`: the density-ratio selection over a pool read in pieces, two
reads in all when the top-B's rows fit the memory budget (three when they do not):

1. summary: the scan (gio_rs.stream.scan) also accumulates the pool's moments and seeded sample
   (`gio_rs.ratio.PoolSummaryBuilder`, rows numbered over the shards in order);
2. fit: `gio_rs.ratio.fit_ratio` on the summary and the target (read whole);
3. scores: one read computing every kept row's key into a bounded top-B, keeping the candidates'
   columns;
4. output: exactly B rows in rank order with `row_index`, `rank` and `score`.

Every random choice is a function of (seed, global row), so the rows are those of
`gio_rs.select(pool, target, method="ratio", budget_rows=B)` on the same data, whatever the batch
size or the shards. With `dedup="exact"` a row equal to an earlier one is never selected (the
fit sees every row, as read).
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .. import _core, ratio
from ..io.dedup import Duplicates
from ..io.workdir import key_of
from .context import Context
from .ratio_fit import fit
from .ratio_output import write_output
from .ratio_score import Scored, plan, score
from .ratio_summary import read_inputs, summarise
from .resources import peak_rss_bytes
from .scan import Scan

_TOP_FILE = "ratio_top.npz"


@dataclass(frozen=True)
class RatioStreamSelection:
    """The result of `select_stream(method="ratio")`.

    indices : int64 array, the B selected pool rows in rank order (numbered over the shards).
    scores : float64 array, each one's key (log r; in mode "sample" log r + its Gumbel noise).
    model : the fitted `gio_rs.ratio.RatioModel` (`flat`, `estimator`, `parts`).
    pool_rows, kept_rows, duplicates, target_duplicates, dedup : as `StreamSelection` (the
        target's duplicates are reported and kept, as `gio_rs.select(method="ratio")` keeps them).
    spilled : the top-B's rows did not fit the memory budget: the output took a third read.
    output, reused, timings, peak_rss_bytes : as `StreamSelection`.
    """

    indices: np.ndarray
    scores: np.ndarray
    model: Any
    pool_rows: int
    kept_rows: int
    duplicates: Duplicates
    target_duplicates: Duplicates
    dedup: str
    spilled: bool = False
    output: Optional[dict] = None
    reused: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    peak_rss_bytes: int = 0

    def __len__(self) -> int:
        return len(self.indices)


def run_ratio(ctx: Context) -> RatioStreamSelection:
    """The stages in order."""
    inputs = read_inputs(ctx)
    found = summarise(ctx, inputs)
    pool = found.pool
    budget = int(ctx.options["budget_rows"])
    if budget > pool.kept_rows:
        raise _core.GioError(
            f"budget_rows: {budget} rows asked, the pool has {pool.kept_rows}"
            + (" after leaving out exact duplicates" if len(pool.dropped) else "")
        )
    fitted = fit(ctx, found, inputs)
    row_bytes = _row_bytes(ctx, pool)
    reserved = _reserved(ctx, pool, found.summary, fitted.model, row_bytes)
    keep_rows, capacity, largest = plan(ctx, pool, budget, row_bytes, reserved)
    key = key_of("ratio_scores", fitted.key, ctx.options["dedup"], budget, ctx.options["ratio_mode"])
    scored = _saved_scores(ctx, key)
    if scored is None:
        out = ctx.options.get("out")
        if out is not None and not keep_rows:
            ctx.report(
                f"ratio scores: the top {budget} rows' columns do not fit the memory budget (about "
                f"{largest} would); keeping their keys only, the output reads the pool once more"
            )
        scored = score(ctx, pool, fitted, keep_rows and out is not None, capacity)
        np.savez(ctx.work.path(_TOP_FILE), rows=scored.rows, keys=scored.keys)
        if ctx.work.resumable:
            ctx.work.save("ratio_scores", key, {}, [_TOP_FILE])
    started = time.perf_counter()
    output = write_output(ctx, pool, scored, row_bytes)
    if output is not None:
        seconds = ctx.finished("ratio_output", started)
        ctx.report(f"ratio output: {output['rows']} rows written to {output['path']} ({seconds:.1f} s)")
    return RatioStreamSelection(
        indices=np.asarray(scored.rows, dtype=np.int64),
        scores=np.asarray(scored.keys, dtype=np.float64),
        model=fitted.model,
        pool_rows=pool.pool_rows,
        kept_rows=pool.kept_rows,
        duplicates=pool.duplicates,
        target_duplicates=inputs.target_duplicates,
        dedup=ctx.options["dedup"],
        spilled=scored.spilled,
        output=output,
        reused=list(ctx.reused),
        timings=dict(ctx.timings),
        peak_rss_bytes=peak_rss_bytes(),
    )


def _saved_scores(ctx: Context, key: str) -> Optional[Scored]:
    if ctx.stage("ratio_scores", key) is None:
        return None
    with np.load(ctx.work.path(_TOP_FILE)) as saved:
        return Scored(saved["rows"], saved["keys"], None, spilled=False)


def _row_bytes(ctx: Context, pool: Scan) -> float:
    """Memory a candidate row's columns take, measured on the pool's first piece (twice the
    vectors when it has none)."""
    if ctx.options.get("out") is None:
        return 0.0
    for _, chunk in pool.chunks(ctx, table=True):
        if chunk.n_rows and chunk.table is not None:
            return chunk.table.nbytes / chunk.n_rows
        break
    return 2.0 * pool.dim * pool.dtype.itemsize


def _reserved(ctx: Context, pool: Scan, summary: Any, model: Any, row_bytes: float) -> int:
    """What the scoring pass holds besides the top-B: one piece (its columns, vectors and keys),
    the summary and model, the duplicates' row numbers."""
    piece = ctx.batch_rows * (row_bytes + pool.dim * pool.dtype.itemsize * 2 + 64)
    held = len(pickle.dumps(summary, protocol=pickle.HIGHEST_PROTOCOL))
    held += len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    return int(piece + held + 24 * len(pool.duplicates))


def check_ratio_options(n_clusters: Any, budget_rows: Any, select_options: dict) -> Optional[dict]:
    """With `method="ratio"` among `select_options`: its options (taken out of them), checked;
    else None. Other options of `gio_rs.select` have no meaning for it and are refused."""
    if select_options.get("method") != "ratio":
        defaults = _select_defaults()
        for name in ("ratio_estimator", "ratio_mode"):
            if select_options.get(name, defaults[name]) != defaults[name]:
                raise _core.GioError(f"{name}: only with method='ratio'")
        if n_clusters is None:
            raise TypeError("select_stream: n_clusters is required (or method='ratio' with budget_rows)")
        return None
    del select_options["method"]
    estimator = select_options.pop("ratio_estimator", "combined")
    mode = select_options.pop("ratio_mode", "top")
    if estimator not in ratio.ESTIMATORS:
        raise _core.GioError(f"ratio_estimator: expected one of {ratio.ESTIMATORS}, got {estimator!r}")
    if mode not in ratio.MODES:
        raise _core.GioError(f"ratio_mode: expected one of {ratio.MODES}, got {mode!r}")
    if n_clusters is not None:
        raise _core.GioError("n_clusters: method='ratio' ranks every pool row; leave n_clusters unset")
    if budget_rows is None:
        raise _core.GioError("budget_rows: method='ratio' needs the number of rows to select")
    defaults = _select_defaults()
    for name, value in select_options.items():
        if name not in defaults or value != defaults[name]:
            raise _core.GioError(f"{name}: not an option of method='ratio'")
    select_options.clear()
    return {"ratio_estimator": estimator, "ratio_mode": mode}


def _select_defaults() -> dict:
    import inspect

    from ..selection import select

    return {p.name: p.default for p in inspect.signature(select).parameters.values()}
