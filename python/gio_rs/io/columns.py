"""Vectors from the columns of a table or a `.npy` file, checked row by row; errors name the rows
of the file (or of the piece of it being read)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .._core import GioError

_BAD_ROWS_SHOWN = 10


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
        return f"{self.noun}s {rows_text(self.numbers(rows))}"

    def one(self, row: int) -> str:
        return f"{self.noun} {int(self.numbers(np.array([row]))[0])}"


WHOLE_FILE = RowNames()


def read_columns(pa: Any, path: str, fmt: str) -> Any:
    """Every column of a parquet, reference-TSV or CSV/TSV file, as a pyarrow table."""
    if fmt == "parquet":
        return pa.parquet.read_table(path)
    if fmt == "reference-tsv":
        return _read_reference_tsv(pa, path)
    return _read_delimited(pa, path, "," if fmt == "csv" else "\t")


def read_npy(path: str) -> np.ndarray:
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


def vectors_from_columns(
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


def rows_text(rows: np.ndarray) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:_BAD_ROWS_SHOWN])
    return shown + (", ..." if len(rows) > _BAD_ROWS_SHOWN else "")


def check_vectors(features: np.ndarray, path: str, names: RowNames = WHOLE_FILE) -> None:
    """GioError for vectors without components or with NaN/inf values (naming the rows)."""
    if features.shape[1] == 0:
        raise GioError(f"{path}: the vectors have no components")
    if features.dtype.kind == "f":
        finite = np.isfinite(features).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise GioError(
                f"{path}: {names.noun}s with NaN or infinite values: {rows_text(names.numbers(bad))}"
            )
