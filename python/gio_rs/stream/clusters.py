"""Stage 3, kmeans: K-Means (`gio_rs.KMeans`, seeded) fitted on every kept pool row when its
working set fits the memory budget, else on a seeded uniform sample of as many rows as fit."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import _core, sampling
from .._util.arrays import check_int
from ..io.workdir import key_of
from ..kmeans import KMeans
from .context import Context
from .scan import Scan
from .target import Target

SAFETY = 0.85
# What the interpreter, NumPy, pyarrow, the packaged text model and a reader's buffers take
# besides the arrays counted one by one (350-460 MiB measured on the 20 M-row benchmark): a fixed
# allowance, not the resident memory of the moment, so that the K-Means sample (and so the
# centroids and the selection) depends only on the inputs, the options and the budget.
RUNTIME_ALLOWANCE = 512 << 20


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


def sample_size(ctx: Context, pool: Scan, target: Target, k: int) -> int:
    """Rows K-Means is fitted on: `kmeans_sample_rows`, else every kept row when that fits
    the memory budget, else as many as fit (gio_rs.sampling). Never measured: the same
    inputs, options and budget give the same number (with the "auto" budget, the memory
    available when the stage starts, it depends on the machine and the moment)."""
    opts = ctx.options
    if opts["kmeans_sample_rows"] is not None:
        wanted = check_int("kmeans_sample_rows", opts["kmeans_sample_rows"], minimum=1)
        if wanted < k:
            raise _core.GioError(f"kmeans_sample_rows: {wanted} rows cannot hold {k} clusters")
        return min(wanted, pool.kept_rows)
    # Held meanwhile: the runtime, the centroids, one batch's labelling, the target's
    # centroids and the duplicates' row numbers; all fixed by the inputs and options.
    reserved = (
        RUNTIME_ALLOWANCE
        + _core.assign_bytes(ctx.batch_rows, pool.dim, k)
        + 16 * k * pool.dim
        + target.centers.nbytes
        + 24 * len(pool.duplicates)
    )
    return sampling.fitting_sample_size(
        pool.kept_rows, pool.dim, k, pool.dtype.itemsize, reserved=reserved, share=SAFETY
    )


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
    rows = sampling.sample_rows(pool.pool_rows, size, opts["seed"], pool.dropped)
    sample = _read_sample(ctx, pool, rows)
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
    """The pool rows `rows` (sorted), read in one pass."""
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
