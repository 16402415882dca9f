"""The averaged k-NN KL estimator of GIO and its closed-form gradient, on NumPy arrays.

    KL(X ‖ W) = d/(n·m) Σ_i Σ_j log(ν(x_i, w_j) + ε) − d/n Σ_i log(ρ_k(i) + ε)
                + 1/m Σ_{j=1..m} log(k·m / (j·(n − 1)))

ν is the Euclidean distance with squared distances clipped to [1e-10, 1e20]; ρ_k(i) is the
distance from x_i to its k-th nearest other target row. This is what `grad-info-opt`'s
`calculate_statistical_distance` computes (it averages the Wang–Kulkarni–Verdú estimator over
every neighbour rank of W). Distances are formed from exact differences and accumulated in
float64, also for float32 input.

`knn_kl_divergence` is the unaveraged estimator itself, the one `select(method="greedy")` minimises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core, memory
from ._util.arrays import as_matrix, as_vector, cast, copy_bytes, same_columns, working_dtype


def _working_arrays(x_arr: np.ndarray, y_arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y in their working dtype, once the estimate's working set (the selection loop's state
    for target x; see gio_rs.memory) fits the memory budget."""
    dtype = working_dtype(x_arr, y_arr)
    needed = copy_bytes(x_arr, dtype) + copy_bytes(y_arr, dtype)
    needed += _core.select_bytes(
        len(y_arr), len(x_arr), x_arr.shape[1], n_start=0, max_iter=0, itemsize=dtype.itemsize
    )
    memory.require(f"the estimate for {len(x_arr)} target rows against {len(y_arr)} rows", needed)
    return cast(x_arr, dtype), cast(y_arr, dtype)


def kl_divergence(
    x: Any, y: Any, k: int = 5, *, eps: float = 1e-8, discard_nearest_for_xy: bool = False
) -> float:
    """Estimate KL(x ‖ y) with the averaged k-nearest-neighbour estimator.

    Parameters
    ----------
    x : array (n, d)
        Sample of the target distribution; needs n >= 2.
    y : array (m, d)
        Sample of the other distribution (the selection).
    k : int
        Neighbour rank for the target's own density, 1 <= k <= n - 1.
    eps : float
        Added inside every log, as in the reference.
    discard_nearest_for_xy : bool
        Each target row ignores its nearest row of y (needs m >= 2).

    Returns
    -------
    float
        The estimate; it can be negative. float32 input is not upcast in memory.
    """
    x_arr = as_matrix("x", x, min_rows=2)
    y_arr = as_matrix("y", y, min_rows=2 if discard_nearest_for_xy else 1)
    same_columns("y", y_arr, "x", x_arr.shape[1])
    return _core.kl_divergence(*_working_arrays(x_arr, y_arr), k, eps, discard_nearest_for_xy)


def kl_gradient(x: Any, w: Any, v: Any, *, discard_nearest_for_xy: bool = False) -> np.ndarray:
    """Gradient of KL(x ‖ w ∪ {v}) with respect to the candidate row v, in closed form:

        d / (n·(m+1)) · Σ_i (v − x_i) / (r_i (r_i + ε)),   r_i = ‖x_i − v‖,

    where terms with r_i² outside (1e-10, 1e20) are zero. With `discard_nearest_for_xy` the factor
    is d/(n·m) and row i's term is dropped where v is strictly nearer to x_i than every row of w.
    Without it the gradient depends on w only through m = len(w).

    Returns a float64 vector of length d.
    """
    x_arr = as_matrix("x", x, min_rows=1)
    w_arr = as_matrix("w", w, min_rows=1)
    same_columns("w", w_arr, "x", x_arr.shape[1])
    v_arr = as_vector("v", v, x_arr.shape[1])
    return _core.kl_gradient(*_working_arrays(x_arr, w_arr), v_arr, discard_nearest_for_xy)


def knn_kl_divergence(x: Any, y: Any, k: int = 5) -> float:
    """Estimate KL(x ‖ y) with the unaveraged k-NN estimator (Wang, Kulkarni & Verdú, 2009):

        KL_k(x ‖ y) = d/n Σ_i log(ν_k(i) / ρ_k(i)) + log(m / (n − 1))

    ν_k(i) is the distance from x_i to its k-th nearest row of y (m rows), ρ_k(i) to its k-th
    nearest other row of x; squared distances are clipped to [1e-10, 1e20] (no ε). Unlike
    `kl_divergence` it depends on where y's rows are relative to each target row, not on all pairs.

    Returns NaN when y has fewer than k rows (the estimate is undefined). Needs n >= 2 and
    1 <= k <= n - 1. float32 input is not upcast in memory.
    """
    x_arr = as_matrix("x", x, min_rows=2)
    y_arr = as_matrix("y", y, min_rows=1)
    same_columns("y", y_arr, "x", x_arr.shape[1])
    return _core.knn_kl_divergence(*_working_arrays(x_arr, y_arr), k)
