"""Density-ratio selection (``select(method="ratio")``, issue 25): score every pool row by an
estimate of log r(x) = log p_target(x) / p_pool(x) and keep `budget_rows` rows, the largest
(mode "top") or a seeded importance resample without replacement (mode "sample", Gumbel top-k).

GIO minimises KL(target ‖ selection); at a fixed budget the subset of the pool that follows the
target is the pool reweighted by r, so estimating log r solves GIO's objective in one pass.

The pieces are built for any engine (in memory here, a stream of batches, Spark partitions) and
give the same rows in each, because every random choice is a pure function of (seed, global row):

- `PoolSummaryBuilder` reads the pool once (batches with their first global row, or partitions
  merged in order) into a `PoolSummary`: pool moments per CV fold (fold of row r: (r // 256) % 5,
  `_core.FoldedMoments`) and the pool sample (the `SAMPLE_ROWS` rows with the smallest
  u(seed + 2, row), `_core.ratio_uniforms`).
- `fit_ratio` fits a `RatioModel` from the summary and the target (and `init`): plain NumPy
  fields, picklable, broadcastable.
- `ratio_keys` scores any rows of the pool (their first global row given); the B largest keys,
  ties to the lower row (`_core.TopB`), are the selection.

The estimators ("combined", the default, is the mean of the other three's calibrated log r):

- "gaussian": w = (S_p + λI)⁻¹(μ_t − μ_p), s(x) = w·(x − (μ_t + μ_p)/2), λ = tr(S_p)/d.
- "knn": s = ln((c_t + a)/n_t) − ln((c_p + a)/n_p) from the K = 100 nearest rows of
  target ∪ pool sample (self excluded), a = 0.5.
- "logistic": L2 logistic regression target vs pool sample, balanced classes, L2 ∈ {1e-3, 1e-2}
  by CV.

Each is calibrated on out-of-fold scores (target folds `_core.ratio_target_folds`, the pool
side = the pool sample): log r = a·s + b by a class-balanced 1-D logistic fit. The oracle this
is tested against is `gio_rs.reference_ratio` (NumPy, the same draws); docs/ratio.md explains the
choices and the measurements behind them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from . import _core
from ._util.arrays import as_matrix, cast, check_bool, check_int, same_columns, working_dtype
from ._util.errors import GioWarning
from ._util.progress import make_bar

__all__ = [
    "ESTIMATORS",
    "MODES",
    "KnnPart",
    "LinearPart",
    "PoolSummary",
    "PoolSummaryBuilder",
    "RatioModel",
    "RatioSelection",
    "fit_ratio",
    "ratio_keys",
    "select_ratio",
]

ESTIMATORS = ("combined", "gaussian", "knn", "logistic")
MODES = ("top", "sample")
CV_FOLDS = 5  # pool fold of global row r: (r // FOLD_BLOCK_ROWS) % CV_FOLDS (the core's pool_fold)
FOLD_BLOCK_ROWS = 256
GAUSSIAN_ALPHA = 1.0  # λ = GAUSSIAN_ALPHA · tr(S_p) / d
KNN_K = 100
KNN_PRIOR = 0.5
SAMPLE_ROWS = 20_000  # pool rows standing for p_pool in the k-NN, the logistic fit, calibration
LOGISTIC_L2_GRID = (1e-3, 1e-2)
NEWTON_ITERATIONS = 30
NEWTON_TOLERANCE = 1e-8
FLAT_Z = 2.0  # flat ratio: the parts' mean held-out AUC z below this
INIT_FLOOR = 1e-3
SAMPLE_SEED_OFFSET = 2  # the pool sample draws u(seed + 2, row)
_PARTS = {
    "combined": ("gaussian", "knn", "logistic"),
    "gaussian": ("gaussian",),
    "knn": ("knn",),
    "logistic": ("logistic",),
}
FLAT_MESSAGE = (
    "method='ratio': the target is hardly distinguishable from the pool (flat density ratio, "
    "held-out AUC z {z:.2f} < {limit}): mode 'sample' returns a seeded uniform sample of the "
    "pool, mode 'top' keeps its weakly supported ranking"
)


# ------------------------------------------------------------------------------ pool summary


@dataclass(frozen=True, eq=False)
class PoolSummary:
    """Everything the fit needs from the pool, read in one pass (`PoolSummaryBuilder`).

    moments: (count, mean, covariance) of every pool row (float64, divisor count).
    fold_moments: per CV fold f, (count, mean, covariance) of the pool without fold f (None
        when fold f holds every row).
    sample / sample_rows: the pool sample (working dtype) and its global rows, in row order.
    shift, seed: what the builder was made with (the target's mean; the fit's seed).
    """

    moments: tuple
    fold_moments: tuple
    sample: np.ndarray
    sample_rows: np.ndarray
    shift: np.ndarray
    seed: int

    @property
    def rows(self) -> int:
        return int(self.moments[0])

    @property
    def dim(self) -> int:
        return len(self.shift)


class PoolSummaryBuilder:
    """Reads pool rows into a `PoolSummary`: ``add(rows, first_row)`` per batch (consecutive
    global rows from `first_row`), ``merge(later)`` for the builder of the rows right after
    (partitions, in order), ``finish()``. `shift` is the target's mean (`summary_shift`): every
    builder of one selection must use the same shift and seed."""

    def __init__(
        self, shift: Any, *, seed: int = 0, first_row: int = 0, sample_rows: int = SAMPLE_ROWS
    ) -> None:
        self.shift = np.ascontiguousarray(shift, dtype=np.float64)
        self.seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
        self.first_row = check_int("first_row", first_row, minimum=0)
        self.sample_size = check_int("sample_rows", sample_rows, minimum=1)
        self._moments = _core.FoldedMoments(self.shift, CV_FOLDS, self.first_row)
        self._u = np.empty(0)
        self._rows = np.empty(0, dtype=np.int64)
        self._sample: Optional[np.ndarray] = None

    @property
    def next_row(self) -> int:
        """The global row the next `add` must start at."""
        return int(self._moments.next_row)

    def add(self, rows: np.ndarray, first_row: Optional[int] = None) -> None:
        """Adds the pool rows `first_row..` (default: right after the last ones added)."""
        start = self.next_row if first_row is None else int(first_row)
        if start != self.next_row:
            raise _core.GioError(f"first_row: expected {self.next_row} (the next row), got {start}")
        rows = np.asarray(rows)
        rows = cast(rows, rows.dtype if rows.dtype in (np.float32, np.float64) else np.float64)
        if len(rows) == 0:
            return
        self._moments.add(rows)
        u = _core.ratio_uniforms(self.seed + SAMPLE_SEED_OFFSET, start, len(rows))
        bound = np.inf if len(self._u) < self.sample_size else self._u.max()
        if len(u) > self.sample_size:  # no more than the batch's own bottom-S can enter
            bound = min(bound, np.partition(u, self.sample_size - 1)[self.sample_size - 1])
        keep = np.flatnonzero(u <= bound)
        u, rows, ids = u[keep], rows[keep], start + keep
        self._offer(u, ids.astype(np.int64), rows)

    def merge(self, later: PoolSummaryBuilder) -> None:
        """Folds in the builder of the rows right after this one's."""
        if later.seed != self.seed or not np.array_equal(later.shift, self.shift):
            raise _core.GioError("other: must be built with the same shift and seed")
        self._moments.merge(later._moments)
        if later._sample is not None:
            self._offer(later._u, later._rows, later._sample)

    def _offer(self, u: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> None:
        """Keeps the `sample_size` smallest (u, row) among the kept and the offered rows."""
        if self._sample is not None:
            u = np.concatenate([self._u, u])
            ids = np.concatenate([self._rows, ids])
            rows = np.concatenate([self._sample, rows.astype(self._sample.dtype, copy=False)])
        order = np.lexsort((ids, u))[: self.sample_size]
        self._u, self._rows, self._sample = u[order], ids[order], np.array(rows[order])

    def finish(self) -> PoolSummary:
        if self._sample is None:
            raise _core.GioError("train: the pool has no rows")
        total = self._moments.finish()
        counts = _fold_counts(self.first_row, self.next_row)
        folds = tuple(self._moments.finish(f) if 0 < counts[f] < total[0] else None for f in range(CV_FOLDS))
        order = np.argsort(self._rows, kind="stable")
        return PoolSummary(
            moments=total,
            fold_moments=folds,
            sample=np.ascontiguousarray(self._sample[order]),
            sample_rows=self._rows[order],
            shift=self.shift,
            seed=self.seed,
        )


def summary_shift(target: np.ndarray) -> np.ndarray:
    """The shift every `PoolSummaryBuilder` of a selection uses: the target's float64 mean."""
    return np.mean(np.asarray(target), axis=0, dtype=np.float64)


def pool_folds(rows: np.ndarray) -> np.ndarray:
    """The CV fold of global pool rows: (row // 256) % 5 (the core's pool_fold)."""
    return (np.asarray(rows, dtype=np.int64) // FOLD_BLOCK_ROWS) % CV_FOLDS


def _fold_counts(first: int, end: int) -> list[int]:
    """Rows of [first, end) in each pool fold, without listing them."""
    cycle = CV_FOLDS * FOLD_BLOCK_ROWS

    def below(x: int, f: int) -> int:  # rows of [0, x) in fold f
        return (x // cycle) * FOLD_BLOCK_ROWS + min(max(x % cycle - f * FOLD_BLOCK_ROWS, 0), FOLD_BLOCK_ROWS)

    return [below(end, f) - below(first, f) for f in range(CV_FOLDS)]


# ------------------------------------------------------------------------------ the parts


@dataclass(frozen=True, eq=False)
class LinearPart:
    """A part scored by s(x) = w·x + bias ("gaussian", "logistic"); log r = scale·s + offset.
    gain: log 2 − the calibration's CV log-loss; auc_z: held-out AUC z (flat-ratio test)."""

    name: str
    w: np.ndarray
    bias: float
    scale: float
    offset: float
    gain: float
    auc_z: float
    params: dict = field(default_factory=dict)

    def raw(self, rows: np.ndarray, first_row: int) -> np.ndarray:
        return _core.ratio_scores(rows, self.w, self.bias)


@dataclass(frozen=True, eq=False)
class KnnPart:
    """The k-NN part: s from the target count among a row's k nearest rows of target ∪ sample
    (a sampled pool row does not count itself)."""

    name: str
    target: np.ndarray
    sample: np.ndarray
    sample_rows: np.ndarray
    k: int
    prior: float
    scale: float
    offset: float
    gain: float
    auc_z: float
    params: dict = field(default_factory=dict)

    def raw(self, rows: np.ndarray, first_row: int) -> np.ndarray:
        ids = first_row + np.arange(len(rows), dtype=np.int64)
        pos = np.searchsorted(self.sample_rows, ids)
        inside = pos < len(self.sample_rows)
        inside[inside] = self.sample_rows[pos[inside]] == ids[inside]
        own = np.where(inside, len(self.target) + pos, -1).astype(np.int64)
        counts = _core.ratio_knn_counts(rows, self.target, self.sample, self.k, own)
        return knn_score(counts, self.k, len(self.target), len(self.sample), self.prior)


def knn_score(counts: np.ndarray, k: int, n_target: int, n_sample: int, prior: float) -> np.ndarray:
    c = counts.astype(np.float64)
    return np.log((c + prior) / n_target) - np.log((k - c + prior) / n_sample)


Part = Union[LinearPart, KnnPart]


def auc_z(target_scores: np.ndarray, pool_scores: np.ndarray) -> float:
    """(AUC − ½) / its null standard deviation: how far held-out target scores sit above the
    pool's (Mann-Whitney, ties half)."""
    n_t, n_p = len(target_scores), len(pool_scores)
    both = np.concatenate([target_scores, pool_scores])
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    # average rank (1-based) of each distinct value, ties sharing their mean rank
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    auc = (ranks[:n_t].sum() - n_t * (n_t + 1) / 2) / (n_t * n_p)
    return float((auc - 0.5) / np.sqrt((n_t + n_p + 1) / (12.0 * n_t * n_p)))


def _calibration(target_scores: np.ndarray, pool_scores: np.ndarray) -> dict:
    t = np.ascontiguousarray(target_scores, dtype=np.float64)
    p = np.ascontiguousarray(pool_scores, dtype=np.float64)
    scale, offset, gain = _core.ratio_calibrate(t, p)
    return {"scale": scale, "offset": offset, "gain": gain, "auc_z": auc_z(t, p)}


def _direction(moments: tuple, target_mean: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """The Gaussian closed form w = (S_p + λI)⁻¹(μ_t − μ_p), λ = α·tr(S_p)/d, bias = −w·(μ_t+μ_p)/2."""
    _, mean, cov = moments
    d = len(mean)
    scale = float(np.trace(cov)) / d
    lam = alpha * (scale if scale > 0 else 1.0)
    factor = np.linalg.cholesky(cov + lam * np.eye(d))
    w = np.linalg.solve(factor.T, np.linalg.solve(factor, target_mean - mean))
    return w, float(-w @ ((target_mean + mean) / 2))


def _fit_gaussian(summary: PoolSummary, target: np.ndarray, t_folds: np.ndarray) -> LinearPart:
    """Direction from all rows; calibration on out-of-fold scores: fold f's target rows and the
    pool sample's rows of pool fold f scored by the direction fitted without them."""
    n_folds = int(t_folds.max()) + 1
    s_folds = pool_folds(summary.sample_rows)
    t_scores = np.empty(len(target))
    p_scores = np.full(len(summary.sample), np.nan)
    for f in range(n_folds):
        moments = summary.fold_moments[f] or summary.moments
        mu_t = np.mean(target[t_folds != f], axis=0, dtype=np.float64)
        w, bias = _direction(moments, mu_t, GAUSSIAN_ALPHA)
        held = t_folds == f
        t_scores[held] = _core.ratio_scores(target[held], w, bias)
        held = s_folds == f
        if held.any():
            p_scores[held] = _core.ratio_scores(np.ascontiguousarray(summary.sample[held]), w, bias)
    w, bias = _direction(summary.moments, np.mean(target, axis=0, dtype=np.float64), GAUSSIAN_ALPHA)
    if np.isnan(p_scores).all():  # no sampled row in a held-out fold (tiny target, odd pool)
        p_scores = _core.ratio_scores(summary.sample, w, bias)
    cal = _calibration(t_scores, p_scores[~np.isnan(p_scores)])
    return LinearPart("gaussian", w, bias, params={"alpha": GAUSSIAN_ALPHA}, **cal)


def _fit_knn(summary: PoolSummary, target: np.ndarray) -> KnnPart:
    """Calibrated on the leave-self-out scores of the target rows and of the pool sample."""
    sample, n_t, n_s = summary.sample, len(target), len(summary.sample)
    k = min(KNN_K, n_t + n_s - 1)
    c_target = _core.ratio_knn_counts(target, target, sample, k, np.arange(n_t, dtype=np.int64))
    c_sample = _core.ratio_knn_counts(sample, target, sample, k, n_t + np.arange(n_s, dtype=np.int64))
    cal = _calibration(
        knn_score(c_target, k, n_t, n_s, KNN_PRIOR), knn_score(c_sample, k, n_t, n_s, KNN_PRIOR)
    )
    params = {"k": k, "sample_rows": n_s}
    return KnnPart("knn", target, sample, summary.sample_rows, k, KNN_PRIOR, params=params, **cal)


def _logistic(positives: np.ndarray, negatives: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    weights = np.concatenate(
        [np.full(len(positives), 0.5 / len(positives)), np.full(len(negatives), 0.5 / len(negatives))]
    )
    w, bias, _, _, _ = _core.ratio_fit_logistic(
        positives,
        negatives,
        l2=l2,
        sample_weight=weights,
        max_iter=NEWTON_ITERATIONS,
        tolerance=NEWTON_TOLERANCE,
    )
    return w, bias


def _fit_logistic(summary: PoolSummary, target: np.ndarray, t_folds: np.ndarray) -> LinearPart:
    """Target vs the pool sample; L2 from the grid by the CV gain (ties to the larger); sample
    row i (in row order) is in fold i mod F."""
    sample = summary.sample
    n_folds = int(t_folds.max()) + 1
    s_folds = np.arange(len(sample)) % n_folds
    cals = {}
    for l2 in LOGISTIC_L2_GRID:
        t_scores, p_scores = np.empty(len(target)), np.empty(len(sample))
        for f in range(n_folds):
            negatives = sample[s_folds != f]
            if len(negatives) == 0:  # a pool sample of one row: its fold keeps it
                negatives = sample
            w, bias = _logistic(target[t_folds != f], negatives, l2)
            t_scores[t_folds == f] = _core.ratio_scores(target[t_folds == f], w, bias)
            held = np.ascontiguousarray(sample[s_folds == f])
            if len(held):
                p_scores[s_folds == f] = _core.ratio_scores(held, w, bias)
        cals[l2] = _calibration(t_scores, p_scores)
    best = max(LOGISTIC_L2_GRID, key=lambda l2: (round(cals[l2]["gain"], 12), l2))
    w, bias = _logistic(target, sample, best)
    return LinearPart("logistic", w, bias, params={"l2": best}, **cals[best])


def _fit_parts(summary: PoolSummary, target: np.ndarray, estimator: str, seed: int) -> tuple:
    n_folds = min(CV_FOLDS, len(target))
    t_folds = _core.ratio_target_folds(len(target), n_folds, seed)
    make = {
        "gaussian": lambda: _fit_gaussian(summary, target, t_folds),
        "knn": lambda: _fit_knn(summary, target),
        "logistic": lambda: _fit_logistic(summary, target, t_folds),
    }
    return tuple(make[name]() for name in _PARTS[estimator])


# ------------------------------------------------------------------------------ the model


@dataclass(frozen=True, eq=False)
class RatioModel:
    """A fitted log r (plain NumPy fields: picklable, can be broadcast to Spark executors).

    estimator: "combined", "gaussian", "knn" or "logistic"; parts: name → `LinearPart` or
    `KnnPart` (each with its calibration scale, offset, gain and auc_z); init_parts: the same
    estimator fitted with init as the target (None without init); held / budget: init's rows and
    the budget (init's residual rule); flat: the ratio is not distinguishable from flat
    (`FLAT_Z`); auc_z: the parts' mean held-out AUC z; dtype: the rows' working dtype.
    """

    estimator: str
    parts: dict
    init_parts: Optional[dict]
    held: int
    budget: int
    flat: bool
    auc_z: float
    dtype: str

    @property
    def dim(self) -> int:
        part = next(iter(self.parts.values()))
        return len(part.w) if isinstance(part, LinearPart) else part.target.shape[1]

    def _calibrated(self, parts: dict, rows: np.ndarray, first_row: int) -> list:
        return [p.scale * p.raw(rows, first_row) + p.offset for p in parts.values()]

    def log_ratio(self, rows: Any, first_row: int) -> np.ndarray:
        """The calibrated log r (float64) of pool rows `first_row..`: the mean over the parts;
        with init, the residual ((m + B) r_t − m r_init)/B floored at INIT_FLOOR·(m + B) r_t/B."""
        rows = cast(np.asarray(rows), np.dtype(self.dtype))
        log_r = np.mean(self._calibrated(self.parts, rows, first_row), axis=0)
        if self.init_parts is None:
            return log_r
        log_init = np.mean(self._calibrated(self.init_parts, rows, first_row), axis=0)
        return residual_log_ratio(log_r, log_init, self.held, self.budget)

    def ranking_score(self, rows: Any, first_row: int) -> np.ndarray:
        """What mode "top" ranks by: one part's raw score (its calibration is increasing when
        the ratio is not flat), else the mean calibrated log r (with init: the residual)."""
        if len(self.parts) == 1 and self.init_parts is None:
            rows = cast(np.asarray(rows), np.dtype(self.dtype))
            (part,) = self.parts.values()
            return part.raw(rows, first_row)
        return self.log_ratio(rows, first_row)


def residual_log_ratio(log_r: np.ndarray, log_init: np.ndarray, held: int, budget: int) -> np.ndarray:
    """log of ((m + B) r_t − m r_init) / B, floored at INIT_FLOOR · (m + B) r_t / B (in log space:
    log r_t + log(max((m + B) − m e^(log r_init − log r_t), INIT_FLOOR (m + B)) / B))."""
    m, b = float(held), float(budget)
    with np.errstate(over="ignore"):
        bracket = (m + b) - m * np.exp(log_init - log_r)
    return log_r + np.log(np.maximum(bracket, INIT_FLOOR * (m + b)) / b)


def fit_ratio(
    summary: PoolSummary,
    target: Any,
    *,
    estimator: str = "combined",
    seed: int = 0,
    init: Any = None,
    budget_rows: Optional[int] = None,
) -> RatioModel:
    """Fits the estimator from a `PoolSummary` and the target (with `init`, also the estimator
    with init as the target, for the residual rule; `budget_rows` is then required). Warns
    (`GioWarning`) when the ratio is flat."""
    estimator = _choice("ratio_estimator", estimator, ESTIMATORS)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    dtype = summary.sample.dtype
    target = cast(as_matrix("target", target, min_rows=2), dtype)
    same_columns("target", target, "train", summary.dim)
    _check_magnitude(summary, target)
    parts = _fit_parts(summary, target, estimator, seed)
    init_parts, held, budget = None, 0, 0
    if init is not None:
        init_arr = cast(as_matrix("init", init, min_rows=2), dtype)
        same_columns("init", init_arr, "target", summary.dim)
        if budget_rows is None:
            raise _core.GioError("budget_rows: required with init (init's rows count against it)")
        budget = check_int("budget_rows", budget_rows, minimum=1)
        init_parts = {p.name: p for p in _fit_parts(summary, init_arr, estimator, seed)}
        held = len(init_arr)
    z = float(np.mean([p.auc_z for p in parts]))
    flat = z < FLAT_Z or float(np.mean([p.scale for p in parts])) <= 0.0
    if flat:
        warnings.warn(FLAT_MESSAGE.format(z=z, limit=FLAT_Z), GioWarning, stacklevel=2)
    return RatioModel(estimator, {p.name: p for p in parts}, init_parts, held, budget, flat, z, dtype.name)


def _check_magnitude(summary: PoolSummary, target: np.ndarray) -> None:
    """Squares of the values must fit float64 (covariances, distances)."""
    if not np.all(np.isfinite(summary.moments[2])):
        raise _core.GioError("train: values so large that the pool covariance overflows float64")
    with np.errstate(over="ignore"):
        squares = np.einsum("ij,ij->i", target, target, dtype=np.float64)
    if not np.all(np.isfinite(squares)):
        raise _core.GioError("target: values so large that squared distances overflow float64")


def ratio_keys(model: RatioModel, rows: Any, first_row: int, mode: str, seed: int) -> np.ndarray:
    """The selection keys of pool rows `first_row..` (float64): mode "top", the ranking score;
    mode "sample", log r + Gumbel(seed, row) (log r = 0 when the ratio is flat: a seeded uniform
    sample). The B largest keys, ties to the lower row, are the selection."""
    mode = _choice("ratio_mode", mode, MODES)
    if mode == "top":
        return model.ranking_score(rows, first_row)
    log_r = np.zeros(len(rows)) if model.flat else model.log_ratio(rows, first_row)
    return _core.ratio_gumbel_keys(np.ascontiguousarray(log_r), seed, first_row)


def _choice(name: str, value: Any, allowed: tuple) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _core.GioError(f"{name}: must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


# ------------------------------------------------------------------------------ in memory


@dataclass(frozen=True, eq=False)
class RatioSelection:
    """What `select_ratio` returns: the rows in rank order, their keys, and the model."""

    indices: np.ndarray
    scores: np.ndarray
    model: RatioModel


def select_ratio(
    train: Any,
    target: Any,
    budget_rows: int,
    *,
    estimator: str = "combined",
    mode: str = "top",
    seed: int = 0,
    init: Any = None,
    progress: bool = False,
) -> RatioSelection:
    """Density-ratio selection of `budget_rows` rows of `train` in memory (see the module docs
    and `gio_rs.select`). A budget above the pool's rows warns (`GioWarning`) and returns every
    row, in the mode's order."""
    train_arr = as_matrix("train", train)
    target_arr = as_matrix("target", target, min_rows=2)
    same_columns("target", target_arr, "train", train_arr.shape[1])
    init_arr = None if init is None else as_matrix("init", init, min_rows=2)
    if init_arr is not None:
        same_columns("init", init_arr, "target", target_arr.shape[1])
    budget = check_int("budget_rows", budget_rows, minimum=1)
    estimator = _choice("ratio_estimator", estimator, ESTIMATORS)
    mode = _choice("ratio_mode", mode, MODES)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    bar = make_bar(3, unit="step", desc="gio_rs ratio") if check_bool("progress", progress) else None
    if budget > len(train_arr):
        warnings.warn(
            f"budget_rows: {budget} is more than the pool's {len(train_arr)} rows; "
            "every row is selected, in the mode's order",
            GioWarning,
            stacklevel=2,
        )
        budget = len(train_arr)
    dtype = working_dtype(train_arr, target_arr, init_arr)
    train_arr = cast(train_arr, dtype)
    builder = PoolSummaryBuilder(summary_shift(target_arr), seed=seed)
    builder.add(train_arr, 0)
    _step(bar)
    model = fit_ratio(
        builder.finish(), target_arr, estimator=estimator, seed=seed, init=init_arr, budget_rows=budget
    )
    _step(bar)
    top = _core.TopB(budget)
    top.push(np.ascontiguousarray(ratio_keys(model, train_arr, 0, mode, seed)), 0)
    rows, keys = top.finish()
    _step(bar, close=True)
    return RatioSelection(rows, keys, model)


def _step(bar: Any, close: bool = False) -> None:
    if bar is not None:
        bar.update(1)
        if close:
            bar.close()
