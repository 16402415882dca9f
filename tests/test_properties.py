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
    return st.sampled_from([grid, cont]).flatmap(
        lambda elements: hnp.arrays(np.float64, (rows, dim), elements=elements)
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


def oracle(train, X, D, seed, options, fixed):
    """The oracle's run on float64 copies: a SelectionTrace, or the IndexError/ValueError it raised."""
    try:
        return reference.greedy_select(
            train.astype(np.float64),
            X.astype(np.float64),
            D.astype(np.float64),
            rng=random.Random(seed),
            fixed=fixed,
            **options,
        )
    except (IndexError, ValueError) as exc:
        return exc


def stable_descents(problem, fixed, want) -> int:
    """How many descents, from the first, do not hang on the last bits: the oracle is run again with
    the target moved by ±1e-12 (of its scale), and a descent counts while all three runs agree on v
    to 1e-6 and end the same way. Past that point the descent is chaotic (the objective has poles
    at the target rows; v can jump past one), so two correct implementations may part there."""
    train, X, D, options, seed = problem
    X64 = X.astype(np.float64)
    shift = 1e-12 * max(1.0, float(np.abs(X64).max()))
    stable = len(want.v_opts) if isinstance(want, reference.SelectionTrace) else 0
    for sign in (1.0, -1.0):
        other = oracle(train, X64 + sign * shift, D, seed, options, fixed)
        if type(other) is not type(want):
            return 0
        if isinstance(want, reference.SelectionTrace):
            agree = 0
            for a, b in zip(want.v_opts, other.v_opts):
                if not np.allclose(a, b, rtol=1e-6, atol=1e-6):
                    break
                agree += 1
            stable = min(stable, agree)
    return stable


def accepted_among(want, candidates: int) -> int:
    """Accepted rows among the first `candidates` candidates (an accepted candidate's KL is the
    next entry of kl_trace)."""
    accepted = 0
    for kl in want.candidate_kl[:candidates]:
        if accepted < len(want.kl_trace) and want.kl_trace[accepted] == kl:
            accepted += 1
    return accepted


def assert_same_selection(got_indices, want, train, stable):
    """The first `stable` candidates (see stable_descents) pick the oracle's rows, up to the first
    one where two pool rows were equally near the oracle's v (a tie decided by the last bits).
    Returns whether the accepted rows of that prefix are equal."""
    count = accepted_among(want, stable)
    got, expected = list(got_indices)[:count], list(want.indices)[:count]
    if got == expected:
        return True
    assert len(got) == len(expected), (got_indices, want.indices, stable)
    first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
    # The descent that produced accepted row `first`: candidates before it include rejected ones.
    descent = next(j for j in range(stable) if accepted_among(want, j + 1) == first + 1)
    v = want.v_opts[descent]
    da = float(((train[got[first]] - v) ** 2).sum())
    db = float(((train[expected[first]] - v) ** 2).sum())
    assert abs(da - db) <= 1e-9 * max(1.0, da), (got_indices, want.indices)
    return False


@given(selection_problem())
def test_giokl_fit_matches_reference_loop(problem):
    train, X, D, options, seed = problem
    want = oracle(train, X, D, seed, options, fixed=False)
    stable = stable_descents(problem, False, want)
    model = gio_rs.GIOKL(dim=X.shape[1], verbose=False, seed=seed)
    try:
        W, kl_divs, state = model.fit(train, X, D=D, **options)
    except IndexError:
        assert isinstance(want, IndexError) or stable < len(want.v_opts), (
            "gio_rs ran out of pool rows where the reference did not"
        )
        return
    if isinstance(want, IndexError):
        assert stable == 0, "the reference ran out of pool rows where gio_rs did not"
        return
    train64 = train.astype(np.float64)
    got_indices = [int(np.flatnonzero((train == row).all(axis=1))[0]) for row in W[len(D) :]]
    # Rows can repeat in train: compare the selected rows, not the first matching index.
    n = min(len(got_indices), len(want.indices))
    for i in range(n):
        if (train[got_indices[i]] == train[want.indices[i]]).all():
            got_indices[i] = want.indices[i]
    if assert_same_selection(got_indices, want, train64, stable) and stable == len(want.v_opts):
        assert got_indices == list(want.indices)
        np.testing.assert_allclose(kl_divs, want.kl_trace, rtol=1e-9, atol=1e-9)
        assert state[3] == want.num_resets and state[2] == want.just_reset and state[4] == want.increases


@given(selection_problem())
def test_select_matches_reference_fixed_loop(problem):
    train, X, D, options, seed = problem
    want = oracle(train, X, D, seed, options, fixed=True)
    if isinstance(want, ValueError):
        # The fixed loop refuses a non-finite automatic scale factor: so must select.
        assert "scale_factor" in str(want)
        with pytest.raises(gio_rs.GioError, match="^scale_factor"):
            gio_rs.select(train, X, init=D, seed=seed, **options)
        return
    stable = stable_descents(problem, True, want)
    got = gio_rs.select(train, X, init=D, seed=seed, **options)
    if not assert_same_selection(got.indices.tolist(), want, train.astype(np.float64), stable):
        return
    accepted = accepted_among(want, stable)
    np.testing.assert_allclose(got.candidate_kl[:stable], want.candidate_kl[:stable], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.kl_trace[:accepted], want.kl_trace[:accepted], rtol=1e-9, atol=1e-9)
    if stable == len(want.v_opts):  # the whole run is well conditioned: everything agrees
        assert got.indices.tolist() == list(want.indices)
        assert got.stop_reason == want.stop_reason
        np.testing.assert_allclose(got.candidate_kl, want.candidate_kl, rtol=1e-9, atol=1e-9)
