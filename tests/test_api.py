"""The Python API's promises: clear errors naming the argument, inputs never modified, dtypes kept,
seeds, callbacks, progress, the GIL released, the fixed semantics of `select`."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import gio_rs
from gio_rs import GioError


def make_data(seed=0, M=300, n=60, d=5, dtype=np.float64):
    rng = np.random.default_rng(seed)
    train = rng.normal(0.3, 1.0, (M, d)).astype(dtype)
    target = rng.normal(1.0, 0.5, (n, d)).astype(dtype)
    init = rng.normal(-1.0, 1.0, (6, d)).astype(dtype)
    return train, target, init


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(k=0), "k"),
        (dict(k=60), "k"),
        (dict(k=2.5), "k"),
        (dict(max_iter=-1), "max_iter"),
        (dict(stop_criterion="sometimes"), "stop_criterion"),
        (dict(v_init="middle"), "v_init"),
        (dict(random_restart_prob=1.5), "random_restart_prob"),
        (dict(scale_factor="big"), "scale_factor"),
        (dict(scale_factor=float("nan")), "scale_factor"),
        (dict(lr=float("inf")), "lr"),
        (dict(max_data_size=-0.1), "max_data_size"),
        (dict(grad_desc_iter=-3), "grad_desc_iter"),
        (dict(max_resets=-1), "max_resets"),
        (dict(seed=-4), "seed"),
        (dict(resets_allowed="yes"), "resets_allowed"),
    ],
)
def test_select_option_errors_name_the_argument(kwargs, name):
    train, target, init = make_data()
    with pytest.raises((GioError, TypeError), match=f"^{name}:"):
        gio_rs.select(train, target, init=init, **kwargs)


def test_gio_error_is_a_value_error():
    assert issubclass(GioError, ValueError)
    assert GioError.__module__ == "gio_rs"


@pytest.mark.parametrize("which", ["train", "target", "init"])
def test_array_errors_name_the_argument(which):
    train, target, init = make_data()
    arrays = dict(train=train, target=target, init=init)

    def call(**override):
        a = {**arrays, **override}
        return gio_rs.select(a["train"], a["target"], init=a["init"])

    bad_nan = arrays[which].copy()
    bad_nan[2, 1] = np.nan
    with pytest.raises(GioError, match=f"^{which}: contains NaN or infinite values \\(rows 2\\)"):
        call(**{which: bad_nan})
    bad_inf = arrays[which].copy()
    bad_inf[0, 0] = -np.inf
    with pytest.raises(GioError, match=f"^{which}:"):
        call(**{which: bad_inf})
    with pytest.raises(GioError, match=f"^{which}: expected a 2-D array"):
        call(**{which: arrays[which][0]})
    with pytest.raises(GioError, match=f"^{which}:"):
        call(**{which: arrays[which][:0]})
    with pytest.raises(GioError, match=f"^{which}:"):
        call(**{which: arrays[which][:, :0]})
    with pytest.raises(TypeError, match=f"^{which}:"):
        call(**{which: arrays[which] > 0})
    with pytest.raises(TypeError, match=f"^{which}:"):
        call(**{which: arrays[which].astype(complex)})
    with pytest.raises(TypeError, match=f"^{which}:"):
        call(**{which: arrays[which].astype(str)})
    if which != "target":
        with pytest.raises(GioError, match=f"^{which}: has 4 columns but target has 5"):
            call(**{which: arrays[which][:, :4]})


def test_estimator_errors():
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(GioError, match="^k: must be <= n - 1 = 9"):
        gio_rs.kl_divergence(x, x, k=10)
    with pytest.raises(GioError, match="^x: needs at least 2"):
        gio_rs.kl_divergence(x[:1], x, k=1)
    with pytest.raises(GioError, match="^y: needs at least 2"):
        gio_rs.kl_divergence(x, x[:1], k=1, discard_nearest_for_xy=True)
    with pytest.raises(GioError, match="^y: has 2 columns but x has 3"):
        gio_rs.kl_divergence(x, x[:, :2])
    with pytest.raises(GioError, match="^v: has 2 values"):
        gio_rs.kl_gradient(x, x, np.zeros(2))
    with pytest.raises(TypeError, match="^x:"):
        gio_rs.kl_divergence(None, x)


def test_giokl_errors():
    train, target, init = make_data()
    model = gio_rs.GIOKL(verbose=False)
    with pytest.raises(GioError, match="^v_init:"):
        model.fit(train, target, D=init, v_init="middle")
    with pytest.raises(GioError, match="^dim: GIOKL\\(dim=768\\) must equal"):
        model.fit(train, target)  # uniform start in 768-d for 5-d data
    with pytest.raises(GioError, match="^k:"):
        model.fit(train, target, D=init, k=100)


# ---------------------------------------------------------------- inputs are not modified


def test_inputs_are_not_modified_and_read_only_arrays_work():
    train, target, init = make_data()
    copies = [a.copy() for a in (train, target, init)]
    for a in (train, target, init):
        a.setflags(write=False)
    sel = gio_rs.select(train, target, init=init, max_iter=10, v_init="jump", seed=3)
    W, _, _ = gio_rs.GIOKL(verbose=False).fit(train, target, D=init, max_iter=10)
    gio_rs.kl_divergence(target, train)
    v = target.mean(axis=0)
    v.setflags(write=False)
    gio_rs.kl_gradient(target, init, v)
    gio_rs.GIOKL(verbose=False).gradient_descend(target, init, v, 1.0, 3)
    for a, c in zip((train, target, init), copies):
        np.testing.assert_array_equal(a, c)
    assert len(sel) > 0 and len(W) > len(init)


def test_layouts_and_int_input_give_the_same_result():
    train, target, init = make_data()
    base = gio_rs.select(train, target, init=init, max_iter=15)
    fortran = gio_rs.select(np.asfortranarray(train), np.asfortranarray(target), init=init, max_iter=15)
    wide = np.zeros((train.shape[0], train.shape[1] * 2))
    wide[:, ::2] = train
    strided = gio_rs.select(wide[:, ::2], target, init=init, max_iter=15)
    listed = gio_rs.select(train.tolist(), target.tolist(), init=init.tolist(), max_iter=15)
    for other in (fortran, strided, listed):
        np.testing.assert_array_equal(other.indices, base.indices)
        np.testing.assert_array_equal(other.kl_trace, base.kl_trace)
    ints = np.arange(40).reshape(20, 2) % 7
    assert np.isfinite(gio_rs.kl_divergence(ints, ints + 1, k=3))


FLOAT32_PEAK = """
import json, numpy as np, gio_rs

def status(key):  # bytes, from the kernel's accounting: Rust allocations included
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

rng = np.random.default_rng(0)
train = rng.standard_normal((200_000, 32), dtype=np.float32)  # made in float32: no float64 peak
target = rng.standard_normal((300, 32), dtype=np.float32) + 0.5
init = target[:5] + 1
gio_rs.select(train[:1000], target, init=init, max_iter=3)  # thread pool and imports up
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # peak resident size := current resident size
except OSError:
    pass  # then the peak so far is the arrays and the warm-up, below the select's own peak
before = status("VmHWM")
sel = gio_rs.select({train}, target, init=init, max_iter=3)
print(json.dumps({{"extra": status("VmHWM") - before, "train": train.nbytes, "dtype": str(sel.init.dtype)}}))
"""


def float32_peak(train_expression: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", FLOAT32_PEAK.format(train=train_expression)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout)


def test_float32_stays_float32_in_memory():
    """The peak resident memory a float32 select adds (measured by the kernel, so Rust's
    allocations count) is far below one copy of train; the same run given float64 input adds two
    float32 trains' worth, which shows the measurement sees such a copy."""
    out = float32_peak("train")
    assert out["dtype"] == "float32"
    assert out["extra"] < 0.25 * out["train"], out  # measured: 0.08
    control = float32_peak("train.astype(np.float64)")
    assert control["extra"] > 1.5 * control["train"], control


def test_giokl_keeps_the_working_dtype():
    train, target, init = make_data(dtype=np.float32)
    W, kl_divs, state = gio_rs.GIOKL(verbose=False).fit(train, target, D=init, max_iter=5)
    assert W.dtype == np.float32 and state[0].dtype == np.float32 and state[5].dtype == np.float32
    W64, _, _ = gio_rs.GIOKL(verbose=False).fit(train.astype(np.float64), target, D=init, max_iter=5)
    assert W64.dtype == np.float64


# ---------------------------------------------------------------- seeds and randomness


def test_select_seed_reproducible_and_matters():
    train, target, _ = make_data(M=500)
    kwargs = dict(
        max_iter=20, v_init="jump", random_restart_prob=0.5, stop_criterion="data_size", max_data_size=1
    )
    a = gio_rs.select(train, target, seed=11, **kwargs)
    b = gio_rs.select(train, target, seed=11, **kwargs)
    c = gio_rs.select(train, target, seed=12, **kwargs)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.init, b.init)
    assert a.indices.tolist() != c.indices.tolist()


def test_select_uniform_and_random_init():
    train, target, _ = make_data()
    uniform = gio_rs.select(train, target, seed=1, uniform_start_size=7, max_iter=3)
    assert uniform.init.shape == (7, 5) and uniform.init_indices is None
    np.testing.assert_allclose(np.linalg.norm(uniform.init, axis=1), 1.0)
    raw = gio_rs.select(train, target, seed=1, uniform_start_size=7, normalize=False, max_iter=3)
    assert raw.init.min() >= -1 and raw.init.max() < 1
    drawn = gio_rs.select(train, target, seed=1, random_init_pct=0.1, max_iter=3)
    assert len(drawn.init_indices) == 30
    np.testing.assert_array_equal(drawn.init, train[drawn.init_indices])
    with pytest.raises(GioError, match="^random_init_pct:"):
        gio_rs.select(train, target, random_init_pct=0.001)


def test_giokl_uses_global_random_state_like_the_reference():
    train, target, _ = make_data(M=400)
    kwargs = dict(max_iter=10, v_init="jump", random_restart_prob=0.3, random_init_pct=0.05)
    model = gio_rs.GIOKL(dim=5, verbose=False)
    random.seed(5)
    np.random.seed(5)
    W1, kl1, _ = model.fit(train, target, **kwargs)
    random.seed(5)
    np.random.seed(5)
    W2, kl2, _ = model.fit(train, target, **kwargs)
    np.testing.assert_array_equal(W1, W2)
    assert kl1 == kl2
    seeded = gio_rs.GIOKL(dim=5, verbose=False, seed=5)
    W3, _, _ = seeded.fit(train, target, **kwargs)
    W4, _, _ = seeded.fit(train, target, **kwargs)
    np.testing.assert_array_equal(W3, W4)


# ---------------------------------------------------------------- reference semantics vs fixed


def test_pool_exhaustion():
    train, target, init = make_data(M=8)
    with pytest.raises(IndexError, match="exhausted"):
        gio_rs.GIOKL(verbose=False).fit(
            train, target, D=init, max_iter=50, stop_criterion="unknown-never-stops"
        )
    sel = gio_rs.select(train, target, init=init, max_iter=50, stop_criterion="data_size", max_data_size=5)
    assert sel.stop_reason == "pool_exhausted" and sorted(sel.indices.tolist()) == list(range(8))


def test_min_kl_fixed_keeps_the_row_reference_drops_it():
    train, target, init = make_data()
    probe = gio_rs.select(train, target, init=init, max_iter=30, stop_criterion="data_size")
    goal = float(probe.kl_trace[4]) + 1e-9  # first reached at the fifth row (the trace falls here)
    first = int(np.flatnonzero(probe.kl_trace < goal)[0])
    sel = gio_rs.select(train, target, init=init, stop_criterion="min_kl", min_kl=goal)
    assert sel.stop_reason == "min_kl"
    assert sel.indices.tolist() == probe.indices[: first + 1].tolist()
    W, kl_divs, _ = gio_rs.GIOKL(verbose=False).fit(
        train, target, D=init, stop_criterion="min_kl", min_kl=goal
    )
    assert len(kl_divs) == first


def test_unknown_criterion_never_stops_in_giokl_but_is_an_error_in_select():
    train, target, init = make_data()
    W, kl_divs, _ = gio_rs.GIOKL(verbose=False).fit(train, target, D=init, max_iter=12, stop_criterion="nope")
    assert len(kl_divs) == 13
    with pytest.raises(GioError, match="^stop_criterion: unknown criterion 'nope'"):
        gio_rs.select(train, target, init=init, stop_criterion="nope")


def test_giokl_prints_like_the_reference(capsys):
    train, target, init = make_data(M=40)
    gio_rs.GIOKL().fit(train, target, D=init, max_iter=3, stop_criterion="increase", resets_allowed=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Starting KL: ")
    assert out[1].startswith("KL Divergence at iteration 0: ")
    quiet = gio_rs.GIOKL(verbose=False)
    quiet.fit(train, target, D=init, max_iter=3)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------- callbacks, progress, threads


def test_callback_sees_every_candidate_and_can_stop_the_run():
    train, target, init = make_data()
    events = []
    sel = gio_rs.select(
        train, target, init=init, max_iter=8, stop_criterion="data_size", callback=events.append
    )
    assert len(events) == len(sel.candidate_kl)
    assert all(isinstance(e, gio_rs.CandidateEvent) for e in events)
    assert [e.kl for e in events] == sel.candidate_kl.tolist()
    assert events[-1].selected == len(sel.indices)

    class Enough(Exception):
        pass

    def stop_after_three(event):
        if event.candidate == 3:
            raise Enough

    with pytest.raises(Enough):
        gio_rs.select(
            train, target, init=init, max_iter=50, stop_criterion="data_size", callback=stop_after_three
        )


def test_progress_bar(capsys):
    train, target, init = make_data()
    sel = gio_rs.select(train, target, init=init, max_iter=5, stop_criterion="data_size", progress=True)
    err = capsys.readouterr().err
    assert "gio_rs select" in err and f"{len(sel)}/6" in err


def test_concurrent_calls_from_python_threads_are_safe():
    train, target, init = make_data(M=4000, n=800, d=32)
    kwargs = dict(init=init, max_iter=15, stop_criterion="data_size")
    expected = gio_rs.select(train, target, **kwargs)
    results = [None] * 3

    def work(i):
        results[i] = gio_rs.select(train, target, **kwargs)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for r in results:
        np.testing.assert_array_equal(r.indices, expected.indices)
        np.testing.assert_array_equal(r.kl_trace, expected.kl_trace)


def test_the_gil_is_released_while_the_core_works():
    """A Python thread runs while this one is inside a core call. The switch interval is made
    huge, so a thread holding the GIL is never made to give it up: the ticker (which gives it up
    on every tick, in sleep) can only tick between the two reads of its counter if the call
    releases the GIL."""
    train, target, init = make_data(M=20000, n=1500, d=32)
    calls = {
        "select": lambda: gio_rs.select(train, target, init=init, max_iter=5, stop_criterion="data_size"),
        "select greedy": lambda: gio_rs.select(train[:4000], target, method="greedy", max_iter=5),
        "kl_divergence": lambda: gio_rs.kl_divergence(target, train),
        "KMeans.fit": lambda: gio_rs.KMeans(200, max_iter=10, random_state=0).fit(train),
    }
    ticks = [0]
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks[0] += 1
            time.sleep(0.0002)

    interval = sys.getswitchinterval()
    ticker = threading.Thread(target=tick)
    sys.setswitchinterval(1000.0)
    ticker.start()
    try:
        during = {}
        for name, call in calls.items():
            before = ticks[0]
            call()
            during[name] = ticks[0] - before
    finally:
        done.set()
        ticker.join()
        sys.setswitchinterval(interval)
    assert all(n > 0 for n in during.values()), during
