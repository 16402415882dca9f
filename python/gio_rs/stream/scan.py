"""Stage 1, scan: one pass over the pool. Every vector is checked, counted and hashed for exact
duplicates; text is embedded once and spilled to disk. `Scan` then reads the pool again, piece by
piece, for the later passes."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .. import _core, memory
from .._util.optional import pyarrow
from ..io import RowNames, reader_errors
from ..io.batches import Chunk, vectors_table
from ..io.dedup import DuplicateFinder, Duplicates, canonical_hashes, text_hashes
from ..io.hashed_files import crash_point
from ..io.workdir import key_of
from . import resources
from .context import Context
from .inputs import fingerprint, plain
from .prefetch import prefetch
from .spill import Spill


@dataclass
class Scan:
    """The pool as the scan found it: rows per shard, dimension, working dtype, duplicates (and
    the rows `dedup` drops), the spill file of vectors read once, the output schema of text
    formats; `key` identifies it in the work dir."""

    key: str
    shard_rows: list[int]
    dim: int
    dtype: np.dtype
    duplicates: Duplicates
    spill: Optional[Spill]
    schema: Any
    dropped: np.ndarray
    shard_offsets: list[int]

    @property
    def pool_rows(self) -> int:
        return int(self.shard_offsets[-1])

    @property
    def kept_rows(self) -> int:
        return self.pool_rows - len(self.dropped)

    def kept_mask(self, start: int, n: int) -> np.ndarray:
        keep = np.ones(n, dtype=bool)
        lo, hi = np.searchsorted(self.dropped, [start, start + n])
        keep[self.dropped[lo:hi] - start] = False
        return keep

    def chunks(self, ctx: Context, *, table: bool, start_shard: int = 0) -> Iterator[tuple[int, Chunk]]:
        """(global first row, chunk) over the pool, vectors in the working dtype; from the
        spill file for text and one-shot iterators."""
        if ctx.one_shot or (self.spill is not None and not table and start_shard == 0):
            yield from self._spilled_chunks(ctx, table=table)
            return
        reader = self.spill.reader() if self.spill is not None else None
        seen = [0] * len(ctx.pool.shards)
        try:
            for chunk in ctx.pool.chunks(
                vectors=reader is None, table=table, start_shard=start_shard, embed=False
            ):
                start = self.shard_offsets[chunk.shard] + chunk.first_row
                if reader is not None:
                    chunk.vectors = reader.read(start, chunk.n_rows)
                elif chunk.vectors is not None:
                    chunk.vectors = np.ascontiguousarray(chunk.vectors, dtype=self.dtype)
                seen[chunk.shard] += chunk.n_rows
                crash_point("pass: chunk")
                yield start, chunk
        finally:
            if reader is not None:
                reader.close()
        for index in range(start_shard, len(ctx.pool.shards)):
            if seen[index] != self.shard_rows[index]:
                raise _core.GioError(
                    f"{ctx.pool.shards[index].path}: now has {seen[index]} rows, {self.shard_rows[index]} "
                    "when it was first read: an input changed during the run"
                )

    def _spilled_chunks(self, ctx: Context, *, table: bool) -> Iterator[tuple[int, Chunk]]:
        assert self.spill is not None
        reader = self.spill.reader()
        try:
            for start in range(0, self.spill.rows, ctx.batch_rows):
                n = min(ctx.batch_rows, self.spill.rows - start)
                x = reader.read(start, n)
                chunk = Chunk(0, start, n, vectors=x, names=RowNames(first_row=start))
                if table:
                    chunk.table = vectors_table(x)
                crash_point("pass: spilled chunk")
                yield start, chunk
        finally:
            reader.close()


def scan(ctx: Context, observe: Optional[Callable[[np.ndarray, int], None]] = None) -> Scan:
    """The scan stage; `observe(vectors, first_row)` sees every piece of the pass (another stage
    accumulating in the same read: the scan is then read again even when the work dir has it)."""
    key = scan_key(ctx)
    saved = ctx.stage("scan", key) if observe is None else None
    started = time.perf_counter()
    if saved is not None:
        found = _load_scan(ctx, ctx.work.sealed_key("scan", key), saved)
        ctx.finished("scan", started)
        return found
    spill = Spill(ctx.work, "vectors.bin") if (ctx.pool.is_text or ctx.one_shot) else None
    memory_rows = resources.dedup_memory_rows(_scan_room(ctx))
    finder = DuplicateFinder(ctx.work.path("hashes"), memory_rows=memory_rows)
    shard_rows, float32, schemas = _read_pool(ctx, finder, spill, observe)
    total = sum(shard_rows)
    if total == 0:
        raise _core.GioError(f"{ctx.pool.name}: has no rows")
    duplicates = finder.finish()
    if spill is not None:
        spill.dtype = np.dtype(spill.dtype)
    schema = None
    if schemas:
        with reader_errors(ctx.pool.shards[0].path, ctx.pool.fmt):
            schema = pyarrow().unify_schemas(schemas, promote_options="permissive")
    dtype = np.dtype(np.float32 if float32 else np.float64)
    found = _scanned(ctx, key, shard_rows, int(ctx.pool.dim), dtype, duplicates, spill, schema)
    _save_scan(ctx, found)
    found.key = ctx.work.sealed_key("scan", key)  # what the later stages chain on
    seconds = ctx.finished("scan", started)
    ctx.report(
        f"scan: {total} pool rows of dimension {found.dim} in {len(ctx.pool.shards)} file(s), "
        f"{len(duplicates)} exact duplicate rows, {seconds:.1f} s"
    )
    return found


def _scan_room(ctx: Context) -> Optional[int]:
    """The room the scan has; refuses when not even its first read fits within the budget."""
    room = resources.stage_bytes()  # before _planned_dim imports pyarrow: the model counts it
    dim = _planned_dim(ctx)
    need = resources.first_read_bytes(ctx.batch_rows, dim)
    if room is not None and need > room:
        largest = min(ctx.batch_rows - 1, resources.largest_batch(room, dim))
        name = memory.option_name("batch_rows", "--batch-rows")
        fix = f"the largest batch that fits is {name}={largest}" if largest else "nothing smaller fits"
        memory.refuse("scan", f"reading the pool {ctx.batch_rows} rows at a time", need, room, fix)
    return room


def _planned_dim(ctx: Context) -> int:
    """The pool's dimension before the scan reads it: known for arrays and .npy, counted from the
    first parquet shard's metadata (values per row of its list columns), else planned as 64."""
    if ctx.pool.dim:
        return int(ctx.pool.dim)
    shards = getattr(ctx.pool, "shards", None)
    if not shards or shards[0].fmt != "parquet":
        return 64
    try:
        meta = pyarrow().parquet.ParquetFile(shards[0].path).metadata
        group = meta.row_group(0)
        columns = [group.column(i) for i in range(group.num_columns)]
        lists = [c.num_values for c in columns if "." in c.path_in_schema]
        return max(1, max(lists) // max(1, group.num_rows)) if lists else 64
    except Exception:  # noqa: BLE001 - only a plan: the scan reports unreadable files itself
        return 64


def scan_key(ctx: Context) -> str:
    """What identifies the scan in the work dir: the pool's files and how they are read."""
    opts = ctx.options
    return key_of(
        "scan",
        fingerprint(ctx.train, "train") if ctx.work.resumable else None,
        {k: plain(opts.get(k)) for k in ("train_format", "features_col", "feature_columns", "text_column")},
        ctx.batch_rows if ctx.pool.is_text else None,
    )


def _read_pool(
    ctx: Context, finder: DuplicateFinder, spill: Optional[Spill], observe: Optional[Callable] = None
) -> tuple[list[int], bool, list]:
    """The scan's pass: rows per shard, whether every vector is float32 (or float16), and the
    schemas of the pieces of a text format (the output's column types come from all of them)."""
    shard_rows = [0] * len(ctx.pool.shards)
    float32 = True
    total = 0
    bar = ctx.bar(None, "scan")
    schemas: list = []
    typed_by_pieces = ctx.pool.fmt in ("jsonl", "csv", "tsv") and not ctx.one_shot
    try:
        pieces = _hashed(ctx.pool.chunks(vectors=True, table=typed_by_pieces))
        for chunk, hashes in pieces if observe is None else prefetch(pieces):  # read ahead while observed
            x = chunk.vectors
            assert x is not None
            if chunk.table is not None and (not schemas or not chunk.table.schema.equals(schemas[-1])):
                schemas.append(chunk.table.schema)
            if chunk.shard >= len(shard_rows):  # batches of a callable: one shard
                shard_rows.extend([0] * (chunk.shard + 1 - len(shard_rows)))
            shard_rows[chunk.shard] += chunk.n_rows
            crash_point("scan: chunk")
            float32 = float32 and x.dtype in (np.float32, np.float16)
            finder.add_hashes(*hashes, total)
            if spill is not None:
                spill.append(x if x.dtype != np.float16 else x.astype(np.float32))
            if observe is not None:
                observe(x if x.dtype != np.float16 else x.astype(np.float32), total)
            total += chunk.n_rows
            if bar is not None:
                bar.update(chunk.n_rows)
    except BaseException:
        finder.close()
        if spill is not None:
            spill.abandon()
        raise
    finally:
        if bar is not None:
            bar.close()
    if spill is not None:
        spill.finish()
    return shard_rows, float32, schemas


def _hashed(pieces: Iterator[Chunk]) -> Iterator[tuple[Chunk, tuple[np.ndarray, np.ndarray]]]:
    """Each piece with its rows' duplicate hashes, computed where the piece is read: in the
    read-ahead thread when the scan is observed, beside the observer's work on the main one.
    Text: the same text is the duplicate (see dedup)."""
    try:
        for chunk in pieces:
            if chunk.texts is not None:
                yield chunk, text_hashes(chunk.texts)
            else:
                assert chunk.vectors is not None
                yield chunk, canonical_hashes(chunk.vectors)
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:  # the reader's files, when the scan stops early
            close()


def _scanned(
    ctx: Context,
    key: str,
    shard_rows: list[int],
    dim: int,
    dtype: np.dtype,
    duplicates: Duplicates,
    spill: Optional[Spill],
    schema: Any,
) -> Scan:
    offsets = np.concatenate([[0], np.cumsum(shard_rows)]).astype(np.int64).tolist()
    dropped = duplicates.rows if ctx.options["dedup"] == "exact" else np.zeros(0, np.int64)
    return Scan(key, shard_rows, dim, dtype, duplicates, spill, schema, dropped, offsets)


def _save_scan(ctx: Context, found: Scan) -> None:
    duplicates = found.duplicates
    ctx.work.save_array("duplicates.npy", np.stack([duplicates.rows, duplicates.first]))
    schema = found.schema
    meta = {
        "shard_rows": found.shard_rows,
        "dim": found.dim,
        "dtype": str(found.dtype),
        "spill": found.spill.meta() if found.spill is not None else None,
        "schema": None if schema is None else base64.b64encode(schema.serialize().to_pybytes()).decode(),
    }
    files = ["duplicates.npy"] + (["vectors.bin"] if found.spill is not None else [])
    if ctx.work.resumable and not ctx.one_shot:
        ctx.work.save("scan", found.key, meta, files)


def _load_scan(ctx: Context, key: str, saved: dict) -> Scan:
    shard_rows = [int(n) for n in saved["shard_rows"]]
    dim = int(saved["dim"])
    ctx.pool.dim = dim
    pairs = np.load(ctx.work.path("duplicates.npy"))
    duplicates = Duplicates(pairs[0].astype(np.int64), pairs[1].astype(np.int64))
    spill = Spill.from_meta(ctx.work, "vectors.bin", saved["spill"]) if saved.get("spill") else None
    schema = None
    if saved.get("schema"):
        pa = pyarrow()
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(saved["schema"])))
    return _scanned(ctx, key, shard_rows, dim, np.dtype(saved["dtype"]), duplicates, spill, schema)
