"""A whole table read at once: vectors and the file's other columns, text embedded on the way
in (formats in `gio_rs.io`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .._core import GioError
from .._util.optional import pyarrow
from .columns import check_vectors, read_columns, read_npy, rows_text, vectors_from_columns
from .formats import CHUNKED_FORMATS, FORMATS, check_input, is_compressed, reader_errors, warn_if_cut_short
from .shards import detect_format

MESSAGE_CHARS = 500  # of a reader's own error message, in ours


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
    if fmt not in ("npy", "parquet", "arrow") and os.path.isfile(path) and not is_compressed(path):
        warn_if_cut_short(path, stacklevel=3)
    if fmt in CHUNKED_FORMATS or (os.path.isdir(path) and fmt != "parquet"):
        return _read_in_chunks(path, fmt, features_col, feature_columns, text_column, embed_options or {})
    if fmt == "text" or text_column is not None:
        return _read_text(path, fmt, text_column, embed_options or {})
    if fmt == "npy" and (features_col is not None or feature_columns):
        raise GioError(f"{path}: a .npy file has no columns to choose (features_col/feature_columns)")
    with reader_errors(path, fmt):
        if fmt == "npy":
            table = Table(read_npy(path), None, None, path, fmt)
        else:
            pa = pyarrow()
            columns = read_columns(pa, path, fmt)
            features, used = vectors_from_columns(pa, columns, path, fmt, features_col, feature_columns)
            table = Table(features, columns, used, path, fmt)
        _check_rows(table)
    return table


def _read_in_chunks(
    path: str,
    fmt: str,
    features_col: Optional[str],
    feature_columns: Optional[Sequence[str]],
    text_column: Optional[str],
    embed_options: dict,
) -> Table:
    """A whole file or folder read through gio_rs.io.batches: the pieces joined (carried columns
    whose type differs between pieces, e.g. null in one, are unified), text embedded at once."""
    from .. import embed
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
    pa = pyarrow()
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


def _read_text(path: str, fmt: str, text_column: Optional[str], embed_options: dict) -> Table:
    """Sentences embedded on the way in (gio_rs.embed): a .txt file (one per line, kept as a
    `sentence` column) or the text column of a table."""
    from .. import embed

    if fmt == "npy":
        raise GioError(f"{path}: a .npy file has no text column")
    pa = pyarrow()
    with reader_errors(path, fmt):
        if fmt == "text":
            sentences = embed.read_sentences(path)
            columns = pa.table({"sentence": pa.array(sentences, pa.string())})
            name = "sentence"
        else:
            columns = read_columns(pa, path, fmt)
            if text_column not in columns.column_names:
                raise GioError(f"{path}: no column {text_column!r}; columns: {columns.column_names}")
            column = columns.column(text_column)
            if column.null_count:
                rows = np.flatnonzero(np.asarray(column.is_null()))
                raise GioError(f"{path}: column {text_column!r} has empty values (rows {rows_text(rows)})")
            sentences = [str(t) for t in column.to_pylist()]
            name = text_column
    if not sentences:  # before loading the model
        raise GioError(f"{path}: has no rows")
    # Embedding is outside reader_errors: a model failure is not the input file's fault.
    table = Table(embed.embed(sentences, **embed_options), columns, name, path, fmt)
    _check_rows(table)
    return table


def _check_rows(table: Table) -> None:
    features = table.features
    if features.shape[0] == 0:
        raise GioError(f"{table.path}: has no rows")
    check_vectors(features, table.path)
