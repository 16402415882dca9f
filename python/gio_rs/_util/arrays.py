"""Input normalisation shared by the public API: turn array-likes into C-contiguous float32 or
float64 matrices without copying when they already are, and reject bad input with an error that
names the argument. Nothing here writes to the caller's arrays. The value rules themselves
(finiteness, integers, numbers, flags) are the core's, so that each message is written once."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._core import GioError, check_bool, check_finite, check_float, check_int

__all__ = [
    "as_matrix",
    "as_vector",
    "cast",
    "check_bool",
    "check_float",
    "check_int",
    "copy_bytes",
    "same_columns",
    "working_dtype",
]

_FLOAT32_KINDS = (np.dtype(np.float16), np.dtype(np.float32))


def _as_array(name: str, value: Any) -> np.ndarray:
    if value is None:
        raise TypeError(f"{name}: expected an array, got None")
    try:
        # __array__, __array_interface__ and the buffer protocol: no copy where NumPy can view
        # the memory (NumPy arrays, jax and torch CPU arrays, memoryviews, ...).
        arr = np.asarray(value)
        if arr.dtype == object and arr.ndim == 0 and hasattr(value, "__dlpack__"):
            arr = np.from_dlpack(value)  # a tensor that only speaks DLPack (also without a copy)
    except Exception as exc:  # ragged lists, GPU tensors, tensors that require grad, ...
        raise GioError(f"{name}: could not be converted to an array ({exc})") from exc
    kind = arr.dtype.kind
    if kind == "b":
        raise TypeError(f"{name}: boolean arrays are not accepted; convert to float first")
    if kind == "c":
        raise TypeError(f"{name}: complex arrays are not accepted")
    if kind not in "iuf":
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def working_dtype(*arrays: Optional[np.ndarray]) -> np.dtype:
    """float32 when every given array is float16/float32 (kept float32, as scikit-learn does),
    otherwise float64 (integers included)."""
    present = [a for a in arrays if a is not None]
    if present and all(a.dtype in _FLOAT32_KINDS for a in present):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def as_matrix(name: str, value: Any, *, min_rows: int = 1) -> np.ndarray:
    """A 2-D numeric array (not yet cast), checked for shape and finiteness."""
    arr = _as_array(name, value)
    if arr.ndim != 2:
        hint = " (use a.reshape(1, -1) for a single row)" if arr.ndim == 1 else ""
        raise GioError(f"{name}: expected a 2-D array (rows, features), got shape {arr.shape}{hint}")
    if arr.shape[1] == 0:
        raise GioError(f"{name}: has no columns (shape {arr.shape})")
    if arr.shape[0] < min_rows:
        raise GioError(f"{name}: needs at least {min_rows} row(s), got {arr.shape[0]}")
    _check_finite(name, arr)
    return arr


def as_vector(name: str, value: Any, dim: int) -> np.ndarray:
    """A 1-D float64 vector of length `dim`, checked for finiteness (always a fresh copy)."""
    arr = _as_array(name, value)
    if arr.ndim != 1:
        raise GioError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.shape[0] != dim:
        raise GioError(f"{name}: has {arr.shape[0]} values but the data has {dim} columns")
    _check_finite(name, arr)
    return np.array(arr, dtype=np.float64, order="C", copy=True)


def _check_finite(name: str, arr: np.ndarray) -> None:
    if arr.dtype.kind != "f":
        return
    if arr.dtype not in (np.float32, np.float64):  # float16, longdouble, another byte order
        arr = arr.astype(np.float32 if arr.dtype.itemsize <= 4 else np.float64)
    check_finite(name, arr)


def cast(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """C-contiguous, aligned `dtype` array: the input itself when it already is one (the core
    only reads it), otherwise a copy. Fortran-ordered and strided views are copied."""
    return np.require(arr, dtype=dtype, requirements=["C", "A"])


def same_columns(name: str, arr: np.ndarray, reference_name: str, dim: int) -> None:
    if arr.shape[1] != dim:
        raise GioError(f"{name}: has {arr.shape[1]} columns but {reference_name} has {dim}")


def copy_bytes(arr: Optional[np.ndarray], dtype: np.dtype) -> int:
    """Bytes of the copy `cast(arr, dtype)` makes (0 when it passes the array through)."""
    if arr is None:
        return 0
    ok = arr.dtype == dtype and arr.flags.c_contiguous and arr.flags.aligned
    return 0 if ok else int(np.prod(arr.shape, dtype=np.int64)) * np.dtype(dtype).itemsize
