"""K-Means on a sample when the pool's fit would not fit the memory budget: how many rows fit,
and which rows (a seeded uniform sample that depends only on the seed, the number of rows and
the rows left out, never on how the rows are read in pieces).

Shared by `gio_rs.quantize` (arrays, `select(n_clusters=K)`) and `gio_rs.stream` (files).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import _core, memory
from ._util.hashing import mix

_BLOCK = 1 << 20  # rows keyed at a time


def kmeans_need(rows: int, dim: int, n_clusters: int, itemsize: int) -> int:
    """Bytes K-Means on a sample of `rows` takes: the sample itself and the fit's working set."""
    return rows * dim * itemsize + _core.kmeans_bytes(rows, dim, n_clusters, itemsize)


def largest_sample(n_rows: int, dim: int, n_clusters: int, itemsize: int, room: float) -> int:
    """The most rows (at most `n_rows`) whose K-Means with `n_clusters` clusters needs at most
    `room` bytes; less than `n_clusters` (0) when not even `n_clusters` rows fit."""
    if kmeans_need(n_rows, dim, n_clusters, itemsize) <= room:
        return n_rows
    low, high = n_clusters, n_rows
    if kmeans_need(low, dim, n_clusters, itemsize) > room:
        return 0
    while low < high:
        middle = (low + high + 1) // 2
        if kmeans_need(middle, dim, n_clusters, itemsize) <= room:
            low = middle
        else:
            high = middle - 1
    return low


def largest_clusters(dim: int, itemsize: int, room: float, at_most: int) -> int:
    """The most clusters (at most `at_most`) whose K-Means on a sample of as many rows needs at
    most `room` bytes (0 when not even one fits): the largest cluster count a budget allows."""
    low, high = 0, at_most
    while low < high:
        middle = (low + high + 1) // 2
        if kmeans_need(middle, dim, middle, itemsize) <= room:
            low = middle
        else:
            high = middle - 1
    return low


def fitting_sample_size(
    n_rows: int, dim: int, n_clusters: int, itemsize: int, *, reserved: int = 0, share: float = 1.0
) -> int:
    """The most rows (at most `n_rows`) whose K-Means fits `share` of the budget left after
    `reserved` bytes; `n_rows` when there is no budget. Raises GioError (naming the budget)
    when not even `n_clusters` rows fit."""
    budget = memory.memory_budget()
    if budget is None:
        return n_rows
    size = largest_sample(n_rows, dim, n_clusters, itemsize, share * (budget - reserved))
    if size < n_clusters:
        memory.require(
            f"K-Means with {n_clusters} clusters of dimension {dim}, even on a sample of {n_clusters} rows,",
            int(kmeans_need(n_clusters, dim, n_clusters, itemsize) / share) + reserved,
            "lower n_clusters",
        )
        return n_clusters  # the budget changed in between: it fits after all
    return size


def sample_rows(
    n_rows: int, size: int, seed: Optional[int], left_out: Optional[np.ndarray] = None
) -> np.ndarray:
    """`size` rows of range(n_rows) minus the sorted `left_out`, ascending: those with the
    smallest hash of (seed, row), a uniform sample without replacement. All of them when `size`
    is at least their number."""
    left_out = np.zeros(0, np.int64) if left_out is None else np.asarray(left_out, dtype=np.int64)
    if size >= n_rows - len(left_out):
        keep = np.ones(n_rows, dtype=bool)
        keep[left_out] = False
        return np.flatnonzero(keep).astype(np.int64)
    salt = np.uint64(((seed or 0) * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) % (1 << 64))
    best_keys = np.zeros(0, np.uint64)
    best_rows = np.zeros(0, np.int64)
    for start in range(0, n_rows, _BLOCK):
        rows = np.arange(start, min(n_rows, start + _BLOCK), dtype=np.int64)
        lo, hi = np.searchsorted(left_out, [start, start + len(rows)])
        if hi > lo:
            keep = np.ones(len(rows), dtype=bool)
            keep[left_out[lo:hi] - start] = False
            rows = rows[keep]
        keys = mix(rows.astype(np.uint64) * np.uint64(0xD1B54A32D192ED03) ^ salt)
        keys = np.concatenate([best_keys, keys])
        rows = np.concatenate([best_rows, rows])
        if len(keys) > size:
            part = np.argpartition(keys, size - 1)[:size]
            keys, rows = keys[part], rows[part]
        best_keys, best_rows = keys, rows
    return np.sort(best_rows)
