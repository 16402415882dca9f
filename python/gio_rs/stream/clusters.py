"""Stage 3, kmeans: K-Means (`gio_rs.KMeans`, seeded) fitted on every kept pool row when its
working set fits the memory budget, else on a seeded uniform sample of as many rows as fit."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import _core, memory, sampling
from .._util.arrays import check_int
from ..io.workdir import key_of
from ..kmeans import KMeans
from . import resources
from .context import Context
from .scan import Scan
from .target import Target

SAFETY = 0.85  # of the planned room: the fit's estimate is an upper bound, the rest is slack


@dataclass
class Clusters:
    """The pool's K-Means: `k` centroids fitted on `sample_rows` rows, the fit's inertia and
    iterations, and (when the sample was every kept row) the fit's own labels."""

    key: str
    k: int
    centers: np.ndarray
    sample_rows: int
    inertia: float
    iterations: int
    sample_labels: Optional[np.ndarray]


def _reserved(ctx: Context, pool: Scan, target: Target, k: int) -> int:
    """What the process holds besides the runtime while K-Means runs, all fixed by the inputs and
    options: the reader's piece, one batch's labelling, the centroids, the target's centroids and
    the duplicates' row numbers."""
    return (
        resources.reader_bytes(ctx.batch_rows, pool.dim, pool.dtype.itemsize)
        + _core.assign_bytes(ctx.batch_rows, pool.dim, k)
        + 16 * k * pool.dim
        + target.centers.nbytes
        + 24 * len(pool.duplicates)
    )


def sample_size(ctx: Context, pool: Scan, target: Target, k: int) -> int:
    """Rows K-Means is fitted on: `kmeans_sample_rows`, else every kept row when that fits
    the memory budget, else as many as fit (gio_rs.sampling). Never measured: planned from the
    budget less the fixed `memory.RUNTIME_FOOTPRINT` and `_reserved`, so the same inputs, options
    and budget give the same number on any machine (with the "auto" budget, the memory available
    when the stage starts, it depends on the machine and the moment)."""
    opts = ctx.options
    if opts["kmeans_sample_rows"] is not None:
        wanted = check_int("kmeans_sample_rows", opts["kmeans_sample_rows"], minimum=1)
        if wanted < k:
            raise _core.GioError(f"kmeans_sample_rows: {wanted} rows cannot hold {k} clusters")
        return min(wanted, pool.kept_rows)
    reserved = _reserved(ctx, pool, target, k)
    room = resources.planned_stage_bytes(reserved)
    if room is None:
        return pool.kept_rows
    size = sampling.largest_sample(pool.kept_rows, pool.dim, k, pool.dtype.itemsize, SAFETY * room)
    if size < k:
        need = sampling.kmeans_need(k, pool.dim, k, pool.dtype.itemsize)
        largest = _largest_clusters(ctx, pool, target, k)
        name = memory.option_name("n_clusters", "--clusters")
        memory.refuse(
            "kmeans",
            f"K-Means with {k} clusters of dimension {pool.dim}, even on a sample of {k} rows,",
            int(need / SAFETY) + reserved,
            room + reserved,
            f"the largest cluster count that fits is {name}={largest}" if largest else "nothing smaller fits",
            planned=True,
        )
    return size


def _largest_clusters(ctx: Context, pool: Scan, target: Target, k: int) -> int:
    """The most clusters (below `k`) whose K-Means on as many rows fits the planned room."""
    low, high = 0, k - 1
    while low < high:
        middle = (low + high + 1) // 2
        room = resources.planned_stage_bytes(_reserved(ctx, pool, target, middle)) or 0
        if sampling.kmeans_need(middle, pool.dim, middle, pool.dtype.itemsize) <= SAFETY * room:
            low = middle
        else:
            high = middle - 1
    return low


def _check_room(ctx: Context, pool: Scan, target: Target, k: int, size: int) -> None:
    """Refuses before reading the sample when K-Means on `size` rows does not fit besides what
    the process holds now (measured: this decides whether to run, never the sample)."""
    itemsize = pool.dtype.itemsize
    reserved = _reserved(ctx, pool, target, k)
    need = sampling.kmeans_need(size, pool.dim, k, itemsize) + reserved
    room = resources.stage_bytes()
    if room is None or need <= room:
        return
    largest = sampling.largest_sample(pool.kept_rows, pool.dim, k, itemsize, room - reserved)
    if largest >= k:
        name = memory.option_name("kmeans_sample_rows", "--kmeans-sample-rows")
        fix = f"the largest sample that fits now is {name}={largest}"
    else:
        most = sampling.largest_clusters(pool.dim, itemsize, room - reserved, k)
        name = memory.option_name("n_clusters", "--clusters")
        fix = f"the largest cluster count that fits now is {name}={most}" if most else "nothing smaller fits"
    what = f"K-Means with {k} clusters of dimension {pool.dim} on a sample of {size} rows"
    memory.refuse("kmeans", what, need, room, fix)


def fit_clusters(ctx: Context, pool: Scan, target: Target) -> Clusters:
    opts = ctx.options
    started = time.perf_counter()
    k = check_int("n_clusters", opts["n_clusters"], minimum=1)
    if k > pool.kept_rows:
        raise _core.GioError(
            f"n_clusters: {k} clusters need at least {k} rows, the pool has {pool.kept_rows}"
        )
    size = sample_size(ctx, pool, target, k)
    key = key_of("kmeans", pool.key, opts["dedup"], k, opts["seed"], opts["kmeans_max_iter"], size)
    saved = ctx.stage("kmeans", key)
    if saved is not None:
        centers = np.load(ctx.work.path("centers.npy"))
        labels = np.load(ctx.work.path("sample_labels.npy")) if saved["every_row"] else None
        ctx.finished("kmeans", started)
        return Clusters(
            ctx.work.sealed_key("kmeans", key),
            k,
            centers,
            int(saved["sample_rows"]),
            float(saved["inertia"]),
            int(saved["n_iter"]),
            labels,
        )
    _check_room(ctx, pool, target, k, size)
    rows = sampling.sample_rows(pool.pool_rows, size, opts["seed"], pool.dropped)
    sample = _read_sample(ctx, pool, rows)
    resources.release_freed_memory()  # the reader's buffers, before the fit allocates
    read_seconds = time.perf_counter() - started
    model = KMeans(k, max_iter=opts["kmeans_max_iter"], random_state=opts["seed"], progress=ctx.progress)
    model.fit(sample)
    del sample
    every_row = len(rows) == pool.kept_rows
    # On every row the fit's own labels are the answer (no assignment pass needed).
    labels = model.labels_.astype(np.int32) if every_row else None
    found = Clusters(key, k, model.cluster_centers_, len(rows), model.inertia_, model.n_iter_, labels)
    _save_clusters(ctx, found)
    found.key = ctx.work.sealed_key("kmeans", key)  # what the later stages chain on
    seconds = ctx.finished("kmeans", started)
    where = "every pool row" if every_row else f"a seeded sample of {len(rows)} of {pool.kept_rows} rows"
    ctx.report(
        f"kmeans: K = {k} on {where}, {found.iterations} iterations, inertia "
        f"{found.inertia:.6g} ({read_seconds:.1f} s reading, {seconds:.1f} s in all)"
    )
    return found


def _read_sample(ctx: Context, pool: Scan, rows: np.ndarray) -> np.ndarray:
    """The pool rows `rows` (sorted), read in one pass, in pieces of at most
    `resources.SAMPLE_PIECE_ROWS` rows while the sample fills (pieces never change which rows)."""
    restore = resources.limit_pieces(ctx, resources.SAMPLE_PIECE_ROWS)
    try:
        return _fill_sample(ctx, pool, rows)
    finally:
        restore()


def _fill_sample(ctx: Context, pool: Scan, rows: np.ndarray) -> np.ndarray:
    sample = np.empty((len(rows), pool.dim), dtype=pool.dtype)
    filled = 0
    bar = ctx.bar(pool.pool_rows, "K-Means sample")
    for start, chunk in pool.chunks(ctx, table=False):
        lo, hi = np.searchsorted(rows, [start, start + chunk.n_rows])
        if hi > lo:
            assert chunk.vectors is not None
            sample[filled : filled + hi - lo] = chunk.vectors[rows[lo:hi] - start]
            filled += hi - lo
        if bar is not None:
            bar.update(chunk.n_rows)
    if bar is not None:
        bar.close()
    return sample


def _save_clusters(ctx: Context, found: Clusters) -> None:
    every_row = found.sample_labels is not None
    ctx.work.save_array("centers.npy", found.centers)
    files = ["centers.npy"]
    if every_row:
        ctx.work.save_array("sample_labels.npy", found.sample_labels)
        files.append("sample_labels.npy")
    if ctx.work.resumable:
        meta = {"sample_rows": found.sample_rows, "inertia": found.inertia,
                "n_iter": found.iterations, "every_row": every_row}  # fmt: skip
        ctx.work.save("kmeans", found.key, meta, files)
