"""Ratio stage 3, scoring: one pass computing every kept row's key (`gio_rs.ratio.ratio_keys`:
log r, or log r + seeded Gumbel noise in mode "sample") into a bounded top-B (`_core.TopB`: the
B largest keys, ties to the lower row, the rule every engine shares). With an output, the rows
that may still be in the top-B wait in memory with their columns, so that the output needs no
further read; when B such rows do not fit the memory budget, only the keys are kept and the
output takes a third read (gio_rs.stream.ratio_output)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import _core, memory, ratio
from .._util.optional import pyarrow
from .context import Context
from .prefetch import prefetch
from .ratio_fit import Fit
from .scan import Scan

# Bytes a row costs in the top-B besides its columns: the heap's entry, the buffer's key and row,
# and the arrays finish() returns.
_KEY_BYTES = 64


@dataclass
class Scored:
    """The top-B: rows in rank order with their keys; `table` their columns in the same order
    (None without an output, or when they did not fit and the output reads them again)."""

    rows: np.ndarray
    keys: np.ndarray
    table: Any
    spilled: bool


@dataclass(frozen=True)
class VectorColumn:
    """The column of a piece that holds exactly `chunk.vectors` (a list column of their dtype):
    the candidates keep those as NumPy rows, a plain row copy, instead of pyarrow's take and filter
    of list arrays (the scoring pass's largest cost after the read), and rebuild the column, of
    the same type, once for the top-B."""

    index: int
    field: Any

    @classmethod
    def of(cls, ctx: Context, table: Any, vectors: np.ndarray) -> Optional[VectorColumn]:
        """The vector column of `table` when its values are `vectors` as read, else None (text
        pools, numeric columns, JSON text, another dtype: the whole table goes through pyarrow)."""
        if ctx.pool.is_text or ctx.pool.feature_columns or table is None:
            return None
        names = table.column_names
        name = ctx.pool.features_col or next((n for n in ("features", "_c2") if n in names), None)
        if name is None or name not in names:
            return None
        pa = pyarrow()
        field = table.schema.field(name)
        kind = field.type
        if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)):
            return None
        value = kind.value_type
        if not (pa.types.is_floating(value) and np.dtype(value.to_pandas_dtype()) == vectors.dtype):
            return None
        return cls(names.index(name), field)

    def split(self, table: Any) -> Any:
        """The other columns of `table`."""
        return table.remove_column(self.index)

    def join(self, others: Any, vectors: np.ndarray) -> Any:
        """`others` with the vector column rebuilt from `vectors` at its place."""
        pa = pyarrow()
        n, dim = vectors.shape
        values = pa.array(np.ascontiguousarray(vectors).reshape(-1))
        kind = self.field.type
        if pa.types.is_fixed_size_list(kind):
            column = pa.FixedSizeListArray.from_arrays(values, type=kind)
        else:
            offsets = np.arange(n + 1, dtype=np.int64 if pa.types.is_large_list(kind) else np.int32) * dim
            column = type(pa.array([], kind)).from_arrays(pa.array(offsets), values, type=kind)
        if others.num_columns == 0:  # a table without columns has no rows to keep
            schema = pa.schema([self.field], metadata=others.schema.metadata)
            return pa.Table.from_arrays([column], schema=schema)
        return others.add_column(self.index, self.field, column)

    def same_as(self, other: Optional[VectorColumn]) -> bool:
        return other is not None and self.index == other.index and self.field.equals(other.field, True)


class Candidates:
    """The rows that may still be in the top-B, with their columns: each piece's rows whose key
    beats the B-th best key known so far. Past `capacity` rows the buffer is cut down to the
    current top-B (from `_core.TopB`, which ranks every key pushed), so it never holds more.
    With a `VectorColumn` the vectors wait as NumPy rows and the table holds the other columns."""

    def __init__(self, budget: int, capacity: int) -> None:
        self.budget = budget
        self.capacity = capacity
        self.pieces: list[tuple[np.ndarray, Optional[np.ndarray], Any]] = []  # (rows, vectors, table)
        self.held = 0
        self.worst: Optional[tuple[float, int]] = None  # (key, row) of the B-th best, once known
        self.vector_column: Optional[VectorColumn] = None
        self.pieces_seen = 0

    def add(
        self, keys: np.ndarray, first_row: int, table: Any, vectors: np.ndarray, top: Any, column: Any
    ) -> None:
        """The rows of a piece (`first_row` on) that may be in the top-B; `column` is the piece's
        `VectorColumn` (or None)."""
        self._follow(column)
        if self.worst is None:
            picked = np.arange(len(keys))
        else:
            key, row = self.worst
            rows = first_row + np.arange(len(keys))
            picked = np.flatnonzero((keys > key) | ((keys == key) & (rows < row)))
        if len(picked):
            column = self.vector_column
            if column is not None:
                self.pieces.append((first_row + picked, vectors[picked], _take(column.split(table), picked)))
            else:
                self.pieces.append((first_row + picked, None, _take(table, picked)))
            self.held += len(picked)
        if self.held > self.capacity:
            self.cut(top)

    def _follow(self, column: Optional[VectorColumn]) -> None:
        """Keeps the vectors apart while every piece has the same vector column as the first;
        else (shards of different types) the held pieces get theirs back, and pyarrow joins all."""
        self.pieces_seen += 1
        if self.pieces_seen == 1:
            self.vector_column = column
        elif self.vector_column is not None and not self.vector_column.same_as(column):
            join = self.vector_column.join
            self.pieces = [(rows, None, join(table, vectors)) for rows, vectors, table in self.pieces]
            self.vector_column = None

    def cut(self, top: Any) -> tuple[np.ndarray, np.ndarray]:
        """Keeps only the rows of the current top-B; returns its (rows, keys) in rank order."""
        rows, keys = top.finish()
        if len(rows) >= self.budget and not np.isnan(keys[-1]):  # NaN: a left-out row still held
            self.worst = (float(keys[-1]), int(rows[-1]))
        kept = np.sort(rows)
        pa = pyarrow()
        pieces = []
        for piece_rows, vectors, table in self.pieces:
            at = np.minimum(np.searchsorted(kept, piece_rows), len(kept) - 1)
            mask = kept[at] == piece_rows  # O(n log B) a piece, not a sort of B
            if mask.all():
                pieces.append((piece_rows, vectors, table))
            elif mask.any():
                kept_vectors = None if vectors is None else vectors[mask]
                kept_table = table.filter(pa.array(mask)) if table.num_columns else table
                pieces.append((piece_rows[mask], kept_vectors, kept_table))
        self.pieces = pieces
        self.held = sum(len(r) for r, _, _ in pieces)
        return rows, keys

    def ranked(self, rows: np.ndarray) -> Any:
        """The columns of `rows` (the final top-B, which the buffer holds exactly), in their order."""
        pa = pyarrow()
        held = np.concatenate([r for r, _, _ in self.pieces])
        table = pa.concat_tables([t for _, _, t in self.pieces], promote_options="permissive")
        vectors = [v for _, v, _ in self.pieces]
        self.pieces = []
        table = table.combine_chunks()
        order = np.searchsorted(held, rows)  # held is ascending: pieces come in row order
        if self.vector_column is None:
            return table.take(pa.array(order))
        others = table.take(pa.array(order)) if table.num_columns else table
        return self.vector_column.join(others, _gathered(vectors, order))


def _gathered(pieces: list, order: np.ndarray) -> np.ndarray:
    """Row `order[i]` of the pieces stacked as row i (`order` is a permutation of all their
    rows), filled piece by piece, each let go once placed (the list is emptied): the top-B's
    vectors are never held more than about twice, as the memory plan counts them."""
    assert pieces and sum(len(p) for p in pieces) == len(order)
    out = np.empty((len(order),) + pieces[0].shape[1:], dtype=pieces[0].dtype)
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))
    start = 0
    pieces.reverse()  # pop() from the end, in row order
    while pieces:
        piece = pieces.pop()
        out[where[start : start + len(piece)]] = piece
        start += len(piece)
    return out


def _take(table: Any, picked: np.ndarray) -> Any:
    """`table`'s rows `picked` (a table without columns stays as it is: it holds nothing)."""
    return table.take(pyarrow().array(picked)) if table.num_columns else table


def plan(ctx: Context, pool: Scan, budget: int, row_bytes: float, reserved: int) -> tuple[bool, int, int]:
    """(keep the candidate rows in memory, buffer capacity in rows, about the largest budget whose
    rows fit). Refuses when even the keys of B rows do not fit, naming the largest B that does."""
    slack = max(budget // 4, ctx.batch_rows)
    room = memory.planned_bytes(reserved)  # the fixed runtime model: the same plan on any machine
    if room is None:
        return True, budget + slack, budget
    keys_only = budget * _KEY_BYTES
    if keys_only > room:
        largest = max(0, room // _KEY_BYTES)
        raise _core.GioError(
            f"budget_rows: the top {budget} rows' keys need {keys_only / 2**20:.0f} MiB, more than the "
            f"{max(room, 0) / 2**20:.0f} MiB the memory budget leaves; the largest budget_rows that fits "
            f"is {largest}"
        )
    # With columns: the buffer at capacity, and at the end the top-B twice (pieces, then one table).
    with_rows = budget * _KEY_BYTES + max((budget + slack) * row_bytes, 2 * budget * row_bytes)
    largest = int(room // (_KEY_BYTES + 2 * row_bytes))
    return with_rows <= room, budget + slack, largest


def score(ctx: Context, pool: Scan, fit: Fit, keep_rows: bool, capacity: int) -> Scored:
    """The pass: keys of every kept row into the top-B, and the candidates' columns when
    `keep_rows`."""
    opts = ctx.options
    budget = int(opts["budget_rows"])
    started = time.perf_counter()
    top = _core.TopB(budget)
    candidates = Candidates(budget, capacity) if keep_rows else None
    bar = ctx.bar(pool.pool_rows, "ratio scores")
    try:
        for start, chunk in prefetch(pool.chunks(ctx, table=keep_rows)):
            assert chunk.vectors is not None
            keys = np.array(
                ratio.ratio_keys(fit.model, chunk.vectors, start, opts["ratio_mode"], opts["seed"] or 0),
                dtype=np.float64,
            )
            keep = pool.kept_mask(start, chunk.n_rows)
            keys[~keep] = np.nan  # a duplicate left out: ranked below every key, never taken
            top.push(keys, start)
            if candidates is not None:
                column = VectorColumn.of(ctx, chunk.table, chunk.vectors)
                candidates.add(keys, start, chunk.table, chunk.vectors, top, column)
            if bar is not None:
                bar.update(chunk.n_rows)
    finally:
        if bar is not None:
            bar.close()
    if candidates is not None:
        rows, keys = candidates.cut(top)
        table = candidates.ranked(rows)
    else:
        rows, keys = top.finish()
        table = None
    seconds = ctx.finished("ratio_scores", started)
    ctx.report(
        f"ratio scores: {pool.kept_rows} rows scored, top {len(rows)} kept"
        + (" with their columns" if keep_rows else "")
        + f" ({seconds:.1f} s)"
    )
    return Scored(rows, keys, table, spilled=not keep_rows and ctx.options.get("out") is not None)
