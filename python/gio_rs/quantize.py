"""Quantise pool and target with K-Means, and explode chosen clusters back to their rows: how
GIO scales (docs/reference.md, "Scale helpers"), on one machine and without Spark."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from . import _core, memory, sampling
from ._util.arrays import as_matrix, check_int, copy_bytes, same_columns, working_dtype
from .kmeans import KMeans

_PREDICT_ROWS = 1 << 16  # rows labelled at a time after a sampled fit


@dataclass(frozen=True)
class Explosion:
    """The train rows of chosen clusters.

    Attributes
    ----------
    indices : int64 array
        Every member row of every chosen cluster: clusters in the order they were first chosen,
        each cluster's rows in ascending order, each cluster once.
    cluster_of_row : int64 array
        The cluster of each row of `indices`.
    clusters : int64 array
        The distinct chosen clusters, in the order they were first chosen.
    repeated : int64 array
        Clusters chosen more than once (possible after a pool reset): reported here, their rows
        appear once in `indices`.
    """

    indices: np.ndarray
    cluster_of_row: np.ndarray
    clusters: np.ndarray
    repeated: np.ndarray


def explode(chosen_clusters: Any, labels: Any, *, n_clusters: Optional[int] = None) -> Explosion:
    """All rows whose label is one of `chosen_clusters` (cluster ids, in selection order).
    `n_clusters` is the number of clusters (default: the largest label + 1); a chosen cluster
    that no row is labelled with (K-Means on duplicate rows can leave one empty) adds no rows."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise TypeError("labels: expected a 1-D integer array of cluster ids")
    chosen = np.asarray(chosen_clusters)
    if chosen.ndim != 1 or (chosen.size and chosen.dtype.kind not in "iu"):
        raise TypeError("chosen_clusters: expected a 1-D integer array of cluster ids")
    chosen = chosen.astype(np.int64)
    if n_clusters is None:
        n_clusters = int(labels.max()) + 1 if labels.size else 0
    else:
        n_clusters = check_int("n_clusters", n_clusters, minimum=0)
        if labels.size and labels.max() >= n_clusters:
            raise _core.GioError(f"labels: has cluster id {labels.max()} but n_clusters is {n_clusters}")
    if chosen.size and (chosen.min() < 0 or chosen.max() >= max(n_clusters, 1)):
        raise _core.GioError(
            f"chosen_clusters: ids must be in [0, {n_clusters}), got {chosen.min()}..{chosen.max()}"
        )
    distinct, first = np.unique(chosen, return_index=True)
    order = distinct[np.argsort(first, kind="stable")]
    counts = np.bincount(chosen, minlength=n_clusters) if chosen.size else np.zeros(n_clusters, np.int64)
    repeated = order[counts[order] > 1]
    by_cluster = np.argsort(labels, kind="stable")  # rows grouped by cluster, ascending inside
    starts = np.searchsorted(labels[by_cluster], order, side="left")
    ends = np.searchsorted(labels[by_cluster], order, side="right")
    parts = [by_cluster[s:e] for s, e in zip(starts, ends)]
    indices = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
    cluster_of_row = np.repeat(order, ends - starts).astype(np.int64)
    return Explosion(indices=indices, cluster_of_row=cluster_of_row, clusters=order, repeated=repeated)


@dataclass(frozen=True)
class Quantization:
    """K-Means models of the pool and the target, with their labels."""

    train_model: KMeans
    target_model: Optional[KMeans]
    train_labels: np.ndarray
    target_labels: np.ndarray
    train_centers: np.ndarray
    target_centers: np.ndarray
    sample_rows: Optional[int] = None
    """Rows of train the pool's K-Means was fitted on when it ran on a sample (then the labels of
    `train_model` are the sample's and `train_labels` every row's); None: every row."""

    def explode(self, chosen_clusters: Any) -> Explosion:
        """The train rows of the chosen pool clusters (see `gio_rs.quantize.explode`)."""
        return explode(chosen_clusters, self.train_labels, n_clusters=len(self.train_centers))


def quantize(
    train: Any,
    target: Any,
    n_clusters: int = 1500,
    *,
    n_clusters_target: Optional[int] = None,
    seed: Optional[int] = None,
    n_init: int = 1,
    max_iter: int = 300,
    progress: bool = False,
    kmeans_sample_rows: Optional[int] = None,
) -> Quantization:
    """K-Means on the pool (`n_clusters` clusters) and on the target (`n_clusters_target`,
    default the same, at most the number of target rows; a target no larger than that is used
    as it is, each row its own cluster). `seed` seeds both fits (the target's with seed + 1).
    `progress` shows a bar of each fit's Lloyd iterations on stderr.

    The pool's fit runs on every row when its working set fits the memory budget
    (`gio_rs.memory`); otherwise on a seeded uniform sample of as many rows as fit, after which
    every row is labelled a slice at a time with `predict` (so a memory-mapped pool larger than
    memory works). `kmeans_sample_rows` fits on that many sampled rows whatever the budget."""
    train_arr = as_matrix("train", train)
    target_arr = as_matrix("target", target)
    same_columns("train", train_arr, "target", target_arr.shape[1])
    return quantize_matrices(
        train_arr, target_arr, n_clusters, n_clusters_target, seed, n_init, max_iter, progress,
        kmeans_sample_rows,
    )  # fmt: skip


def quantize_matrices(
    train_arr: np.ndarray,
    target_arr: np.ndarray,
    n_clusters: Any,
    n_clusters_target: Any = None,
    seed: Any = None,
    n_init: Any = 1,
    max_iter: Any = 300,
    progress: Any = False,
    kmeans_sample_rows: Any = None,
) -> Quantization:
    """`quantize` on matrices `as_matrix` accepted already (each input is scanned once)."""
    k = check_int("n_clusters", n_clusters, minimum=1)
    k_target = (
        k if n_clusters_target is None else check_int("n_clusters_target", n_clusters_target, minimum=1)
    )
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    train_model = KMeans(k, n_init=n_init, max_iter=max_iter, random_state=seed, progress=progress)
    sample_size = _pool_sample_size(train_arr, k, kmeans_sample_rows)
    if sample_size is None:
        train_model._fit(train_arr)
        train_labels = train_model.labels_
    else:
        rows = sampling.sample_rows(len(train_arr), sample_size, seed)
        train_model._fit(train_arr[rows])
        train_labels = np.empty(len(train_arr), dtype=np.int64)
        for start in range(0, len(train_arr), _PREDICT_ROWS):
            train_labels[start : start + _PREDICT_ROWS] = train_model.predict(
                train_arr[start : start + _PREDICT_ROWS]
            )
    if k_target >= len(target_arr):
        target_model = None
        target_centers = np.asarray(target_arr)
        target_labels = np.arange(len(target_arr), dtype=np.int64)
    else:
        target_seed = None if seed is None else seed + 1
        target_model = KMeans(
            k_target, n_init=n_init, max_iter=max_iter, random_state=target_seed, progress=progress
        )._fit(target_arr)
        target_centers = target_model.cluster_centers_
        target_labels = target_model.labels_
    return Quantization(
        train_model=train_model,
        target_model=target_model,
        train_labels=train_labels,
        target_labels=target_labels,
        train_centers=train_model.cluster_centers_,
        target_centers=target_centers,
        sample_rows=sample_size,
    )


def _pool_sample_size(train: np.ndarray, k: int, wanted: Optional[int]) -> Optional[int]:
    """Rows to fit the pool's K-Means on, or None for every row (see `quantize`)."""
    n, dim = train.shape
    if wanted is not None:
        size = check_int("kmeans_sample_rows", wanted, minimum=1)
        if size < k:
            raise _core.GioError(f"kmeans_sample_rows: {size} rows cannot hold n_clusters={k} clusters")
        return None if size >= n else size
    dtype = working_dtype(train)
    budget = memory.memory_budget()
    whole = copy_bytes(train, dtype) + _core.kmeans_bytes(n, dim, k, dtype.itemsize)
    if budget is None or whole <= budget or k > n:
        return None  # KMeans.fit checks (and reports) the rest
    # Kept besides the sample: every row's label and the labelling of one slice.
    reserved = 8 * n + _core.assign_bytes(_PREDICT_ROWS, dim, k)
    size = sampling.fitting_sample_size(n, dim, k, dtype.itemsize, reserved=reserved)
    return None if size >= n else size
