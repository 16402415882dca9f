"""Ratio stage 1, summary: the scan's pass (gio_rs.stream.scan) also feeds every piece to
`gio_rs.ratio.PoolSummaryBuilder` with its global row index, so that the pool's moments and its
seeded sample cost no read of their own. The summary is kept in the work dir."""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ratio
from ..io.workdir import key_of
from .context import Context
from .scan import Scan, scan, scan_key

_FILE = "ratio_summary.pkl"
_VERSION = 1  # of what the file holds


@dataclass
class Summary:
    """The scanned pool and its summary (everything the fit needs from the pool)."""

    key: str
    pool: Scan
    summary: Any


def summarise(ctx: Context) -> Summary:
    """The scan, with the pool summary accumulated in the same read (or both from the work dir)."""
    opts = ctx.options
    started = time.perf_counter()
    key = _key(ctx, scan_key(ctx))
    if ctx.work.load("scan", scan_key(ctx)) is not None and ctx.work.load("ratio_summary", key) is not None:
        pool = scan(ctx)  # both saved: nothing is read
        ctx.stage("ratio_summary", key)
        with open(ctx.work.path(_FILE), "rb") as fh:
            found = Summary(key, pool, pickle.load(fh))
        ctx.finished("ratio_summary", started)
        return found
    builder: Any = None

    def observe(x: np.ndarray, first_row: int) -> None:
        nonlocal builder
        if builder is None:
            builder = ratio.PoolSummaryBuilder(x.shape[1], seed=opts["seed"] or 0)
        builder.add(x, first_row)

    pool = scan(ctx, observe)
    assert builder is not None  # the scan refuses an empty pool
    summary = builder.finish()
    with open(ctx.work.path(_FILE), "wb") as fh:
        pickle.dump(summary, fh, protocol=pickle.HIGHEST_PROTOCOL)
    if ctx.work.resumable and not ctx.one_shot:
        ctx.work.save("ratio_summary", key, {"sample_rows": int(len(summary.sample_rows))}, [_FILE])
    ctx.report(
        f"ratio summary: pool moments and a seeded sample of {len(summary.sample_rows)} rows, "
        "accumulated during the scan"
    )
    ctx.finished("ratio_summary", started)
    return Summary(key, pool, summary)


def _key(ctx: Context, scan_key: str) -> str:
    return key_of("ratio_summary", scan_key, ctx.options["seed"], _VERSION)

