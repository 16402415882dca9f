"""Process-level behaviour: Ctrl-C interrupts a long run, results do not depend on the thread
count. Each runs gio_rs in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

LONG_RUN = textwrap.dedent(
    """
    import sys, numpy as np, gio_rs
    rng = np.random.default_rng(0)
    train = rng.normal(size=(20000, 256)).astype(np.float32)
    X = rng.normal(0.5, 1, (3000, 256)).astype(np.float32)
    print("ready", flush=True)
    gio_rs.select(train, X, init=X[:5] + 1, max_iter=100000, stop_criterion="data_size", grad_desc_iter=500)
    print("finished", flush=True)
    """
)


def test_ctrl_c_interrupts_a_long_selection():
    proc = subprocess.Popen(
        [sys.executable, "-c", LONG_RUN], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.5)  # well inside the selection loop
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "KeyboardInterrupt" in err, err
    assert "finished" not in out
    assert proc.returncode != 0


DETERMINISM_RUN = textwrap.dedent(
    """
    import json, numpy as np, gio_rs
    rng = np.random.default_rng(1)
    train = rng.normal(size=(6000, 48)).astype(np.float32)
    X = rng.normal(0.4, 1, (1200, 48)).astype(np.float32)
    out = {}
    for v_init in ("mean", "jump", "prev_opt"):
        sel = gio_rs.select(train, X, max_iter=12, v_init=v_init, random_restart_prob=0.3, seed=7,
                            stop_criterion="data_size")
        out[v_init] = [sel.indices.tolist(), sel.kl_trace.tolist(), sel.candidate_kl.tolist()]
    out["kl"] = gio_rs.kl_divergence(X, train[:3000], k=4)
    print(json.dumps(out))
    """
)


def run_determinism(**env: str) -> dict:
    """DETERMINISM_RUN's output in a subprocess with `env` added to the environment."""
    done = subprocess.run(
        [sys.executable, "-c", DETERMINISM_RUN],
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout)


def test_results_identical_for_any_thread_count():
    outputs = [run_determinism(RAYON_NUM_THREADS=threads) for threads in ("1", "2", "5")]
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0]["mean"][0]) == 13


def test_results_identical_without_simd():
    assert run_determinism(GIO_RS_NO_SIMD="1") == run_determinism()
