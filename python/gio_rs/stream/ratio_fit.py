"""Ratio stage 2, fit: the target read whole (exact duplicates dropped with a warning, as the
quantised path does), `init` when given, and `gio_rs.ratio.fit_ratio` on the pool summary. The
model (plain NumPy fields) is kept in the work dir."""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from typing import Any

from .. import _core, ratio
from .._util.arrays import same_columns
from ..io.dedup import Duplicates, drop_duplicates
from ..io.workdir import key_of
from .context import Context
from .inputs import fingerprint, plain, read_whole, read_whole_with_texts
from .ratio_summary import Summary

_FILE = "ratio_model.pkl"


@dataclass
class Fit:
    """The fitted model, the target's duplicates and rows read; `key` identifies it."""

    key: str
    model: Any
    target_duplicates: Duplicates
    target_rows: int


def fit(ctx: Context, found: Summary) -> Fit:
    opts = ctx.options
    started = time.perf_counter()
    init = opts.get("init")
    key = key_of(
        "ratio_fit",
        found.key,
        fingerprint(ctx.target, "target") if ctx.work.resumable else None,
        fingerprint(init, "init") if (ctx.work.resumable and init is not None) else None,
        {k: plain(opts.get(k)) for k in ("target_format", "init_format", "features_col", "feature_columns")},
        opts.get("text_column"),
        opts["ratio_estimator"],
        opts["seed"],
    )
    saved = ctx.stage("ratio_fit", key)
    if saved is not None:
        with open(ctx.work.path(_FILE), "rb") as fh:
            model, duplicates = pickle.load(fh)
        ctx.finished("ratio_fit", started)
        return Fit(key, model, duplicates, int(saved["target_rows"]))
    name = opts.get("target_name", "target")
    x, texts = read_whole_with_texts(ctx.target, name, opts, "target_format")
    same_columns(name, x, opts.get("train_name", "train"), found.pool.dim)
    rows = len(x)
    x, duplicates = drop_duplicates(x, name, texts)
    if len(x) < 2:
        raise _core.GioError(f"{name}: needs at least 2 distinct rows")
    init_rows = None
    if init is not None:
        init_rows = read_whole(init, "init", opts, "init_format")
        same_columns("init", init_rows, opts.get("train_name", "train"), found.pool.dim)
    model = ratio.fit_ratio(
        found.summary, x, estimator=opts["ratio_estimator"], seed=opts["seed"] or 0, init=init_rows
    )
    with open(ctx.work.path(_FILE), "wb") as fh:
        pickle.dump((model, duplicates), fh, protocol=pickle.HIGHEST_PROTOCOL)
    if ctx.work.resumable:
        ctx.work.save("ratio_fit", key, {"target_rows": rows}, [_FILE])
    seconds = ctx.finished("ratio_fit", started)
    ctx.report(
        f"ratio fit: estimator {opts['ratio_estimator']} on {len(x)} target rows"
        + (" (flat ratio: the selection is a seeded uniform sample)" if model.flat else "")
        + f" ({seconds:.1f} s)"
    )
    return Fit(key, model, duplicates, rows)
