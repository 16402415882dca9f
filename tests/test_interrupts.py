"""Ctrl-C: SIGINT to a process running a long fit, a long K-Means or the command line ends it with
KeyboardInterrupt (exit 130 for the command), leaving no partial output file. The latency bound
(1 s) is on the time from the signal to the moment the child has the exception in hand (it prints
a CLOCK_MONOTONIC timestamp there, which is system-wide), not on the interpreter's teardown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

# Prints "caught <time.monotonic()>" on stderr when KeyboardInterrupt reaches the top, then
# re-raises it: the exit status and traceback stay those of an interrupted Python.
CAUGHT = """
import sys, time
try:
{body}
except KeyboardInterrupt:
    print(f"caught {{time.monotonic()!r}}", file=sys.stderr, flush=True)
    raise
"""

LONG_FIT = """
import numpy as np, gio_rs
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

# The command, run through its main(): the timestamp is taken when main returns, after it caught
# the interrupt and removed its temporary output.
COMMAND = """
import sys, time
from gio_rs import cli
code = cli.main(sys.argv[1:])
print(f"caught {time.monotonic()!r}", file=sys.stderr, flush=True)
sys.exit(code)
"""


def guarded(body: str) -> str:
    return CAUGHT.format(body=textwrap.indent(textwrap.dedent(body), "    "))


def interrupt_after(command: list, marker: str, cwd: Path, stream: str = "stdout") -> tuple[int, str, float]:
    """Start `command`, wait for `marker` on `stream`, send SIGINT; returns (code, stderr, seconds
    from the signal to the child's "caught" timestamp)."""
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    deadline = time.monotonic() + 300  # a hang guard, not a measurement
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
    _, err = proc.communicate(timeout=300)
    caught = [line for line in err.splitlines() if line.startswith("caught ")]
    assert caught, f"the child never caught the interrupt: {err}"
    return proc.returncode, err, float(caught[-1].split()[1]) - sent


def test_sigint_stops_a_long_fit(tmp_path):
    code, err, seconds = interrupt_after([sys.executable, "-c", guarded(LONG_FIT)], "started", tmp_path)
    assert code != 0 and "KeyboardInterrupt" in err, err
    assert seconds < 1.0, f"took {seconds:.2f} s from the signal to KeyboardInterrupt"


def test_sigint_stops_a_long_kmeans(tmp_path):
    code, err, seconds = interrupt_after(
        [sys.executable, "-c", guarded(LONG_KMEANS)], "KMeans iteration", tmp_path
    )
    assert code != 0 and "KeyboardInterrupt" in err, err
    assert seconds < 1.0, f"took {seconds:.2f} s from the signal to KeyboardInterrupt"


def test_sigint_leaves_no_partial_output_from_the_command(tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "pool.npy", rng.normal(size=(200_000, 64)))
    np.save(tmp_path / "target.npy", rng.normal(size=(500, 64)))
    command = [sys.executable, "-c", COMMAND, "select", "--train", "pool.npy", "--target", "target.npy",
               "--stop", "data_size", "--max-iter", "1000000000", "--out", "sel.parquet"]  # fmt: skip
    code, err, seconds = interrupt_after(command, "read 200000 pool rows", tmp_path, stream="stderr")
    assert code == 130 and "interrupted" in err, err
    assert seconds < 1.0, f"took {seconds:.2f} s from the signal to the command's exit path"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.npy", "target.npy"]


def test_the_console_command_exits_130_on_ctrl_c(tmp_path):
    """`python -m gio_rs` itself (no wrapper): the exit status and message of an interrupted run."""
    rng = np.random.default_rng(1)
    np.save(tmp_path / "pool.npy", rng.normal(size=(200_000, 64)))
    np.save(tmp_path / "target.npy", rng.normal(size=(500, 64)))
    command = [sys.executable, "-m", "gio_rs", "select", "--train", "pool.npy", "--target", "target.npy",
               "--stop", "data_size", "--max-iter", "1000000000", "--out", "sel.parquet"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300  # a hang guard
    while time.monotonic() < deadline and "read 200000 pool rows" not in proc.stderr.readline():
        assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "gio-rs: interrupted; no output was written" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.npy", "target.npy"]
