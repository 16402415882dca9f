"""What `select_stream` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..io.dedup import Duplicates


@dataclass(frozen=True)
class StreamSelection:
    """The result of `select_stream`.

    indices : int64 array
        The selected pool rows in rank order (rows numbered over the shards in order).
    cluster_of_row : int64 array
        The cluster of each of `indices`.
    clusters : int64 array
        The chosen clusters in selection order (cut after the last one the budget reaches).
    repeated_clusters : int64 array
        Clusters chosen more than once (after a pool reset); their rows appear once.
    selection : gio_rs.Selection
        The selection among the centroids (kl_trace, stop_reason, ...).
    centers, target_centers : the pool's and the target's centroids.
    pool_rows, kept_rows : rows read, and rows left in the pool after `dedup`.
    sample_rows : rows K-Means was fitted on (pool_rows: every row).
    kmeans_inertia : the fit's inertia on those rows; pool_inertia: the sum over every kept row
        of its squared distance to its centroid.
    duplicates, target_duplicates : `gio_rs.io.dedup.Duplicates` of the pool and the target.
    output : what was written (path, format, rows, parts), or None.
    reused : the stages taken from the work dir.
    timings : seconds per stage; peak_rss_bytes: this process's peak resident memory.
    """

    indices: np.ndarray
    cluster_of_row: np.ndarray
    clusters: np.ndarray
    repeated_clusters: np.ndarray
    selection: Any
    centers: np.ndarray
    target_centers: np.ndarray
    pool_rows: int
    kept_rows: int
    sample_rows: int
    kmeans_inertia: float
    kmeans_iterations: int
    pool_inertia: float
    duplicates: Duplicates
    target_duplicates: Duplicates
    dedup: str
    output: Optional[dict] = None
    reused: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    peak_rss_bytes: int = 0

    def __len__(self) -> int:
        return len(self.indices)
