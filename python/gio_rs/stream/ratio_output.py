"""Ratio stage 4, output: exactly B rows in rank order, with `row_index` (the row's position in the
pool, shard after shard), `rank` and `score` (the row's key), through the writers of gio_rs.io
(every format, part files, written under a temporary name and published at the end). The rows
come from the scoring pass's candidates; when those did not fit, a third read routes each chosen
row to its rank range (gio_rs.stream.buckets: on disk when they do not fit together)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Optional

import numpy as np

from .. import _core
from .._util.optional import pyarrow
from ..io import reader_errors
from ..io.formats import RANK_COLUMN, ROW_INDEX_COLUMN, SCORE_COLUMN
from ..io.writers import RowWriter, conform
from . import resources
from .buckets import Buckets
from .context import Context
from .prefetch import prefetch
from .ratio_score import Scored
from .scan import Scan

_SLICE = 65_536  # rows written at a time


def write_output(ctx: Context, pool: Scan, scored: Scored, row_bytes: float) -> Optional[dict]:
    """Writes the top-B to `out` (None when there is no output) and says what was written."""
    opts = ctx.options
    out = opts.get("out")
    if out is None:
        return None
    writer = RowWriter(
        out,
        opts.get("out_format"),
        overwrite=opts["overwrite"],
        shard_bytes=opts.get("shard_bytes"),
        vector_col=None if ctx.pool.is_text else _vector_column(ctx),
        text_col=(ctx.pool.text_column or "sentence") if ctx.pool.is_text else None,
        n_rows=len(scored.rows),
        empty_shape=(pool.dim, pool.dtype),
    )
    try:
        tables = (
            _from_memory(ctx, pool, scored)
            if scored.table is not None
            else _reread(ctx, pool, scored, row_bytes)
        )
        for table in tables:
            writer.write(table)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return {"path": os.fspath(out), "format": writer.fmt, "rows": writer.rows_written,
            "parts": len(writer.parts) if writer.folder else 1}  # fmt: skip


def _from_memory(ctx: Context, pool: Scan, scored: Scored) -> Iterator[Any]:
    pa = pyarrow()
    table = _conformed(ctx, pool, scored.table, 0)
    for first in range(0, len(scored.rows), _SLICE):
        piece = table.slice(first, _SLICE)
        stop = first + piece.num_rows
        piece = piece.append_column(ROW_INDEX_COLUMN, pa.array(scored.rows[first:stop], pa.int64()))
        piece = piece.append_column(RANK_COLUMN, pa.array(np.arange(first, stop, dtype=np.int64)))
        yield piece.append_column(SCORE_COLUMN, pa.array(scored.keys[first:stop], pa.float64()))


def _reread(ctx: Context, pool: Scan, scored: Scored, row_bytes: float) -> Iterator[Any]:
    """The third read: each chosen row into the bucket of its rank range, then the buckets in
    order (Buckets adds the rank)."""
    pa = pyarrow()
    wanted = len(scored.rows)
    by_row = np.argsort(scored.rows, kind="stable")
    sorted_rows = scored.rows[by_row]
    cumulative = np.arange(wanted + 1, dtype=np.int64)
    buckets = Buckets(ctx.work, cumulative, resources.bucket_bytes(), True, row_bytes)
    bar = ctx.bar(pool.pool_rows, "ratio output")
    try:
        for start, chunk in prefetch(pool.chunks(ctx, table=True)):
            lo, hi = np.searchsorted(sorted_rows, [start, start + chunk.n_rows])
            if hi > lo:
                rows = sorted_rows[lo:hi]
                table = _conformed(ctx, pool, chunk.table.take(pa.array(rows - start)), chunk.shard)
                table = table.append_column(ROW_INDEX_COLUMN, pa.array(rows, pa.int64()))
                zeros = np.zeros(len(rows), dtype=np.int64)
                buckets.add(by_row[lo:hi], zeros.astype(np.float64), rows, zeros, table)
            if bar is not None:
                bar.update(chunk.n_rows)
    except BaseException:
        buckets.close()
        raise
    finally:
        if bar is not None:
            bar.close()
    try:
        for _, _, table in buckets.ranked(wanted):
            ranks = table.column(RANK_COLUMN).to_numpy()
            yield table.append_column(SCORE_COLUMN, pa.array(scored.keys[ranks], pa.float64()))
    finally:
        buckets.close()


def _conformed(ctx: Context, pool: Scan, table: Any, shard: int) -> Any:
    """`table` with the pool's column types (text formats), refusing a column the output adds."""
    path = ctx.pool.shards[min(shard, len(ctx.pool.shards) - 1)].path
    if pool.schema is not None:
        with reader_errors(path, ctx.pool.fmt):
            table = conform(table, pool.schema)
    for name in (ROW_INDEX_COLUMN, RANK_COLUMN, SCORE_COLUMN):
        if name in table.column_names:
            raise _core.GioError(f"{path}: already has a column {name!r}, which the output adds")
    return table


def _vector_column(ctx: Context) -> str:
    if ctx.pool.features_col is not None:
        return ctx.pool.features_col
    return "_c2" if ctx.pool.fmt == "reference-tsv" else "features"
