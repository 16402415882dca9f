"""The stream's inputs: the pool opened as a source of pieces, the target and init read whole, and
what identifies them in the work dir's keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import _core
from .._util.arrays import as_matrix
from ..io.batches import ArraySource, RowSource
from ..io.readers import read_table


def is_path_like(value: Any) -> bool:
    if isinstance(value, (str, os.PathLike)):
        return True
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(v, (str, os.PathLike)) for v in value)
    )


def open_pool(train: Any, options: dict, batch_rows: int) -> Any:
    if is_path_like(train):
        return RowSource.open(
            train,
            fmt=options.get("train_format"),
            name=options.get("train_name", "train"),
            features_col=options.get("features_col"),
            feature_columns=options.get("feature_columns"),
            text_column=options.get("text_column"),
            embed_options=options.get("embed_options"),
            batch_rows=batch_rows,
        )
    if isinstance(train, Iterator):
        one_shot = train
        source = ArraySource(lambda: one_shot, name=options.get("train_name", "train"), batch_rows=batch_rows)
        source.one_shot = True  # type: ignore[attr-defined]
        return source
    return ArraySource(train, name=options.get("train_name", "train"), batch_rows=batch_rows)


def read_whole(value: Any, name: str, options: dict, fmt_key: str) -> np.ndarray:
    """The target (or init): read whole, from a file or folder, or taken as an array."""
    return read_whole_with_texts(value, name, options, fmt_key)[0]


def read_whole_with_texts(value: Any, name: str, options: dict, fmt_key: str) -> tuple[np.ndarray, Any]:
    """`read_whole`, and the texts the vectors were embedded from (None for vectors)."""
    if is_path_like(value):
        path = value if isinstance(value, (str, os.PathLike)) else value[0]
        if not isinstance(value, (str, os.PathLike)) and len(value) > 1:
            raise _core.GioError(f"{name}: give one file or folder")
        table = read_table(
            path,
            fmt=options.get(fmt_key),
            features_col=options.get("features_col"),
            feature_columns=options.get("feature_columns"),
            text_column=options.get("text_column"),
            embed_options=options.get("embed_options"),
        )
        texts = None
        if table.fmt == "text" or options.get("text_column") is not None:
            texts = table.columns.column(table.features_col).to_pylist()
        return table.features, texts
    return as_matrix(name, value), None


def fingerprint(value: Any, name: str) -> Any:
    if is_path_like(value):
        paths = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        from ..io.shards import list_shards

        return [s.fingerprint() for p in paths for s in list_shards(p, name=name)]
    if value is None:
        return None
    if isinstance(value, np.memmap) and value.filename:
        stat = os.stat(value.filename)
        return {"memmap": value.filename, "offset": value.offset, "shape": value.shape,
                "dtype": str(value.dtype), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}  # fmt: skip
    if isinstance(value, np.ndarray):
        import hashlib

        return {"array": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
                "shape": value.shape, "dtype": str(value.dtype)}  # fmt: skip
    raise _core.GioError(
        f"work_dir: {name} is given as batches, whose contents cannot be checked; resuming needs "
        "files or arrays"
    )


def plain(value: Any) -> Any:
    """Options as JSON-able values for keys and summaries."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if callable(value):
        return None
    return value
