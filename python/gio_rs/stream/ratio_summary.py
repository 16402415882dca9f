"""Ratio stage 1, summary: the target is read whole (the summary is shifted by its mean), then the
scan's pass (gio_rs.stream.scan) also feeds every piece to `gio_rs.ratio.PoolSummaryBuilder` with
its global row index, so that the pool's moments and its seeded sample cost no read of their own.
The summary is kept in the work dir."""

from __future__ import annotations

import dataclasses
import pickle
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import ratio
from .._util.arrays import as_matrix, same_columns, working_dtype
from ..io.dedup import Duplicates, find_duplicates, find_text_duplicates
from ..io.workdir import key_of
from .context import Context
from .inputs import fingerprint, plain, read_whole, read_whole_with_texts
from .scan import Scan, scan, scan_key

_FILE = "ratio_summary.pkl"
_VERSION = 1  # of what the file holds


@dataclass
class Inputs:
    """The target and init as read (float32 when they and the pool are, else float64, as
    `gio_rs.select` casts them), and the target's exact duplicates (reported, kept: they are
    rows of the target sample like the others)."""

    target: np.ndarray
    init: Optional[np.ndarray]
    target_duplicates: Duplicates


@dataclass
class Summary:
    """The scanned pool and its summary (everything the fit needs from the pool)."""

    key: str
    pool: Scan
    summary: Any


def read_inputs(ctx: Context) -> Inputs:
    """The target (and init), read whole."""
    opts = ctx.options
    name = opts.get("target_name", "target")
    target, texts = read_whole_with_texts(ctx.target, name, opts, "target_format")
    target = as_matrix(name, target, min_rows=2)
    duplicates = find_duplicates(target) if texts is None else find_text_duplicates(texts)
    init = None
    if opts.get("init") is not None:
        init = as_matrix("init", read_whole(opts["init"], "init", opts, "init_format"), min_rows=2)
        same_columns("init", init, name, target.shape[1])
    return Inputs(target, init, duplicates)


def summarise(ctx: Context, inputs: Inputs) -> Summary:
    """The scan, with the pool summary accumulated in the same read (or both from the work dir)."""
    started = time.perf_counter()
    key = _key(ctx, scan_key(ctx))
    if ctx.work.load("scan", scan_key(ctx)) is not None and ctx.work.load("ratio_summary", key) is not None:
        pool = scan(ctx)  # both saved: nothing is read
        ctx.stage("ratio_summary", key)
        with open(ctx.work.path(_FILE), "rb") as fh:
            found = Summary(key, pool, pickle.load(fh))
        ctx.finished("ratio_summary", started)
        return found
    # float64 rows when the target or init is float64 (as select casts the pool), else as read.
    wide = working_dtype(inputs.target, inputs.init) == np.float64
    builder = ratio.PoolSummaryBuilder(ratio.summary_shift(inputs.target), seed=ctx.options["seed"] or 0)
    name = ctx.options.get("target_name", "target")

    def observe(x: np.ndarray, first_row: int) -> None:
        same_columns(name, inputs.target, ctx.options.get("train_name", "train"), x.shape[1])
        builder.add(x.astype(np.float64) if wide else x, first_row)

    pool = scan(ctx, observe)
    summary = builder.finish()
    if pool.dtype == np.float64 and summary.sample.dtype != np.float64:  # a float64 shard came later
        summary = dataclasses.replace(summary, sample=summary.sample.astype(np.float64))
    with open(ctx.work.path(_FILE), "wb") as fh:
        pickle.dump(summary, fh, protocol=pickle.HIGHEST_PROTOCOL)
    if ctx.work.resumable and not ctx.one_shot:
        ctx.work.save("ratio_summary", key, {"sample_rows": int(len(summary.sample_rows))}, [_FILE])
    seconds = ctx.finished("ratio_summary", started)
    ctx.report(
        f"ratio summary: the pool's moments and a seeded sample of {len(summary.sample_rows)} rows, "
        f"in the scan's read ({seconds:.1f} s)"
    )
    return Summary(key, pool, summary)


def _key(ctx: Context, scan_key: str) -> str:
    opts = ctx.options
    return key_of(
        "ratio_summary",
        _VERSION,
        scan_key,
        fingerprint(ctx.target, "target") if ctx.work.resumable else None,
        fingerprint(opts.get("init"), "init") if ctx.work.resumable else None,
        {k: plain(opts.get(k)) for k in ("target_format", "init_format", "features_col", "feature_columns")},
        opts["seed"],
    )
