"""The density-ratio core's bindings (gio_rs._core, src/python_ratio.rs) against plain NumPy:
moments, closed-form direction and scores, k-NN counts, the logistic fit, top-B and Gumbel keys,
float32 and float64 alike, and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from gio_rs import GioError, _core


def data(rows: int, dim: int, seed: int, dtype=np.float64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, dim)) + np.linspace(0, 50, dim)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_moments_match_numpy_for_any_batching(dtype):
    x = data(1000, 7, 0, dtype)
    results = []
    for cut in (1000, 1, 255, 600):
        acc = _core.MomentsAccumulator(7)
        acc.add(x[:cut])
        acc.add(x[cut:])
        results.append(acc.finish())
    count, mean, cov = results[0]
    assert count == 1000
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(0), rtol=1e-13)
    np.testing.assert_allclose(cov, np.cov(x.astype(np.float64).T, bias=True), rtol=1e-10, atol=1e-12)
    for other in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(other[1:], results[0][1:]))


def test_closed_form_direction_and_scores_match_numpy():
    pool, target = data(3000, 12, 1), data(40, 12, 2) + 0.3
    fit = _core.ratio_fit_gaussian(pool, target, alphas=[1.0])
    cov = np.cov(pool.T, bias=True)
    lam = np.trace(cov) / 12
    w = np.linalg.solve(cov + lam * np.eye(12), target.mean(0) - pool.mean(0))
    np.testing.assert_allclose(fit.w, w, rtol=1e-9)
    assert fit.ridge == pytest.approx(lam)
    scores = _core.ratio_scores(pool, fit.w, fit.bias)
    np.testing.assert_allclose(scores, pool @ w - w @ (pool.mean(0) + target.mean(0)) / 2, atol=1e-9)


def test_knn_counts_match_brute_force():
    rng = np.random.default_rng(3)
    target, background = rng.integers(0, 3, (20, 2)).astype(float), rng.integers(0, 3, (50, 2)).astype(float)
    reference = np.vstack([target, background])
    own = np.full(50, -1)
    own[:50] = 20 + np.arange(50)
    counts = _core.ratio_knn_counts(background, target, background, 7, own)
    for i, row in enumerate(background):
        dist = ((reference - row) ** 2).sum(1)
        dist[own[i]] = np.inf
        nearest = np.argsort(dist, kind="stable")[:7]
        assert counts[i] == (nearest < 20).sum()


def test_top_b_and_gumbel_keys_do_not_depend_on_batching():
    keys = _core.ratio_gumbel_keys(np.zeros(100), 5)
    parts = np.concatenate(
        [_core.ratio_gumbel_keys(np.zeros(30), 5), _core.ratio_gumbel_keys(np.zeros(70), 5, 30)]
    )
    assert np.array_equal(keys, parts)
    whole, a, b = _core.TopB(10), _core.TopB(10), _core.TopB(10)
    whole.push(keys)
    a.push(keys[:30])
    b.push(keys[30:], 30)
    a.merge(b)
    rows, top = whole.finish()
    assert np.array_equal(rows, np.argsort(-keys, kind="stable")[:10])
    assert all(np.array_equal(x, y) for x, y in zip(a.finish(), (rows, top)))


def test_logistic_fit_separates_shifted_classes():
    w, bias, iterations, converged, loss = _core.ratio_fit_logistic(
        data(200, 3, 4) + 1.0, data(300, 3, 5), l2=1e-2
    )
    assert converged and (w > 0).all() and 0 < loss < np.log(2)


def test_errors_name_the_argument():
    acc = _core.MomentsAccumulator(3)
    with pytest.raises(GioError, match="^rows: has 2 columns, expected 3"):
        acc.add(np.zeros((4, 2)))
    with pytest.raises(GioError, match="^rows: no rows were added"):
        acc.finish()
    with pytest.raises(GioError, match="^rows: must be C-contiguous"):
        acc.add(np.zeros((3, 6))[:, ::2])
    with pytest.raises(TypeError, match="^target: expected a 2-D float64 array"):
        _core.ratio_fit_gaussian(data(50, 3, 0), data(5, 3, 1, np.float32))


def test_a_target_drawn_from_the_pool_calibrates_flat():
    pool = data(4000, 8, 6)
    fit = _core.ratio_fit_gaussian(pool, pool[::40].copy())
    assert fit.gain < 0.02
