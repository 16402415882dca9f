"""Exact NumPy reference for ``select(..., method="ratio")``: density-ratio selection (issue 25).

GIO minimises KL(p_target || p_selection). At a fixed budget B the subset of the pool whose density
follows the target is the pool reweighted by r(x) = p_target(x) / p_pool(x). This module estimates
log r for every pool row and selects B rows from it, either the B largest ("top") or a seeded
importance resample without replacement ("sample", Gumbel top-k on a calibrated log r).

This file is the oracle the Rust port is tested against: plain NumPy, float64 throughout, every
constant named at the top, every formula in a docstring. It is not tuned for speed.

Notation: P (M, d) pool rows, T (n, d) target rows, all converted to float64.
  mu_p, mu_t          column means of P and T
  S_p                 pool covariance, (P - mu_p)^T (P - mu_p) / M   (divisor M, not M - 1)
  scale               tr(S_p) / d, the mean per-column pool variance

Estimators of log r (each returns a RatioScores: a raw score per pool row, larger = more
target-like, and its calibrated log r):

  gaussian   w = (S_p + lam I)^-1 (mu_t - mu_p);  s(x) = w . (x - (mu_t + mu_p) / 2)
             the closed form of log r for two Gaussians sharing the covariance S_p + lam I.
             lam = alpha * scale, alpha = GAUSSIAN_ALPHA = 1 (or chosen from ALPHA_GRID by
             ``choose_alpha``, CV_FOLDS-fold CV, when alpha=None).
  knn        reference set R = T, then ``pool_sample`` (all pool rows, or SAMPLE_ROWS of them).
             For each pool row x: its K = KNN_K nearest rows of R by squared Euclidean distance
             (|x|^2 + |y|^2 - 2 x.y), x itself excluded by position, ties to the lower index of R.
             c_t = target rows among them, c_p = K - c_t; n_t = n, n_p = pool rows in R.
             s(x) = log((c_t + a) / n_t) - log((c_p + a) / n_p),  a = KNN_PRIOR.
  logistic   L2-regularised logistic regression, target (1) vs ``pool_sample`` (0), each class half
             the total weight, on [x, 1] (intercept unpenalised), Newton's method (``fit_logistic``);
             s(x) = the fitted log-odds. L2 from LOGISTIC_L2_GRID by the same CV.
  combined   (the default) the mean of the three calibrated log r's (``combine``).

Calibration: a score s is an uncalibrated log r. Out-of-fold scores of held-out target and pool
rows are fitted by a class-balanced 1-D logistic regression P(target | s) = sigmoid(a s + b); the
calibrated log r(x) = a s(x) + b, because with balanced classes the posterior odds equal the
density ratio p_t / p_pool. The fit's gain in log-loss over the constant model (log 2) chooses lam
and L2 and detects a flat ratio (``is_flat``). Mode "top" ranks by the raw score (one estimator)
or the mean calibrated log r (combined); mode "sample" always uses calibrated log r's: the raw
Gaussian score is overconfident (fitted a = 0.2-0.8 at small lam on the text benches), and Gumbel
top-k on it would be close to the plain top-B.

Rows already held (``residual_log_ratio``), the flat ratio (``is_flat``), degenerate inputs and the
whole method (``select_ratio``) are at the end. Measurements behind every constant:
benches/ratio_screen.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

GAUSSIAN_ALPHA = 1.0  # the default ridge: lam = tr(S_p) / d (None: chosen by ``choose_alpha``)
ALPHA_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)  # lam = alpha * tr(S_p) / d
CV_FOLDS = 5
KNN_K = 100  # measured: 10 < 20 < 50 < 100 on every text collection
KNN_PRIOR = 0.5  # a: added to both counts (Jeffreys-like), keeps log r finite
SAMPLE_ROWS = 20_000  # pool rows in the k-NN reference set when the pool is larger
LOGISTIC_L2_GRID = (1e-3, 1e-2)  # penalty on ||beta||^2 / 2 per unit of total weight
NEWTON_ITERATIONS = 30
NEWTON_TOLERANCE = 1e-8
FLAT_Z = 2.0  # flat ratio: the parts' mean held-out AUC z below this (``auc_z``, ``is_flat``)


# ---------------------------------------------------------------------------------------------
# Moments and the Gaussian closed form


@dataclass
class Moments:
    """Column means and the covariance with divisor ``rows``; float64."""

    rows: int
    mean: np.ndarray
    cov: np.ndarray

    @staticmethod
    def of(x: np.ndarray) -> Moments:
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        centred = x - mean
        return Moments(len(x), mean, centred.T @ centred / len(x))


def gaussian_direction(pool: Moments, target_mean: np.ndarray, lam: float) -> np.ndarray:
    """w = (S_p + lam I)^-1 (mu_t - mu_p), solved by Cholesky. lam > 0 makes S_p + lam I positive
    definite even when S_p is singular (fewer rows than columns, constant columns)."""
    d = len(target_mean)
    factor = np.linalg.cholesky(pool.cov + lam * np.eye(d))
    y = np.linalg.solve(factor, target_mean - pool.mean)
    return np.linalg.solve(factor.T, y)


def gaussian_scores(
    x: np.ndarray, w: np.ndarray, pool_mean: np.ndarray, target_mean: np.ndarray
) -> np.ndarray:
    """s(x) = w . (x - (mu_t + mu_p) / 2): log r for Gaussians with the shared covariance."""
    return np.asarray(x, dtype=np.float64) @ w - w @ ((target_mean + pool_mean) / 2)


def covariance_scale(cov: np.ndarray) -> float:
    """tr(S) / d; 1.0 when the pool is constant (every column), so that lam stays positive."""
    scale = float(np.trace(cov)) / len(cov)
    return scale if scale > 0 else 1.0


# ---------------------------------------------------------------------------------------------
# 1-D logistic calibration and the cross-validated log-loss


def fit_logistic(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float, fit_intercept: bool = True
) -> np.ndarray:
    """Minimises  sum_i w_i [log(1 + e^{z_i}) - y_i z_i] / sum_i w_i  +  l2/2 ||beta||^2,
    z = x beta + b0 (b0 unpenalised), by Newton's method with step halving: at most
    NEWTON_ITERATIONS steps, stopping when the decrease is below NEWTON_TOLERANCE. Returns
    [beta, b0] (b0 = 0 when not fitted). Starts from zero."""
    x = np.asarray(x, dtype=np.float64)
    design = np.hstack([x, np.ones((len(x), 1))]) if fit_intercept else x
    k = design.shape[1]
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    penalty = np.full(k, l2)
    if fit_intercept:
        penalty[-1] = 0.0

    def loss(theta: np.ndarray) -> float:
        z = design @ theta
        return float(weights @ (np.logaddexp(0.0, z) - y * z) + 0.5 * penalty @ theta**2)

    theta = np.zeros(k)
    current = loss(theta)
    for _ in range(NEWTON_ITERATIONS):
        z = design @ theta
        with np.errstate(over="ignore"):  # exp(-z) = inf where z << 0: p = 0 there, as it should be
            p = 1.0 / (1.0 + np.exp(-z))
        gradient = design.T @ (weights * (p - y)) + penalty * theta
        hessian = (design * (weights * p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        # separable 1-D data with no penalty; scaled so that huge values do not round it indefinite
        hessian += 1e-12 * max(1.0, float(np.max(np.diag(hessian)))) * np.eye(k)
        step = np.linalg.solve(hessian, gradient)
        t = 1.0
        while t > 1e-8:
            trial = theta - t * step
            value = loss(trial)
            if value <= current:
                break
            t /= 2
        else:
            break
        decrease = current - value
        theta, current = trial, value
        if decrease < NEWTON_TOLERANCE:
            break
    if not fit_intercept:
        theta = np.append(theta, 0.0)
    return theta


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Each class gets half the total weight: 1/(2 n_1) per positive, 1/(2 n_0) per negative."""
    positives = labels.sum()
    return np.where(labels == 1, 0.5 / positives, 0.5 / (len(labels) - positives))


@dataclass
class Calibration:
    """log r_calibrated = scale * s + offset; gain = log 2 - balanced CV log-loss (nats per row,
    0 for a score that carries nothing)."""

    scale: float
    offset: float
    gain: float
    auc_z: float = 0.0  # Mann-Whitney z of held-out target scores above pool scores (``auc_z``)


def calibrate(target_scores: np.ndarray, pool_scores: np.ndarray) -> Calibration:
    """The class-balanced 1-D logistic fit of out-of-fold scores (target = 1, pool = 0), no penalty.
    With balanced weights the fitted log-odds a s + b estimates log p_t(x)/p_pool(x)."""
    s = np.concatenate([target_scores, pool_scores])[:, None]
    y = np.concatenate([np.ones(len(target_scores)), np.zeros(len(pool_scores))])
    w = balanced_weights(y)
    a, b = fit_logistic(s, y, w, 0.0)
    z = a * s[:, 0] + b
    loss = float(w @ (np.logaddexp(0.0, z) - y * z))
    return Calibration(float(a), float(b), float(np.log(2.0) - loss), auc_z(target_scores, pool_scores))


def auc_z(target_scores: np.ndarray, pool_scores: np.ndarray) -> float:
    """How far the held-out target scores sit above the pool's, in standard errors of a flat ratio:
    AUC = P(target score > pool score), ties counted half (Mann-Whitney U / (n_t n_p), from the
    average ranks of the pooled scores); z = (AUC - 1/2) / sqrt((n_t + n_p + 1) / (12 n_t n_p)),
    its null standard deviation without tie correction."""
    n_t, n_p = len(target_scores), len(pool_scores)
    ranks = normalised_ranks(np.concatenate([target_scores, pool_scores])) * (n_t + n_p - 1) + 1
    auc = (ranks[:n_t].sum() - n_t * (n_t + 1) / 2) / (n_t * n_p)
    return float((auc - 0.5) / np.sqrt((n_t + n_p + 1) / (12.0 * n_t * n_p)))


# Engine-independent draws: every random choice is a pure function of (seed, global pool row), the
# same formulas as the Rust core (src/rng.rs, src/ratio/score.rs, src/ratio/folds.rs), so that a
# stream of batches, Spark partitions and an in-memory run select the same rows.

GOLDEN_GAMMA = 0x9E3779B97F4A7C15
FOLD_BLOCK_ROWS = 256  # pool fold of global row r: (r // FOLD_BLOCK_ROWS) % CV_FOLDS
_MASK = (1 << 64) - 1


def _mix(z):
    """SplitMix64's finaliser on uint64 values (NumPy arrays wrap modulo 2^64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, rows: np.ndarray) -> np.ndarray:
    """U in (0, 1) of global rows: the (row + 1)-th output of SplitMix64(seed), i.e. the finaliser
    of seed + (row + 1)·γ mod 2^64, its top 53 bits as (h + 1/2) / 2^53 (core: score::uniform_at)."""
    rows = np.asarray(rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed & _MASK) + (rows + np.uint64(1)) * np.uint64(GOLDEN_GAMMA)
        h = _mix(z) >> np.uint64(11)
    return (h.astype(np.float64) + 0.5) / float(1 << 53)


def gumbel(seed: int, rows: np.ndarray) -> np.ndarray:
    """Gumbel(0, 1) noise of global rows: -log(-log U) with U = ``uniforms(seed, rows)``."""
    return -np.log(-np.log(uniforms(seed, rows)))


def _splitmix(seed: int):
    """SplitMix64(seed)'s outputs as Python ints (core: rng::SplitMix64::next_u64)."""
    state = seed & _MASK
    while True:
        state = (state + GOLDEN_GAMMA) & _MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        yield z ^ (z >> 31)


def target_folds(n: int, n_folds: int, seed: int) -> np.ndarray:
    """Fold of each target row (core: folds::target_folds): a Fisher-Yates permutation from the last
    position down, j = below(i + 1) by Lemire's method with rejection on SplitMix64(seed), then
    position p of the permutation gets fold p mod n_folds."""
    order = list(range(n))
    draws = _splitmix(seed)
    for i in range(n - 1, 0, -1):
        bound = i + 1
        while True:
            product = next(draws) * bound
            if (product & _MASK) >= ((-bound) & _MASK) % bound:
                break
        j = product >> 64
        order[i], order[j] = order[j], order[i]
    ids = np.empty(n, dtype=np.int64)
    ids[order] = np.arange(n) % n_folds
    return ids


def pool_folds(rows: np.ndarray) -> np.ndarray:
    """Fold of global pool rows: (row // 256) % CV_FOLDS (core: folds::pool_fold)."""
    return (np.asarray(rows, dtype=np.int64) // FOLD_BLOCK_ROWS) % CV_FOLDS


# ---------------------------------------------------------------------------------------------
# The Gaussian estimator with the cross-validated ridge


@dataclass
class RatioScores:
    """Per pool row: the raw score and the calibrated log r; the calibration; notes for the user."""

    score: np.ndarray
    log_ratio: np.ndarray
    calibration: Calibration
    params: dict = field(default_factory=dict)


def gaussian_oof_scores(pool: np.ndarray, target: np.ndarray, alphas, seed: int, sample: np.ndarray):
    """Out-of-fold Gaussian scores for each alpha. F = min(CV_FOLDS, n) target folds
    (``target_folds(n, F, seed)``); pool rows by ``pool_folds``. Fold f's target rows and the pool
    sample's rows (global rows `sample`) in pool fold f are scored by w fitted without them: target
    rows outside fold f, pool rows outside pool fold f (all pool rows when fold f is empty or holds
    every row); lam = alpha * tr(S_p,train)/d. Sampled rows in pool folds >= F are not held out
    and not used (when that leaves none, every sampled row is scored by the direction of all rows).
    Returns {alpha: (target_scores, sample_scores)}."""
    n_folds = min(CV_FOLDS, len(target))
    t_fold, p_fold = target_folds(len(target), n_folds, seed), pool_folds(np.arange(len(pool)))
    s_fold = p_fold[sample]
    out = {a: (np.empty(len(target)), np.full(len(sample), np.nan)) for a in alphas}
    for f in range(n_folds):
        outside = p_fold != f
        p_train = pool[outside] if 0 < outside.sum() < len(pool) else pool
        moments = Moments.of(p_train)
        mu_t = target[t_fold != f].mean(axis=0)
        scale = covariance_scale(moments.cov)
        for a in alphas:
            w = gaussian_direction(moments, mu_t, a * scale)
            out[a][0][t_fold == f] = gaussian_scores(target[t_fold == f], w, moments.mean, mu_t)
            out[a][1][s_fold == f] = gaussian_scores(pool[sample[s_fold == f]], w, moments.mean, mu_t)
    result = {}
    for a in alphas:
        t_scores, p_scores = out[a]
        if np.isnan(p_scores).all():
            moments = Moments.of(pool)
            mu_t = target.mean(axis=0)
            w = gaussian_direction(moments, mu_t, a * covariance_scale(moments.cov))
            p_scores = gaussian_scores(pool[sample], w, moments.mean, mu_t)
        result[a] = (t_scores, p_scores[~np.isnan(p_scores)])
    return result


def choose_alpha(pool: np.ndarray, target: np.ndarray, seed: int, alphas=ALPHA_GRID, sample=None):
    """The ridge rule: alpha in ``alphas`` with the largest cross-validated calibration gain
    (balanced log-loss of out-of-fold scores, ``calibrate``); ties to the larger alpha (the
    smoother direction). Returns (alpha, {alpha: Calibration})."""
    sample = np.arange(len(pool)) if sample is None else sample
    oof = gaussian_oof_scores(pool, target, alphas, seed, sample)
    cals = {a: calibrate(*oof[a]) for a in alphas}
    best = max(alphas, key=lambda a: (round(cals[a].gain, 12), a))
    return best, cals


def gaussian_ratio(pool, target, seed: int = 0, alpha: Optional[float] = GAUSSIAN_ALPHA) -> RatioScores:
    """Gaussian closed form, lam = alpha * tr(S_p)/d: alpha = GAUSSIAN_ALPHA (1) by default, the
    rule measured best for ranking (text domain job: alpha 1 beats the CV choice on fortunes 37.1
    vs 35.4 and wordnet 61.0 vs 60.0; Ledoit-Wolf/OAS shrink far too little when M >> d);
    alpha=None chooses it by ``choose_alpha`` (best CV log-loss). w is fitted on all rows and
    scores every pool row; the calibration (a, b, gain) is the CV fit at that alpha
    (``gaussian_oof_scores`` with the one alpha; its pool side is the pool sample,
    ``pool_sample``), so the CV runs in either case."""
    pool = np.asarray(pool, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    sample = pool_sample(len(pool), seed, SAMPLE_ROWS)
    if alpha is None:
        alpha, cals = choose_alpha(pool, target, seed, sample=sample)
        cal = cals[alpha]
    else:
        cal = calibrate(*gaussian_oof_scores(pool, target, (alpha,), seed, sample)[alpha])
    moments = Moments.of(pool)
    mu_t = target.mean(axis=0)
    w = gaussian_direction(moments, mu_t, alpha * covariance_scale(moments.cov))
    score = gaussian_scores(pool, w, moments.mean, mu_t)
    return RatioScores(score, cal.scale * score + cal.offset, cal, {"alpha": alpha})


# ---------------------------------------------------------------------------------------------
# k-NN ratio


def knn_counts(
    queries: np.ndarray,
    reference: np.ndarray,
    is_target: np.ndarray,
    k: int,
    self_index: Optional[np.ndarray] = None,
    block: int = 2048,
) -> np.ndarray:
    """For each query row, how many of its k nearest reference rows (squared Euclidean; ties to the
    lower reference index) are target rows. self_index[i] = the query's own row in the reference
    (excluded), or -1."""
    reference = np.asarray(reference, dtype=np.float64)
    ref_norms = np.einsum("ij,ij->i", reference, reference)
    counts = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), block):
        q = np.asarray(queries[start : start + block], dtype=np.float64)
        dist = ref_norms[None, :] - 2.0 * q @ reference.T + np.einsum("ij,ij->i", q, q)[:, None]
        if self_index is not None:
            own = self_index[start : start + block]
            has = own >= 0
            dist[np.flatnonzero(has), own[has]] = np.inf
        counts[start : start + block] = [is_target[j].sum() for j in k_nearest(dist, k)]
    return counts


def k_nearest(dist: np.ndarray, k: int) -> list:
    """Per row of dist, the column indices of its k smallest values, ties to the lower column
    (the same set as argsort(dist, kind="stable")[:, :k], found by argpartition)."""
    kth = np.partition(dist, k - 1, axis=1)[:, k - 1 : k]
    out = []
    for row, bound in zip(dist, kth[:, 0]):
        below = np.flatnonzero(row < bound)
        tied = np.flatnonzero(row == bound)[: k - len(below)]
        out.append(np.concatenate([below, tied]))
    return out


def pool_sample(rows: int, seed: int, sample_rows: Optional[int]) -> np.ndarray:
    """Pool rows that stand for p_pool in the k-NN reference set, the logistic fit and every
    calibration's pool side: all rows when sample_rows is None or rows <= sample_rows, else the
    sample_rows rows with the smallest ``uniforms(seed + 2, row)`` (ties to the lower row), sorted:
    a bounded "bottom-S" any engine computes batch by batch."""
    if sample_rows is None or rows <= sample_rows:
        return np.arange(rows)
    u = uniforms(seed + 2, np.arange(rows))
    return np.sort(np.lexsort((np.arange(rows), u))[:sample_rows])


def knn_ratio(
    pool,
    target,
    seed: int = 0,
    k: int = KNN_K,
    sample_rows: Optional[int] = SAMPLE_ROWS,
    prior: float = KNN_PRIOR,
) -> RatioScores:
    """k-NN ratio (Loog 2012 style counts). Reference = target rows, then the pool sample: all pool
    rows when sample_rows is None or M <= sample_rows, else ``pool_sample``.
    s(x) = log((c_t + a)/n_t) - log((c_p + a)/n_p). This is already a log-ratio estimate;
    calibration: the 1-D fit of the leave-self-out scores of the target rows against those of the
    sampled pool rows, so "sample" can use it too."""
    pool = np.asarray(pool, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    m, n = len(pool), len(target)
    sample = pool_sample(m, seed, sample_rows)
    k = min(k, n + len(sample) - 1)
    reference = np.vstack([target, pool[sample]])
    is_target = np.concatenate([np.ones(n, bool), np.zeros(len(sample), bool)])
    self_pool = np.full(m, -1, dtype=np.int64)
    self_pool[sample] = n + np.arange(len(sample))
    c_t = knn_counts(pool, reference, is_target, k, self_pool)
    n_p = len(sample)

    def score(c):
        return np.log((c + prior) / n) - np.log((k - c + prior) / n_p)

    c_target = knn_counts(target, reference, is_target, k, np.arange(n))
    s_pool = score(c_t)
    cal = calibrate(score(c_target), s_pool[sample])
    return RatioScores(s_pool, cal.scale * s_pool + cal.offset, cal, {"k": k, "sample_rows": n_p})


# ---------------------------------------------------------------------------------------------
# Logistic regression, target vs pool, with the positive-unlabelled reading


def logistic_ratio(
    pool, target, seed: int = 0, l2_grid=LOGISTIC_L2_GRID, sample_rows: Optional[int] = SAMPLE_ROWS
) -> RatioScores:
    """L2 logistic regression target (1) vs pool (0), balanced class weights (``balanced_weights``),
    on the raw features plus an unpenalised intercept, fitted on the target and ``pool_sample`` (the
    same pool rows as the k-NN reference set), then applied to every pool row. The L2 strength: the
    grid value with the best CV gain (target folds as for the Gaussian, sampled row i in fold
    i mod F); ties to the larger. With balanced classes the fitted log-odds estimate
    log p_t/p_pool directly (unbalanced: subtract log(n_t/n_p)).

    Positive-unlabelled (Elkan & Noto 2008): with g(x) = P(s=1|x) of the unbalanced classifier,
    c = mean g over held-out target rows, P(in-domain | x) = g(x)/c. g/(1-g) * n_p/n_t is already
    the density ratio, and g/c is an increasing function of g, so the PU correction does not change
    the ranking ("top") nor Gumbel top-k on log r; what c adds is an estimate of the pool's
    in-domain share pi = n_t (1 - c) / (c n_p) (reported in params["pu_share"]), i.e. how many
    pool rows are target-like."""
    pool = np.asarray(pool, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    fit_pool = pool[pool_sample(len(pool), seed, sample_rows)]
    n, m = len(target), len(fit_pool)
    n_folds = min(CV_FOLDS, n)
    # target folds as the Gaussian's; sampled row i (in row order) in fold i mod F
    t_fold, p_fold = target_folds(n, n_folds, seed), np.arange(m) % n_folds
    oof = {l2: (np.empty(n), np.empty(m)) for l2 in l2_grid}
    for f in range(n_folds):
        negatives = fit_pool[p_fold != f] if (p_fold != f).any() else fit_pool  # one sampled row
        x = np.vstack([target[t_fold != f], negatives])
        y = np.concatenate([np.ones((t_fold != f).sum()), np.zeros(len(negatives))])
        for l2 in l2_grid:
            theta = fit_logistic(x, y, balanced_weights(y), l2)
            oof[l2][0][t_fold == f] = target[t_fold == f] @ theta[:-1] + theta[-1]
            oof[l2][1][p_fold == f] = fit_pool[p_fold == f] @ theta[:-1] + theta[-1]
    cals = {l2: calibrate(*oof[l2]) for l2 in l2_grid}
    best = max(l2_grid, key=lambda l2: (round(cals[l2].gain, 12), l2))
    x = np.vstack([target, fit_pool])
    y = np.concatenate([np.ones(n), np.zeros(m)])
    theta = fit_logistic(x, y, balanced_weights(y), best)
    score = pool @ theta[:-1] + theta[-1]
    # PU: g = the unbalanced posterior; on held-out targets, from the out-of-fold balanced scores
    with np.errstate(over="ignore"):  # as in fit_logistic: an overflowing exp is a posterior of 0
        g_target = 1.0 / (1.0 + np.exp(-(oof[best][0] + np.log(n / m))))
    c = float(g_target.mean())
    params = {"l2": best, "pu_c": c, "pu_share": n * (1 - c) / (c * m)}
    cal = cals[best]
    return RatioScores(score, cal.scale * score + cal.offset, cal, params)


# ---------------------------------------------------------------------------------------------
# Combination, selection modes


def normalised_ranks(score: np.ndarray) -> np.ndarray:
    """Average rank of each score in [0, 1] (ties share their mean rank), 1 = largest."""
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(len(score))
    # ties: mean rank within each group of equal scores
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = sums[inverse] / counts[inverse]
    return ranks / max(len(score) - 1, 1)


def rank_average(*scores: np.ndarray) -> np.ndarray:
    """Mean of the normalised ranks: a combination that needs no calibration."""
    return np.mean([normalised_ranks(s) for s in scores], axis=0)


def select_top(score: np.ndarray, budget: int) -> np.ndarray:
    """The `budget` largest scores in decreasing order, ties to the lower row index."""
    return np.argsort(-score, kind="stable")[:budget]


def select_sample(log_ratio: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """Importance resampling without replacement, P(x) proportional to r(x) (Gumbel top-k):
    key = log r + ``gumbel(seed, row)`` (a pure function of the seed and the global row); the
    `budget` largest keys in decreasing order, ties to the lower index."""
    return select_top(sample_keys(log_ratio, seed), budget)


def sample_keys(log_ratio: np.ndarray, seed: int) -> np.ndarray:
    """log r + Gumbel noise of each row (rows 0..M-1)."""
    return log_ratio + gumbel(seed, np.arange(len(log_ratio)))


# ---------------------------------------------------------------------------------------------
# Rows already held (init), a flat ratio, and the whole selection

INIT_FLOOR = 1e-3  # a pool row whose region init already fills keeps this share of its weight


def residual_log_ratio(
    log_r_target: np.ndarray, log_r_init: np.ndarray, held: int, budget: int
) -> np.ndarray:
    """init counts as selected mass. The final set (held init rows + `budget` new rows) should follow
    the target: (m p_init + B q) / (m + B) = p_t, so the new rows need the density
    q = ((m + B) p_t - m p_init) / B, which is not negative where init under-covers the target. Its
    importance weight on the pool is q / p_pool = ((m + B) r_t - m r_init) / B, with r_init =
    p_init / p_pool estimated like r_t (init as the "target", same estimator, calibrated). Where init
    over-covers (the bracket is below INIT_FLOOR (m + B) r_t / B) the floor keeps the target's order.
    Needs calibrated log r's (the same scale as log p_t/p_pool), both mode "top" and "sample".
    In log space: log r_t + log(max((m + B) - m e^(log r_init - log r_t), INIT_FLOOR (m + B)) / B)."""
    m, b = float(held), float(budget)
    with np.errstate(over="ignore"):
        bracket = (m + b) - m * np.exp(log_r_init - log_r_target)
    return log_r_target + np.log(np.maximum(bracket, INIT_FLOOR * (m + b)) / b)


def is_flat(calibrations: list) -> bool:
    """The ratio is not distinguishable from flat: the mean over the estimator's parts of the
    held-out AUC z (``Calibration.auc_z``) is below FLAT_Z, or the mean fitted scale is not positive.
    Measured (ratio_findings.md): targets drawn from the pool's own distribution (fortunes, RT,
    digits, breast_cancer, wine, iris; 26 cases) give part z's of -4.6 to +1.6, mean <= 1.2; text
    domains 3.6 to 14.4 (mean >= 5.1); quality filtering (a clean target against a pool that is
    59% clean copies) 1.0 to 3.4, i.e. partly "flat" although its top-B ranking still helps
    (80% clean vs random 70%). The log-loss gain is not used: on small targets it is positive
    under the null (up to 0.3 nats on iris, with negative fitted scales)."""
    z = float(np.mean([c.auc_z for c in calibrations]))
    scale = float(np.mean([c.scale for c in calibrations]))
    return z < FLAT_Z or scale <= 0.0


@dataclass
class RatioSelection:
    indices: np.ndarray  # selected pool rows, in selection order
    score: np.ndarray  # the key of those rows (mode "top": the ranking score; mode "sample":
    #                    log r + the row's Gumbel noise), same order
    log_ratio: np.ndarray  # calibrated log r of every pool row (0 everywhere when flat)
    flat: bool
    params: dict


ESTIMATORS = ("gaussian", "knn", "logistic", "combined")


def estimate(pool, target, estimator: str = "combined", seed: int = 0) -> list:
    """The parts an estimator is made of, each a RatioScores: "combined" (the default) =
    [gaussian (alpha = GAUSSIAN_ALPHA), knn (K = KNN_K), logistic (CV L2)]."""
    parts = {
        "gaussian": ("gaussian",),
        "knn": ("knn",),
        "logistic": ("logistic",),
        "combined": ("gaussian", "knn", "logistic"),
    }[estimator]
    make = {"gaussian": gaussian_ratio, "knn": knn_ratio, "logistic": logistic_ratio}
    return [make[p](pool, target, seed) for p in parts]


def combine(parts: list) -> tuple:
    """(ranking score, calibrated log r) of the parts: one part: its raw score and its calibrated
    log r; several: the mean of the calibrated log r's for both (a geometric mean of the ratios;
    measured better than the rank average, ``rank_average``, on fortunes and wordnet)."""
    if len(parts) == 1:
        return parts[0].score, parts[0].log_ratio
    mean = np.mean([p.log_ratio for p in parts], axis=0)
    return mean, mean


def check_inputs(pool, target, budget: int, init=None) -> tuple:
    pool = np.asarray(pool, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pool.ndim != 2 or target.ndim != 2 or pool.shape[1] != target.shape[1]:
        raise ValueError(f"pool {pool.shape} and target {target.shape} must be 2-D with the same columns")
    if not (np.isfinite(pool).all() and np.isfinite(target).all()):
        raise ValueError("pool and target must be finite (no NaN or inf)")
    if len(target) < 2:
        raise ValueError(f"target needs at least 2 rows, got {len(target)}")
    if budget < 1:
        raise ValueError(f"budget_rows must be at least 1, got {budget}")
    if init is not None and (np.ndim(init) != 2 or len(init) < 2 or np.shape(init)[1] != pool.shape[1]):
        raise ValueError("init must be 2-D with at least 2 rows and the pool's columns")
    return pool, target


def select_ratio(
    pool, target, budget: int, *, mode: str = "top", estimator: str = "combined", seed: int = 0, init=None
) -> RatioSelection:
    """The whole method. Steps:
    1. log r per pool row from ``estimate`` then ``combine`` (float64). With init (m >= 2 rows):
       the same estimator with init as the target gives log r_init, and both the ranking and the
       sample use ``residual_log_ratio`` (calibrated, so "top" ranks by it, not by the raw score).
    2. flat (``is_flat`` of the parts' calibrations): warn. Mode "sample": log r = 0 for every
       row, so the selection is the seeded uniform sample (Gumbel top-k on zeros): with nothing to
       prefer, a uniform sample has the pool's distribution, which is then the target's. Mode
       "top": the ranking is kept (quality filtering can look flat by the held-out test and still
       gain from the ranking; a user who asks for the top-B gets it, with the warning).
    3. budget >= pool rows: every row, in the mode's order (the Python layer warns).
    4. mode "top": ``select_top`` of the ranking score; "sample": ``select_sample`` of the
       calibrated log r with the seed.
    Duplicate pool rows score alike and can both be selected (dedup is a separate step); the k-NN
    excludes a row from its own neighbours by position only, so a twin counts as a pool neighbour.
    Constant columns: zero variance gets lam (gaussian) and adds no distance (knn); harmless.
    Fewer target rows than columns: lam > 0 keeps the solve defined; the logistic is penalised."""
    import warnings

    pool, target = check_inputs(pool, target, budget, init)
    if mode not in ("top", "sample"):
        raise ValueError(f"mode must be 'top' or 'sample', got {mode!r}")
    parts = estimate(pool, target, estimator, seed)
    score, log_ratio = combine(parts)
    params = {"parts": [p.params for p in parts], "gains": [p.calibration.gain for p in parts]}
    if init is not None:
        init = np.asarray(init, dtype=np.float64)
        _, log_r_init = combine(estimate(pool, init, estimator, seed))
        log_ratio = residual_log_ratio(log_ratio, log_r_init, len(init), budget)
        score = log_ratio
    flat = is_flat([p.calibration for p in parts])
    if flat:
        warnings.warn(
            "the target is hardly distinguishable from the pool (flat density ratio): mode 'sample' "
            "returns a seeded uniform sample, mode 'top' keeps the weakly supported ranking",
            stacklevel=2,
        )
        if mode == "sample":
            log_ratio = np.zeros(len(pool))
    budget = min(budget, len(pool))
    rows = select_top(score, budget) if mode == "top" else select_sample(log_ratio, budget, seed)
    chosen = score[rows] if mode == "top" else sample_keys(log_ratio, seed)[rows]
    return RatioSelection(rows, chosen, log_ratio, flat, params)
