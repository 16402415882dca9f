"""Stage 4, labels: one pass assigning every row to its nearest centroid (the exact kernel of
`KMeans.predict`), keeping a 4-byte label per row on disk. With a work dir each finished shard is
recorded, so that an interrupted pass resumes at the next shard."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import _core, memory
from ..io.hashed_files import HashedWriter, crash_point
from ..io.workdir import key_of
from . import resources
from .clusters import Clusters
from .context import Context
from .scan import Scan
from .spill import LabelFile

_PROGRESS = "labels.progress.json"
_NAME = "labels.i32"


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
    label_file = LabelFile(ctx.work.path(_NAME))
    saved = ctx.stage("labels", key)
    if saved is not None:
        ctx.finished("labels", started)
        sizes = np.asarray(saved["sizes"], dtype=np.int64)
        return Labels(ctx.work.sealed_key("labels", key), label_file, sizes, float(saved["inertia"]))
    if clusters.sample_labels is not None:
        labels = np.full(pool.pool_rows, -1, dtype=np.int32)
        keep = np.ones(pool.pool_rows, dtype=bool)
        keep[pool.dropped] = False
        labels[keep] = clusters.sample_labels
        ctx.work.write_bytes(_NAME, memoryview(labels))
        sizes = np.bincount(clusters.sample_labels, minlength=clusters.k).astype(np.int64)
        inertia = clusters.inertia
        del labels, keep
    else:
        inertia, sizes = _assign_pass(ctx, pool, clusters, key)
    ctx.work.save("labels", key, {"sizes": sizes.tolist(), "inertia": inertia}, [_NAME])
    ctx.work.remove(_PROGRESS)  # the stage is recorded whole: its checkpoint is done with
    seconds = ctx.finished("labels", started)
    ctx.report(
        f"labels: {pool.kept_rows} rows assigned to {clusters.k} centroids, inertia {inertia:.6g} "
        f"({seconds:.1f} s)"
    )
    return Labels(ctx.work.sealed_key("labels", key), label_file, sizes, inertia)


def _resumed(ctx: Context, key: str, k: int) -> tuple[int, np.ndarray, float, Optional[HashedWriter]]:
    """The shards already labelled by an interrupted pass with the same key, their cluster
    sizes and inertia, and the label file open after them, its first bytes verified against
    the checkpoint's hash (0, zeros, 0.0, None when starting afresh)."""
    state = ctx.work.read_json(_PROGRESS) if ctx.work.resumable else None
    fresh = 0, np.zeros(k, dtype=np.int64), 0.0, None
    if not isinstance(state, dict) or state.get("key") != key or ctx.one_shot or not state.get("shards_done"):
        return fresh
    writer = ctx.work.resume_writer(_NAME, state.get("file"), "labels")
    if writer is None:
        return fresh
    start_shard = int(state["shards_done"])
    ctx.reused.append(f"labels of {start_shard} shard(s)")
    ctx.report(f"work dir: reusing the labels of the first {start_shard} shard(s)")
    return start_shard, np.asarray(state["sizes"], dtype=np.int64), float(state["inertia"]), writer


def _assign_pass(ctx: Context, pool: Scan, clusters: Clusters, key: str) -> tuple[float, np.ndarray]:
    """Assign every row, shard by shard, from where an interrupted pass stopped."""
    _require_room(ctx, pool, clusters.k)
    centers64 = np.ascontiguousarray(clusters.centers, dtype=np.float64)
    start_shard, sizes, inertia, fh = _resumed(ctx, key, clusters.k)
    if fh is None:
        fh = ctx.work.writer(_NAME)
    try:
        bar = ctx.bar(pool.pool_rows - pool.shard_offsets[start_shard], "labels")
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
            fh.write(memoryview(found))
            if bar is not None:
                bar.update(chunk.n_rows)
        if bar is not None:
            bar.close()
    except BaseException:
        fh.abandon()
        raise
    ctx.work.close_writer(_NAME, fh)
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


def checkpoint(
    ctx: Context, fh: HashedWriter, key: str, shards_done: int, sizes: np.ndarray, inertia: float
) -> None:
    """Records that the labels of the first `shards_done` shards are on disk (fsynced), with the
    size and hash of those bytes, which a resume checks before it appends."""
    ctx.work.write_json(
        _PROGRESS,
        {"key": key, "shards_done": shards_done, "sizes": sizes.tolist(), "inertia": inertia,
         "file": fh.record()},
    )  # fmt: skip
    crash_point("labels: checkpoint written")
