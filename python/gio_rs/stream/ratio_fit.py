"""Ratio stage 2, fit: `gio_rs.ratio.fit_ratio` on the pool summary and the target (with `init`,
the residual rule for the rows already held). The model (plain NumPy fields) is kept in the work
dir."""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from typing import Any

from .. import ratio
from ..io.workdir import key_of
from .context import Context
from .ratio_summary import Inputs, Summary

_FILE = "ratio_model.pkl"


@dataclass
class Fit:
    """The fitted model; `key` identifies it in the work dir."""

    key: str
    model: Any


def fit(ctx: Context, found: Summary, inputs: Inputs) -> Fit:
    opts = ctx.options
    started = time.perf_counter()
    budget = int(opts["budget_rows"])
    estimator = opts["ratio_estimator"]
    key = key_of("ratio_fit", found.key, estimator, budget if inputs.init is not None else None)
    if ctx.stage("ratio_fit", key) is not None:
        with open(ctx.work.path(_FILE), "rb") as fh:
            model = pickle.load(fh)
        ctx.finished("ratio_fit", started)
        return Fit(key, model)
    name = opts.get("target_name", "target")
    if inputs.target.shape[1] != found.pool.dim:
        from .._core import GioError

        raise GioError(f"{name}: has {inputs.target.shape[1]} columns, the pool has {found.pool.dim}")
    model = ratio.fit_ratio(
        found.summary, inputs.target, estimator=estimator, seed=opts["seed"] or 0, init=inputs.init,
        budget_rows=budget,
    )  # fmt: skip
    with open(ctx.work.path(_FILE), "wb") as fh:
        pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    if ctx.work.resumable:
        ctx.work.save("ratio_fit", key, {}, [_FILE])
    seconds = ctx.finished("ratio_fit", started)
    ctx.report(
        f"ratio fit: estimator {estimator} on {len(inputs.target)} target rows"
        + (f" and {len(inputs.init)} init rows" if inputs.init is not None else "")
        + (", flat ratio" if model.flat else "")
        + f" ({seconds:.1f} s)"
    )
    return Fit(key, model)
