"""`gio_rs.reference` (the slow NumPy oracle) against the REAL reference outputs.

The fixtures (tests/data/reference_public.npz, or $GIO_FIXTURES_DIR) hold what
grad-info-opt 0.1.2 itself computed (KL values, JAX gradients, 5-step descents, whole `fit` runs);
the tolerances are those of the fixtures README. The second half has small handmade cases for the
the bug fixes of ``greedy_select(fixed=True)``, the reference's draw order and counters, and
checks that no input is modified.

The oracle is imported as `gio_rs.reference` when the package is importable, else loaded straight
from python/gio_rs/reference.py (it imports nothing from gio_rs).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

try:
    from gio_rs import reference
except ImportError:  # the package is not built / installed: load the file by path
    _path = Path(__file__).resolve().parents[1] / "python" / "gio_rs" / "reference.py"
    _spec = importlib.util.spec_from_file_location("gio_rs_reference_standalone", _path)
    assert _spec is not None and _spec.loader is not None
    reference = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = reference  # dataclasses need the module registered
    _spec.loader.exec_module(reference)

FIXTURES_DIR = Path(os.environ.get("GIO_FIXTURES_DIR", Path(__file__).resolve().parent / "data"))
FIXTURES = FIXTURES_DIR / "reference_public.npz"


@functools.cache
def _data():
    if not FIXTURES.is_file():  # part of the repository: missing is a failure, never a skip
        pytest.fail(f"fixture missing: {FIXTURES} (see tests/data/README.md; GIO_FIXTURES_DIR overrides it)")
    z = np.load(FIXTURES)
    return {key: z[key] for key in z.files}, json.loads(str(z["meta_json"]))


def _z():
    return _data()[0]


def _meta():
    return _data()[1]


# =========================================================================== the estimator


@pytest.mark.parametrize("case", range(10))
def test_kl_matches_reference(case):
    z, c = _z(), _meta()["stat_cases"][case]
    got = reference.kl_divergence(
        z[f"stat{case}_x"],
        z[f"stat{case}_y"],
        c["k"],
        eps=c["eps"],
        discard_nearest_for_xy=c["discard_nearest_for_xy"],
    )
    assert isinstance(got, float)
    expected = float(z[f"stat{case}_expected_f64"])
    assert abs(got - expected) <= 1e-9 * abs(expected)


@pytest.mark.parametrize("case", range(10))
def test_gradient_matches_reference(case):
    z, c = _z(), _meta()["grad_cases"][case]
    X, W, v = (z[f"grad{case}_{key}"] for key in ("X", "W", "v"))
    got = reference.kl_gradient(X, W, v, discard_nearest_for_xy=c["discard_nearest_for_xy"])
    expected = z[f"grad{case}_expected_f64"]
    assert got.shape == expected.shape and got.dtype == np.float64
    assert np.abs(got - expected).max() <= 1e-9 * max(1.0, float(np.abs(expected).max()))


@pytest.mark.parametrize("case", range(10))
def test_five_step_descent_matches_reference(case):
    z, c = _z(), _meta()["grad_cases"][case]
    X, W, v = (z[f"grad{case}_{key}"] for key in ("X", "W", "v"))
    gd = c["gd5"]
    got = reference.gradient_descend(
        X,
        W,
        v,
        gd["scaling_factor"],
        gd["max_iterations"],
        lr=gd["lr"],
        discard_nearest_for_xy=c["discard_nearest_for_xy"],
    )
    assert np.abs(got - z[f"grad{case}_gd5_f64"]).max() <= 1e-8


def test_squared_distances_use_exact_differences():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    naive = np.array([[((a - b) ** 2).sum() for b in y] for a in x])
    np.testing.assert_array_equal(reference.squared_distances(x, y), naive)
    # Far from the origin the |x|^2 + |y|^2 - 2x.y expansion loses everything; differences do not.
    far = np.array([[1e8, 1e8]])
    assert reference.squared_distances(far, far + np.array([[2.0**-10, 0.0]]))[0, 0] == 2.0**-20
    assert reference.squared_distances(far, far)[0, 0] == 0.0


def test_kl_gradient_agrees_with_finite_differences():
    rng = np.random.default_rng(1)
    X, W, v = rng.normal(size=(12, 3)), rng.normal(size=(4, 3)), rng.normal(size=3)
    for discard in (False, True):
        g = reference.kl_gradient(X, W, v, discard_nearest_for_xy=discard)
        h = 1e-6
        num = np.array(
            [
                (
                    reference.kl_divergence(X, np.vstack([W, v + h * e]), 3, discard_nearest_for_xy=discard)
                    - reference.kl_divergence(X, np.vstack([W, v - h * e]), 3, discard_nearest_for_xy=discard)
                )
                / (2 * h)
                for e in np.eye(3)
            ]
        )
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8)


# =========================================================================== whole fits


def _fit_inputs(case, dtype=np.float64):
    z = _z()
    return tuple(z[f"fit{case}_{key}"].astype(dtype) for key in ("train", "X", "D"))


def _loop_kwargs(case):
    kwargs = dict(_meta()["fit_cases"][case]["fit_kwargs"])
    kwargs.pop("random_init_pct")  # D is always passed
    kwargs.pop("normalize")  # only touches the uniform start
    return kwargs


@functools.cache
def _greedy(case, dtype=np.float64):
    train, X, D = _fit_inputs(case, dtype)
    return reference.greedy_select(train, X, D, rng=random.Random(0), **_loop_kwargs(case))


@functools.cache
def _fit(case):
    train, X, D = _fit_inputs(case)
    return reference.fit(train, X, D=D, rng=random.Random(0), **_meta()["fit_cases"][case]["fit_kwargs"])


@pytest.mark.parametrize("case", [0, 1, 2])
def test_fit_returns_what_the_reference_returned(case):
    z, info = _z(), _meta()["fit_cases"][case]["info_f64"]
    train, X, D = _fit_inputs(case)
    W, kl_divs, state = _fit(case)
    expected_idx = z[f"fit{case}_f64_idx"]
    assert W.shape == (info["W_len"], train.shape[1])
    np.testing.assert_array_equal(W[: len(D)], D)
    np.testing.assert_array_equal(W[len(D) :], train[expected_idx])
    assert isinstance(kl_divs, list) and all(type(v) is float for v in kl_divs)
    np.testing.assert_allclose(kl_divs, z[f"fit{case}_f64_kl"], rtol=0, atol=1e-9)
    v, scale_factor, just_reset, num_resets, increases, pool, kl_again = state
    assert kl_again is kl_divs
    assert (just_reset, num_resets, increases, len(pool)) == (
        info["just_reset"],
        info["num_resets"],
        info["increases"],
        info["adder_len"],
    )
    assert abs(scale_factor - float(z[f"fit{case}_f64_scale_factor"])) <= 1e-9 * abs(scale_factor)
    # The pool is train minus the rows taken since the last refill, in the original order.
    trace = _greedy(case)
    np.testing.assert_array_equal(pool, train[~trace.used])
    assert v.shape == (train.shape[1],)


@pytest.mark.parametrize("case", [0, 1, 2])
def test_greedy_select_trace_matches_reference(case):
    z = _z()
    t = _greedy(case)
    assert t.indices == z[f"fit{case}_f64_idx"].tolist()  # exact: length and duplicates included
    np.testing.assert_allclose(t.kl_trace, z[f"fit{case}_f64_kl"], rtol=0, atol=1e-9)
    assert abs(t.kl_start - float(z[f"fit{case}_f64_kl_start"])) <= 1e-9
    np.testing.assert_allclose(t.candidate_kl, z[f"fit{case}_f64_kl_all_candidates"], rtol=0, atol=1e-9)
    assert t.descent_iters == z[f"fit{case}_f64_descent_iters"].tolist()
    np.testing.assert_allclose(np.array(t.v_opts), z[f"fit{case}_f64_vopt"], rtol=0, atol=1e-6)
    expected_sf = float(z[f"fit{case}_f64_scale_factor"])
    assert abs(t.scale_factor - expected_sf) <= 1e-9 * abs(expected_sf)
    assert t.stop_reason == {0: "max_iter", 1: "increase", 2: "data_size"}[case]
    # |W| during each descent: the initial rows plus those accepted before it.
    # A candidate was accepted iff its KL is the next entry of kl_trace (same computation).
    sizes, accepted = [], 0
    for kl in t.candidate_kl:
        sizes.append(len(_fit_inputs(case)[2]) + accepted)
        if accepted < len(t.kl_trace) and t.kl_trace[accepted] == kl:
            accepted += 1
    assert sizes == z[f"fit{case}_f64_descent_Wsize"].tolist()


@pytest.mark.parametrize("case", [0, 1, 2])
def test_float32_inputs_give_the_reference_float32_selection(case):
    """The reference's float32 runs pick the same rows; a float64 oracle on float32-cast input too."""
    z = _z()
    t = _greedy(case, np.float32)
    assert t.indices == z[f"fit{case}_f32_idx"].tolist()
    np.testing.assert_allclose(t.kl_trace, z[f"fit{case}_f64_kl"], rtol=0, atol=2e-5)


def test_fit_counters_around_resets_case1():
    """fit1 (increase, resets_allowed, max_resets=2): two refills, then the third increase stops."""
    t = _greedy(1)
    assert (t.num_resets, t.just_reset, t.increases) == (2, True, 0)
    # 35 accepted + 2 rejected-and-reset + 1 rejected-and-stopped; each reset is followed by a 3x descent.
    assert len(t.candidate_kl) == len(t.indices) + 3
    long = [j for j, s in enumerate(t.descent_iters) if s == 150]
    assert long[0] == 0 and len(long) == 3
    assert len(set(t.indices)) < len(t.indices)  # duplicates after a refill


def test_readme_2d_case_selects_the_reference_set():
    """fit3 is chaotic (2-D harmonic objective): the same 96 rows, in another order."""
    z = _z()
    train, X, D = _fit_inputs(3)
    W, kl_divs, state = _fit(3)
    expected = z["fit3_f64_idx"].tolist()
    selected = W[len(D) :]
    assert len(selected) == 96 == len(kl_divs)
    got_idx = [int(np.flatnonzero((train == row).all(axis=1))[0]) for row in selected]
    assert len(set(got_idx)) == 96
    assert set(got_idx) == set(expected)
    assert len(state[5]) == 3  # the rejected 97th row left the pool too
    # The start is not chaotic.
    t = _greedy(3)
    assert abs(t.kl_start - float(z["fit3_f64_kl_start"])) <= 1e-9
    assert abs(t.scale_factor - float(z["fit3_f64_scale_factor"])) <= 1e-9 * abs(t.scale_factor)
    assert t.indices == got_idx


# =========================================================================== handmade cases
#
# 1-D data: a target cluster at 0..0.6 plus one outlier at 20.2. Pool rows g1..g4 sit in the
# cluster (adding them lowers the KL), b1..b4 near the outlier (adding them raises it). With
# scale_factor=0 the descent never moves v, and with v_init="jump" v is the target row the
# scripted rng picks, so every candidate is chosen by hand: X[0] or X[2] -> a cluster row, X[7]
# -> the next unused outlier row.

HX = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 20.2])[:, None]
HPOOL = np.array([0.05, 0.25, 0.45, 0.65, 20.0, 20.5, 21.0, 21.5])[:, None]
HW0 = np.array([-3.0, 3.0])[:, None]
G1, G2, G3, G4, B1, B2, B3, B4 = range(8)
TO_G1, TO_G2, TO_B = 0, 2, 7  # target rows whose nearest pool rows are g1, g2 and b1 (b2, ...)


class ScriptedRng:
    """A `random.Random` stand-in: `sample` returns the scripted target rows in order (and checks
    it is asked for one row of range(n)); `random` returns `coin` and counts its calls."""

    def __init__(self, picks, coin=0.9):
        self.picks = list(picks)
        self.coin = coin
        self.log = []

    def sample(self, population, k):
        assert k == 1 and isinstance(population, range) and len(population) == len(HX)
        assert self.picks, "more sample() draws than scripted"
        self.log.append("sample")
        return [self.picks.pop(0)]

    def random(self):
        self.log.append("random")
        return self.coin


def _hand(picks, fixed, **kwargs):
    rng = ScriptedRng(picks, coin=kwargs.pop("coin", 0.9))
    opts = dict(k=2, scale_factor=0.0, v_init="jump", grad_desc_iter=2, max_iter=50, rng=rng, fixed=fixed)
    opts.update(kwargs)
    return reference.greedy_select(HPOOL, HX, HW0, **opts), rng


def _kl_after(rows):
    return reference.kl_divergence(HX, np.vstack([HW0] + [HPOOL[r] for r in rows]), k=2)


def test_handmade_design_preconditions():
    """The KL moves the way the tests below rely on."""

    def signs(rows, start=()):
        kls = [_kl_after(list(start) + rows[:j]) for j in range(len(rows) + 1)]
        return np.sign(np.diff(kls)).astype(int).tolist()

    assert signs([G1, B1, G2, B2, B3, B4]) == [-1, 1, -1, 1, 1, 1]
    assert signs([G1, G1, B1]) == [-1, -1, 1]
    assert signs([G1, B1]) == [-1, 1]
    assert signs([G1, G2, G3]) == [-1, -1, -1]


def test_fixed_sequential_increase_tolerance_counts_consecutive_increases():
    # g1 (down), b1 (up: 1), g2 (down: count back to 0), b2 (1), b3 (2), b4 (3 > 2: stop, rejected)
    picks = [TO_G1, TO_B, TO_G2, TO_B, TO_B, TO_B, TO_G1]
    t, rng = _hand(picks, True, stop_criterion="sequential_increase_tolerance", max_sequential_increases=2)
    assert t.indices == [G1, B1, G2, B2, B3]
    assert t.stop_reason == "sequential_increase_tolerance"
    assert len(t.candidate_kl) == 6 and t.candidate_kl[-1] > t.kl_trace[-1]
    assert t.used[B4] and not rng.picks
    # The reference never stops on it (its counter only moves inside the stop branch): max_iter.
    t_ref, _ = _hand(
        picks + [TO_G1],
        False,
        stop_criterion="sequential_increase_tolerance",
        max_sequential_increases=2,
        max_iter=5,
    )
    assert t_ref.indices == [G1, B1, G2, B2, B3, B4] and t_ref.stop_reason == "max_iter"
    assert len(t_ref.candidate_kl) == 7  # one more candidate computed and discarded


def test_fixed_max_resets_resets_then_stops():
    # g1 (down), b1 (up: reset 1, pool refilled), g1 again (down), b1 (up: max reached, stop)
    picks = [TO_G1, TO_B, TO_G1, TO_B, TO_G1]
    t, rng = _hand(picks, True, stop_criterion="max_resets", max_resets=1, resets_allowed=False)
    assert t.indices == [G1, G1]  # the refilled pool gives g1 twice
    assert (t.stop_reason, t.num_resets, t.just_reset) == ("max_resets", 1, True)
    assert len(t.candidate_kl) == 4
    assert t.descent_iters == [6, 2, 6, 2]  # 3x right after the reset
    assert not rng.picks
    # Reference: with max_resets=1 its stop test needs num_resets == 1, which never happens
    # (its resets need resets_allowed): the increases are accepted until max_iter.
    t_ref, _ = _hand([TO_G1, TO_B, TO_G1], False, stop_criterion="max_resets", max_resets=1, max_iter=1)
    assert t_ref.indices == [G1, B1] and t_ref.stop_reason == "max_iter" and t_ref.num_resets == 0
    # ... and with max_resets=0 it stops at the first increase.
    t_ref0, _ = _hand([TO_G1, TO_B, TO_G1], False, stop_criterion="max_resets", max_resets=0)
    assert t_ref0.indices == [G1] and t_ref0.stop_reason == "max_resets"


def test_fixed_min_kl_keeps_the_row_that_reached_it():
    threshold = (_kl_after([G1]) + _kl_after([G1, G2])) / 2
    picks = [TO_G1, TO_G1, TO_G1]  # g1, then g2 (g1 is used), then the restart draw
    t, _ = _hand(picks, True, stop_criterion="min_kl", min_kl=threshold)
    assert t.indices == [G1, G2] and t.kl_trace[-1] < threshold
    assert (t.stop_reason, t.just_reset, t.num_resets) == ("min_kl", False, 0)
    # The reference drops that row (it is gone from the pool all the same).
    t_ref, _ = _hand(picks, False, stop_criterion="min_kl", min_kl=threshold)
    assert t_ref.indices == [G1] and t_ref.stop_reason == "min_kl" and t_ref.just_reset
    assert t_ref.used[G2]
    # Fixed min_kl does not reset even when resets are allowed.
    t_r, _ = _hand(picks, True, stop_criterion="min_kl", min_kl=threshold, resets_allowed=True)
    assert t_r.indices == [G1, G2] and t_r.num_resets == 0


class _NoDraws:
    def random(self):
        raise AssertionError("drew from rng")

    def sample(self, *args):
        raise AssertionError("drew from rng")


def test_fixed_unknown_names_raise_before_any_work():
    with pytest.raises(ValueError, match="stop_criterion"):
        reference.greedy_select(HPOOL, HX, HW0, k=2, stop_criterion="sometimes", rng=_NoDraws(), fixed=True)
    for fixed in (True, False):
        with pytest.raises(ValueError, match="v_init"):
            reference.greedy_select(HPOOL, HX, HW0, k=2, v_init="middle", rng=_NoDraws(), fixed=fixed)
    # The reference never stops on an unknown criterion.
    t = reference.greedy_select(
        HPOOL, HX, HW0, k=2, stop_criterion="sometimes", max_iter=3, rng=random.Random(0)
    )
    assert t.stop_reason == "max_iter" and len(t.indices) == 4


def test_fixed_exhausted_pool_stops_cleanly():
    pool = HPOOL[[G1, G2]]
    kwargs = dict(k=2, stop_criterion="data_size", max_data_size=10, max_iter=10)
    t = reference.greedy_select(pool, HX, HW0, rng=random.Random(0), fixed=True, **kwargs)
    assert t.stop_reason == "pool_exhausted" and sorted(t.indices) == [0, 1]
    assert len(t.candidate_kl) == 2 and len(t.descent_iters) == 3 and t.used.all()
    with pytest.raises(IndexError, match="pool exhausted"):
        reference.greedy_select(pool, HX, HW0, rng=random.Random(0), fixed=False, **kwargs)


def test_reset_at_i_zero_makes_two_forced_long_descents_and_draw_order():
    """A reset on the very first candidate steps i back to -1; the next accepted row brings it back
    to 0, so the descent after it is 3x long again and draws no coin. The coin is drawn only when
    i != 0 and no reset just happened; the jump draw happens before the stop test."""
    # b1 (up: reset), g1 (down, i: -1 -> 0), g2 (down, i -> 1), b1 (up: no reset left, stop)
    picks = [TO_B, TO_G1, TO_G1, TO_B, TO_G1]
    for fixed in (False, True):
        t, rng = _hand(
            picks,
            fixed,
            stop_criterion="increase",
            resets_allowed=True,
            max_resets=1,
            random_restart_prob=0.5,
        )
        assert t.indices == [G1, G2] and t.stop_reason == "increase"
        assert (t.num_resets, t.just_reset, t.increases) == (1, True, 0)
        assert t.descent_iters == [6, 6, 6, 2]
        assert rng.log == ["sample"] * 4 + ["random", "sample"]
        assert not rng.picks


def test_restart_coin_lengthens_the_descent():
    picks = [TO_G1, TO_G1, TO_G1, TO_G1]
    t, rng = _hand(picks, False, stop_criterion="increase", random_restart_prob=0.5, coin=0.1, max_iter=1)
    assert t.descent_iters == [6, 6, 6] and rng.log.count("random") == 2
    # No jump draw after the max_iter break.
    assert t.stop_reason == "max_iter" and rng.log == ["sample", "sample", "random", "sample", "random"]


def test_jump_draws_the_rows_the_reference_draws():
    """v_init='jump' starts every descent at the row the reference's `random.sample(X.tolist(), 1)`
    draws, interleaved with its restart coin (`random.random()`, drawn on every iteration but
    the first): the expected rows are computed here with the reference's own calls. With
    scale_factor=0 the descent never moves v, so v_opts are the drawn rows."""
    rng = np.random.default_rng(5)
    X, pool = rng.normal(size=(15, 2)), rng.normal(size=(40, 2))
    kwargs = dict(
        k=2, max_iter=3, stop_criterion="data_size", scale_factor=0.0, v_init="jump", grad_desc_iter=2
    )
    t = reference.greedy_select(pool, X, X[:3] + 5.0, rng=random.Random(7), **kwargs)
    theirs = random.Random(7)
    expected = [theirs.sample(X.tolist(), 1)[0]]  # the first v, before the loop
    for _ in range(len(t.v_opts) - 1):
        expected.append(theirs.sample(X.tolist(), 1)[0])  # the jump after a candidate
        theirs.random()  # the next iteration's restart coin
    assert len(t.v_opts) == kwargs["max_iter"] + 2  # max_iter + 1 rows, one candidate discarded
    np.testing.assert_array_equal(np.array(t.v_opts), np.array(expected))


def test_fit_start_modes_draw_like_the_reference():
    rng = np.random.default_rng(3)
    train, X = rng.normal(size=(30, 2)), rng.normal(1.0, 0.5, size=(12, 2))
    kwargs = dict(k=2, max_iter=2, grad_desc_iter=2)
    # random_init_pct: random.sample of int(pct * M) train rows, which stay in the pool.
    W, _, state = reference.fit(train, X, random_init_pct=0.2, rng=random.Random(5), **kwargs)
    rows = random.Random(5).sample(train.tolist(), 6)
    np.testing.assert_array_equal(W[:6], np.array(rows))
    assert len(state[5]) == 30 - (len(W) - 6) - 1  # the discarded max_iter candidate left the pool too
    # Uniform start from np.random, each row L2-normalised (or not).
    for normalize in (True, False):
        W, _, _ = reference.fit(
            train,
            X,
            np_rng=np.random.RandomState(11),
            normalize=normalize,
            uniform_start_size=4,
            dim=2,
            rng=random.Random(0),
            **kwargs,
        )
        raw = np.random.RandomState(11).uniform(low=-1, high=1, size=(4, 2))
        expected = [each / np.linalg.norm(each) for each in raw] if normalize else raw
        np.testing.assert_array_equal(W[:4], np.array(expected))


def test_inputs_are_not_mutated():
    rng = np.random.default_rng(4)
    train = rng.normal(size=(25, 3))
    X = rng.normal(0.5, 1.0, size=(15, 3)).astype(np.float32)
    W0 = np.asfortranarray(rng.normal(size=(4, 3)))
    v = X.mean(axis=0).astype(np.float64)
    used = np.zeros(25, dtype=bool)
    used[3] = True
    copies = [a.copy() for a in (train, X, W0, v, used)]
    t = reference.greedy_select(
        train,
        X,
        W0,
        k=3,
        max_iter=6,
        stop_criterion="increase",
        resets_allowed=True,
        v_init="prev_opt",
        grad_desc_iter=3,
        rng=random.Random(1),
    )
    reference.greedy_select(
        train,
        X,
        W0,
        k=3,
        max_iter=4,
        v_init="jump",
        discard_nearest_for_xy=True,
        grad_desc_iter=3,
        rng=random.Random(1),
        fixed=True,
    )
    reference.fit(train, X, D=W0, k=3, max_iter=3, grad_desc_iter=3, rng=random.Random(1))
    out = reference.gradient_descend(X, W0, v, 10.0, 3)
    reference.kl_gradient(X, W0, v, discard_nearest_for_xy=True)
    reference.kl_divergence(X, W0, k=3)
    reference.auto_scale_factor(X, W0, v)
    reference.nearest_unused(train, v, used)
    for before, after in zip(copies, (train, X, W0, v, used)):
        np.testing.assert_array_equal(before, after)
    assert out is not v
    assert all(a is not b for a, b in zip(t.v_opts, t.v_opts[1:]))


def test_nearest_unused_ties_and_exhaustion():
    train = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [5.0, 5.0]])
    used = np.zeros(4, dtype=bool)
    assert reference.nearest_unused(train, np.zeros(2), used) == 0  # three-way tie: lowest index
    used[0] = True
    assert reference.nearest_unused(train, np.zeros(2), used) == 1
    assert reference.nearest_unused(train, np.zeros(2), np.ones(4, dtype=bool)) == -1


def test_discard_auto_scale_factor_can_be_infinite():
    """With discard_nearest_for_xy, when v0 = mean(X) is strictly the nearest point of W0 + {v0} to
    every target row, every gradient term is dropped: the gradient is 0, the "auto" scale factor
    ||v0|| / 0 is inf and the descent turns v into NaN (silently, as JAX does in the reference)."""
    X = np.array([[1.0, 1.0], [1.2, 1.0], [1.0, 1.2], [1.2, 1.2], [1.1, 1.3]])
    W0 = np.array([[-3.0, -3.0], [-4.0, -3.0]])
    train = np.array([[0.0, 0.0], [1.0, 1.1], [2.0, 2.0]])
    assert reference.auto_scale_factor(X, W0, X.mean(axis=0), discard_nearest_for_xy=True) == np.inf
    t = reference.greedy_select(
        train,
        X,
        W0,
        k=2,
        max_iter=1,
        stop_criterion="data_size",
        max_data_size=10,
        discard_nearest_for_xy=True,
        grad_desc_iter=2,
        rng=random.Random(0),
    )
    assert t.scale_factor == np.inf and np.isnan(t.v_opts[0]).all()
    assert t.indices == [0, 1]  # NaN distances everywhere: the lowest index wins
