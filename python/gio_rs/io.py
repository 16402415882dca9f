"""Embeddings in files: read a matrix of vectors (plus the file's other columns) from `.npy`,
parquet, Arrow IPC, jsonl, the reference's headerless TSV (`_c2` = JSON vector), CSV/TSV with a
header or `.txt` sentences, and write selected rows back out atomically. Used by the `gio-rs`
command; usable on its own.

Formats (by extension unless given): ``npy``; ``parquet`` (a file or a directory of parquet
files; an array column, default ``features``); ``arrow`` (``.arrow``/``.feather``/``.ipc``, the
IPC file or stream format; a Hugging Face ``datasets`` folder written by ``save_to_disk`` is a
folder of these); ``jsonl`` (``.jsonl``/``.ndjson``, also ``.gz``/``.zst``: one JSON object per
line, the vector a list field, default ``features``); ``reference-tsv`` (headerless,
tab-separated, the third column ``_c2`` a JSON list, as `grad-info-opt` reads it; a ``.tsv`` whose
first line looks like that is read this way); ``csv`` / ``tsv`` with a header, the vector either
a column of JSON lists (default ``features``, else ``_c2``) or numeric columns
(``feature_columns``, default every numeric column); ``text`` (``.txt``, embedded). A folder is a
dataset of shards of one format (`gio_rs.batches`). Everything but ``.npy`` needs pyarrow
(``pip install gio_rs[io]``); the jsonl decompression is pyarrow's own (gzip and zstd).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ._core import GioError

FORMATS = ("npy", "parquet", "arrow", "jsonl", "reference-tsv", "csv", "tsv", "text")
# Read through gio_rs.batches (in pieces, then joined) rather than in one call.
_CHUNKED_FORMATS = ("arrow", "jsonl")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_COMPRESSED_SUFFIXES = (".gz", ".zst")
_ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
ROW_INDEX_COLUMN = "row_index"
CLUSTER_COLUMN = "cluster"
RANK_COLUMN = "rank"
_BAD_ROWS_SHOWN = 10
_MESSAGE_CHARS = 500  # of a reader's own error message, in ours


@dataclass
class Table:
    """Vectors read from a file, with the file's other columns.

    features : (rows, d) float32 or float64 array (float32 when the file stores float32).
    columns : pyarrow.Table or None; every column of the file, the vector column included
        (None for `.npy`).
    features_col : the column the vectors came from, or None (`.npy`, numeric columns).
    path, fmt : where and how it was read.
    """

    features: np.ndarray
    columns: Any
    features_col: Optional[str]
    path: str
    fmt: str

    def __len__(self) -> int:
        return len(self.features)


@dataclass(frozen=True)
class RowNames:
    """How errors name the rows of a table that is one piece of a file (a batch of a shard read
    in pieces): rows are numbered from `first_row` within the file, or by their line number in
    it (`lines`, 1-based, one per row of the piece: jsonl)."""

    first_row: int = 0
    lines: Optional[np.ndarray] = None

    @property
    def noun(self) -> str:
        return "line" if self.lines is not None else "row"

    def numbers(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        return self.lines[rows] if self.lines is not None else rows + self.first_row

    def many(self, rows: np.ndarray) -> str:
        """'rows 3, 5' (or 'lines 4, 6'): `rows` index the piece."""
        return f"{self.noun}s {_rows_text(self.numbers(rows))}"

    def one(self, row: int) -> str:
        return f"{self.noun} {int(self.numbers(np.array([row]))[0])}"


WHOLE_FILE = RowNames()


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.compute  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "reading or writing parquet/CSV/TSV needs pyarrow: pip install 'gio_rs[io]'"
        ) from exc
    return pyarrow


def detect_format(path: str) -> str:
    """The format of `path` from its extension (and, for `.tsv`, its first line); for a folder,
    the format of its files (a Hugging Face `datasets` folder holds Arrow files)."""
    p = Path(path)
    if p.is_dir():
        from .batches import list_shards

        return list_shards(path)[0].fmt
    suffixes = [s.lower() for s in p.suffixes[-2:]]
    if suffixes[-1:] and suffixes[-1] in _COMPRESSED_SUFFIXES and suffixes[0] in _JSONL_SUFFIXES:
        return "jsonl"
    suffix = p.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix in _ARROW_SUFFIXES:
        return "arrow"
    if suffix == ".npy":
        return "npy"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    if suffix == ".txt":
        return "text"
    if suffix in (".tsv", ".tab"):
        return "reference-tsv" if _looks_like_reference_tsv(p) else "tsv"
    raise GioError(
        f"{path}: cannot tell the format from the extension {suffix!r}; "
        f"use .npy, .parquet, .arrow, .jsonl(.gz|.zst), .csv, .tsv or .txt, or give the format "
        f"({', '.join(FORMATS)})"
    )


def _looks_like_reference_tsv(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
    except OSError:
        return False
    fields = first.rstrip("\r\n").split("\t")
    return len(fields) >= 3 and fields[2].strip().startswith("[")


def read_table(
    path: Any,
    *,
    fmt: Optional[str] = None,
    features_col: Optional[str] = None,
    feature_columns: Optional[Sequence[str]] = None,
    text_column: Optional[str] = None,
    embed_options: Optional[dict] = None,
) -> Table:
    """Read vectors and columns from `path` (see the module docstring for formats).

    Every failure to read the file raises GioError naming it: a missing or empty file, an
    unknown format, a file that is not what its format says (cut short, corrupt), a missing or
    unreadable vector column, rows of different lengths, null or non-finite vectors (with the
    rows). Only ImportError (a missing optional dependency) passes through as it is.
    """
    path = os.fspath(path)
    check_input(path)
    fmt = detect_format(path) if fmt is None else fmt
    if fmt not in FORMATS:
        raise GioError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt not in ("npy", "parquet", "arrow") and os.path.isfile(path) and not _compressed(path):
        warn_if_cut_short(path, stacklevel=3)
    if fmt in _CHUNKED_FORMATS or (os.path.isdir(path) and fmt != "parquet"):
        return _read_in_chunks(path, fmt, features_col, feature_columns, text_column, embed_options or {})
    if fmt == "text" or text_column is not None:
        return _read_text(path, fmt, text_column, embed_options or {})
    if fmt == "npy" and (features_col is not None or feature_columns):
        raise GioError(f"{path}: a .npy file has no columns to choose (features_col/feature_columns)")
    with reader_errors(path, fmt):
        if fmt == "npy":
            table = Table(_read_npy(path), None, None, path, fmt)
        else:
            pa = _pyarrow()
            columns = _read_columns(pa, path, fmt)
            features, used = _vectors_from_columns(pa, columns, path, fmt, features_col, feature_columns)
            table = Table(features, columns, used, path, fmt)
        _check_rows(table)
    return table


def _compressed(path: str) -> bool:
    return Path(path).suffix.lower() in _COMPRESSED_SUFFIXES


def _read_in_chunks(
    path: str,
    fmt: str,
    features_col: Optional[str],
    feature_columns: Optional[Sequence[str]],
    text_column: Optional[str],
    embed_options: dict,
) -> Table:
    """A whole file or folder read through gio_rs.batches: the pieces joined (carried columns
    whose type differs between pieces, e.g. null in one, are unified), text embedded at once."""
    from . import embed
    from .batches import RowSource

    source = RowSource.open(
        path, fmt=fmt, features_col=features_col, feature_columns=feature_columns, text_column=text_column
    )
    pieces, vectors, texts = [], [], []
    for chunk in source.chunks(vectors=True, table=True, embed=False):
        pieces.append(chunk.table)
        if chunk.texts is not None:
            texts.extend(chunk.texts)
        elif chunk.vectors is not None:
            vectors.append(chunk.vectors)
    if not pieces or sum(p.num_rows for p in pieces) == 0:
        raise GioError(f"{path}: has no rows")
    pa = _pyarrow()
    with reader_errors(path, fmt):
        columns = pa.concat_tables(pieces, promote_options="permissive")
    if source.is_text:
        name = source.text_column or "sentence"
        table = Table(embed.embed(texts, **embed_options), columns, name, path, fmt)
    else:
        dtype = np.float32 if all(v.dtype == np.float32 for v in vectors) else np.float64
        features = np.concatenate([v.astype(dtype, copy=False) for v in vectors])
        used = None if source.feature_columns else (source.features_col or "features")
        table = Table(features, columns, used, path, fmt)
    _check_rows(table)
    return table


def check_input(path: str) -> None:
    """GioError for a missing or zero-byte input file: checked before reading it (no reader
    explains an empty file well: numpy says "No data left in file")."""
    if not os.path.exists(path):
        raise GioError(f"{path}: no such file or directory")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise GioError(f"{path}: is empty (0 bytes)")


@contextlib.contextmanager
def reader_errors(path: str, fmt: str) -> Iterator[None]:
    """Turn any exception raised while reading `path` into a GioError naming the file (the
    original chained as its cause), so that a reader failure is always one clear line.
    GioError and ImportError (a missing optional dependency) pass through unchanged."""
    try:
        yield
    except (GioError, ImportError):
        raise
    except Exception as exc:  # numpy, pyarrow, json, Spark...: each raises its own kinds
        cause = f"{type(exc).__name__}: {_first_line(exc)}"
        raise GioError(f"{path}: could not be read as {fmt} ({cause})") from exc


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, shortened: Spark's errors carry a Java stack
    trace after it. py4j starts with "An error occurred while calling oNN.x.", then the
    Java exception, which is the line that says what went wrong."""
    lines = [line.strip().lstrip(":").strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("An error occurred while calling"):
        lines = lines[1:]
    text = lines[0] if lines else ""
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 3] + "..."


def warn_if_cut_short(path: str, *, stacklevel: int = 2) -> None:
    """Warn when a text file does not end with a line break. Such a file reads without error
    even when it was cut short (a copy interrupted, a disk full), and then its last row is
    silently incomplete: a number missing digits, a sentence missing words. Files written by
    programs end with a line break; a hand-made one may not, so this warns, not fails."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        last = fh.read(1)
    if last not in (b"\n", b"\r"):
        warnings.warn(
            f"{path}: the last line does not end with a line break; if the file was cut short, "
            "its last row is incomplete",
            stacklevel=stacklevel,
        )


def _read_columns(pa: Any, path: str, fmt: str) -> Any:
    """Every column of a parquet, reference-TSV or CSV/TSV file, as a pyarrow table."""
    if fmt == "parquet":
        return pa.parquet.read_table(path)
    if fmt == "reference-tsv":
        return _read_reference_tsv(pa, path)
    return _read_delimited(pa, path, "," if fmt == "csv" else "\t")


def _read_text(path: str, fmt: str, text_column: Optional[str], embed_options: dict) -> Table:
    """Sentences embedded on the way in (gio_rs.embed): a .txt file (one per line, kept as a
    `sentence` column) or the text column of a table."""
    from . import embed

    if fmt == "npy":
        raise GioError(f"{path}: a .npy file has no text column")
    pa = _pyarrow()
    with reader_errors(path, fmt):
        if fmt == "text":
            sentences = embed.read_sentences(path)
            columns = pa.table({"sentence": pa.array(sentences, pa.string())})
            name = "sentence"
        else:
            columns = _read_columns(pa, path, fmt)
            if text_column not in columns.column_names:
                raise GioError(f"{path}: no column {text_column!r}; columns: {columns.column_names}")
            column = columns.column(text_column)
            if column.null_count:
                rows = np.flatnonzero(np.asarray(column.is_null()))
                raise GioError(f"{path}: column {text_column!r} has empty values (rows {_rows_text(rows)})")
            sentences = [str(t) for t in column.to_pylist()]
            name = text_column
    if not sentences:  # before loading the model
        raise GioError(f"{path}: has no rows")
    # Embedding is outside reader_errors: a model failure is not the input file's fault.
    table = Table(embed.embed(sentences, **embed_options), columns, name, path, fmt)
    _check_rows(table)
    return table


def _read_npy(path: str) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError) as exc:  # object arrays (need pickle), bad headers, cut short
        raise GioError(f"{path}: not a valid numeric .npy file ({exc})") from exc
    if not isinstance(arr, np.ndarray) or arr.ndim != 2:
        shape = getattr(arr, "shape", None)
        raise GioError(f"{path}: expected a 2-D array (rows, features), got shape {shape}")
    if arr.dtype.kind not in "iuf":
        raise GioError(f"{path}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def _read_reference_tsv(pa: Any, path: str) -> Any:
    # Every field as text: the reference's Spark reader infers nothing either.
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline().rstrip("\r\n")
    n_fields = len(first.split("\t")) if first else 3
    names = [f"_c{i}" for i in range(n_fields)]
    return pa.csv.read_csv(
        path,
        read_options=pa.csv.ReadOptions(column_names=names),
        parse_options=pa.csv.ParseOptions(delimiter="\t"),
        convert_options=pa.csv.ConvertOptions(column_types={n: pa.string() for n in names}),
    )


def _read_delimited(pa: Any, path: str, delimiter: str) -> Any:
    return pa.csv.read_csv(path, parse_options=pa.csv.ParseOptions(delimiter=delimiter))


def _vectors_from_columns(
    pa: Any,
    columns: Any,
    path: str,
    fmt: str,
    features_col: Optional[str],
    feature_columns: Optional[Sequence[str]],
    names: RowNames = WHOLE_FILE,
) -> tuple[np.ndarray, Optional[str]]:
    column_names = columns.column_names
    if feature_columns:
        if features_col is not None:
            raise GioError(f"{path}: give either features_col or feature_columns, not both")
        return _numeric_columns(pa, columns, path, list(feature_columns), names), None
    if features_col is None:
        if fmt == "reference-tsv":
            features_col = "_c2"
        elif "features" in column_names:
            features_col = "features"
        elif "_c2" in column_names:
            features_col = "_c2"
        elif fmt in ("csv", "tsv"):
            numeric = [n for n in column_names if _is_numeric(pa, columns.schema.field(n).type)]
            if not numeric:
                raise GioError(
                    f"{path}: no 'features' column and no numeric columns; name the vector column "
                    f"(features_col) or the numeric ones (feature_columns). Columns: {column_names}"
                )
            return _numeric_columns(pa, columns, path, numeric, names), None
        else:
            raise GioError(f"{path}: no 'features' column; name the vector column. Columns: {column_names}")
    if features_col not in column_names:
        raise GioError(f"{path}: no column {features_col!r}; columns: {column_names}")
    column = columns.column(features_col).combine_chunks()
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _vectors_from_json(column.to_pylist(), path, features_col, names), features_col
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _vectors_from_lists(pa, column, path, features_col, names), features_col
    raise GioError(
        f"{path}: column {features_col!r} has type {kind}; expected an array of numbers or JSON list text"
    )


def _is_numeric(pa: Any, kind: Any) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _numeric_columns(
    pa: Any, columns: Any, path: str, wanted: list[str], names: RowNames = WHOLE_FILE
) -> np.ndarray:
    missing = [n for n in wanted if n not in columns.column_names]
    if missing:
        raise GioError(f"{path}: no column(s) {missing}; columns: {columns.column_names}")
    parts = []
    for name in wanted:
        column = columns.column(name)
        if not _is_numeric(pa, column.type):
            raise GioError(f"{path}: column {name!r} has type {column.type}, not a number")
        if column.null_count:
            rows = np.flatnonzero(np.asarray(column.is_null()))
            raise GioError(f"{path}: column {name!r} has empty values ({names.many(rows)})")
        parts.append(column.to_numpy())
    all_float32 = all(p.dtype == np.float32 for p in parts)
    return np.column_stack(parts).astype(np.float32 if all_float32 else np.float64, copy=False)


def _vectors_from_lists(
    pa: Any, column: Any, path: str, name: str, names: RowNames = WHOLE_FILE
) -> np.ndarray:
    if column.null_count:
        rows = np.flatnonzero(np.asarray(column.is_null()))
        raise GioError(f"{path}: column {name!r} has null vectors ({names.many(rows)})")
    lengths = np.asarray(pa.compute.list_value_length(column))
    if len(lengths) and (lengths != lengths[0]).any():
        bad = np.flatnonzero(lengths != lengths[0])
        raise GioError(
            f"{path}: column {name!r} mixes vector lengths: {names.one(0)} has {lengths[0]}, "
            f"{names.many(bad)} differ"
        )
    values = pa.compute.list_flatten(column)
    if values.null_count:
        owner = np.repeat(np.arange(len(lengths)), lengths)[np.asarray(values.is_null())]
        raise GioError(f"{path}: column {name!r} has null elements ({names.many(np.unique(owner))})")
    if not _is_numeric(pa, values.type):
        raise GioError(f"{path}: column {name!r} holds {values.type}, not numbers")
    flat = values.to_numpy(zero_copy_only=False)
    dtype = np.float32 if flat.dtype == np.float32 else np.float64
    dim = int(lengths[0]) if len(lengths) else 0
    return flat.astype(dtype, copy=False).reshape(len(lengths), dim)


def _vectors_from_json(texts: list, path: str, name: str, names: RowNames = WHOLE_FILE) -> np.ndarray:
    rows = []
    for row, text in enumerate(texts):
        if text is None:
            raise GioError(f"{path}: column {name!r} is empty at {names.one(row)}")
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise GioError(f"{path}: column {name!r} at {names.one(row)} is not a JSON list ({exc})") from exc
        if not isinstance(value, list):
            raise GioError(f"{path}: column {name!r} at {names.one(row)} is not a JSON list of numbers")
        rows.append(value)
    if not rows:
        return np.zeros((0, 0))
    lengths = np.array([len(r) for r in rows])
    if (lengths != lengths[0]).any():
        bad = np.flatnonzero(lengths != lengths[0])
        raise GioError(
            f"{path}: column {name!r} mixes vector lengths: {names.one(0)} has {lengths[0]}, "
            f"{names.many(bad)} differ"
        )
    try:
        return np.array(rows, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GioError(f"{path}: column {name!r} holds values that are not numbers ({exc})") from exc


def _rows_text(rows: np.ndarray) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:_BAD_ROWS_SHOWN])
    return shown + (", ..." if len(rows) > _BAD_ROWS_SHOWN else "")


def _check_rows(table: Table) -> None:
    features = table.features
    if features.shape[0] == 0:
        raise GioError(f"{table.path}: has no rows")
    check_vectors(features, table.path)


def check_vectors(features: np.ndarray, path: str, names: RowNames = WHOLE_FILE) -> None:
    """GioError for vectors without components or with NaN/inf values (naming the rows)."""
    if features.shape[1] == 0:
        raise GioError(f"{path}: the vectors have no components")
    if features.dtype.kind == "f":
        finite = np.isfinite(features).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise GioError(
                f"{path}: {names.noun}s with NaN or infinite values: {_rows_text(names.numbers(bad))}"
            )


def output_format(path: Any, fmt: Optional[str] = None) -> str:
    """The format to write `path` in: npy, parquet, csv or tsv (by extension unless given)."""
    if fmt is not None:
        if fmt not in ("npy", "parquet", "csv", "tsv", "text"):
            raise GioError(f"out_format: expected npy, parquet, csv, tsv or text, got {fmt!r}")
        return fmt
    suffix = Path(os.fspath(path)).suffix.lower()
    by_suffix = {
        ".npy": "npy",
        ".parquet": "parquet",
        ".pq": "parquet",
        ".csv": "csv",
        ".tsv": "tsv",
        ".txt": "text",
    }
    if suffix not in by_suffix:
        raise GioError(
            f"{os.fspath(path)}: cannot tell the output format from {suffix!r}; "
            "use .npy, .parquet, .csv or .tsv"
        )
    return by_suffix[suffix]


def selected_rows(table: Table, indices: np.ndarray, cluster_of_row: Optional[np.ndarray] = None) -> Any:
    """A pyarrow table of the selected rows, in selection order: the file's columns (for `.npy`
    input, the vector as a `features` column), then `row_index` (the row in the input file) and,
    when quantised, `cluster`, then `rank` (the position in the selection: any prefix of the
    rows is the selection of a smaller budget)."""
    pa = _pyarrow()
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
    fmt = output_format(path, fmt)
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
    pa = _pyarrow()
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


def check_writable(path: Any, *, overwrite: bool) -> None:
    """Refuse an existing output unless `overwrite`, and a missing parent directory: checked
    before any long work starts."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise GioError(f"{path}: already exists (pass --overwrite / overwrite=True to replace it)")
    if os.path.isdir(path):
        raise GioError(f"{path}: is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise GioError(f"{path}: the directory {parent} does not exist")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Any, write: Callable[[str], Any], *, overwrite: bool) -> None:
    """Run `write(tmp)` on a temporary file beside `path`, then rename it to `path`."""
    path = os.fspath(path)
    check_writable(path, overwrite=overwrite)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=directory)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the output should not be
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
