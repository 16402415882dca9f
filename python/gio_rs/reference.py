"""The slow NumPy version of GIO: a plain, readable oracle for the Rust core.

This module reimplements, in pure NumPy (plus the standard library), the math and the selection
loop of the reference implementation, `grad-info-opt` 0.1.2 (`GIO.GIOKL`). It exists to be read
and to be tested against: it is exact and simple rather than fast, and it imports nothing from
`gio_rs`, so it also works as a standalone file.

Conventions (see docs/reference.md, "What the reference computes"):

- everything is computed in float64 (inputs are converted with ``np.asarray(..., np.float64)``);
- squared distances are formed from exact differences, ``((x_i - w_j) ** 2).sum()``, never by the
  ``|x|^2 + |w|^2 - 2 x.w`` expansion the reference uses (it cancels badly for near points), and in
  row chunks so that memory stays bounded;
- squared distances are clipped to ``[CLIP_LOW, CLIP_HIGH]`` before the square root, and ``EPS`` is
  added before the logarithm, as in the reference.

The estimator, for target X (n x d) and selection W (m x d)::

    KL(X || W) = d * mean_{i,j} log(nu(x_i, w_j) + eps)
               - d * mean_i log(rho_k(i) + eps)
               + mean_{j=1..m} log(k * m / (j * (n - 1)))

where nu is the clipped Euclidean distance and rho_k(i) the distance from x_i to its k-th nearest
neighbour in X, itself not counted.

`greedy_select` is the reference's `GIOKL.fit` loop (its lines 157-239), quirks included, or with
``fixed=True`` the same loop with seven documented bug fixes. `fit` wraps it with the reference's
start (D, `random_init_pct` or a uniform start) and return value.

`exact_greedy_select` is the exact greedy method on the unaveraged estimator
(`knn_kl_divergence`), by brute force: every candidate's estimate recomputed from scratch.
"""

from __future__ import annotations

import random as _random_module
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "EPS",
    "CLIP_LOW",
    "CLIP_HIGH",
    "SelectionTrace",
    "squared_distances",
    "kl_divergence",
    "kl_gradient",
    "gradient_descend",
    "auto_scale_factor",
    "nearest_unused",
    "greedy_select",
    "fit",
    "knn_kl_divergence",
    "GreedyTrace",
    "exact_greedy_select",
]

EPS = 1e-8
CLIP_LOW = 1e-10
CLIP_HIGH = 1e20

STOP_CRITERIA = (
    "increase",
    "max_resets",
    "min_difference",
    "sequential_increase_tolerance",
    "min_kl",
    "data_size",
)
V_INITS = ("mean", "prev_opt", "jump")

# Upper bound on the number of float64 values in one (rows x m x d) difference block.
_CHUNK_ELEMENTS = 1 << 21


# --------------------------------------------------------------------------- helpers


def _matrix(name: str, a: Any) -> np.ndarray:
    """`a` as a 2-D float64 array (a new array only when a conversion is needed)."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {arr.shape}")
    return arr


def _vector(name: str, a: Any, dim: int) -> np.ndarray:
    """`a` as a 1-D float64 array of length `dim`."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape != (dim,):
        raise ValueError(f"{name}: expected shape ({dim},), got {arr.shape}")
    return arr


def _row_chunks(n_rows: int, m: int, d: int):
    """Yields (start, stop) row ranges whose difference blocks stay under _CHUNK_ELEMENTS values."""
    step = max(1, _CHUNK_ELEMENTS // max(1, m * d))
    for start in range(0, n_rows, step):
        yield start, min(n_rows, start + step)


def _clip(sq: np.ndarray) -> np.ndarray:
    """Squared distances clipped to [CLIP_LOW, CLIP_HIGH], as the reference's `jnp.clip`."""
    return np.clip(sq, CLIP_LOW, CLIP_HIGH)


def _sqdist_to_point(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Squared distance from each row of x to the point v, by exact differences (unclipped)."""
    with np.errstate(over="ignore"):  # beyond 1e154 a square is inf, then clipped to 1e20
        return ((x - v) ** 2).sum(axis=1)


def _log_last_term(n: int, m: int, k: int) -> float:
    """mean_{j=1..m} log(k*m / (j*(n-1))): the estimator's term that depends only on sizes."""
    j = np.arange(1, m + 1, dtype=np.float64)
    return float(np.mean(np.log((k * m) / (j * (n - 1)))))


def _kth_neighbour_distances(x: np.ndarray, k: int) -> np.ndarray:
    """rho_k(i) for every row of x: sqrt of the (k+1)-th smallest clipped squared distance in row i
    of the x-by-x matrix (the row itself, at distance 0 -> CLIP_LOW, is counted)."""
    n = x.shape[0]
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= n - 1:
        raise ValueError(f"k: must be in [1, n - 1] = [1, {n - 1}], got {k}")
    rho = np.empty(n, dtype=np.float64)
    for start, stop in _row_chunks(n, n, x.shape[1]):
        block = _clip(squared_distances(x[start:stop], x))
        rho[start:stop] = np.sqrt(np.partition(block, int(k), axis=1)[:, int(k)])
    return rho


def _kl_from_parts(
    clipped_xy: np.ndarray, rho: np.ndarray, d: int, k: int, eps: float, discard: bool
) -> float:
    """The estimator from the clipped target-by-selection squared distances (n x m) and rho_k.

    With `discard`, each target row drops its smallest clipped distance (the reference sorts the
    row and keeps columns 1:), so the first mean runs over n*(m-1) pairs; the size term still
    uses m."""
    n, m = clipped_xy.shape
    if discard:
        if m < 2:
            raise ValueError("y: needs at least 2 rows with discard_nearest_for_xy=True")
        kept = np.sort(clipped_xy, axis=1)[:, 1:]
    else:
        kept = clipped_xy
    xy_term = d * float(np.mean(np.log(np.sqrt(kept) + eps)))
    xx_term = d * float(np.mean(np.log(rho + eps)))
    return xy_term - xx_term + _log_last_term(n, m, k)


def _gradient(x: np.ndarray, v: np.ndarray, m: int, nearest_w_sq: np.ndarray | None) -> np.ndarray:
    """Closed-form gradient of KL(x || W + {v}) with respect to v, for |W| = m.

    `nearest_w_sq` is None without discard_nearest_for_xy; with it, it holds for every target row
    the smallest CLIPPED squared distance to W (row i's term is dropped where v is strictly nearer).
    """
    n, d = x.shape
    s = _clip(_sqdist_to_point(x, v))
    # Inside the clip interval only: at or beyond a bound the clipped value is constant in v.
    active = (s > CLIP_LOW) & (s < CLIP_HIGH)
    if nearest_w_sq is None:
        factor = d / (n * (m + 1))
    else:
        if m < 1:
            raise ValueError("W: needs at least one row with discard_nearest_for_xy=True")
        factor = d / (n * m)
        # A stable sort puts v (the last column) after any w at the same distance, so v's term is
        # the one dropped only when v is strictly the nearest.
        active &= ~(s < nearest_w_sq)
    r = np.sqrt(s[active])
    terms = (v - x[active]) / (r * (r + EPS))[:, None]
    return factor * terms.sum(axis=0)


def _nearest_w_sq(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """For each row of x, the smallest clipped squared distance to a row of w."""
    out = np.empty(x.shape[0], dtype=np.float64)
    for start, stop in _row_chunks(x.shape[0], w.shape[0], x.shape[1]):
        out[start:stop] = _clip(squared_distances(x[start:stop], w)).min(axis=1)
    return out


def _descend(
    x: np.ndarray,
    m: int,
    nearest_w_sq: np.ndarray | None,
    v: np.ndarray,
    scaling_factor: float,
    steps: int,
    lr: float,
) -> np.ndarray:
    """`steps` steps of v <- v - (lr * scaling_factor) * gradient; returns a new array.

    A non-finite scale factor (the "auto" one is inf when the starting gradient is 0) makes v NaN
    silently, as in the reference (JAX does not warn); NumPy's warnings are silenced to match."""
    v = np.array(v, dtype=np.float64, copy=True)
    step = lr * scaling_factor
    with np.errstate(invalid="ignore", over="ignore"):
        for _ in range(steps):
            v = v - step * _gradient(x, v, m, nearest_w_sq)
    return v


# --------------------------------------------------------------------------- public math


def squared_distances(x: Any, y: Any) -> np.ndarray:
    """All squared Euclidean distances between rows of x (n x d) and rows of y (m x d).

    Returns an (n, m) float64 array, unclipped, computed from exact differences
    ``((x_i - y_j) ** 2).sum()`` in row chunks (never by the |x|^2 + |y|^2 - 2 x.y expansion).
    """
    x = _matrix("x", x)
    y = _matrix("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: has {y.shape[1]} columns but x has {x.shape[1]}")
    out = np.empty((x.shape[0], y.shape[0]), dtype=np.float64)
    for start, stop in _row_chunks(x.shape[0], y.shape[0], x.shape[1]):
        diff = x[start:stop, None, :] - y[None, :, :]
        with np.errstate(over="ignore"):  # beyond 1e154 a square is inf, then clipped to 1e20
            out[start:stop] = (diff**2).sum(axis=2)
    return out


def kl_divergence(
    x: Any, y: Any, k: int = 5, eps: float = 1e-8, discard_nearest_for_xy: bool = False
) -> float:
    """The reference's `calculate_statistical_distance(x, y, k, eps, discard_nearest_for_xy)`.

    KL(x || y) = d * mean_{i,j} log(nu(x_i, y_j) + eps) - d * mean_i log(rho_k(i) + eps)
    + mean_{j=1..m} log(k*m / (j*(n-1))), with nu the Euclidean distance after clipping the
    squared distance to [1e-10, 1e20], and rho_k(i) the square root of the (k+1)-th smallest
    clipped squared distance in row i of x-by-x (the row itself included in the count).
    With `discard_nearest_for_xy`, each row of x drops its smallest distance to y (the mean runs
    over n*(m-1) pairs); the last term still uses m. Requires 1 <= k <= n - 1. Returns a float.
    """
    x = _matrix("x", x)
    y = _matrix("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: has {y.shape[1]} columns but x has {x.shape[1]}")
    rho = _kth_neighbour_distances(x, k)
    clipped_xy = _clip(squared_distances(x, y))
    return _kl_from_parts(clipped_xy, rho, x.shape[1], k, eps, discard_nearest_for_xy)


def kl_gradient(x: Any, w: Any, v: Any, discard_nearest_for_xy: bool = False) -> np.ndarray:
    """Gradient with respect to v of KL(x || [w; v]) (the reference differentiates this with JAX).

    With s_i = clip(|x_i - v|^2) and r_i = sqrt(s_i)::

        grad = d / (n * (m + 1)) * sum_i (v - x_i) / (r_i * (r_i + 1e-8))

    where m = len(w) and terms whose clipped s_i is at a clip bound (not inside the open interval
    (1e-10, 1e20)) are 0. With `discard_nearest_for_xy` the factor is d / (n * m) and row i's term
    is dropped where s_i is strictly smaller than min_j clip(|x_i - w_j|^2). Returns float64 (d,).
    The result does not depend on k.
    """
    x = _matrix("x", x)
    w = _matrix("w", w)
    v = _vector("v", v, x.shape[1])
    nearest = _nearest_w_sq(x, w) if discard_nearest_for_xy else None
    return _gradient(x, v, w.shape[0], nearest)


def gradient_descend(
    X: Any,
    W: Any,
    v: Any,
    scaling_factor: float,
    max_iterations: int,
    lr: float = 0.01,
    discard_nearest_for_xy: bool = False,
) -> np.ndarray:
    """The reference's `gradient_descend`: `max_iterations` times v <- v - (lr * scaling_factor) *
    kl_gradient(X, W, v). Returns a new float64 array; the inputs are never modified."""
    X = _matrix("X", X)
    W = _matrix("W", W)
    v = _vector("v", v, X.shape[1])
    nearest = _nearest_w_sq(X, W) if discard_nearest_for_xy else None
    return _descend(X, W.shape[0], nearest, v, float(scaling_factor), int(max_iterations), float(lr))


def auto_scale_factor(X: Any, W: Any, v: Any, discard_nearest_for_xy: bool = False) -> float:
    """The reference's scale_factor="auto": ||v|| / ||kl_gradient(X, W, v)||, as a float.

    A zero gradient gives inf (or nan when v = 0 too), as in the reference."""
    X = _matrix("X", X)
    W = _matrix("W", W)
    v = _vector("v", v, X.shape[1])
    g = kl_gradient(X, W, v, discard_nearest_for_xy)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(np.linalg.norm(v)) / np.float64(np.linalg.norm(g)))


def nearest_unused(train: Any, v: Any, used: Any) -> int:
    """Index of the row of `train` nearest to v (Euclidean norm of exact differences, as the
    reference's `jnp.argsort(jnp.linalg.norm(v - adder, axis=1))[0]`) among rows with
    used[i] == False. Ties go to the lowest index. Returns -1 when every row is used."""
    train = _matrix("train", train)
    v = _vector("v", v, train.shape[1])
    used = np.asarray(used, dtype=bool)
    free = np.flatnonzero(~used)
    if free.size == 0:
        return -1
    norms = np.sqrt(_sqdist_to_point(train[free], v))
    return int(free[int(np.argmin(norms))])  # argmin: first of equal minima = lowest index


# --------------------------------------------------------------------------- the loop


@dataclass
class SelectionTrace:
    """Everything `greedy_select` did.

    indices: rows of train accepted, in order (duplicates possible after a reset).
    kl_trace: KL after each accepted row.
    kl_start: KL(X || W0).
    candidate_kl: every candidate's KL, rejected and discarded ones included.
    v_opts: v after each descent. descent_iters: steps of each descent.
    scale_factor: the gradient scale used. v: the final v, as the reference returns it.
    just_reset, num_resets, increases: the reference's counters at the end.
    used: bool array over train, the rows currently out of the pool.
    stop_reason: the stop criterion's name, "max_iter" or "pool_exhausted".
    """

    indices: list[int] = field(default_factory=list)
    kl_trace: list[float] = field(default_factory=list)
    kl_start: float = float("nan")
    candidate_kl: list[float] = field(default_factory=list)
    v_opts: list[np.ndarray] = field(default_factory=list)
    descent_iters: list[int] = field(default_factory=list)
    scale_factor: float = float("nan")
    v: np.ndarray | None = None
    just_reset: bool = False
    num_resets: int = 0
    increases: int = 0
    used: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    stop_reason: str = ""


def _random_row(X: np.ndarray, rng: Any) -> np.ndarray:
    """A random row of X, drawn as `rng.sample(range(n), 1)[0]`: this consumes the stream exactly
    as the reference's `random.sample(X.tolist(), 1)` (both draw one `_randbelow(n)`)."""
    return X[rng.sample(range(X.shape[0]), 1)[0]].copy()


def greedy_select(
    train: Any,
    X: Any,
    W0: Any,
    *,
    k: int = 5,
    max_iter: int = 100,
    stop_criterion: str = "increase",
    min_difference: float = 0.0,
    resets_allowed: bool = False,
    max_resets: int = 2,
    max_data_size: float = 1.0,
    min_kl: float = 0.0,
    max_sequential_increases: int = 3,
    random_restart_prob: float = 0.0,
    scale_factor: Any = "auto",
    v_init: str = "mean",
    grad_desc_iter: int = 50,
    discard_nearest_for_xy: bool = False,
    lr: float = 0.01,
    rng: Any = None,
    fixed: bool = False,
) -> SelectionTrace:
    """The greedy GIO loop of the reference's `GIOKL.fit` (lines 157-239), from the selection W0.

    Each iteration: descend on v (3x `grad_desc_iter` steps when i == 0, right after a reset, or
    when ``rng.random() < random_restart_prob``; the draw happens only when the first two are
    false, as Python's `or` short-circuits); snap v to the nearest row still in the pool and
    remove it from the pool; compute the KL with that row; break if ``total_iter > max_iter``
    (the candidate is discarded); restart v per `v_init` ('mean' -> mean(X), 'jump' -> a random
    X row drawn with ``rng.sample(range(n), 1)``, 'prev_opt' -> keep v); apply the stop test; on
    a stop with `resets_allowed` and fewer than `max_resets` resets refill the pool, step `i`
    back and go on (W and the previous KL kept); otherwise accept the row.

    fixed=False keeps every quirk of the reference: 'max_resets' and
    'sequential_increase_tolerance' stop only when max_resets == 0 / max_sequential_increases
    == 0 at the time of an increase (their counters never move otherwise), 'min_kl' rejects the
    row that reached the target, unknown criteria never stop, and an empty pool raises
    IndexError. An unknown v_init (an UnboundLocalError in the reference) raises ValueError.

    fixed=True changes exactly these:
      1. 'sequential_increase_tolerance' counts consecutive increases (kl > prev); an increase is
         accepted while the count, itself included, is <= max_sequential_increases, and the one
         that exceeds it stops the run (rejected). A non-increase, or a pool reset, sets the
         count back to 0.
      2. 'max_resets': an increase resets the pool while num_resets < max_resets (whatever
         resets_allowed says); once num_resets == max_resets an increase stops (rejected).
      3. 'min_kl': a candidate with kl < min_kl is accepted, then the run stops (no reset).
      4. An unknown stop_criterion or v_init raises ValueError before any work.
      5. An empty pool at the snap stops the run with stop_reason "pool_exhausted".
      6. The restart coin is drawn only when random_restart_prob > 0.
      7. An automatic scale factor that is not finite (the gradient vanishes at the start)
         raises ValueError naming scale_factor, instead of turning v into NaN.
    Everything else (max_iter + 1 rows, the i counter, resets of the other criteria needing
    resets_allowed) is as in the reference.

    `rng` has the `random.Random` interface (default: the global `random` module);
    `scale_factor` is "auto" (||v0|| / ||grad(v0)|| with the initial v and W0) or a number.
    Returns a `SelectionTrace`. The inputs are never modified.
    """
    if v_init not in V_INITS:
        raise ValueError(f"v_init: unknown value {v_init!r}; expected one of {V_INITS}")
    if fixed and stop_criterion not in STOP_CRITERIA:
        raise ValueError(
            f"stop_criterion: unknown criterion {stop_criterion!r}; expected one of {STOP_CRITERIA}"
        )
    if isinstance(scale_factor, str) and scale_factor != "auto":
        raise ValueError(f"scale_factor: expected 'auto' or a number, got {scale_factor!r}")
    if rng is None:
        rng = _random_module
    train = _matrix("train", train)
    X = _matrix("X", X)
    W = _matrix("W0", W0)
    n, d = X.shape
    if train.shape[1] != d or W.shape[1] != d:
        raise ValueError(f"train, W0: must have {d} columns like X, got {train.shape[1]} and {W.shape[1]}")

    # The constant X-by-X part, the clipped X-by-W distances (one column per selected row) and,
    # for the discard variant, each target row's nearest selected row.
    rho = _kth_neighbour_distances(X, k)
    clipped_xw = _clip(squared_distances(X, W))

    def nearest_w_sq() -> np.ndarray | None:
        return clipped_xw.min(axis=1) if discard_nearest_for_xy else None

    def kl_of(clipped: np.ndarray) -> float:
        return _kl_from_parts(clipped, rho, d, k, EPS, discard_nearest_for_xy)

    trace = SelectionTrace(used=np.zeros(train.shape[0], dtype=bool))
    kl_prev = kl_of(clipped_xw)
    trace.kl_start = kl_prev
    mean = X.mean(axis=0)
    v = mean.copy() if v_init in ("mean", "prev_opt") else _random_row(X, rng)
    if isinstance(scale_factor, str):
        nearest = nearest_w_sq()
        g = _gradient(X, v, W.shape[0], nearest)
        with np.errstate(divide="ignore", invalid="ignore"):
            sf = float(np.float64(np.linalg.norm(v)) / np.float64(np.linalg.norm(g)))
    else:
        sf = float(scale_factor)
    if fixed and not np.isfinite(sf):
        raise ValueError("scale_factor: the automatic scale factor is not finite; pass a number")
    trace.scale_factor = sf

    data_size_limit = int(max_data_size * len(train))
    i = 0  # the reference's iteration counter: steps back on a reset, may go negative
    total_iter = 0  # accepted rows so far
    just_reset = False
    num_resets = 0
    increases = 0  # the reference's counter (stops right after a reset)
    consecutive = 0  # fixed semantics: consecutive KL increases
    while True:
        # 1. Descent: warm-up, reset or random restart -> 3x longer. Short-circuit as the reference.
        draw = not fixed or random_restart_prob > 0
        long = i == 0 or just_reset or (draw and rng.random() < random_restart_prob)
        steps = grad_desc_iter * 3 if long else grad_desc_iter
        v = _descend(X, clipped_xw.shape[1], nearest_w_sq(), v, sf, steps, lr)
        trace.v_opts.append(v.copy())
        trace.descent_iters.append(steps)

        # 2. Snap: the row leaves the pool before the stop test.
        idx = nearest_unused(train, v, trace.used)
        if idx < 0:
            if fixed:
                trace.stop_reason = "pool_exhausted"
                break
            raise IndexError(
                "pool exhausted: no unused train row left to snap v to (the reference raises too)"
            )
        trace.used[idx] = True
        column = _clip(_sqdist_to_point(X, train[idx]))
        clipped_tmp = np.concatenate([clipped_xw, column[:, None]], axis=1)
        kl = kl_of(clipped_tmp)
        trace.candidate_kl.append(kl)

        # 3. max_iter: the candidate is discarded, v is not restarted.
        if total_iter > max_iter:
            trace.stop_reason = "max_iter"
            break

        # 4. v restart.
        if v_init == "mean":
            v = mean.copy()
        elif v_init == "jump":
            v = _random_row(X, rng)

        # 5. The stop test (the reference's `_test_stop_criterion`).
        increased = kl - kl_prev > 0
        consecutive = consecutive + 1 if increased else 0
        if stop_criterion == "increase":
            stop = increased
        elif stop_criterion == "max_resets":
            stop = increased if fixed else (increased and num_resets == max_resets)
        elif stop_criterion == "min_difference":
            stop = kl_prev - kl < min_difference
        elif stop_criterion == "sequential_increase_tolerance":
            if fixed:
                stop = increased and consecutive > max_sequential_increases
            else:
                stop = increased and increases == max_sequential_increases
        elif stop_criterion == "min_kl":
            stop = kl < min_kl
        elif stop_criterion == "data_size":
            stop = i > data_size_limit
        else:
            stop = False  # the reference: unknown names never stop

        if fixed and stop and stop_criterion == "min_kl":
            # Fix 3: keep the row that reached the target, then stop.
            clipped_xw = clipped_tmp
            trace.indices.append(idx)
            trace.kl_trace.append(kl)
            just_reset = False
            trace.stop_reason = "min_kl"
            break

        if stop:
            if just_reset:
                increases += 1
            if fixed and stop_criterion == "max_resets":
                may_reset = num_resets < max_resets
            else:
                may_reset = resets_allowed and num_resets < max_resets
            if may_reset:
                num_resets += 1
                if v_init == "prev_opt":
                    v = mean.copy()
                trace.used[:] = False  # the whole train comes back: duplicates become possible
                i -= 1
                stop = False
                if fixed:
                    consecutive = 0
            just_reset = True
        else:
            just_reset = False
            increases = 0
        if stop:
            trace.stop_reason = stop_criterion
            break
        if not just_reset:
            clipped_xw = clipped_tmp
            trace.indices.append(idx)
            trace.kl_trace.append(kl)
            kl_prev = kl
            i += 1
            total_iter += 1

    trace.v = v
    trace.just_reset = just_reset
    trace.num_resets = num_resets
    trace.increases = increases
    return trace


def _uniform_start(np_rng: Any, low: float, high: float, size: int, dim: int, normalize: bool) -> np.ndarray:
    """The reference's `_get_uniform_start`: `np_rng.uniform(low, high, (size, dim))`, each row
    divided by its L2 norm when `normalize` (a zero-norm row is left unchanged)."""
    rows = np.asarray(np_rng.uniform(low=low, high=high, size=(size, dim)), dtype=np.float64)
    if not normalize:
        return rows
    out = []
    for row in rows:
        norm = np.linalg.norm(row)
        out.append(row if norm == 0 else row / norm)
    return np.array(out, dtype=np.float64).reshape(size, dim)


def fit(
    train: Any,
    X: Any,
    D: Any = None,
    k: int = 5,
    max_iter: int = 100,
    stop_criterion: str = "increase",
    min_difference: float = 0,
    resets_allowed: bool = False,
    max_resets: int = 2,
    max_data_size: float = 1,
    min_kl: float = 0,
    max_sequential_increases: int = 3,
    random_init_pct: float = 0,
    random_restart_prob: float = 0,
    scale_factor: Any = "auto",
    v_init: str = "mean",
    grad_desc_iter: int = 50,
    discard_nearest_for_xy: bool = False,
    normalize: bool = True,
    lr: float = 0.01,
    *,
    uniform_low: float = -1,
    uniform_high: float = 1,
    uniform_start_size: int = 20,
    dim: int = 768,
    rng: Any = None,
    np_rng: Any = None,
):
    """The reference's `GIOKL.fit`, with reference semantics (`greedy_select(fixed=False)`).

    Start: D given -> W0 = D (random_init_pct ignored); else random_init_pct > 0 ->
    ``idx = rng.sample(range(M), int(random_init_pct * M))`` and W0 = train[idx] (those rows stay in
    the pool); else ``np_rng.uniform(uniform_low, uniform_high, size=(uniform_start_size, dim))``,
    each row L2-normalised when `normalize`. `rng` defaults to the `random` module and `np_rng` to
    `np.random`, the reference's sources of randomness.

    Returns ``(W, kl_divs, (v, scale_factor, just_reset, num_resets, increases, remaining_pool,
    kl_divs))`` like the reference: W stacks W0 and the accepted rows, kl_divs is a list of floats
    (the same list object twice), remaining_pool holds the train rows still in the pool, in their
    original order.
    """
    if rng is None:
        rng = _random_module
    if np_rng is None:
        np_rng = np.random
    train = _matrix("train", train)
    X = _matrix("X", X)
    if not random_init_pct and D is None:
        W0 = _uniform_start(np_rng, uniform_low, uniform_high, uniform_start_size, dim, normalize)
    elif D is None:
        amount = int(random_init_pct * len(train))
        idx = rng.sample(range(len(train)), amount)
        W0 = train[idx]
    else:
        W0 = np.array(D, dtype=np.float64)
    trace = greedy_select(
        train,
        X,
        W0,
        k=k,
        max_iter=max_iter,
        stop_criterion=stop_criterion,
        min_difference=min_difference,
        resets_allowed=resets_allowed,
        max_resets=max_resets,
        max_data_size=max_data_size,
        min_kl=min_kl,
        max_sequential_increases=max_sequential_increases,
        random_restart_prob=random_restart_prob,
        scale_factor=scale_factor,
        v_init=v_init,
        grad_desc_iter=grad_desc_iter,
        discard_nearest_for_xy=discard_nearest_for_xy,
        lr=lr,
        rng=rng,
        fixed=False,
    )
    W = np.concatenate(
        [W0, train[np.asarray(trace.indices, dtype=np.intp)].reshape(-1, train.shape[1])], axis=0
    )
    kl_divs = [float(x) for x in trace.kl_trace]
    remaining_pool = train[~trace.used]
    state = (
        trace.v,
        trace.scale_factor,
        trace.just_reset,
        trace.num_resets,
        trace.increases,
        remaining_pool,
        kl_divs,
    )
    return W, kl_divs, state


# --------------------------------------------------------------------------- exact greedy


def _kth_smallest_sq(x: np.ndarray, w: np.ndarray, r: int) -> np.ndarray:
    """For each row of x, the r-th smallest clipped squared distance to the rows of w."""
    out = np.empty(x.shape[0], dtype=np.float64)
    for start, stop in _row_chunks(x.shape[0], w.shape[0], x.shape[1]):
        block = _clip(squared_distances(x[start:stop], w))
        out[start:stop] = np.partition(block, r - 1, axis=1)[:, r - 1]
    return out


def knn_kl_divergence(x: Any, y: Any, k: int = 5) -> float:
    """The unaveraged Wang-Kulkarni-Verdu k-NN estimator of KL(x || y)::

        KL_k(x || y) = d/n * sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1))

    nu_k(i) is the distance from x_i to its k-th nearest row of y (m rows), rho_k(i) the distance
    to its k-th nearest other row of x; squared distances are clipped to [1e-10, 1e20] (no eps).
    NaN when y has fewer than k rows. Requires 1 <= k <= n - 1."""
    x = _matrix("x", x)
    y = _matrix("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: has {y.shape[1]} columns but x has {x.shape[1]}")
    rho = _kth_neighbour_distances(x, k)
    n, d = x.shape
    m = y.shape[0]
    if m < k:
        return float("nan")
    nu = np.sqrt(_kth_smallest_sq(x, y, k))
    return d * float(np.mean(np.log(nu) - np.log(rho))) + float(np.log(m / (n - 1)))


@dataclass
class GreedyTrace:
    """Everything `exact_greedy_select` did: `indices` (rows of train, in order), `kl_trace` (the
    estimate after each accepted row), `kl_start`, `candidate_kl` (each step's best candidate, the
    rejected last one included) and `stop_reason`."""

    indices: list[int] = field(default_factory=list)
    kl_trace: list[float] = field(default_factory=list)
    kl_start: float = float("nan")
    candidate_kl: list[float] = field(default_factory=list)
    stop_reason: str = ""


def _greedy_score(X: np.ndarray, W: np.ndarray, r: int) -> float:
    """sum_i log of the r-th smallest clipped squared distance from x_i to W: the part of the
    rank-r estimate KL_r(X || W) that depends on which rows W holds (2/d times it, plus terms
    fixed by X and |W|). Smaller is better."""
    return float(np.sum(np.log(_kth_smallest_sq(X, W, r))))


def _ratio_scores(train: np.ndarray, X: np.ndarray) -> np.ndarray:
    """w·x for every pool row, w = (S_p + lam I)^-1 (mu_X - mu_p), S_p the pool covariance (divisor
    M), lam = tr(S_p)/d (1 when the pool is constant): the closed-form log density ratio of the
    target against the pool, up to a constant (gio_rs.reference_ratio.gaussian_ratio)."""
    mu_p, mu_t = train.mean(axis=0), X.mean(axis=0)
    centred = train - mu_p
    cov = centred.T @ centred / len(train)
    scale = float(np.trace(cov)) / len(cov)
    lam = scale if scale > 0 else 1.0
    w = np.linalg.solve(cov + lam * np.eye(len(cov)), mu_t - mu_p)
    return np.array([float(row @ w) for row in train])


def exact_greedy_select(
    train: Any,
    X: Any,
    D: Any = None,
    k: int = 5,
    max_iter: int = 100,
    stop_criterion: str = "increase",
    min_difference: float = 0.0,
    max_data_size: float = 1.0,
    min_kl: float = 0.0,
    max_sequential_increases: int = 3,
) -> GreedyTrace:
    """Exact greedy selection on the unaveraged estimator, by brute force: at each step, for every
    unused train row c, recompute the estimate on D + selection + [c] from scratch and add the row
    with the lowest one (ties: the lowest index). Saturation: once D + selection holds k rows and
    no candidate lowers the estimate's sum (every candidate ties, for good), the unused row with
    the largest Gaussian closed-form log ratio (``_ratio_scores``) is added instead (ties: the
    lowest index).

    While D + selection + [c] has fewer than k rows the estimate is undefined (NaN); the choice
    then uses rank r = len(D + selection + [c]) instead of k (the distance to the farthest
    selected row). Stop rules, in this order each step: more than `max_iter` rows accepted ->
    "max_iter"; "data_size" and more than int(max_data_size * len(train)) accepted -> stop; no
    unused row -> "pool_exhausted"; then on the best candidate's KL against the previous one
    (the starting KL first; comparisons with NaN are false): "increase" (kl > prev),
    "min_difference" (prev - kl < min_difference) and "sequential_increase_tolerance" (more than
    `max_sequential_increases` consecutive increases) reject the candidate and stop; "min_kl"
    (kl < min_kl) keeps it, then stops."""
    train = _matrix("train", train)
    X = _matrix("X", X)
    dim = X.shape[1]
    W = np.empty((0, dim)) if D is None else _matrix("D", D)
    if stop_criterion not in STOP_CRITERIA or stop_criterion == "max_resets":
        raise ValueError(f"stop_criterion: not usable with exact greedy: {stop_criterion!r}")
    out = GreedyTrace(kl_start=knn_kl_divergence(X, W, k))
    used = np.zeros(train.shape[0], dtype=bool)
    prev = out.kl_start
    increases = 0
    ratio = None
    while True:
        if len(out.indices) > max_iter:
            out.stop_reason = "max_iter"
            break
        if stop_criterion == "data_size" and len(out.indices) > int(max_data_size * train.shape[0]):
            out.stop_reason = "data_size"
            break
        unused = np.flatnonzero(~used)
        if unused.size == 0:
            out.stop_reason = "pool_exhausted"
            break
        rank = min(k, W.shape[0] + 1)
        scores = [_greedy_score(X, np.vstack([W, train[c : c + 1]]), rank) for c in unused]
        best = int(unused[int(np.argmin(scores))])  # argmin: the first of equal minima
        if W.shape[0] >= k and min(scores) == _greedy_score(X, W, k):  # saturated: all tie
            ratio = _ratio_scores(train, X) if ratio is None else ratio
            best = int(unused[np.argsort(-ratio[unused], kind="stable")[0]])
        used[best] = True
        with_best = np.vstack([W, train[best : best + 1]])
        kl = knn_kl_divergence(X, with_best, k)
        out.candidate_kl.append(kl)
        increased = kl > prev
        increases = increases + 1 if increased else 0
        stop = {
            "increase": increased,
            "min_difference": prev - kl < min_difference,
            "sequential_increase_tolerance": increased and increases > max_sequential_increases,
            "min_kl": kl < min_kl,
            "data_size": False,
        }[stop_criterion]
        if not stop or stop_criterion == "min_kl":
            W = with_best
            out.indices.append(best)
            out.kl_trace.append(kl)
            prev = kl
        if stop:
            out.stop_reason = stop_criterion
            break
    return out
