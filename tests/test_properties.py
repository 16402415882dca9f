"""Property tests: the Rust core against `gio_rs.reference` (pure NumPy) on generated inputs,
float32 and float64: estimator, gradient, descent and whole selections in both semantics."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gio_rs
from gio_rs import reference

DTYPES = st.sampled_from([np.float32, np.float64])


def matrices(rows, dim, magnitude=10.0):
    """Matrices with values on a coarse grid half the time (duplicates and exact ties) and
    continuous values otherwise."""
    grid = st.integers(-8, 8).map(lambda v: v / 4.0)
    cont = st.floats(-magnitude, magnitude, allow_nan=False, width=32)
    return st.one_of(grid, cont).flatmap(
        lambda _: hnp.arrays(np.float64, (rows, dim), elements=st.one_of(grid, cont))
    )


@st.composite
def kl_problem(draw):
    n = draw(st.integers(2, 24))
    m = draw(st.integers(1, 24))
    d = draw(st.integers(1, 6))
    discard = draw(st.booleans()) and m >= 2
    k = draw(st.integers(1, n - 1))
    dtype = draw(DTYPES)
    x = draw(matrices(n, d)).astype(dtype)
    y = draw(matrices(m, d)).astype(dtype)
    return x, y, k, discard


@given(kl_problem())
def test_kl_divergence_matches_reference(problem):
    x, y, k, discard = problem
    got = gio_rs.kl_divergence(x, y, k=k, discard_nearest_for_xy=discard)
    want = reference.kl_divergence(
        x.astype(np.float64), y.astype(np.float64), k=k, discard_nearest_for_xy=discard
    )
    assert abs(got - want) <= 1e-9 * max(1.0, abs(want))


def gradient_scale(x, v, m):
    """Σ_i |term_i| of the gradient: the scale its roundoff is measured against."""
    diff = v[None, :] - x.astype(np.float64)
    r = np.sqrt(np.clip((diff**2).sum(axis=1), 1e-10, 1e20))
    return x.shape[1] / (len(x) * m) * float((np.abs(diff).max(axis=1) / (r + 1e-8)).sum())


@given(kl_problem(), st.data())
def test_kl_gradient_matches_reference(problem, data):
    x, w, _, discard = problem
    d = x.shape[1]
    v = data.draw(hnp.arrays(np.float64, d, elements=st.floats(-10, 10, allow_nan=False)))
    if data.draw(st.booleans()):
        v = x[data.draw(st.integers(0, len(x) - 1))].astype(np.float64) + 1e-3  # near a target row
    got = gio_rs.kl_gradient(x, w, v, discard_nearest_for_xy=discard)
    want = reference.kl_gradient(
        x.astype(np.float64), w.astype(np.float64), v, discard_nearest_for_xy=discard
    )
    assert got.shape == want.shape == (d,)
    tol = 1e-9 * max(1.0, float(np.abs(want).max())) + 1e-9 * gradient_scale(x, v, len(w))
    assert float(np.abs(got - want).max()) <= tol


@given(kl_problem(), st.integers(0, 4), st.floats(0.01, 3.0))
def test_gradient_descend_matches_reference(problem, steps, scale):
    x, w, _, discard = problem
    v = x.astype(np.float64).mean(axis=0) + 0.1
    got = gio_rs.GIOKL(verbose=False).gradient_descend(
        x, w, v, scale, steps, lr=0.01, discard_nearest_for_xy=discard
    )
    want = reference.gradient_descend(
        x.astype(np.float64), w.astype(np.float64), v, scale, steps, lr=0.01, discard_nearest_for_xy=discard
    )
    assert got.dtype == x.dtype
    tol = (
        1e-7 * max(1.0, float(np.abs(want).max()))
        if x.dtype == np.float64
        else 1e-5 * max(1.0, float(np.abs(want).max()))
    )
    assert float(np.abs(got.astype(np.float64) - want).max()) <= tol


LOOP_OPTIONS = st.fixed_dictionaries(
    {
        "k": st.integers(1, 3),
        "max_iter": st.integers(0, 12),
        "stop_criterion": st.sampled_from(reference.STOP_CRITERIA),
        "min_difference": st.sampled_from([0.0, 0.01, -0.5]),
        "resets_allowed": st.booleans(),
        "max_resets": st.integers(0, 3),
        "max_data_size": st.sampled_from([0.0, 0.1, 0.5, 1.0]),
        "min_kl": st.sampled_from([0.0, 1.0, -100.0, 100.0]),
        "max_sequential_increases": st.integers(0, 3),
        "random_restart_prob": st.sampled_from([0.0, 0.3, 1.0]),
        "scale_factor": st.sampled_from(["auto", 1.0, 25.0]),
        "v_init": st.sampled_from(reference.V_INITS),
        "grad_desc_iter": st.integers(0, 3),
        "discard_nearest_for_xy": st.booleans(),
        "lr": st.sampled_from([0.01, 0.05]),
    }
)


@st.composite
def selection_problem(draw):
    M = draw(st.integers(2, 30))
    n = draw(st.integers(4, 16))
    d = draw(st.integers(1, 4))
    m0 = draw(st.integers(2, 5))
    dtype = draw(DTYPES)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    train = rng.normal(size=(M, d))
    # Exact duplicate rows (ties broken by the lowest index). Continuous values otherwise: a grid
    # would put v exactly between two distinct rows, a tie decided by the last bit.
    duplicates = draw(st.integers(0, M // 2))
    train[M - duplicates :] = train[:duplicates]
    train = train.astype(dtype)
    X = (rng.normal(size=(n, d)) + draw(st.sampled_from([0.0, 2.0]))).astype(dtype)
    D = rng.normal(size=(m0, d)).astype(dtype)
    options = draw(LOOP_OPTIONS)
    assume(options["k"] <= n - 1)
    if options["v_init"] == "prev_opt":
        # v carries over from descent to descent, so last-bit differences between two correct
        # implementations grow ~50x per descent: keep those runs short.
        options["max_iter"] = min(options["max_iter"], 2)
    return train, X, D, options, draw(st.integers(0, 1000))


def assert_same_selection(got_indices, want, train):
    """Equal indices, or equal up to the first candidate where two pool rows were equally near
    the reference's v (a tie decided by the last bits)."""
    want_indices = list(want.indices)
    if list(got_indices) == want_indices:
        return
    first = next(i for i, (a, b) in enumerate(zip(got_indices, want_indices)) if a != b)
    v = want.v_opts[first] if first < len(want.v_opts) else want.v
    da = float(((train[got_indices[first]] - v) ** 2).sum())
    db = float(((train[want_indices[first]] - v) ** 2).sum())
    assert abs(da - db) <= 1e-9 * max(1.0, da), (got_indices, want_indices)


@given(selection_problem())
def test_giokl_fit_matches_reference_loop(problem):
    train, X, D, options, seed = problem
    kwargs = dict(options)
    try:
        want = reference.greedy_select(
            train.astype(np.float64),
            X.astype(np.float64),
            D.astype(np.float64),
            rng=random.Random(seed),
            **kwargs,
        )
    except IndexError:
        want = None
    model = gio_rs.GIOKL(dim=X.shape[1], verbose=False, seed=seed)
    try:
        W, kl_divs, state = model.fit(train, X, D=D, **kwargs)
    except IndexError:
        assert want is None, "gio_rs ran out of pool rows where the reference did not"
        return
    assert want is not None, "the reference ran out of pool rows where gio_rs did not"
    train64 = train.astype(np.float64)
    got_indices = [int(np.flatnonzero((train == row).all(axis=1))[0]) for row in W[len(D) :]]
    # Rows can repeat in train: compare the selected rows, not the first matching index.
    if [tuple(r) for r in train[got_indices]] == [tuple(r) for r in train[want.indices]]:
        got_indices = list(want.indices)
    assert_same_selection(got_indices, want, train64)
    if got_indices == list(want.indices):
        np.testing.assert_allclose(kl_divs, want.kl_trace, rtol=1e-9, atol=1e-9)
        assert state[3] == want.num_resets and state[2] == want.just_reset and state[4] == want.increases


@given(selection_problem())
def test_select_matches_reference_fixed_loop(problem):
    train, X, D, options, seed = problem
    try:
        want = reference.greedy_select(
            train.astype(np.float64),
            X.astype(np.float64),
            D.astype(np.float64),
            rng=random.Random(seed),
            fixed=True,
            **options,
        )
    except ValueError as err:
        # The fixed loop refuses a non-finite automatic scale factor: so must select.
        assert "scale_factor" in str(err)
        with pytest.raises(gio_rs.GioError, match="^scale_factor"):
            gio_rs.select(train, X, init=D, seed=seed, **options)
        return
    kwargs = dict(options)
    got = gio_rs.select(train, X, init=D, seed=seed, **kwargs)
    assert_same_selection(got.indices.tolist(), want, train.astype(np.float64))
    if got.indices.tolist() == list(want.indices):
        assert got.stop_reason == want.stop_reason
        np.testing.assert_allclose(got.kl_trace, want.kl_trace, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(got.candidate_kl, want.candidate_kl, rtol=1e-9, atol=1e-9)
