"""Stage 6, explode: one pass taking the chosen clusters' rows, ranked: clusters in selection
order, then squared distance to the nearest target centroid, then row. With `out`, they are
written in rank order with `row_index`, `cluster` and `rank`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import _core, ranking
from .._util.optional import pyarrow
from ..io import reader_errors
from ..io.batches import Chunk
from ..io.formats import CLUSTER_COLUMN, RANK_COLUMN, ROW_INDEX_COLUMN
from ..io.hashed_files import crash_point
from ..io.writers import RowWriter, conform
from . import resources
from .buckets import Buckets
from .choose import Choice
from .context import Context
from .labels import Labels
from .scan import Scan
from .target import Target


@dataclass
class Exploded:
    """The selected pool rows in rank order, the cluster of each, and what was written."""

    indices: np.ndarray
    cluster_of_row: np.ndarray
    output: Optional[dict]


def explode(ctx: Context, pool: Scan, target: Target, k: int, labels: Labels, choice: Choice) -> Exploded:
    started = time.perf_counter()
    order = ranking.first_occurrences(choice.selection.indices)
    position = np.full(k, -1, dtype=np.int64)
    position[order] = np.arange(len(order))
    sizes = labels.sizes[order]
    total = int(sizes.sum())
    budget = ctx.options["budget_rows"]
    wanted = total if budget is None else min(int(budget), total)
    # Clusters past the one where the budget is reached contribute nothing.
    reach = np.cumsum(sizes)
    last = int(np.searchsorted(reach, wanted)) if wanted else -1
    position[order[last + 1 :]] = -1
    cumulative = np.concatenate([[0], np.cumsum(np.asarray(sizes[: last + 1]))])
    out = ctx.options.get("out")
    row_bytes = _row_bytes(ctx, pool, out is not None)
    copies = 2 if out is not None else 1
    kept = int(wanted * row_bytes)
    writer = resources.WRITER_BYTES if out is not None else 0
    reader = resources.fit_pieces(ctx, "explode", pool.dim, pool.dtype.itemsize, copies, kept, writer)
    buckets = Buckets(ctx.work, cumulative, resources.bucket_bytes(reader), out is not None, row_bytes)
    _fill(ctx, pool, target, labels, position, buckets)
    found = _write_ranked(ctx, pool, buckets, wanted)
    seconds = ctx.finished("explode", started)
    ctx.report(
        f"explode: {len(found.indices)} rows from {last + 1} clusters"
        + (f", written to {out}" if out is not None else "")
        + f" ({seconds:.1f} s)"
    )
    return found


def _fill(
    ctx: Context, pool: Scan, target: Target, labels: Labels, position: np.ndarray, buckets: Buckets
) -> None:
    """The pass: every row of a chosen cluster (position >= 0) into its bucket, with its
    distance to the nearest target centroid (and its columns when there is an output)."""
    target64 = np.ascontiguousarray(target.centers, dtype=np.float64)
    out = ctx.options.get("out")
    bar = ctx.bar(pool.pool_rows, "explode")
    try:
        for start, chunk in pool.chunks(ctx, table=out is not None):
            found = labels.file.read(start, chunk.n_rows)
            pos = np.where(found >= 0, position[np.maximum(found, 0)], -1)
            picked = np.flatnonzero(pos >= 0)
            if len(picked):
                assert chunk.vectors is not None
                distances = ranking.nearest_distances(chunk.vectors[picked], target64)
                rows = start + picked
                table = None
                if out is not None:
                    table = _output_rows(ctx, pool, chunk, picked, rows, found[picked])
                buckets.add(pos[picked], distances, rows, found[picked].astype(np.int64), table)
            if bar is not None:
                bar.update(chunk.n_rows)
    except BaseException:
        buckets.close()
        raise
    finally:
        if bar is not None:
            bar.close()


def _write_ranked(ctx: Context, pool: Scan, buckets: Buckets, wanted: int) -> Exploded:
    """The buckets' rows in rank order, cut at `wanted`, written to `out` when given."""
    opts = ctx.options
    out = opts.get("out")
    indices, cluster_of_row = [], []
    writer = None
    if out is not None:
        writer = RowWriter(
            out,
            opts.get("out_format"),
            overwrite=opts["overwrite"],
            shard_bytes=opts.get("shard_bytes"),
            vector_col=None if ctx.pool.is_text else _vector_column(ctx),
            text_col=(ctx.pool.text_column or "sentence") if ctx.pool.is_text else None,
            n_rows=wanted,
            empty_shape=(pool.dim, pool.dtype),
        )
    try:
        for ranked_rows, ranked_clusters, table in buckets.ranked(wanted):
            indices.append(ranked_rows)
            cluster_of_row.append(ranked_clusters)
            if writer is not None and table is not None:
                crash_point("explode: writing the output")
                writer.write(table)
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        buckets.close()
    output = None
    if writer is not None:
        output = {"path": os.fspath(out), "format": writer.fmt, "rows": writer.rows_written,
                  "parts": len(writer.parts) if writer.folder else 1}  # fmt: skip
    return Exploded(
        np.concatenate(indices) if indices else np.zeros(0, np.int64),
        np.concatenate(cluster_of_row) if cluster_of_row else np.zeros(0, np.int64),
        output,
    )


def _vector_column(ctx: Context) -> str:
    if ctx.pool.features_col is not None:
        return ctx.pool.features_col
    return "_c2" if ctx.pool.fmt == "reference-tsv" else "features"


def _row_bytes(ctx: Context, pool: Scan, tables: bool) -> float:
    """Memory a picked row takes while it waits to be sorted: its keys, and with an output
    its columns, measured (twice, for the copies a sort makes) on the pool's first piece."""
    keys = 40.0
    if not tables:
        return keys
    for _, chunk in pool.chunks(ctx, table=True):
        if chunk.n_rows and chunk.table is not None:
            return keys + 2.0 * chunk.table.nbytes / chunk.n_rows
        break
    return keys + 2.0 * pool.dim * pool.dtype.itemsize


def _output_rows(
    ctx: Context, pool: Scan, chunk: Chunk, picked: np.ndarray, rows: np.ndarray, labels: np.ndarray
) -> Any:
    pa = pyarrow()
    table = chunk.table.take(pa.array(picked))
    path = ctx.pool.shards[chunk.shard].path
    if pool.schema is not None:
        with reader_errors(path, ctx.pool.fmt):
            table = conform(table, pool.schema)
    for name in (ROW_INDEX_COLUMN, CLUSTER_COLUMN, RANK_COLUMN):
        if name in table.column_names:
            raise _core.GioError(f"{path}: already has a column {name!r}, which the output adds")
    table = table.append_column(ROW_INDEX_COLUMN, pa.array(rows, pa.int64()))
    return table.append_column(CLUSTER_COLUMN, pa.array(labels.astype(np.int64), pa.int64()))
