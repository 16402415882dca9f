"""The selection loop's plumbing shared by `select` (fixed semantics) and `GIOKL.fit` (the
reference's): the start rows, the arrays cast to one working dtype within the memory budget, and
the core's loop run with the reference's random draws."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from . import _core, memory
from ._util.arrays import as_matrix, cast, copy_bytes, same_columns, working_dtype
from ._util.progress import Reporter


def uniform_start(np_rng: Any, low: float, high: float, size: int, dim: int, normalize: bool) -> np.ndarray:
    """The reference's uniform start: `np_rng.uniform(low, high, (size, dim))`, each row scaled to
    unit L2 norm when `normalize` (an all-zero row is left as is)."""
    rows = np.asarray(np_rng.uniform(low=low, high=high, size=(size, dim)), dtype=np.float64)
    if normalize:
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        rows = np.where(norms == 0, rows, rows / np.where(norms == 0, 1.0, norms))
    return rows


def initial_selection(
    train: np.ndarray,
    dim: int,
    *,
    init: Any,
    init_name: str,
    target_name: str,
    random_init_pct: float,
    uniform_rows: Callable[[], np.ndarray],
    rng: Any,
    discard_nearest_for_xy: bool,
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The reference's start (its `fit`, lines 148-155): `init` when given; else
    `int(random_init_pct·len(train))` train rows drawn with `rng.sample` (they stay in the pool);
    else `uniform_rows()`. Returns the rows and, for drawn train rows, their indices."""
    indices = None
    if init is not None:
        rows = as_matrix(init_name, init)
        same_columns(init_name, rows, target_name, dim)
    elif random_init_pct > 0:
        amount = int(random_init_pct * len(train))
        if amount < 1:
            raise _core.GioError(
                f"random_init_pct: {random_init_pct} of {len(train)} train rows is less than one row"
            )
        indices = np.asarray(rng.sample(range(len(train)), amount), dtype=np.int64)
        rows = train[indices]
    else:
        rows = uniform_rows()
    if discard_nearest_for_xy and len(rows) < 2:
        raise _core.GioError(f"{init_name}: needs at least 2 rows with discard_nearest_for_xy=True")
    return rows, indices


def pick_row(rng: Any) -> Callable[[int], int]:
    """A row draw that consumes `rng` exactly as the reference's `random.sample(rows, 1)`."""
    return lambda n: rng.sample(range(n), 1)[0]


def loop_arrays(
    train: np.ndarray,
    target: np.ndarray,
    init: np.ndarray,
    params: _core.SelectParams,
    *,
    extra: int = 0,
    init_name: str = "init",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """train, target and init cast to one working dtype (float32 stays float32; init follows),
    once the loop's working set (`gio_rs._core.select_bytes`; `extra` bytes more for the caller's
    own use) fits the memory budget. Arrays must be validated already; init (named `init_name` in
    errors) must fit the working dtype."""
    dtype = working_dtype(train, target)
    f32_max = float(np.finfo(np.float32).max)
    if dtype == np.float32 and init.dtype.itemsize > 4 and init.size:
        largest = float(np.abs(init).max())
        if f32_max < largest < np.inf:  # NaN and inf: check_finite names them
            raise _core.GioError(
                f"{init_name}: has values beyond the float32 range (±{f32_max:.3g}), while train and "
                "the target are float32, so the selection runs in float32; pass them as float64"
            )
    greedy = params.method == "greedy"
    needed = sum(copy_bytes(a, dtype) for a in (train, target, init)) + extra
    needed += _core.select_bytes(
        len(train),
        len(target),
        target.shape[1],
        n_start=len(init),
        max_iter=params.max_iter,
        greedy=greedy,
        itemsize=dtype.itemsize,
    )
    what = "greedy selection" if greedy else "selection"
    what += f" from {len(train)} x {target.shape[1]} rows for {len(target)} target rows"
    memory.require(what, needed, "quantise first (n_clusters)" if greedy or len(train) > 100_000 else "")
    return cast(train, dtype), cast(target, dtype), cast(init, dtype)


def run_loop(
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
    params: _core.SelectParams,
    *,
    rng: Any,
    reporter: Reporter,
) -> _core.SelectionResult:
    """Runs the core's loop (`params.method`) on arrays from `loop_arrays`, drawing from `rng` as
    the reference draws from Python's `random`."""
    try:
        return _core.select(*arrays, params, random=rng.random, pick=pick_row(rng), callback=reporter)
    finally:
        reporter.close()
