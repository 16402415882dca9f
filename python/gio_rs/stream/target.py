"""Stage 2, target: read whole (the small side), exact duplicates dropped with a warning (they
make the estimator's rho zero), quantised as `gio_rs.quantize` does."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import _core, memory
from .._util.arrays import check_int, same_columns
from ..io.dedup import Duplicates, drop_duplicates
from ..io.workdir import key_of
from ..kmeans import KMeans
from . import resources
from .context import Context
from .inputs import fingerprint, plain, read_whole_with_texts
from .scan import Scan


@dataclass
class Target:
    """The target's centroids (its rows when it has no more than `n_clusters_target`), its
    duplicates and rows read; `key` identifies it in the work dir."""

    key: str
    centers: np.ndarray
    duplicates: Duplicates
    rows: int


def quantise_target(ctx: Context, pool: Scan) -> Target:
    opts = ctx.options
    started = time.perf_counter()
    k_target = opts["n_clusters_target"]
    k_target = opts["n_clusters"] if k_target is None else check_int("n_clusters_target", k_target, minimum=1)
    key = key_of(
        "target",
        fingerprint(ctx.target, "target") if ctx.work.resumable else None,
        {k: plain(opts.get(k)) for k in ("target_format", "features_col", "feature_columns", "text_column")},
        k_target,
        opts["seed"],
        opts["kmeans_max_iter"],
    )
    saved = ctx.stage("target", key)
    if saved is not None:
        centers = np.load(ctx.work.path("target_centers.npy"))
        pairs = np.load(ctx.work.path("target_duplicates.npy"))
        duplicates = Duplicates(pairs[0].astype(np.int64), pairs[1].astype(np.int64))
        ctx.finished("target", started)
        return Target(ctx.work.sealed_key("target", key), centers, duplicates, int(saved["rows"]))
    name = opts.get("target_name", "target")
    x, texts = read_whole_with_texts(ctx.target, name, opts, "target_format")
    same_columns(name, x, opts.get("train_name", "train"), pool.dim)
    rows = len(x)
    x, duplicates = drop_duplicates(x, name, texts)
    if len(x) < 2:
        raise _core.GioError(f"{opts.get('target_name', 'target')}: needs at least 2 distinct rows")
    if k_target >= len(x):
        centers = np.asarray(x)
    else:
        _require_room(x, k_target)
        seed = opts["seed"]
        model = KMeans(
            k_target,
            max_iter=opts["kmeans_max_iter"],
            random_state=None if seed is None else seed + 1,
            progress=ctx.progress,
        ).fit(x)
        centers = model.cluster_centers_
    found = Target(key, np.asarray(centers), duplicates, rows)
    ctx.work.save_array("target_centers.npy", found.centers)
    ctx.work.save_array("target_duplicates.npy", np.stack([duplicates.rows, duplicates.first]))
    ctx.work.save("target", key, {"rows": rows}, ["target_centers.npy", "target_duplicates.npy"])
    found.key = ctx.work.sealed_key("target", key)  # what the later stages chain on
    seconds = ctx.finished("target", started)
    ctx.report(f"target: {rows} rows, {len(found.centers)} target points ({seconds:.1f} s)")
    return found


def _require_room(x: np.ndarray, k: int) -> None:
    """Refuses when the target's K-Means does not fit beside what the process holds now."""
    rows, dim = x.shape
    itemsize = 4 if x.dtype == np.float32 else 8
    need = _core.kmeans_bytes(rows, dim, k, itemsize)
    room = resources.stage_bytes()
    if room is not None and need > room:
        most = 0
        low, high = 1, k
        while low <= high:  # the largest target cluster count whose fit still fits
            middle = (low + high) // 2
            if _core.kmeans_bytes(rows, dim, middle, itemsize) <= room:
                most, low = middle, middle + 1
            else:
                high = middle - 1
        name = memory.option_name("n_clusters_target", "--clusters-target")
        fix = f"the largest target cluster count that fits is {name}={most}"
        if not most:
            fix = "use a smaller target"
        memory.refuse("target", f"K-Means with {k} clusters on the {rows} x {dim} target", need, room, fix)
