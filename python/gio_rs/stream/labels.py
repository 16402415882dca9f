"""Stage 4, labels: one pass assigning every row to its nearest centroid (the exact kernel of
`KMeans.predict`), keeping a 4-byte label per row on disk. With a work dir each finished shard is
recorded, so that an interrupted pass resumes at the next shard."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core, memory
from ..io.workdir import key_of
from . import resources
from .clusters import Clusters
from .context import Context
from .scan import Scan
from .spill import LABEL_BYTES, LabelFile

_PROGRESS = "labels.progress.json"


@dataclass
class Labels:
    """The label file, the rows of each cluster and the pool's inertia (the sum over every kept
    row of its squared distance to its centroid)."""

    key: str
    file: LabelFile
    sizes: np.ndarray
    pool_inertia: float


def assign_labels(ctx: Context, pool: Scan, clusters: Clusters) -> Labels:
    started = time.perf_counter()
    key = key_of("labels", clusters.key)
    label_file = LabelFile(ctx.work.path("labels.i32"))
    saved = ctx.stage("labels", key)
    if saved is not None:
        ctx.finished("labels", started)
        return Labels(key, label_file, np.asarray(saved["sizes"], dtype=np.int64), float(saved["inertia"]))
    if clusters.sample_labels is not None:
        labels = np.full(pool.pool_rows, -1, dtype=np.int32)
        keep = np.ones(pool.pool_rows, dtype=bool)
        keep[pool.dropped] = False
        labels[keep] = clusters.sample_labels
        labels.tofile(label_file.path)
        sizes = np.bincount(clusters.sample_labels, minlength=clusters.k).astype(np.int64)
        inertia = clusters.inertia
        del labels, keep
    else:
        inertia, sizes = _assign_pass(ctx, pool, clusters, key, label_file)
    if ctx.work.resumable:
        meta = {"sizes": sizes.tolist(), "inertia": inertia}
        ctx.work.save("labels", key, meta, ["labels.i32"])
    seconds = ctx.finished("labels", started)
    ctx.report(
        f"labels: {pool.kept_rows} rows assigned to {clusters.k} centroids, inertia {inertia:.6g} "
        f"({seconds:.1f} s)"
    )
    return Labels(key, label_file, sizes, inertia)


def _resumed(ctx: Context, key: str, label_file: LabelFile, k: int) -> tuple[int, np.ndarray, float]:
    """The shards already labelled by an interrupted pass with the same key, their cluster
    sizes and inertia (0, zeros, 0.0 when starting afresh)."""
    state = ctx.work.read_json(_PROGRESS) if ctx.work.resumable else None
    start_shard, sizes, inertia = 0, np.zeros(k, dtype=np.int64), 0.0
    if (
        isinstance(state, dict)
        and state.get("key") == key
        and not ctx.one_shot
        and os.path.exists(label_file.path)
    ):
        start_shard = int(state["shards_done"])
        sizes = np.asarray(state["sizes"], dtype=np.int64)
        inertia = float(state["inertia"])
        if start_shard:
            ctx.reused.append(f"labels of {start_shard} shard(s)")
            ctx.report(f"work dir: reusing the labels of the first {start_shard} shard(s)")
    return start_shard, sizes, inertia


def _assign_pass(
    ctx: Context, pool: Scan, clusters: Clusters, key: str, label_file: LabelFile
) -> tuple[float, np.ndarray]:
    """Assign every row, shard by shard, from where an interrupted pass stopped."""
    _require_room(ctx, pool, clusters.k)
    centers64 = np.ascontiguousarray(clusters.centers, dtype=np.float64)
    start_shard, sizes, inertia = _resumed(ctx, key, label_file, clusters.k)
    done_rows = pool.shard_offsets[start_shard]
    mode = "r+b" if start_shard else "wb"
    with open(label_file.path, mode) as fh:
        fh.truncate(done_rows * LABEL_BYTES)
        fh.seek(done_rows * LABEL_BYTES)
        bar = ctx.bar(pool.pool_rows - done_rows, "labels")
        current = start_shard
        for start, chunk in pool.chunks(ctx, table=False, start_shard=start_shard):
            if chunk.shard != current and ctx.work.resumable:
                checkpoint(ctx, fh, key, chunk.shard, sizes, inertia)
                current = chunk.shard
            x = chunk.vectors
            assert x is not None
            keep = pool.kept_mask(start, chunk.n_rows)
            found = np.full(chunk.n_rows, -1, dtype=np.int32)
            if keep.any():
                rows = x if keep.all() else x[keep]
                nearest, squared = _core.kmeans_assign(np.ascontiguousarray(rows), centers64)
                found[keep] = nearest
                sizes += np.bincount(nearest, minlength=clusters.k)
                inertia += float(squared.sum())
            fh.write(found.tobytes())
            if bar is not None:
                bar.update(chunk.n_rows)
        if bar is not None:
            bar.close()
    return inertia, sizes


def _batch_flag() -> str:
    return memory.option_name("batch_rows", "--batch-rows")


def _require_room(ctx: Context, pool: Scan, k: int) -> None:
    """Refuses when reading and labelling one batch does not fit beside what the process holds."""
    batch = ctx.batch_rows
    need = resources.reader_bytes(batch, pool.dim, pool.dtype.itemsize)
    need += _core.assign_bytes(batch, pool.dim, k) + 16 * k * pool.dim
    resources.require_stage(
        "labels",
        f"labelling {batch} rows at a time against {k} centroids of dimension {pool.dim}",
        need,
        f"read fewer rows at a time ({_batch_flag()}={max(1, batch // 2)})",
    )


def checkpoint(ctx: Context, fh: Any, key: str, shards_done: int, sizes: np.ndarray, inertia: float) -> None:
    """Records that the labels of the first `shards_done` shards are on disk."""
    fh.flush()
    os.fsync(fh.fileno())
    ctx.work.write_json(
        _PROGRESS,
        {"key": key, "shards_done": shards_done, "sizes": sizes.tolist(), "inertia": inertia},
    )
