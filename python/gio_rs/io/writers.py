"""Selected rows written as they come, to one file or to a folder of part files: parquet, jsonl
(``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst``), CSV/TSV (vectors as JSON lists), ``.npy`` (the vectors
only) or ``.txt`` (the text column, one per line).

A folder output (a path ending in ``/``, or an existing folder) gets ``part-00000.<ext>``,
``part-00001.<ext>``, ... each closed once it reaches `shard_bytes` (default 256 MiB; the rows of
one part never exceed it by more than the size estimate of a row). Everything is written under a
temporary name beside the output and renamed when complete: a failure or an interrupt leaves no
output, an existing one is replaced only with ``overwrite``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .._core import GioError
from .._util.errors import naming
from .._util.files import atomic_write, check_writable, umask
from .._util.optional import pyarrow
from .columns import vectors_from_columns
from .formats import CLUSTER_COLUMN, RANK_COLUMN, ROW_INDEX_COLUMN
from .hashed_files import crash_point
from .readers import Table

DEFAULT_SHARD_BYTES = 256 << 20
OUTPUT_FORMATS = ("parquet", "jsonl", "csv", "tsv", "npy", "text")
_EXTENSIONS = {fmt: fmt for fmt in OUTPUT_FORMATS} | {"text": "txt"}
_MAX_SLICE_ROWS = 1 << 16
_CALIBRATION_ROWS = 64
_BY_SUFFIX = {
    ".npy": "npy",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "text",
}


def is_folder_output(path: Any) -> bool:
    path = os.fspath(path)
    return path.endswith(("/", os.sep)) or os.path.isdir(path)


def output_format(path: Any, fmt: Optional[str] = None) -> str:
    """The format to write: `fmt`, else parquet for a folder, else from the extension."""
    if fmt is not None:
        if fmt not in OUTPUT_FORMATS:
            raise GioError(f"out_format: expected one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}")
        return fmt
    if is_folder_output(path):
        return "parquet"
    text = os.fspath(path).lower()
    if text.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson")):
        return "jsonl"
    return file_output_format(path)


def file_output_format(path: Any, fmt: Optional[str] = None) -> str:
    """The format to write `path` in as one file (`write_selection`): npy, parquet, csv, tsv or
    text (by extension unless given)."""
    if fmt is not None:
        if fmt not in ("npy", "parquet", "csv", "tsv", "text"):
            raise GioError(f"out_format: expected npy, parquet, csv, tsv or text, got {fmt!r}")
        return fmt
    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix not in _BY_SUFFIX:
        raise GioError(
            f"{os.fspath(path)}: cannot tell the output format from {suffix!r}; "
            "use .npy, .parquet, .csv or .tsv"
        )
    return _BY_SUFFIX[suffix]


def check_output(path: Any, *, overwrite: bool) -> None:
    """An existing output is refused unless `overwrite`; its parent folder must exist."""
    path = os.fspath(path)
    if is_folder_output(path):
        folder = path.rstrip("/" + os.sep) or path
        if os.path.exists(folder) and not overwrite:
            raise GioError(f"{path}: already exists (pass --overwrite / overwrite=True to replace it)")
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise GioError(f"{path}: exists and is not a folder")
        parent = os.path.dirname(os.path.abspath(folder))
        if not os.path.isdir(parent):
            raise GioError(f"{path}: the directory {parent} does not exist")
        return
    check_writable(path, overwrite=overwrite)


def _compression(path: str) -> Optional[str]:
    lower = path.lower()
    return "gzip" if lower.endswith(".gz") else "zstd" if lower.endswith(".zst") else None


class RowWriter:
    """Write pyarrow tables of rows, in order, to `path` (see the module docstring).

    vector_col : the column holding the vectors (for ``npy`` output).
    text_col : the column holding the text (for ``text`` output).
    n_rows : the number of rows that will be written (needed for ``npy`` output, whose header
        holds the shape).
    empty_shape : (columns, dtype) of an ``npy`` output of no rows (default: 0 columns, float64).
    Use as a context manager, or call `close()` to publish and `abort()` to drop everything.
    """

    def __init__(
        self,
        path: Any,
        fmt: Optional[str] = None,
        *,
        overwrite: bool = False,
        shard_bytes: Optional[int] = None,
        vector_col: Optional[str] = "features",
        text_col: Optional[str] = None,
        n_rows: Optional[int] = None,
        empty_shape: Optional[tuple[int, Any]] = None,
    ) -> None:
        self.path = os.fspath(path)
        self.fmt = output_format(self.path, fmt)
        self.folder = is_folder_output(self.path)
        self.final = self.path.rstrip("/" + os.sep) if self.folder else self.path
        self.overwrite = overwrite
        self.shard_bytes = (shard_bytes or DEFAULT_SHARD_BYTES) if self.folder else None
        self.vector_col = vector_col
        self.text_col = text_col
        self.n_rows = n_rows
        # (columns, dtype) of a .npy of no rows, which has no vectors to take them from
        self.empty_shape = empty_shape
        self.rows_written = 0
        self.parts: list[str] = []
        check_output(self.path, overwrite=overwrite)
        if self.fmt == "npy" and (self.folder or n_rows is None):
            raise GioError(f"{self.path}: .npy output is one file whose row count is known in advance")
        if self.fmt == "text" and text_col is None:
            raise GioError(f"{self.path}: a .txt output needs text input (a .txt file or --text-column)")
        directory = os.path.dirname(os.path.abspath(self.final))
        base = os.path.basename(self.final)
        if self.folder:
            self._tmp = tempfile.mkdtemp(prefix=f".{base}.", suffix=".part", dir=directory)
        else:
            fd, self._tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".part", dir=directory)
            os.close(fd)
        self._part: Optional[_Part] = None
        self._bytes_per_row: Optional[float] = None
        self._schema: Any = None
        self._done = False

    # -- context manager --
    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, kind: Any, value: Any, trace: Any) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def write(self, table: Any) -> None:
        """Append the rows of `table` (its columns must match the first table's, up to type
        promotion such as null → string)."""
        if table.num_rows == 0:
            return
        try:
            self._write(table)
        except OSError as exc:  # a full disk: name the output, which the error does not
            raise naming(exc, self.final) from exc

    def _write(self, table: Any) -> None:
        if self._schema is None:
            self._schema = table.schema
        else:
            table = conform(table, self._schema)
        if not self.folder:
            self._open_part().write(table)
            self.rows_written += table.num_rows
            return
        start = 0
        while start < table.num_rows:
            part = self._open_part()
            room = max(0, self.shard_bytes - part.size()) if self.shard_bytes else 0
            if self._bytes_per_row is None:
                rows = _CALIBRATION_ROWS  # a few rows first, to measure what a row takes
            else:  # aim a little below the limit: the estimate is an average
                rows = int(0.9 * room / max(self._bytes_per_row, 1.0))
            rows = max(1, min(rows, _MAX_SLICE_ROWS, table.num_rows - start))
            part.write(table.slice(start, rows))
            start += rows
            self.rows_written += rows
            if part.rows:
                self._bytes_per_row = max(part.size() / part.rows, 1.0)
            if self.shard_bytes and self.shard_bytes - part.size() < self._bytes_per_row:
                part.close()
                self._part = None

    def _open_part(self) -> _Part:
        if self._part is None:
            if self.folder:
                name = os.path.join(self._tmp, f"part-{len(self.parts):05d}.{_EXTENSIONS[self.fmt]}")
            else:
                name = self._tmp
            self.parts.append(name)
            self._part = _Part(name, self.fmt, self, compression=_compression(self.final))
        return self._part

    def close(self) -> None:
        """Finish the last part and publish the output under its name."""
        if self._done:
            return
        try:
            if self._part is None and not self.parts:
                if self.fmt == "npy" or not self.folder:
                    self._open_part()  # an empty file (or .npy of 0 rows) still gets written
            if self._part is not None:
                self._part.close()
                self._part = None
            if self.fmt == "npy" and self.rows_written != self.n_rows:
                raise GioError(f"{self.path}: {self.rows_written} rows written, {self.n_rows} announced")
            os.chmod(self._tmp, (0o777 if self.folder else 0o666) & ~umask())
            for path in [*self.parts, *([self._tmp] if self.folder else [])]:
                _fsync(path)  # on disk before the rename publishes them
            crash_point("output: complete, not yet renamed")
            check_output(self.path, overwrite=self.overwrite)
            if self.folder and os.path.exists(self.final):
                trash = tempfile.mkdtemp(prefix=f".{os.path.basename(self.final)}.", suffix=".old",
                                         dir=os.path.dirname(os.path.abspath(self.final)))  # fmt: skip
                os.replace(self.final, os.path.join(trash, "old"))
                os.replace(self._tmp, self.final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(self._tmp, self.final)
            _fsync(os.path.dirname(os.path.abspath(self.final)))
            self._done = True
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise naming(exc, self.final) from exc
            raise

    def abort(self) -> None:
        """Drop everything written so far."""
        if self._done:
            return
        if self._part is not None:
            try:
                self._part.close()
            except Exception:  # noqa: S110 - already failing; the temporary files go anyway
                pass
            self._part = None
        if os.path.isdir(self._tmp):
            shutil.rmtree(self._tmp, ignore_errors=True)
        elif os.path.exists(self._tmp):
            os.remove(self._tmp)
        self._done = True


class _Part:
    """One output file being written."""

    def __init__(self, path: str, fmt: str, owner: RowWriter, *, compression: Optional[str]) -> None:
        self.path, self.fmt, self.owner, self.rows = path, fmt, owner, 0
        pa = pyarrow() if fmt != "npy" else None
        self._raw: Any = None
        self._writer: Any = None
        self._stream: Any = None
        if fmt == "npy":
            self._raw = open(path, "wb")
        else:
            self._raw = pa.OSFile(path, "wb")
            self._stream = (
                pa.CompressedOutputStream(self._raw, compression)
                if compression and fmt in ("jsonl", "csv", "tsv", "text")
                else self._raw
            )

    def size(self) -> int:
        return int(self._raw.tell())

    def write(self, table: Any) -> None:
        fmt = self.fmt
        if fmt == "parquet":
            if self._writer is None:
                pa = pyarrow()
                self._writer = pa.parquet.ParquetWriter(self._stream, table.schema)
            self._writer.write_table(table)
        elif fmt == "jsonl":
            rows = table.to_pylist()
            lines = "".join(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n" for row in rows)
            self._stream.write(lines.encode("utf-8"))
        elif fmt in ("csv", "tsv"):
            pa = pyarrow()
            text = _lists_as_json(pa, table)
            if self._writer is None:
                options = pa.csv.WriteOptions(delimiter="," if fmt == "csv" else "\t")
                self._writer = pa.csv.CSVWriter(self._stream, text.schema, write_options=options)
            self._writer.write_table(text)
        elif fmt == "text":
            texts = table.column(self.owner.text_col).to_pylist()
            self._stream.write("".join(f"{t}\n" for t in texts).encode("utf-8"))
        else:  # npy
            x = _vectors_of(table, self.owner.vector_col, self.owner.path)
            if self.rows == 0:
                header = {"descr": np.lib.format.dtype_to_descr(x.dtype), "fortran_order": False,
                          "shape": (self.owner.n_rows, x.shape[1])}  # fmt: skip
                np.lib.format.write_array_header_2_0(self._raw, header)
                self._dtype = x.dtype
            self._raw.write(np.ascontiguousarray(x, dtype=self._dtype).tobytes())
        self.rows += table.num_rows

    def close(self) -> None:
        if self.fmt == "npy" and self.rows == 0:
            dim, dtype = self.owner.empty_shape or (0, np.float64)
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                      "shape": (0, dim)}  # fmt: skip
            np.lib.format.write_array_header_2_0(self._raw, header)
        if self._writer is not None:
            self._writer.close()
        if self._stream is not None and self._stream is not self._raw:
            self._stream.close()
        if not self._raw.closed:
            self._raw.close()


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def _vectors_of(table: Any, column: Optional[str], path: str) -> np.ndarray:
    if column is None or column not in table.column_names:
        raise GioError(f"{path}: .npy output needs the vectors as a column, and there is none ({column!r})")
    pa = pyarrow()
    values = table.column(column).combine_chunks()
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return np.array([json.loads(t) for t in values.to_pylist()], dtype=np.float64)
    x, _ = vectors_from_columns(pa, pa.table({column: values}), path, "parquet", column, None)
    return x


def conform(table: Any, schema: Any) -> Any:
    """`table` with the columns of `schema`, in its order and types (a column missing from
    `table` becomes nulls); GioError naming the column when a value cannot take the type."""
    pa = pyarrow()
    if table.schema.equals(schema):
        return table
    arrays = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            if not column.type.equals(field.type):
                try:
                    column = column.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise GioError(
                        f"column {field.name!r}: has type {column.type} here and {field.type} in earlier rows"
                    ) from exc
            arrays.append(column)
        else:
            arrays.append(pa.nulls(table.num_rows, field.type))
    extra = [n for n in table.column_names if n not in schema.names]
    if extra:
        raise GioError(f"columns {extra}: appear here but not in earlier rows")
    return pa.Table.from_arrays(arrays, schema=schema)


def selected_rows(table: Table, indices: np.ndarray, cluster_of_row: Optional[np.ndarray] = None) -> Any:
    """A pyarrow table of the selected rows, in selection order: the file's columns (for `.npy`
    input, the vector as a `features` column), then `row_index` (the row in the input file) and,
    when quantised, `cluster`, then `rank` (the position in the selection: any prefix of the
    rows is the selection of a smaller budget)."""
    pa = pyarrow()
    indices = np.asarray(indices, dtype=np.int64)
    if table.columns is None:
        rows = table.features[indices]
        dim = table.features.shape[1]
        values = pa.array(np.ascontiguousarray(rows).reshape(-1))
        out = pa.table({"features": pa.FixedSizeListArray.from_arrays(values, dim)})
    else:
        out = table.columns.take(pa.array(indices))
    taken = set(out.column_names)
    for name in (ROW_INDEX_COLUMN, CLUSTER_COLUMN, RANK_COLUMN):
        if name in taken:
            raise GioError(f"{table.path}: already has a column {name!r}, which the output adds")
    out = out.append_column(ROW_INDEX_COLUMN, pa.array(indices))
    if cluster_of_row is not None:
        out = out.append_column(CLUSTER_COLUMN, pa.array(np.asarray(cluster_of_row, dtype=np.int64)))
    return out.append_column(RANK_COLUMN, pa.array(np.arange(len(indices), dtype=np.int64)))


def write_selection(
    path: Any,
    table: Table,
    indices: np.ndarray,
    cluster_of_row: Optional[np.ndarray] = None,
    *,
    fmt: Optional[str] = None,
    overwrite: bool = False,
) -> str:
    """Write the selected rows of `table` to `path` (parquet, CSV/TSV: see `selected_rows`;
    `.npy`: the selected vectors only). Written to a temporary file, then renamed: a failure or
    an interrupt never leaves a half-written output. Returns the format written."""
    fmt = file_output_format(path, fmt)
    indices = np.asarray(indices, dtype=np.int64)
    if fmt == "npy":
        rows = np.ascontiguousarray(table.features[indices])

        def save(tmp: str) -> None:
            with open(tmp, "wb") as fh:  # a file object: np.save would append ".npy" to a name
                np.save(fh, rows, allow_pickle=False)

        atomic_write(path, save, overwrite=overwrite)
        return fmt
    if fmt == "text":
        if table.features_col is None or table.columns is None:
            raise GioError(
                f"{os.fspath(path)}: a .txt output needs text input (a .txt file or --text-column)"
            )
        texts = table.columns.column(table.features_col).to_pylist()
        body = "".join(str(texts[i]) + "\n" for i in indices)

        def save_text(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(body)

        atomic_write(path, save_text, overwrite=overwrite)
        return fmt
    pa = pyarrow()
    out = selected_rows(table, indices, cluster_of_row)
    if fmt == "parquet":
        atomic_write(path, lambda tmp: pa.parquet.write_table(out, tmp), overwrite=overwrite)
    else:
        text = _lists_as_json(pa, out)
        options = pa.csv.WriteOptions(delimiter="," if fmt == "csv" else "\t")
        atomic_write(
            path, lambda tmp: pa.csv.write_csv(text, tmp, write_options=options), overwrite=overwrite
        )
    return fmt


def _lists_as_json(pa: Any, table: Any) -> Any:
    """CSV cannot hold arrays: write vector columns as JSON lists, as the reference's TSV does."""
    for i, field in enumerate(table.schema):
        kind = field.type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
            texts = [None if v is None else json.dumps(v) for v in table.column(i).to_pylist()]
            table = table.set_column(i, field.name, pa.array(texts, pa.string()))
    return table
