"""Budgets in rows: `select(..., budget_rows=N)` returns exactly N pool rows, ranked so that any
prefix of the ranking is the selection a smaller budget would give.

- Without quantisation the rank is the selection order: the loop runs until it has accepted N
  distinct rows (`max_iter` and the stop criterion are replaced by the budget).
- With `n_clusters`, the loop among the centroids runs until the chosen clusters hold at least N
  rows. Clusters are taken in selection order; inside a cluster, rows are ranked by their
  squared distance to the nearest target point the selection ran on (the target's centroids,
  or its rows when the target was not quantised), nearest first, ties by row index. The last
  cluster is trimmed to what the budget leaves, so it keeps its rows nearest the target.

The loop among centroids does not know how many rows each cluster holds, so it is run with a
guessed number of iterations (enough clusters of the mean size, times 1.5) and run again with
twice as many while the clusters it chose hold fewer than N rows; the same seed gives the same
run, so the result is reproducible.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Optional

import numpy as np

from . import _core
from ._util.arrays import as_matrix, check_int, working_dtype

STOP_REASON = "budget_rows"
# The options a budget replaces, with their defaults in `select`.
_REPLACED = {"max_iter": 100, "stop_criterion": "increase", "max_data_size": 1.0}


def check_budget(budget_rows: Any, given: dict[str, Any]) -> int:
    """`budget_rows` as an int >= 1; GioError when an option the budget replaces was set."""
    budget = check_int("budget_rows", budget_rows, minimum=1)
    for name, default in _REPLACED.items():
        if name in given and given[name] != default:
            raise _core.GioError(
                f"{name}: budget_rows={budget} sets when the selection stops; leave {name} at its "
                f"default ({default!r})"
            )
    return budget


def first_occurrences(values: np.ndarray) -> np.ndarray:
    """The distinct values of `values` in the order they first appear."""
    values = np.asarray(values, dtype=np.int64)
    if not len(values):
        return values
    distinct, first = np.unique(values, return_index=True)
    return distinct[np.argsort(first, kind="stable")]


def run_until_covered(
    run: Callable[[int], Any], covered: Callable[[np.ndarray], int], budget: int, first_guess: int
) -> Any:
    """`run(max_iter)` with max_iter = first_guess, then doubled while its accepted indices
    cover fewer than `budget` rows (`covered(indices)`) and it stopped on max_iter. Returns
    the last run's result."""
    max_iter = max(0, int(first_guess))
    while True:
        result = run(max_iter)
        if covered(result.indices) >= budget or result.stop_reason != "max_iter":
            return result
        max_iter = 2 * max_iter + 1


def select_with_budget(select: Callable[..., Any], options: dict[str, Any]) -> Any:
    """`select(**options)` for `options["budget_rows"]` rows (see the module docstring). `select`
    is gio_rs.select; `options` all of its arguments."""
    options = dict(options)
    budget = check_budget(options.pop("budget_rows"), options)
    train, target = options.pop("train"), options.pop("target")
    n_clusters = options.pop("n_clusters")
    n_clusters_target = options.pop("n_clusters_target")
    kmeans_max_iter = options.pop("kmeans_max_iter")
    kmeans_sample_rows = options.pop("kmeans_sample_rows")
    for name in _REPLACED:
        options.pop(name)
    train_arr = as_matrix("train", train)
    if n_clusters is None:
        if n_clusters_target is not None or kmeans_sample_rows is not None:
            name = "n_clusters_target" if n_clusters_target is not None else "kmeans_sample_rows"
            raise _core.GioError(f"{name}: only used together with n_clusters")
        if budget > len(train_arr):
            raise _core.GioError(f"budget_rows: {budget} is more than the {len(train_arr)} pool rows")

        def run_rows(max_iter: int) -> Any:
            return select(train_arr, target, max_iter=max_iter, **_until_exhausted(), **options)

        result = run_until_covered(run_rows, lambda idx: len(np.unique(idx)), budget, first_guess=budget - 1)
        rows = first_occurrences(result.indices)[:budget]
        if len(rows) < budget:
            raise _core.GioError(
                f"budget_rows: the selection ended ({result.stop_reason}) with {len(rows)} distinct rows"
            )
        keep = _prefix_length(result.indices, budget)
        return dataclasses.replace(
            result, indices=rows, kl_trace=result.kl_trace[:keep], stop_reason=STOP_REASON
        )

    from .quantize import quantize

    quantization = quantize(
        train_arr,
        target,
        n_clusters,
        n_clusters_target=n_clusters_target,
        seed=options.get("seed"),
        max_iter=check_int("kmeans_max_iter", kmeans_max_iter, minimum=1),
        progress=bool(options.get("progress", False)),
        kmeans_sample_rows=kmeans_sample_rows,
    )
    sizes = np.bincount(quantization.train_labels, minlength=len(quantization.train_centers))
    chosen = choose_clusters(
        select,
        quantization.train_centers,
        quantization.target_centers,
        sizes,
        budget,
        options,
    )
    explosion = quantization.explode(chosen.indices)
    distances = target_distances(train_arr, explosion.indices, quantization.target_centers)
    order = rank_order(explosion.cluster_of_row, explosion.clusters, distances, explosion.indices)[:budget]
    return dataclasses.replace(
        chosen,
        indices=explosion.indices[order],
        cluster_of_row=explosion.cluster_of_row[order],
        clusters=chosen.indices,
        repeated_clusters=explosion.repeated,
        quantization=quantization,
    )


def _until_exhausted() -> dict[str, Any]:
    """Stop options under which only max_iter (or an exhausted pool) ends the loop: "data_size"
    with the whole pool allowed stops after len(train) + 1 rows, more than the pool holds."""
    return {"stop_criterion": "data_size", "max_data_size": 1.0}


def _prefix_length(indices: np.ndarray, distinct: int) -> int:
    """How many leading entries of `indices` hold its first `distinct` distinct values."""
    seen: set = set()
    for i, value in enumerate(indices.tolist()):
        seen.add(value)
        if len(seen) == distinct:
            return i + 1
    return len(indices)


def choose_clusters(
    select: Callable[..., Any],
    train_centers: np.ndarray,
    target_centers: np.ndarray,
    sizes: np.ndarray,
    budget: int,
    options: dict[str, Any],
) -> Any:
    """The selection among centroids, run until its clusters hold at least `budget` rows
    (`sizes[c]`: rows of cluster c), cut after the cluster that reaches the budget: `indices`
    are cluster ids in selection order, `kl_trace` matches them, stop_reason "budget_rows"."""
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(sizes.sum())
    if budget > total:
        raise _core.GioError(f"budget_rows: {budget} is more than the {total} pool rows")
    nonempty = sizes[sizes > 0]
    mean = float(nonempty.mean()) if len(nonempty) else 1.0
    guess = min(len(sizes), math.ceil(1.5 * budget / mean) + 1)

    def run(max_iter: int) -> Any:
        return select(train_centers, target_centers, max_iter=max_iter, **_until_exhausted(), **options)

    def covered(indices: np.ndarray) -> int:
        return int(sizes[first_occurrences(indices)].sum())

    result = run_until_covered(run, covered, budget, first_guess=guess)
    order = first_occurrences(result.indices)
    reached = np.cumsum(sizes[order])
    if not len(reached) or reached[-1] < budget:
        raise _core.GioError(
            f"budget_rows: the selection ended ({result.stop_reason}) with clusters holding "
            f"{int(reached[-1]) if len(reached) else 0} rows, fewer than {budget}"
        )
    last = order[int(np.searchsorted(reached, budget))]
    cut = int(np.flatnonzero(result.indices == last)[0]) + 1
    return dataclasses.replace(
        result,
        indices=np.asarray(result.indices[:cut], dtype=np.int64),
        kl_trace=result.kl_trace[:cut],
        stop_reason=STOP_REASON,
    )


def target_distances(train: np.ndarray, rows: np.ndarray, target_points: np.ndarray) -> np.ndarray:
    """Squared distance from each of `train[rows]` to its nearest target point (exact, the
    K-Means assignment kernel)."""
    if not len(rows):
        return np.zeros(0)
    return nearest_distances(np.asarray(train)[np.asarray(rows)], target_points)


def nearest_distances(x: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Squared distance from every row of `x` to its nearest row of `points`."""
    if not len(x):
        return np.zeros(0)
    dtype = working_dtype(x)
    x = np.ascontiguousarray(x, dtype=dtype)
    _, squared = _core.kmeans_assign(x, np.ascontiguousarray(points, dtype=np.float64))
    return squared


def rank_order(
    cluster_of_row: np.ndarray,
    cluster_order: np.ndarray,
    distances: np.ndarray,
    rows: np.ndarray,
    *,
    positions: Optional[np.ndarray] = None,
) -> np.ndarray:
    """The permutation that ranks rows: by their cluster's position in `cluster_order`, then by
    `distances` (ascending), then by row index."""
    if positions is None:
        lookup = {int(c): i for i, c in enumerate(np.asarray(cluster_order).tolist())}
        positions = np.array([lookup[int(c)] for c in np.asarray(cluster_of_row).tolist()], dtype=np.int64)
    return np.lexsort((np.asarray(rows), np.asarray(distances), positions))
