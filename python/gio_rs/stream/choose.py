"""Stage 5, selection: `gio_rs.select` among the centroids (every option of select), or with
`budget_rows` until the chosen clusters hold that many rows (`gio_rs.ranking`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ranking
from .._util.arrays import same_columns
from ..io.workdir import WorkDir, key_of
from ..selection import Selection
from ..selection import select as select_in_memory
from .context import Context
from .inputs import fingerprint, plain, read_whole
from .labels import Labels
from .scan import Scan
from .target import Target


@dataclass
class Choice:
    """The selection among the centroids (its indices are the chosen clusters)."""

    key: str
    selection: Selection


def choose_clusters(ctx: Context, pool: Scan, target: Target, centers: np.ndarray, labels: Labels) -> Choice:
    opts = ctx.options
    started = time.perf_counter()
    select_options = dict(opts["select_options"])
    init = opts.get("init")
    init_arr = None
    if init is not None:
        init_arr = read_whole(init, "init", opts, "init_format")
        same_columns("init", init_arr, opts.get("train_name", "train"), pool.dim)
    budget = opts["budget_rows"]
    key = key_of(
        "selection",
        labels.key,
        target.key,
        fingerprint(init, "init") if (ctx.work.resumable and init is not None) else None,
        {k: plain(v) for k, v in select_options.items()},
        budget,
        opts["seed"],
    )
    saved = ctx.stage("selection", key)
    if saved is not None:
        chosen = _selection_from_saved(saved, ctx.work)
        ctx.finished("selection", started)
        return Choice(ctx.work.sealed_key("selection", key), chosen)
    if budget is not None:
        budget = ranking.check_budget(budget, select_options)
        for name in ("max_iter", "stop_criterion", "max_data_size"):
            select_options.pop(name, None)
        chosen = ranking.choose_clusters(
            select_in_memory,
            centers,
            target.centers,
            labels.sizes,
            budget,
            {**select_options, "init": init_arr, "seed": opts["seed"], "progress": ctx.progress},
        )
    else:
        chosen = select_in_memory(
            centers, target.centers, init=init_arr, seed=opts["seed"], progress=ctx.progress, **select_options
        )
    if ctx.work.resumable:
        _save_selection(ctx.work, "selection", key, chosen)
        key = ctx.work.sealed_key("selection", key)
    seconds = ctx.finished("selection", started)
    ctx.report(
        f"selection: {len(np.unique(chosen.indices))} clusters chosen ({chosen.stop_reason}), KL "
        f"{chosen.kl_start:.4g} -> {chosen.kl_final:.4g} ({seconds:.1f} s)"
    )
    return Choice(key, chosen)


def _save_selection(work: WorkDir, stage: str, key: str, chosen: Any) -> None:
    arrays = {"indices": chosen.indices, "kl_trace": chosen.kl_trace, "candidate_kl": chosen.candidate_kl}
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    work.write_bytes("selection.npz", buffer.getvalue())
    meta = {
        "kl_start": chosen.kl_start,
        "stop_reason": chosen.stop_reason,
        "scale_factor": chosen.scale_factor,
        "n_resets": chosen.n_resets,
    }
    work.save(stage, key, meta, ["selection.npz"])


def _selection_from_saved(meta: dict, work: WorkDir) -> Any:
    with np.load(work.path("selection.npz")) as saved:
        return Selection(
            indices=saved["indices"],
            kl_trace=saved["kl_trace"],
            kl_start=float(meta["kl_start"]),
            stop_reason=str(meta["stop_reason"]),
            candidate_kl=saved["candidate_kl"],
            init=np.zeros((0, 0)),
            init_indices=None,
            scale_factor=float(meta["scale_factor"]),
            n_resets=int(meta["n_resets"]),
        )
