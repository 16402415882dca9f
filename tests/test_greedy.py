"""select(method="greedy"): the exact greedy method on the unaveraged k-NN estimator, against the
brute-force NumPy version in `gio_rs.reference` (every candidate's estimate recomputed from
scratch), its stop rules, the quantised path, thread-count determinism and input errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gio_rs
from gio_rs import GioError, reference

DTYPES = st.sampled_from([np.float32, np.float64])
CRITERIA = ("increase", "min_difference", "sequential_increase_tolerance", "min_kl", "data_size")


def assert_same_floats(got, want):
    """Equal up to 1e-9 relative, NaN where the other is NaN."""
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=1e-9, atol=1e-9, equal_nan=True)


def assert_matches_reference(sel, ref):
    np.testing.assert_array_equal(sel.indices, np.asarray(ref.indices, dtype=np.int64))
    assert_same_floats(sel.kl_trace, ref.kl_trace)
    assert_same_floats(sel.candidate_kl, ref.candidate_kl)
    assert_same_floats([sel.kl_start], [ref.kl_start])
    assert sel.stop_reason == ref.stop_reason


@st.composite
def greedy_problem(draw):
    """Continuous random data (no accidental near-ties), plus exact duplicate pool rows (exact
    ties, which both sides must give to the lowest index)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(2, 9))
    d = draw(st.integers(1, 4))
    k = draw(st.integers(1, min(4, n - 1)))
    pool = rng.normal(0.3, 1.0, size=(draw(st.integers(1, 14)), d))
    duplicates = rng.integers(0, len(pool), size=draw(st.integers(0, 3)))
    pool = np.vstack([pool, pool[duplicates]])
    target = rng.normal(size=(n, d))
    m0 = draw(st.integers(0, 5))
    init = rng.normal(-0.2, 1.0, size=(m0, d)) if m0 else None
    dtype = draw(DTYPES)
    criterion = draw(st.sampled_from(CRITERIA))
    stop = dict(
        stop_criterion=criterion,
        max_iter=draw(st.integers(0, 20)),
        min_difference=draw(st.sampled_from([0.0, 0.01, 0.2])),
        min_kl=draw(st.floats(-3.0, 1.0)),
        max_sequential_increases=draw(st.integers(0, 3)),
        max_data_size=draw(st.floats(0.0, 1.0)),
    )
    cast = (lambda a: None if a is None else a.astype(dtype)) if dtype == np.float32 else (lambda a: a)
    return cast(pool), cast(target), cast(init), k, stop


@given(greedy_problem())
def test_same_choices_as_brute_force(problem):
    pool, target, init, k, stop = problem
    sel = gio_rs.select(pool, target, init=init, method="greedy", k=k, **stop)
    ref = reference.exact_greedy_select(pool, target, init, k=k, **stop)
    assert_matches_reference(sel, ref)
    assert sel.init.dtype == pool.dtype


@given(greedy_problem())
def test_same_choices_as_brute_force_until_the_pool_is_exhausted(problem):
    pool, target, init, k, _ = problem
    stop = dict(stop_criterion="data_size", max_data_size=1.0, max_iter=1000)
    sel = gio_rs.select(pool, target, init=init, method="greedy", k=k, **stop)
    ref = reference.exact_greedy_select(pool, target, init, k=k, **stop)
    assert_matches_reference(sel, ref)
    assert sel.stop_reason == "pool_exhausted" and sorted(sel.indices) == list(range(len(pool)))


def grid_matrices(rows, dim):
    """Values on a coarse grid: duplicates and exact ties everywhere."""
    return hnp.arrays(np.float64, (rows, dim), elements=st.integers(-4, 4).map(lambda v: v / 2.0))


@st.composite
def tie_rich_problem(draw):
    n = draw(st.integers(2, 7))
    d = draw(st.integers(1, 3))
    return (
        draw(grid_matrices(draw(st.integers(1, 10)), d)),
        draw(grid_matrices(n, d)),
        draw(st.integers(1, min(3, n - 1))),
    )


@given(tie_rich_problem())
def test_every_choice_is_optimal_on_tie_rich_data(problem):
    """Where distinct candidates tie exactly in real arithmetic, rounding may order them either
    way (both sides sum logs in their own order): replay the run and check that each row chosen
    has the best brute-force score, and that the trace is the estimate of each prefix."""
    pool, target, k = problem
    sel = gio_rs.select(pool, target, method="greedy", k=k, stop_criterion="data_size", max_iter=100)
    assert sel.stop_reason == "pool_exhausted"
    chosen = np.empty((0, pool.shape[1]))
    for step, idx in enumerate(sel.indices):
        unused = np.setdiff1d(np.arange(len(pool)), sel.indices[:step])
        rank = min(k, len(chosen) + 1)
        scores = [reference._greedy_score(target, np.vstack([chosen, pool[c : c + 1]]), rank) for c in unused]
        best = min(scores)
        assert scores[list(unused).index(idx)] <= best + 1e-9 * (1 + abs(best))
        chosen = np.vstack([chosen, pool[idx : idx + 1]])
        assert_same_floats([sel.kl_trace[step]], [reference.knn_kl_divergence(target, chosen, k)])


@st.composite
def kl_problem(draw):
    n = draw(st.integers(2, 12))
    d = draw(st.integers(1, 4))
    k = draw(st.integers(1, n - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(DTYPES)
    x = rng.normal(size=(n, d)).astype(dtype)
    y = rng.normal(0.5, 1.0, size=(draw(st.integers(1, 12)), d)).astype(dtype)
    return x, y, k


@given(kl_problem())
def test_knn_kl_divergence_matches_reference(problem):
    x, y, k = problem
    assert_same_floats([gio_rs.knn_kl_divergence(x, y, k)], [reference.knn_kl_divergence(x, y, k)])
    assert np.isnan(gio_rs.knn_kl_divergence(x, y, k)) == (len(y) < k)


def two_regions(seed=0, near=6, far=30, n=10, d=2):
    """A target in one small region; a few pool rows there and many far away, so the estimate has
    to rise once the near rows are used."""
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(n, d))
    pool = np.vstack([rng.normal(size=(near, d)), rng.normal(40.0, 1.0, size=(far, d))])
    return pool, target


def free_run(pool, target, k, init=None):
    return gio_rs.select(
        pool, target, init=init, method="greedy", k=k, stop_criterion="data_size", max_iter=10**6
    )


def test_a_budget_past_saturation_is_filled_with_target_like_rows():
    """Once the target rows' nearest selected rows can no longer change (about n·k rows), every
    candidate ties: the rest of the budget follows the density ratio of the pool against the
    target (largest first), not the row index, and the reference does the same."""
    rng = np.random.default_rng(4)
    n, k, d = 6, 1, 3
    target = rng.normal(size=(n, d)) + 3.0
    far = rng.normal(size=(200, d)) - 3.0  # rows 0..199: unlike the target
    near = rng.normal(size=(60, d)) + 3.0  # rows 200..259: like it
    pool = np.vstack([far, near])
    sel = gio_rs.select(pool, target, method="greedy", k=k, stop_criterion="data_size", max_iter=49)
    assert len(sel) == 50 and sel.stop_reason == "max_iter"
    after = sel.indices[n * k :]
    assert np.all(after >= 200), after  # index order would have taken rows 0, 1, 2, ...
    # well past saturation (here from row 9 on): by the ratio, largest first
    ratio = reference._ratio_scores(pool, target)
    assert np.all(np.diff(ratio[sel.indices[25:]]) <= 0)
    ref = reference.exact_greedy_select(pool, target, None, k=k, stop_criterion="data_size", max_iter=49)
    assert_matches_reference(sel, ref)


def test_increase_rejects_the_row_that_raised_the_estimate():
    pool, target = two_regions()
    sel = gio_rs.select(pool, target, method="greedy", k=2)
    assert sel.stop_reason == "increase"
    assert len(sel.candidate_kl) == len(sel) + 1
    assert sel.candidate_kl[-1] > sel.kl_trace[-1]
    assert np.isnan(sel.kl_trace[0]) and np.all(np.diff(sel.kl_trace[1:]) <= 0)
    np.testing.assert_array_equal(sel.indices, free_run(pool, target, 2).indices[: len(sel)])


def test_min_difference_stops_on_a_small_gain():
    pool, target = two_regions(seed=1, near=40, far=0, n=15, d=3)
    free = free_run(pool, target, 2)
    sel = gio_rs.select(
        pool, target, method="greedy", k=2, stop_criterion="min_difference", min_difference=0.05
    )
    cut = len(sel)
    assert sel.stop_reason == "min_difference"
    np.testing.assert_array_equal(sel.indices, free.indices[:cut])
    gains = -np.diff(free.kl_trace)
    assert gains[cut - 1] < 0.05 and np.all(gains[1 : cut - 1] >= 0.05)


def test_min_kl_keeps_the_row_that_reached_it():
    pool, target = two_regions(seed=2, near=40, far=0, n=12)
    free = free_run(pool, target, 1)
    goal = free.kl_trace[5] + 1e-12
    sel = gio_rs.select(pool, target, method="greedy", k=1, stop_criterion="min_kl", min_kl=goal)
    first_below = int(np.flatnonzero(free.kl_trace < goal)[0])
    np.testing.assert_array_equal(sel.indices, free.indices[: first_below + 1])
    assert sel.stop_reason == "min_kl" and sel.kl_final < goal


def test_sequential_increase_tolerance_accepts_the_allowed_increases():
    pool, target = two_regions(seed=3, near=5, far=30, n=8)
    sel = gio_rs.select(
        pool,
        target,
        method="greedy",
        k=1,
        stop_criterion="sequential_increase_tolerance",
        max_sequential_increases=2,
    )
    assert sel.stop_reason == "sequential_increase_tolerance"
    steps = np.diff(np.concatenate([sel.kl_trace, sel.candidate_kl[-1:]]))
    assert np.all(steps[-3:] > 0)  # two accepted increases, then the rejected third
    np.testing.assert_array_equal(sel.indices, free_run(pool, target, 1).indices[: len(sel)])


def test_size_limits_accept_one_more_row_than_the_limit():
    pool, target = two_regions(seed=4, near=40, far=20)
    by_iter = gio_rs.select(pool, target, method="greedy", k=2, stop_criterion="data_size", max_iter=4)
    assert len(by_iter) == 5 and len(by_iter.candidate_kl) == 5 and by_iter.stop_reason == "max_iter"
    by_size = gio_rs.select(pool, target, method="greedy", k=2, stop_criterion="data_size", max_data_size=0.1)
    assert len(by_size) == int(0.1 * len(pool)) + 1 and by_size.stop_reason == "data_size"


def test_init_counts_towards_k_and_random_init_is_seeded():
    pool, target = two_regions(seed=5, near=40, far=10)
    init = target[:3] + 0.1
    sel = free_run(pool, target, 3, init=init)
    assert np.isfinite(sel.kl_start) and np.all(np.isfinite(sel.kl_trace))
    assert sel.kl_start == pytest.approx(gio_rs.knn_kl_divergence(target, init, 3), rel=1e-12)
    small = free_run(pool, target, 3, init=init[:1])
    assert np.isnan(small.kl_start) and np.isnan(small.kl_trace[0]) and np.isfinite(small.kl_trace[1])
    drawn = gio_rs.select(pool, target, method="greedy", k=3, random_init_pct=0.1, seed=7, max_iter=3)
    again = gio_rs.select(pool, target, method="greedy", k=3, random_init_pct=0.1, seed=7, max_iter=3)
    np.testing.assert_array_equal(drawn.init_indices, again.init_indices)
    np.testing.assert_array_equal(drawn.indices, again.indices)
    ref = reference.exact_greedy_select(pool, target, pool[drawn.init_indices], k=3, max_iter=3)
    assert_matches_reference(drawn, ref)


def test_quantised_path_selects_among_centroids_then_explodes():
    rng = np.random.default_rng(6)
    pool = np.vstack([rng.normal(c, 0.3, size=(300, 4)) for c in (-3.0, 0.0, 3.0, 6.0)])
    target = rng.normal(0.0, 1.0, size=(200, 4))
    kwargs = dict(
        method="greedy", k=3, n_clusters=40, n_clusters_target=25, seed=1, stop_criterion="increase"
    )
    sel = gio_rs.select(pool, target, **kwargs)
    q = sel.quantization
    ref = reference.exact_greedy_select(q.train_centers, q.target_centers, k=3)
    np.testing.assert_array_equal(sel.clusters, ref.indices)
    assert_same_floats(sel.kl_trace, ref.kl_trace)
    # The members of each chosen cluster, clusters in first-chosen order, rows ascending.
    labels = q.train_labels.tolist()
    members = [
        i for c in dict.fromkeys(sel.clusters.tolist()) for i, label in enumerate(labels) if label == c
    ]
    assert sel.indices.tolist() == members
    again = gio_rs.select(pool, target, **kwargs)
    np.testing.assert_array_equal(again.indices, sel.indices)


DETERMINISM_SCRIPT = """
import json, numpy as np, gio_rs
rng = np.random.default_rng(0)
pool = rng.normal(0.2, 1.0, size=(4000, 16)).astype(np.{dtype})
target = rng.normal(size=(120, 16)).astype(np.{dtype})
sel = gio_rs.select(pool, target, init=target[:2] + 0.5, method="greedy", k=4,
                    stop_criterion="data_size", max_iter=40)
print(json.dumps([sel.indices.tolist(), [float(v).hex() for v in sel.kl_trace], sel.stop_reason]))
"""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_result_for_any_thread_count_and_simd_level(dtype):
    outputs = []
    for env in ({"RAYON_NUM_THREADS": "1"}, {"RAYON_NUM_THREADS": "2"}, {"RAYON_NUM_THREADS": "3"},
                {"RAYON_NUM_THREADS": "2", "GIO_RS_NO_SIMD": "1"}):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-c", DETERMINISM_SCRIPT.format(dtype=dtype)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(json.loads(done.stdout))
    assert len(outputs[0][0]) == 41
    # Any thread count: the same bits. The scalar level rounds products separately
    # (docs/guarantees.md): the same rows and stop, KL values within roundoff.
    assert all(out == outputs[0] for out in outputs[1:3])
    scalar = outputs[3]
    assert scalar[0] == outputs[0][0] and scalar[2] == outputs[0][2]
    np.testing.assert_allclose(
        [float.fromhex(v) for v in scalar[1]], [float.fromhex(v) for v in outputs[0][1]], rtol=1e-12
    )


def test_callback_sees_every_step_and_can_stop_the_run():
    pool, target = two_regions(seed=8, near=30, far=5)
    events = []
    sel = gio_rs.select(pool, target, method="greedy", k=2, callback=events.append)
    assert len(events) == len(sel.candidate_kl)
    assert [e.selected for e in events[:-1]] == list(range(1, len(sel) + 1))
    assert events[-1].accepted is False and events[-1].selected == len(sel)
    assert_same_floats([e.kl for e in events], sel.candidate_kl)

    def stop_at_three(event):
        if event.candidate == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gio_rs.select(pool, target, method="greedy", k=2, callback=stop_at_three)


def test_inputs_are_not_modified():
    pool, target = two_regions(seed=9)
    init = target[:2] + 1.0
    copies = [a.copy() for a in (pool, target, init)]
    for a in (pool, target, init):
        a.setflags(write=False)
    gio_rs.select(pool, target, init=init, method="greedy", k=2)
    for a, c in zip((pool, target, init), copies):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(method="fast"), "method"),
        (dict(method=None), "method"),
        (dict(v_init="jump"), "v_init"),
        (dict(lr=0.1), "lr"),
        (dict(grad_desc_iter=10), "grad_desc_iter"),
        (dict(scale_factor=2.0), "scale_factor"),
        (dict(resets_allowed=True), "resets_allowed"),
        (dict(max_resets=1), "max_resets"),
        (dict(random_restart_prob=0.5), "random_restart_prob"),
        (dict(discard_nearest_for_xy=True), "discard_nearest_for_xy"),
        (dict(uniform_start_size=5), "uniform_start_size"),
        (dict(normalize=False), "normalize"),
        (dict(record_v_opts=True), "record_v_opts"),
        (dict(stop_criterion="max_resets"), "stop_criterion"),
        (dict(stop_criterion="nope"), "stop_criterion"),
        (dict(k=10), "k"),
        (dict(k=0), "k"),
        (dict(greedy_max_bytes=-1), "greedy_max_bytes"),
        (dict(greedy_max_bytes=36 * 10 * 8 - 1), "train"),
        (dict(init=np.ones((2, 3))), "init"),
        (dict(min_kl=float("nan")), "min_kl"),
    ],
)
def test_bad_options_name_the_argument(kwargs, name):
    pool, target = two_regions(seed=10)  # 36 pool rows, 10 target rows
    kwargs = {"method": "greedy", **kwargs}
    with pytest.raises((GioError, TypeError), match=f"^{name}:"):
        gio_rs.select(pool, target, **kwargs)


def test_table_limit_is_inclusive_and_defaults_are_accepted():
    pool, target = two_regions(seed=10)
    sel = gio_rs.select(
        pool, target, method="greedy", k=2, greedy_max_bytes=36 * 10 * 8, lr=0.01, v_init="mean"
    )
    assert len(sel) >= 2 and np.isnan(sel.scale_factor) and sel.v_opts is None
