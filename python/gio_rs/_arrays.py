"""Input normalisation shared by the public API: turn array-likes into C-contiguous float32 or
float64 matrices without copying when they already are, and reject bad input with an error that
names the argument. Nothing here writes to the caller's arrays."""

from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np

from ._core import GioError

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


_FINITE_CHECK_BLOCK = 1 << 20  # values per block: the check never allocates a full-size mask


def _check_finite(name: str, arr: np.ndarray) -> None:
    if arr.dtype.kind != "f":
        return
    rows = arr.reshape(arr.shape[0], -1) if arr.ndim == 2 else arr.reshape(-1, 1)
    step = max(1, _FINITE_CHECK_BLOCK // max(1, rows.shape[1]))
    bad: list[int] = []
    for start in range(0, rows.shape[0], step):
        finite = np.isfinite(rows[start : start + step])
        if not finite.all():
            bad.extend(start + np.flatnonzero(~finite.all(axis=1)))
            if len(bad) > 10:
                break
    if bad:
        shown = ", ".join(str(int(r)) for r in bad[:10]) + (", ..." if len(bad) > 10 else "")
        what = "rows" if arr.ndim == 2 else "positions"
        raise GioError(f"{name}: contains NaN or infinite values ({what} {shown})")


def cast(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """C-contiguous, aligned `dtype` array: the input itself when it already is one (the core
    only reads it), otherwise a copy. Fortran-ordered and strided views are copied."""
    return np.require(arr, dtype=dtype, requirements=["C", "A"])


def same_columns(name: str, arr: np.ndarray, reference_name: str, dim: int) -> None:
    if arr.shape[1] != dim:
        raise GioError(f"{name}: has {arr.shape[1]} columns but {reference_name} has {dim}")


INT_MAX = 2**63 - 1  # what every integer option must fit in on its way to the core


def check_int(name: str, value: Any, *, minimum: int, maximum: int = INT_MAX) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise GioError(f"{name}: must be >= {minimum}, got {value}")
    if value > maximum:
        raise GioError(f"{name}: must be <= {maximum}, got {value}")
    return value


def check_float(
    name: str, value: Any, *, minimum: Optional[float] = None, maximum: Optional[float] = None
) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise GioError(f"{name}: must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise GioError(f"{name}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise GioError(f"{name}: must be <= {maximum}, got {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__}")
    return bool(value)
