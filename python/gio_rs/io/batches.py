"""Inputs read a piece at a time: a file or a folder of shards, in any format gio_rs reads,
delivered as chunks of rows so that a pool larger than memory can be scanned (gio_rs.stream), and
so that `gio_rs.io.read_table` can read the formats below whole.

Shard formats (by extension unless given):

- ``npy``: a 2-D array, memory-mapped and sliced.
- ``parquet``: read a row group's pages at a time (``iter_batches``), an array column (default
  ``features``).
- ``arrow``: Arrow IPC, the file format (``.arrow``, ``.feather`` v2, ``.ipc``) or the stream format
  (what Hugging Face ``datasets`` writes), memory-mapped.
- ``jsonl``: one JSON object per line (``.jsonl``, ``.ndjson``; ``.gz`` or ``.zst`` compressed), the
  vector a list field (default ``features``) or a text field; the other fields are carried.
  Parsed by pyarrow in blocks of lines; an error names the line.
- ``csv``, ``tsv``, ``reference-tsv`` (as `gio_rs.io`), ``text`` (``.txt``, one sentence per line).

A folder is one dataset: a Hugging Face ``datasets`` folder written by ``save_to_disk`` (its
``state.json`` lists the Arrow files, read in that order; no ``datasets`` import), or any folder
whose data files all have one format, read in name order (hidden files and names starting with
``_``, like Spark's ``_SUCCESS``, are skipped; sub-folders are not read).

Text (``.txt`` or a ``text_column``) is embedded with `gio_rs.embed` chunk by chunk.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .._core import GioError
from .._util.errors import first_error_line
from .._util.optional import pyarrow
from .._util.text import split_lines
from .columns import RowNames, check_vectors, read_npy, vectors_from_columns
from .formats import reader_errors
from .shards import Shard, list_shards

DEFAULT_BATCH_ROWS = 32768
_BLOCK_BYTES = 8 << 20  # bytes of text (jsonl, .txt) parsed at a time
_READ_BYTES = 256 << 10  # read (and decompressed) at a time
_PARQUET_BUFFER = 8 << 20  # parquet pages are streamed through a buffer of this size
_ARROW_FILE_MAGIC = b"ARROW1"


@dataclass
class Chunk:
    """Consecutive rows of one shard.

    shard : index of the shard in its source.
    first_row : the first row's position in the shard.
    vectors : (rows, d) float32/float64, or None when not asked for.
    table : every column of the file for these rows (pyarrow.Table), or None when not asked for
        (and for `.npy` input, which has no columns besides the vector).
    texts : the sentences, for text input.
    names : how errors name these rows (row or line numbers in the file).
    """

    shard: int
    first_row: int
    n_rows: int
    vectors: Optional[np.ndarray] = None
    table: Any = None
    texts: Optional[list] = None
    names: RowNames = field(default_factory=RowNames)


class RowSource:
    """An input read in chunks: its shards in order, the vector column or text column to use.

    `name` is the argument or flag errors name when the problem is not one file's (e.g.
    "--train"). Chunks hold at most `batch_rows` rows and never span two shards. Vectors are
    checked chunk by chunk: every row of every shard must have the dimension of the first (a
    GioError names the file and the row or line otherwise), no NaN/inf, no null.
    """

    def __init__(
        self,
        shards: Sequence[Shard],
        *,
        name: str = "path",
        features_col: Optional[str] = None,
        feature_columns: Optional[Sequence[str]] = None,
        text_column: Optional[str] = None,
        embed_options: Optional[dict] = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        self.shards = list(shards)
        self.name = name
        self.features_col = features_col
        self.feature_columns = list(feature_columns) if feature_columns else None
        self.text_column = text_column
        self.embed_options = dict(embed_options or {})
        self.batch_rows = int(batch_rows)
        self.dim: Optional[int] = None
        self._dim_from: Optional[str] = None
        if self.is_text and any(s.fmt == "npy" for s in self.shards):
            raise GioError(f"{self.shards[0].path}: a .npy file has no text column")
        if any(s.fmt == "npy" for s in self.shards) and (features_col is not None or self.feature_columns):
            raise GioError(
                f"{self.shards[0].path}: a .npy file has no columns to choose (features_col/feature_columns)"
            )

    @classmethod
    def open(cls, path: Any, *, fmt: Optional[str] = None, name: str = "path", **options: Any) -> RowSource:
        return cls(list_shards(path, fmt=fmt, name=name), name=name, **options)

    @property
    def is_text(self) -> bool:
        return self.text_column is not None or any(s.fmt == "text" for s in self.shards)

    @property
    def fmt(self) -> str:
        return self.shards[0].fmt

    def fingerprint(self) -> list[dict[str, Any]]:
        return [s.fingerprint() for s in self.shards]

    def chunks(
        self, *, vectors: bool = True, table: bool = False, start_shard: int = 0, embed: bool = True
    ) -> Iterator[Chunk]:
        """The rows of every shard from `start_shard` on, in order. `vectors`: read (and check)
        the vectors, embedding text when `embed`; `table`: every column of the file."""
        for index in range(start_shard, len(self.shards)):
            shard = self.shards[index]
            with reader_errors(shard.path, shard.fmt):
                for chunk in self._shard_chunks(index, shard, vectors=vectors, table=table):
                    if vectors and chunk.vectors is None and chunk.texts is not None and embed:
                        chunk.vectors = self._embed(chunk)
                    if chunk.vectors is not None:
                        self._check_dim(shard, chunk)
                    yield chunk

    def _embed(self, chunk: Chunk) -> np.ndarray:
        from .. import embed

        if not chunk.texts:
            return np.zeros((0, 0), dtype=np.float32)
        return embed.embed(chunk.texts, **self.embed_options)

    def _check_dim(self, shard: Shard, chunk: Chunk) -> None:
        x = chunk.vectors
        assert x is not None
        if x.shape[0] == 0:
            return
        if self.dim is None:
            self.dim, self._dim_from = int(x.shape[1]), shard.path
        elif x.shape[1] != self.dim:
            raise GioError(
                f"{shard.path}: vectors of {x.shape[1]} components ({chunk.names.one(0)}), but "
                f"{self._dim_from} has {self.dim}: every file of {self.name} must have one dimension"
            )
        check_vectors(x, shard.path, chunk.names)

    # ---------------------------------------------------------------------------------------
    # One shard

    def _shard_chunks(self, index: int, shard: Shard, *, vectors: bool, table: bool) -> Iterator[Chunk]:
        if shard.fmt == "npy":
            yield from self._npy_chunks(index, shard, vectors=vectors, table=table)
            return
        if shard.fmt == "text":
            yield from self._text_chunks(index, shard)
            return
        pa = pyarrow()
        first = 0
        for piece, names in self._arrow_pieces(pa, shard, vectors=vectors, table=table):
            n = piece.num_rows
            names = names if names is not None else RowNames(first_row=first)
            chunk = Chunk(index, first, n, names=names, table=piece if table else None)
            if self.text_column is not None:
                chunk.texts = self._texts(pa, piece, shard, names)
            elif vectors:
                chunk.vectors = self._vectors(pa, piece, shard, names)
            yield chunk
            first += n

    def _vectors(self, pa: Any, piece: Any, shard: Shard, names: RowNames) -> np.ndarray:
        if shard.fmt == "jsonl":
            self._check_jsonl_field(piece, shard, names, self.features_col or "features")
        fmt = "csv" if shard.fmt in ("csv", "tsv") else shard.fmt
        x, _ = vectors_from_columns(
            pa, piece, shard.path, fmt, self.features_col, self.feature_columns, names
        )
        return x

    def _texts(self, pa: Any, piece: Any, shard: Shard, names: RowNames) -> list:
        column_name = self.text_column
        assert column_name is not None
        if shard.fmt == "jsonl":
            self._check_jsonl_field(piece, shard, names, column_name)
        if column_name not in piece.column_names:
            raise GioError(f"{shard.path}: no column {column_name!r}; columns: {piece.column_names}")
        column = piece.column(column_name)
        if column.null_count:
            rows = np.flatnonzero(np.asarray(column.is_null()))
            raise GioError(f"{shard.path}: column {column_name!r} has empty values ({names.many(rows)})")
        return [str(t) for t in column.to_pylist()]

    @staticmethod
    def _check_jsonl_field(piece: Any, shard: Shard, names: RowNames, wanted: str) -> None:
        """A jsonl field missing from some lines arrives as nulls: name those lines."""
        if wanted not in piece.column_names:
            raise GioError(f"{shard.path}: no field {wanted!r}; fields: {piece.column_names}")
        column = piece.column(wanted)
        if column.null_count:
            rows = np.flatnonzero(np.asarray(column.is_null()))
            others = [c for c in piece.column_names if c != wanted]
            if column.null_count == piece.num_rows and piece.num_rows:
                raise GioError(f"{shard.path}: no field {wanted!r} from {names.one(0)} on; fields: {others}")
            where = names.one(rows[0]) if len(rows) == 1 else names.many(rows)
            raise GioError(f"{shard.path}: {where}: no field {wanted!r} (or it is null)")

    def _npy_chunks(self, index: int, shard: Shard, *, vectors: bool, table: bool) -> Iterator[Chunk]:
        arr = read_npy(shard.path)
        step = self.batch_rows
        for start in range(0, len(arr), step):
            stop = min(len(arr), start + step)
            x = np.asarray(arr[start:stop])
            chunk = Chunk(index, start, stop - start, names=RowNames(first_row=start))
            if vectors or table:
                chunk.vectors = x
            if table:
                chunk.table = vectors_table(x)
            yield chunk

    def _text_chunks(self, index: int, shard: Shard) -> Iterator[Chunk]:
        pa = pyarrow()
        first = 0
        for lines in _text_lines(shard.path, self.batch_rows):
            chunk = Chunk(index, first, len(lines), names=RowNames(first_row=first))
            chunk.texts = lines
            chunk.table = pa.table({"sentence": pa.array(lines, pa.string())})
            yield chunk
            first += len(lines)

    def _arrow_pieces(
        self, pa: Any, shard: Shard, *, vectors: bool, table: bool
    ) -> Iterator[tuple[Any, Optional[RowNames]]]:
        """pyarrow Tables of at most batch_rows rows (and, for jsonl, the lines they came from)."""
        columns = None
        if not table and shard.fmt in ("parquet", "arrow"):
            wanted = self.text_column or self.features_col
            columns = [wanted] if wanted is not None and not self.feature_columns else None
        if shard.fmt == "parquet":
            pieces: Iterator[Any] = _parquet_batches(pa, shard.path, self.batch_rows, columns)
        elif shard.fmt == "arrow":
            pieces = _ipc_batches(pa, shard.path, self.batch_rows, columns)
        elif shard.fmt == "jsonl":
            yield from _jsonl_tables(pa, shard, self.batch_rows, self._jsonl_schema(pa))
            return
        else:
            pieces = _csv_batches(pa, shard, self.batch_rows)
        for piece in pieces:
            yield piece, None

    def _jsonl_schema(self, pa: Any) -> Any:
        """The one field whose type gio_rs decides: the vector (a list of float64), or text."""
        if self.text_column is not None:
            return pa.schema([(self.text_column, pa.string())])
        if self.feature_columns:
            return None
        return pa.schema([(self.features_col or "features", pa.list_(pa.float64()))])


def vectors_table(x: np.ndarray) -> Any:
    """A `features` column (fixed-size lists) holding the rows of `x`: the columns of `.npy` input."""
    pa = pyarrow()
    x = np.ascontiguousarray(x)
    values = pa.array(x.reshape(-1))
    return pa.table({"features": pa.FixedSizeListArray.from_arrays(values, x.shape[1])})


def _rechunk(pa: Any, batches: Iterator[Any], rows: int) -> Iterator[Any]:
    """Tables of exactly `rows` rows (the last one fewer) from record batches of any size."""
    pending: list = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            batch = batch.slice(take)
            count += take
            if count == rows:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending)


def _parquet_batches(pa: Any, path: str, rows: int, columns: Optional[list]) -> Iterator[Any]:
    # buffer_size: pages are streamed rather than a whole column chunk read at once.
    parquet = pa.parquet.ParquetFile(path, buffer_size=_PARQUET_BUFFER, pre_buffer=False)
    if columns is not None and not set(columns) <= set(parquet.schema_arrow.names):
        columns = None  # let the vector extraction name the missing column with the others
    for batch in parquet.iter_batches(batch_size=rows, columns=columns, use_threads=False):
        yield pa.Table.from_batches([batch])


def _ipc_batches(pa: Any, path: str, rows: int, columns: Optional[list]) -> Iterator[Any]:
    source = pa.memory_map(path, "r")
    try:
        magic = source.read(len(_ARROW_FILE_MAGIC))
        source.seek(0)
        if magic == _ARROW_FILE_MAGIC:
            reader = pa.ipc.open_file(source)
            batches: Iterator[Any] = (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            batches = iter(pa.ipc.open_stream(source))
        done = 0
        pieces = _rechunk(pa, batches, rows)
        while True:
            try:
                table = next(pieces)
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError) as exc:  # a stream cut short fails at its last batch
                raise GioError(
                    f"{path}: could not be read as arrow after row {done} ({type(exc).__name__}: "
                    f"{first_error_line(exc)})"
                ) from exc
            done += table.num_rows
            if columns is not None and set(columns) <= set(table.column_names):
                table = table.select(columns)
            yield table
    finally:
        source.close()


def _csv_batches(pa: Any, shard: Shard, rows: int) -> Iterator[Any]:
    if shard.fmt == "reference-tsv":
        with open(shard.path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline().rstrip("\r\n")
        names = [f"_c{i}" for i in range(len(first.split("\t")) if first else 3)]
        reader = pa.csv.open_csv(
            shard.path,
            read_options=pa.csv.ReadOptions(column_names=names, block_size=_BLOCK_BYTES),
            parse_options=pa.csv.ParseOptions(delimiter="\t"),
            convert_options=pa.csv.ConvertOptions(column_types={n: pa.string() for n in names}),
        )
    else:
        reader = pa.csv.open_csv(
            shard.path,
            read_options=pa.csv.ReadOptions(block_size=_BLOCK_BYTES),
            parse_options=pa.csv.ParseOptions(delimiter="," if shard.fmt == "csv" else "\t"),
        )
    yield from _rechunk(pa, iter(reader), rows)


# ------------------------------------------------------------------------------------------------
# Line-based text: jsonl and .txt


def _blocks_of_lines(pa: Any, shard: Shard) -> Iterator[tuple[bytes, int]]:
    """Blocks of whole lines of a (possibly compressed) file and the line number (1-based) of
    each block's first line. A compressed file cut short raises GioError naming the last whole
    line read before the damage (read in small pieces so that this is close to it)."""
    line = 1
    carry = b""
    stream = pa.input_stream(shard.path, compression=shard.compression)
    try:
        while True:
            pieces = []
            size = 0
            while size < _BLOCK_BYTES:
                try:
                    data = stream.read(_READ_BYTES)
                except OSError as exc:  # pyarrow: "Truncated compressed stream", bad headers, ...
                    whole = line - 1 + (carry + b"".join(pieces)).count(b"\n")
                    kind = f"{shard.compression} " if shard.compression else ""
                    where = f"after line {whole}" if whole else f"within its first {_READ_BYTES >> 10} KiB"
                    raise GioError(
                        f"{shard.path}: {kind}data cut short or corrupt {where} ({first_error_line(exc)})"
                    ) from exc
                if not data:
                    break
                pieces.append(data)
                size += len(data)
            if not pieces:
                break
            buffer = carry + b"".join(pieces)
            cut = buffer.rfind(b"\n")
            if cut < 0:
                carry = buffer
                continue
            block, carry = buffer[: cut + 1], buffer[cut + 1 :]
            yield block, line
            line += block.count(b"\n")
        if carry:
            yield carry, line
    finally:
        stream.close()


def _jsonl_tables(pa: Any, shard: Shard, rows: int, schema: Any) -> Iterator[tuple[Any, Optional[RowNames]]]:
    import pyarrow.json as pajson

    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    for block, first_line in _blocks_of_lines(pa, shard):
        lines = _line_numbers(block, first_line)
        if not len(lines):
            continue
        try:
            table = pajson.read_json(
                pa.py_buffer(block),
                read_options=pajson.ReadOptions(use_threads=False, block_size=len(block) + 1),
                parse_options=parse,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise _jsonl_error(shard.path, block, lines, exc) from exc
        if table.num_rows != len(lines):  # cannot happen unless pyarrow changes its line rules
            raise GioError(
                f"{shard.path}: lines {first_line}...: {table.num_rows} rows from {len(lines)} lines"
            )
        for start in range(0, table.num_rows, rows):
            yield table.slice(start, rows), RowNames(lines=lines[start : start + rows])


def _line_numbers(block: bytes, first_line: int) -> np.ndarray:
    """Line numbers of the non-blank lines of `block` (pyarrow skips blank ones)."""
    text_lines = block.split(b"\n")
    if text_lines and text_lines[-1] == b"":
        text_lines.pop()
    return np.array([first_line + i for i, t in enumerate(text_lines) if t.strip()], dtype=np.int64)


_ARROW_ROW = re.compile(r"\bin row (\d+)")


def _jsonl_error(path: str, block: bytes, lines: np.ndarray, exc: BaseException) -> GioError:
    """A one-line error naming the line pyarrow could not parse: found by parsing the block's
    lines one by one with `json`, else from the row pyarrow names."""
    message = first_error_line(exc)
    non_blank = [t for t in block.split(b"\n") if t.strip()]
    for number, text in zip(lines, non_blank):
        try:
            value = json.loads(text)
        except ValueError as err:
            return GioError(f"{path}: line {number} is not valid JSON ({err})")
        if not isinstance(value, dict):
            return GioError(f"{path}: line {number} is not a JSON object (got {type(value).__name__})")
    found = _ARROW_ROW.search(message)
    if found is not None and int(found.group(1)) < len(lines):
        row = int(found.group(1))
        message = _ARROW_ROW.sub("", message).rstrip(" .")
        return GioError(f"{path}: line {lines[row]}: {message} (a field's type differs from earlier lines)")
    return GioError(f"{path}: lines {lines[0]}-{lines[-1]} could not be read as JSON lines ({message})")


def _text_lines(path: str, rows: int) -> Iterator[list]:
    """The lines of a UTF-8 text file as `gio_rs.embed.read_sentences` splits them, `rows` at a
    time: a BOM skipped, \\n, \\r\\n and \\r ending lines, no extra line after a final break."""
    pending: list = []
    line = 1
    first = True
    with open(path, "rb") as fh:
        carry = b""
        while True:
            data = fh.read(_BLOCK_BYTES)
            buffer = carry + data
            if first and buffer.startswith(codecs.BOM_UTF8):
                buffer = buffer[len(codecs.BOM_UTF8) :]
            first = False
            cut = buffer.rfind(b"\n") if data else len(buffer) - 1
            block, carry = buffer[: cut + 1], buffer[cut + 1 :]
            if block:
                try:
                    text = block.decode("utf-8")
                except UnicodeDecodeError as err:
                    bad = line + block[: err.start].count(b"\n")
                    byte = block[err.start]
                    raise GioError(
                        f"{path}: is not UTF-8 text: line {bad} has an invalid byte (0x{byte:02x})"
                    ) from None
                line += block.count(b"\n")
                pending.extend(split_lines(text))
                while len(pending) >= rows:
                    yield pending[:rows]
                    pending = pending[rows:]
            if not data:
                break
    if pending:
        yield pending


# ------------------------------------------------------------------------------------------------
# Arrays and iterators of arrays


class ArraySource:
    """Vectors given as arrays rather than files, with the interface of `RowSource`.

    `data` is a 2-D array (a `np.memmap` works: it is read a slice at a time), a list or tuple
    of 2-D arrays (one shard each), or a callable returning a fresh iterator of 2-D arrays each
    time it is called (every pass over the pool calls it). A plain iterator can be read once
    only: `gio_rs.stream` copies it to a spill file on its first pass.
    """

    def __init__(self, data: Any, *, name: str = "train", batch_rows: int = DEFAULT_BATCH_ROWS) -> None:
        self.name = name
        self.batch_rows = int(batch_rows)
        self.dim: Optional[int] = None
        self.features_col: Optional[str] = "features"
        self.feature_columns = None
        self.text_column = None
        self.is_text = False
        self.fmt = "npy"
        if callable(data):
            self._factory = data
            self.shards = [Shard(f"{name} (batches)", "npy")]
        elif isinstance(data, (list, tuple)):
            if not data:
                raise GioError(f"{name}: an empty list of arrays")
            arrays = list(data)
            self._factory = lambda: iter(arrays)
            self.shards = [Shard(f"{name}[{i}]", "npy") for i in range(len(arrays))]
            self._per_shard = True
        else:
            array = data
            self._factory = lambda: iter([array])
            self.shards = [Shard(name, "npy")]
        self._per_shard = isinstance(data, (list, tuple))
        self._single = not self._per_shard and not callable(data)

    def fingerprint(self) -> list[dict[str, Any]]:
        raise GioError(
            f"work_dir: {self.name} is given as arrays or batches, whose contents cannot be checked "
            "cheaply; resuming needs file inputs"
        )

    def chunks(
        self, *, vectors: bool = True, table: bool = False, start_shard: int = 0, embed: bool = True
    ) -> Iterator[Chunk]:
        from .._util.arrays import as_matrix

        first_row = 0
        for number, item in enumerate(self._factory()):
            shard = number if self._per_shard else 0
            label = (
                self.shards[shard].path
                if (self._per_shard or self._single)
                else f"{self.name} batch {number}"
            )
            if self._per_shard:
                first_row = 0
            if shard < start_shard:
                continue
            if not hasattr(item, "shape") or len(item.shape) != 2:
                item = as_matrix(label, item, min_rows=0)  # lists and the like: checked whole
            for start in range(0, item.shape[0], self.batch_rows):
                # Checked a slice at a time: a memory-mapped array is read once per pass.
                x = np.asarray(item[start : start + self.batch_rows])
                if x.dtype.kind == "f" and x.ndim == 2 and x.shape[1]:
                    check_vectors(x, label, RowNames(first_row=first_row))  # rows of the whole
                x = as_matrix(label, x, min_rows=0)
                if self.dim is None:
                    self.dim = int(x.shape[1])
                elif x.shape[1] != self.dim:
                    raise GioError(
                        f"{label}: has {x.shape[1]} columns, earlier rows of {self.name} have {self.dim}"
                    )
                chunk = Chunk(shard, first_row, len(x), names=RowNames(first_row=first_row))
                chunk.vectors = x
                if table:
                    chunk.table = vectors_table(x)
                yield chunk
                first_row += len(x)
