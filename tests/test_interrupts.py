"""Ctrl-C: SIGINT to a process running a long fit, a long K-Means or the command line ends it with
KeyboardInterrupt (exit 130 for the command) within a second, leaving no partial output file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

LONG_FIT = """
import sys, numpy as np, gio_rs
rng = np.random.default_rng(0)
pool, target = rng.normal(size=(200_000, 64)), rng.normal(size=(500, 64))
def started(event):
    if event.candidate == 1:
        print("started", flush=True)
gio_rs.select(pool, target, stop_criterion="data_size", max_data_size=1.0, max_iter=10**9, callback=started)
"""

LONG_KMEANS = """
import numpy as np, gio_rs
x = np.random.default_rng(0).normal(size=(200_000, 32)).astype(np.float32)
gio_rs.KMeans(500, max_iter=10**6, tol=0.0, random_state=0, verbose=True).fit(x)
"""


def interrupt_after(command: list, marker: str, cwd: Path, stream: str = "stdout") -> tuple[int, str, float]:
    """Start `command`, wait for `marker` on `stream`, send SIGINT; returns (code, stderr, seconds
    from the signal to the exit)."""
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = pipe.readline()
        if not line and proc.poll() is not None:
            break
        if marker in line:
            break
    assert proc.poll() is None, f"ended before the interrupt: {proc.communicate()}"
    time.sleep(0.3)  # well inside the long work
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, time.monotonic() - sent


def test_sigint_stops_a_long_fit(tmp_path):
    code, err, seconds = interrupt_after(
        [sys.executable, "-c", textwrap.dedent(LONG_FIT)], "started", tmp_path
    )
    assert code != 0 and "KeyboardInterrupt" in err, err
    assert seconds < 1.0, f"took {seconds:.2f} s to stop"


def test_sigint_stops_a_long_kmeans(tmp_path):
    code, err, seconds = interrupt_after(
        [sys.executable, "-c", textwrap.dedent(LONG_KMEANS)], "KMeans iteration", tmp_path
    )
    assert code != 0 and "KeyboardInterrupt" in err, err
    assert seconds < 1.0, f"took {seconds:.2f} s to stop"


def test_sigint_leaves_no_partial_output_from_the_command(tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "pool.npy", rng.normal(size=(200_000, 64)))
    np.save(tmp_path / "target.npy", rng.normal(size=(500, 64)))
    command = [sys.executable, "-m", "gio_rs", "select", "--train", "pool.npy", "--target", "target.npy",
               "--stop", "data_size", "--max-iter", "1000000000", "--out", "sel.parquet"]  # fmt: skip
    code, err, seconds = interrupt_after(command, "read 200000 pool rows", tmp_path, stream="stderr")
    assert code == 130 and "interrupted" in err, err
    assert seconds < 1.0, f"took {seconds:.2f} s to stop"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.npy", "target.npy"]
