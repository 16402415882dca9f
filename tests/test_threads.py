"""Threads and processes: every public computation gives bit-identical results for
RAYON_NUM_THREADS=1, 2 and 8; calls from several Python threads at once are safe and agree with
serial calls; a `fork`ed child (multiprocessing) computes the same results without deadlock,
also when the parent had already used its worker threads, and still stops on Ctrl-C."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np

import gio_rs

# Every public computation on shapes big enough to be split across threads; prints a digest of
# each result's exact bytes. `FORK` (0/1) runs them again in a forked child too.
WHOLE_API = textwrap.dedent(
    """
    import faulthandler, hashlib, json, multiprocessing as mp, sys, time
    import numpy as np, gio_rs

    def digest(*values):
        h = hashlib.sha256()
        for v in values:
            h.update(np.ascontiguousarray(np.asarray(v, dtype=np.float64)).tobytes())
        return h.hexdigest()[:16]

    def results():
        rng = np.random.default_rng(3)
        train = rng.normal(size=(5000, 40))
        target = rng.normal(0.4, 1.0, (700, 40))
        train32, target32 = train.astype(np.float32), target.astype(np.float32)
        out = {}
        out["kl_divergence"] = digest(gio_rs.kl_divergence(target, train, 5))
        out["kl_divergence f32"] = digest(
            gio_rs.kl_divergence(target32, train32, 3, discard_nearest_for_xy=True))
        out["knn_kl_divergence"] = digest(gio_rs.knn_kl_divergence(target, train, 4))
        own = np.where(np.arange(5000) < 2000, 700 + np.arange(5000), -1).astype(np.int64)
        for x, t in ((train, target), (train32, target32)):
            counts = gio_rs._core.ratio_knn_counts(x, t, x[:2000], 30, own)
            out["ratio_knn_counts " + str(x.dtype)] = digest(counts)
        out["kl_gradient"] = digest(gio_rs.kl_gradient(target, train[:900], train[7]))
        for v_init in ("mean", "jump", "prev_opt"):
            s = gio_rs.select(train32, target32, max_iter=8, v_init=v_init, random_restart_prob=0.3,
                              stop_criterion="data_size", seed=11)
            out["select " + v_init] = digest(s.indices, s.kl_trace, s.candidate_kl)
        s = gio_rs.select(train, target, method="greedy", k=2, max_iter=15, stop_criterion="data_size")
        out["select greedy"] = digest(s.indices, s.kl_trace, s.candidate_kl)
        s = gio_rs.select(train, target, n_clusters=60, n_clusters_target=30, max_iter=6,
                          stop_criterion="data_size", seed=2, kmeans_max_iter=20)
        out["select quantized"] = digest(s.indices, s.clusters, s.kl_trace)
        model = gio_rs.GIOKL(dim=40, seed=4, verbose=False)
        w, kl = model.fit(train32[:3000], target32[:500], max_iter=5, stop_criterion="data_size")[:2]
        out["GIOKL.fit"] = digest(w, kl)
        out["GIOKL.gradient_descend"] = digest(model.gradient_descend(target, train[:800], train[3], 1.0, 20))
        for init in ("k-means++", "random"):
            km = gio_rs.KMeans(50, init=init, n_init=2, max_iter=25, random_state=5).fit(train32)
            out["KMeans " + init] = digest(km.cluster_centers_, km.labels_, km.inertia_, km.predict(target32),
                                           km.transform(target32[:50]), km.score(target32))
        q = gio_rs.quantize(train, target, 40, n_clusters_target=20, seed=6, max_iter=15)
        out["quantize"] = digest(q.train_centers, q.train_labels, q.target_centers,
                                 q.explode([1, 5, 9]).indices)
        return out

    def child(queue, patience):
        # A deadlocked child never finishes; a slow one (a loaded machine) does. After `patience`
        # seconds it prints every thread's stack and exits, so a deadlock fails showing where.
        faulthandler.dump_traceback_later(patience, exit=True)
        queue.put(results())

    started = time.monotonic()
    parent = results()
    patience = max(300.0, 20 * (time.monotonic() - started))  # the parent's own time, many times over
    if int(sys.argv[1]):
        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        proc = ctx.Process(target=child, args=(queue, patience), daemon=True)
        proc.start()
        while proc.is_alive() and queue.empty():
            proc.join(1.0)
        assert not queue.empty(), f"the forked child ended without results (exit code {proc.exitcode})"
        forked = queue.get()
        proc.join()
        assert proc.exitcode == 0, proc.exitcode
        assert forked == parent, (forked, parent)
    print(json.dumps(parent))
    """
)


def run_whole_api(threads: str, fork: bool = False) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", WHOLE_API, "1" if fork else "0"],
        env=dict(os.environ, RAYON_NUM_THREADS=threads),
        capture_output=True,
        text=True,
        timeout=3600,  # a hang guard: the forked child has its own, with its stacks
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_whole_api_identical_for_1_2_and_8_threads():
    one, two, eight = (run_whole_api(t) for t in ("1", "2", "8"))
    assert len(one) == 16
    assert one == two == eight


def test_forked_child_computes_the_same_without_deadlock():
    """The parent has used its worker threads before the fork; the child must not wait for them."""
    assert run_whole_api("2", fork=True) == run_whole_api("2")


def _digest(*values) -> str:
    h = hashlib.sha256()
    for v in values:
        h.update(np.ascontiguousarray(np.asarray(v, dtype=np.float64)).tobytes())
    return h.hexdigest()


def test_calls_from_several_python_threads_at_once_agree_with_serial_calls():
    rng = np.random.default_rng(8)
    train = rng.normal(size=(3000, 24))
    target = rng.normal(0.3, 1.0, (500, 24))
    jobs = {
        "select": lambda: _digest(
            gio_rs.select(train, target, max_iter=6, stop_criterion="data_size", seed=1).indices
        ),
        "greedy": lambda: _digest(
            gio_rs.select(train, target, method="greedy", max_iter=8, stop_criterion="data_size").indices
        ),
        "kmeans": lambda: _digest(gio_rs.KMeans(30, max_iter=20, random_state=2).fit(train).cluster_centers_),
        "kl": lambda: _digest(gio_rs.kl_divergence(target, train, 4)),
        "quantize": lambda: _digest(gio_rs.quantize(train, target, 25, seed=3, max_iter=10).train_labels),
        "gradient": lambda: _digest(gio_rs.kl_gradient(target, train[:400], train[0])),
    }
    serial = {name: job() for name, job in jobs.items()}
    results: dict[str, list] = {name: [] for name in jobs}
    errors: list[BaseException] = []
    start = threading.Barrier(2 * len(jobs))

    def work(name):
        try:
            start.wait()
            results[name].append(jobs[name]())
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in jobs for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    assert results == {name: [value, value] for name, value in serial.items()}


FORKED_CTRL_C = textwrap.dedent(
    """
    import multiprocessing as mp, os, signal, time
    import numpy as np, gio_rs
    rng = np.random.default_rng(0)
    train = rng.normal(size=(20000, 128)).astype(np.float32)
    X = rng.normal(0.5, 1, (2000, 128)).astype(np.float32)
    gio_rs.select(train[:3000], X[:500], max_iter=3, stop_criterion="data_size")  # warm the pool

    def child(queue):
        try:
            queue.put(("started", time.monotonic()))
            gio_rs.select(train, X, init=X[:5] + 1, max_iter=100000, stop_criterion="data_size",
                          grad_desc_iter=500)
            queue.put(("finished", time.monotonic()))
        except KeyboardInterrupt:
            queue.put(("interrupted", time.monotonic()))  # when the child has the exception

    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=child, args=(queue,), daemon=True)
    proc.start()
    assert queue.get(timeout=600)[0] == "started"  # timeouts here are hang guards
    time.sleep(1.5)
    sent = time.monotonic()  # CLOCK_MONOTONIC: the same clock in parent and child
    os.kill(proc.pid, signal.SIGINT)
    outcome, at = queue.get(timeout=600)
    print(outcome, at - sent)
    proc.join(600)
    """
)


def test_ctrl_c_stops_a_long_selection_in_a_forked_child():
    """The child's parallel sections run on its own pool; Ctrl-C is still seen between them, within
    a second of the signal (timestamped by the child where it catches KeyboardInterrupt)."""
    done = subprocess.run(
        [sys.executable, "-c", FORKED_CTRL_C],
        capture_output=True,
        text=True,
        timeout=1800,
        env=dict(os.environ, RAYON_NUM_THREADS="2"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome, seconds = done.stdout.split()
    assert outcome == "interrupted"
    assert float(seconds) < 1.0
