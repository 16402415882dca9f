"""The work dir cannot lie (gio_rs.io.workdir): one run at a time (an OS lock, refused with one line
or waited for), stage files verified against their recorded SHA-256 before reuse (a flipped byte or
a cut file in any of them is warned about and recomputed), kill -9 at any crash point then a
resume, a full disk or a file size limit, a read-only work dir. Every run that exits 0 wrote
exactly the rows of a lone uninterrupted run; every other run exits 2 with one line.

Small data (3 000 rows in 3 parquet shards); runs that must be killed are subprocesses of the
command line, with the test-only crash points of gio_rs.io.hashed_files."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gio_rs
from gio_rs.io.workdir import DamagedStageWarning, WorkDir, key_of
from gio_rs.io.worklock import WorkDirLock

OPTIONS = dict(
    n_clusters=24, n_clusters_target=8, budget_rows=400, batch_rows=256, seed=5, kmeans_max_iter=25
)
SAMPLED = {"kmeans_sample_rows": 1200}  # K-Means on a sample: the labels pass runs, per shard
EVERY_ROW = {"kmeans_sample_rows": None}  # on every row: the fit's labels are saved
CLI_OPTIONS = ["--clusters", "24", "--clusters-target", "8", "--budget-rows", "400", "--batch-rows", "256",
               "--seed", "5", "--kmeans-max-iter", "25", "--kmeans-sample-rows", "1200", "-q"]  # fmt: skip
LOCK = ".gio-rs.lock"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("workdir-data")
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 4, (12, 6))
    pool = (centres[rng.integers(0, 12, 3000)] + rng.normal(size=(3000, 6))).astype(np.float32)
    pool[100] = pool[50]  # a duplicate: the scan records it
    target = (centres[rng.integers(0, 3, 150)] + rng.normal(size=(150, 6))).astype(np.float32)
    (folder / "pool").mkdir()
    vectors = pa.list_(pa.float32())
    for i in range(3):
        a, b = 1000 * i, 1000 * (i + 1)
        table = pa.table(
            {"id": [f"d{j}" for j in range(a, b)], "features": pa.array(pool[a:b].tolist(), vectors)}
        )
        pq.write_table(table, folder / "pool" / f"part-{i}.parquet", row_group_size=300)
    pq.write_table(pa.table({"features": pa.array(target.tolist(), vectors)}), folder / "target.parquet")
    found = {"folder": folder, "pool": folder / "pool", "target": folder / "target.parquet"}
    for name, extra in (("sampled", SAMPLED), ("every_row", EVERY_ROW)):
        found[name] = select(found, **extra).indices  # a lone run without a work dir
    assert len(found["sampled"]) == 400 and not np.array_equal(found["sampled"], found["every_row"])
    return found


def select(data: dict, **extra) -> gio_rs.StreamSelection:
    return gio_rs.select_stream(data["pool"], data["target"], **{**OPTIONS, **SAMPLED, **extra})


def output_rows(path: Path) -> np.ndarray:
    return pq.read_table(path).column("row_index").to_numpy()


def cli(data: dict, work: Optional[Path], out: Path, *extra: str, env: Optional[dict] = None,
        preexec=None, wait: bool = True):  # fmt: skip
    """`gio-rs select --clusters ...` in a subprocess (its CompletedProcess, or the Popen with
    wait=False)."""
    inputs = ["--train", str(data["pool"]), "--target", str(data["target"])]
    argv = [sys.executable, "-m", "gio_rs", "select", *inputs, "--out", str(out), *CLI_OPTIONS, *extra]
    if work is not None:
        argv += ["--work-dir", str(work)]
    environment = {**os.environ, **(env or {})}
    proc = subprocess.Popen(argv, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec)  # fmt: skip
    if not wait:
        return proc
    stdout, stderr = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def assert_lone_rows(proc, out: Path, lone: np.ndarray) -> None:
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(output_rows(out), lone)


def assert_one_line_error(proc, out: Path, *pattern: str) -> str:
    """Exit 2, one line on stderr (no traceback, no Python errno text), no output written."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("gio-rs: error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert not re.search(r"\[Errno \d+\]|errno \d+", lines[0]), lines[0]
    for part in pattern:
        assert part in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


# --- one run at a time ----------------------------------------------------------------------------


def holder_text() -> str:
    return f"process {os.getpid()} on host {socket.gethostname()}"


def test_a_held_work_dir_is_refused_with_one_line_naming_the_holder(data, tmp_path):
    work = tmp_path / "work"
    held = WorkDir(str(work))  # this process holds it, as a run would
    try:
        proc = cli(data, work, tmp_path / "out.parquet")
        refused = f"work_dir: {work} is in use by {holder_text()}"
        assert_one_line_error(proc, tmp_path / "out.parquet", refused, "--wait")
        with pytest.raises(gio_rs.GioError, match=re.escape(f"{work} is in use by {holder_text()}")):
            select(data, work_dir=work)
    finally:
        held.close()
    assert sorted(os.listdir(work)) == [LOCK]  # the refused runs wrote nothing
    assert_lone_rows(cli(data, work, tmp_path / "out.parquet"), tmp_path / "out.parquet", data["sampled"])


def test_wait_waits_for_the_holder_then_gives_the_lone_rows(data, tmp_path):
    work = tmp_path / "work"
    held = WorkDir(str(work))
    try:
        waiting = cli(data, work, tmp_path / "out.parquet", "--wait", wait=False)
        time.sleep(3.0)
        assert waiting.poll() is None  # still waiting for the lock
        assert not (tmp_path / "out.parquet").exists() and sorted(os.listdir(work)) == [LOCK]
    finally:
        held.close()
    stdout, stderr = waiting.communicate(timeout=600)
    assert waiting.returncode == 0, stderr
    np.testing.assert_array_equal(output_rows(tmp_path / "out.parquet"), data["sampled"])


@pytest.mark.parametrize("offset", [0.0, 0.4, 1.0, 2.0])
@pytest.mark.parametrize("wait", [False, True])
def test_two_runs_on_one_work_dir_at_several_offsets(data, tmp_path, offset, wait):
    """A second run started `offset` seconds after the first: refused with one line naming the
    holder (or, with --wait, run after it), or started after it finished; never wrong rows. At
    offset 0 either run may take the lock first, so either may be the one refused."""
    work = tmp_path / "work"
    first = cli(data, work, tmp_path / "a.parquet", wait=False)
    time.sleep(offset)
    second = cli(data, work, tmp_path / "b.parquet", *(["--wait"] if wait else []))
    stdout, stderr = first.communicate(timeout=600)
    finished = subprocess.CompletedProcess([], first.returncode, stdout, stderr)
    assert 0 in (finished.returncode, second.returncode), (finished.stderr, second.stderr)
    if wait:  # the waiting run always finishes, whichever holds the lock first
        assert_lone_rows(second, tmp_path / "b.parquet", data["sampled"])
    for run, out, holder in (
        (finished, tmp_path / "a.parquet", "process "),
        (second, tmp_path / "b.parquet", f"process {first.pid}"),
    ):
        if run.returncode == 0:
            assert_lone_rows(run, out, data["sampled"])
        else:
            assert_one_line_error(run, out, f"work_dir: {work} is in use by {holder}")


# --- stage files verified before reuse -----------------------------------------------------------


def finished_work_dir(data: dict, folder: Path, extra: dict) -> dict[str, str]:
    """A work dir with every stage finished; the stage of each file (manifests included)."""
    select(data, work_dir=folder, **extra)
    stage_of = {}
    for manifest in folder.glob("*.json"):
        body = json.loads(manifest.read_text())["body"]
        if "files" in body:  # a stage's manifest (not the labels checkpoint)
            stage = manifest.stem
            stage_of[manifest.name] = stage
            stage_of.update({name: stage for name in body["files"]})
    return stage_of


@pytest.mark.parametrize("fit", ["sampled", "every_row"])
def test_a_flipped_byte_in_any_stage_file_is_warned_about_and_recomputed(data, tmp_path, fit):
    extra = SAMPLED if fit == "sampled" else EVERY_ROW
    golden = tmp_path / "golden"
    stage_of = finished_work_dir(data, golden, extra)
    expected = {"scan.json", "duplicates.npy", "target.json", "target_centers.npy", "target_duplicates.npy",
                "kmeans.json", "centers.npy", "labels.json", "labels.i32", "selection.json",
                "selection.npz"}  # fmt: skip
    expected |= {"sample_labels.npy"} if fit == "every_row" else set()
    assert set(stage_of) == expected
    rng = np.random.default_rng(0)
    for name, stage in sorted(stage_of.items()):
        work = tmp_path / f"work-{name}"
        shutil.copytree(golden, work)
        raw = bytearray((work / name).read_bytes())
        for at in (len(raw) // 2, int(rng.integers(len(raw)))):  # the middle, and anywhere
            raw[at] ^= 0x20
        (work / name).write_bytes(bytes(raw))
        with pytest.warns(DamagedStageWarning) as caught:
            again = select(data, work_dir=work, **extra)
        messages = [str(w.message) for w in caught]
        assert len(messages) == 1 and f"the {stage} stage's file {work / name} " in messages[0], messages
        assert stage not in again.reused and len(again.reused) >= 1, (name, again.reused)
        np.testing.assert_array_equal(again.indices, data[fit], err_msg=name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            third = select(data, work_dir=work, **extra)  # recorded again: all reused, no warning
        assert third.reused == ["scan", "target", "kmeans", "labels", "selection"]
        np.testing.assert_array_equal(third.indices, data[fit])


def test_a_flipped_byte_in_the_embedded_text_spill_is_recomputed(tmp_path):
    """Text is embedded once and spilled (vectors.bin, hashed while it is written)."""
    sentences = ["Whisk the eggs with sugar.", "Bake the bread for forty minutes.", "Simmer the sauce.",
                 "The stock market fell today.", "Interest rates rose again.", "The striker scored twice.",
                 "Chop the onions.", "Bonds rallied after the report.", "Roast the carrots."]  # fmt: skip
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in sentences))
    (tmp_path / "target.txt").write_text(
        "Fry the garlic in olive oil.\nKnead the dough.\nPeel the potatoes.\n"
    )
    options = dict(n_clusters=3, k=2, budget_rows=4, seed=1, batch_rows=4, text_column="text")
    lone = gio_rs.select_stream(tmp_path / "pool.jsonl", tmp_path / "target.txt", **options).indices
    work = tmp_path / "work"
    gio_rs.select_stream(tmp_path / "pool.jsonl", tmp_path / "target.txt", work_dir=work, **options)
    assert "vectors.bin" in json.loads((work / "scan.json").read_text())["body"]["files"]
    raw = bytearray((work / "vectors.bin").read_bytes())
    raw[len(raw) // 3] ^= 0x40
    (work / "vectors.bin").write_bytes(bytes(raw))
    with pytest.warns(DamagedStageWarning, match=re.escape(f"the scan stage's file {work / 'vectors.bin'} ")):
        again = gio_rs.select_stream(
            tmp_path / "pool.jsonl", tmp_path / "target.txt", work_dir=work, **options
        )
    assert "scan" not in again.reused
    np.testing.assert_array_equal(again.indices, lone)


@pytest.mark.parametrize("name", ["labels.i32", "centers.npy", "selection.npz", "scan.json"])
def test_a_cut_file_is_warned_about_and_recomputed(data, tmp_path, name):
    work = tmp_path / "work"
    stage_of = finished_work_dir(data, work, SAMPLED)
    with open(work / name, "r+b") as fh:
        fh.truncate(os.path.getsize(work / name) // 2)
    with pytest.warns(
        DamagedStageWarning, match=re.escape(f"the {stage_of[name]} stage's file {work / name} ")
    ):
        again = select(data, work_dir=work)
    np.testing.assert_array_equal(again.indices, data["sampled"])


def test_a_damaged_labels_checkpoint_restarts_the_pass(data, tmp_path, monkeypatch):
    """The labels of finished shards are kept with their hash; a flipped byte in them, or in the
    checkpoint itself, makes the pass start again instead of trusting them."""
    from gio_rs.stream import labels as labels_stage

    original = labels_stage.checkpoint

    def interrupt(ctx, fh, key, shards_done, *args):
        original(ctx, fh, key, shards_done, *args)
        if shards_done == 2:
            raise KeyboardInterrupt

    for damaged in ("labels.i32", "labels.progress.json", None):
        work = tmp_path / f"work-{damaged}"
        monkeypatch.setattr(labels_stage, "checkpoint", interrupt)
        with pytest.raises(KeyboardInterrupt):
            select(data, work_dir=work)
        monkeypatch.setattr(labels_stage, "checkpoint", original)
        if damaged is not None:
            raw = bytearray((work / damaged).read_bytes())
            raw[100] ^= 0x01
            (work / damaged).write_bytes(bytes(raw))
        context = pytest.warns(DamagedStageWarning, match="labels.i32") if damaged == "labels.i32" else (
            contextlib.nullcontext())  # fmt: skip
        with context:
            again = select(data, work_dir=work)
        resumed = "labels of 2 shard(s)" in again.reused
        assert resumed == (damaged is None), (damaged, again.reused)
        np.testing.assert_array_equal(again.indices, data["sampled"])


def test_a_stage_recomputed_with_other_content_invalidates_the_stages_after_it(tmp_path):
    """Keys chain the sealed key (the content) of the stage before: the same content again keeps
    the next stage; other content redoes it."""

    def run(content: bytes) -> tuple[str, str]:
        work = WorkDir(str(tmp_path / "w"))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DamagedStageWarning)
                if work.check("first", "k1")[0] is None:
                    work.write_bytes("first.bin", content)
                    work.save("first", "k1", {}, ["first.bin"])
            second_key = key_of("second", work.sealed_key("first", "k1"))
            meta, status = work.check("second", second_key)
            if meta is None:
                work.write_bytes("second.bin", b"derived")
                work.save("second", second_key, {}, ["second.bin"])
            return status, second_key
        finally:
            work.close()

    assert run(b"one")[0] == "absent"
    assert run(b"one")[0] == "reused"
    (tmp_path / "w" / "first.bin").write_bytes(b"onf")  # damaged, then recomputed the same
    assert run(b"one")[0] == "reused"
    (tmp_path / "w" / "first.bin").write_bytes(b"onf")  # damaged, then recomputed otherwise
    assert run(b"two")[0] == "other"


# --- kill -9 anywhere, then resume ----------------------------------------------------------------


@pytest.fixture(scope="module")
def crash_points(data, tmp_path_factory) -> list[str]:
    """The crash points an uninterrupted run reaches, in order."""
    folder = tmp_path_factory.mktemp("trace")
    trace = folder / "trace.txt"
    proc = cli(data, folder / "work", folder / "out.parquet", env={"GIO_RS_TEST_CRASH_TRACE": str(trace)})
    assert_lone_rows(proc, folder / "out.parquet", data["sampled"])
    points = trace.read_text().splitlines()
    kinds = {p.split(":")[0].split(" ")[0] for p in points}
    assert {"scan", "write", "save", "pass", "labels", "explode", "output"} <= kinds, kinds
    return points


def crash_then_resume(data: dict, folder: Path, crashes: list[int], *, parts: bool = False) -> None:
    """Runs killed at each crash point in `crashes` (numbered within each run), then a run to
    the end: it must write the lone run's rows, and no killed run leaves an output (`parts`: a
    folder of part files of about 4 KiB, published whole by a rename)."""
    folder.mkdir(parents=True)
    work, out = folder / "work", folder / ("out" if parts else "out.parquet")
    extra = ["--out", f"{out}/", "--shard-size", "4KiB"] if parts else []
    for at in crashes:
        proc = cli(data, work, out, *extra, env={"GIO_RS_TEST_CRASH_AT": str(at)})
        if proc.returncode == 0:  # the point is past the end of this (resumed) run
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert not out.exists()
    else:
        proc = cli(data, work, out, *extra)
    assert_lone_rows(proc, out, data["sampled"])
    assert not parts or len(list(out.glob("part-*.parquet"))) > 1


def test_kill_9_at_the_first_crash_point_of_every_kind_then_resume(data, crash_points, tmp_path):
    firsts: dict[str, int] = {}
    for number, point in enumerate(crash_points, start=1):
        firsts.setdefault(point, number)
    for point, number in firsts.items():
        crash_then_resume(data, tmp_path / f"run-{number}", [number])
        if point.startswith(("explode", "output")):  # a folder of parts is published whole too
            crash_then_resume(data, tmp_path / f"parts-{number}", [number], parts=True)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(draw=st.data())
def test_kill_9_at_drawn_points_then_resume(data, crash_points, tmp_path, draw):
    """One or two kills (the second one in the resumed run), anywhere among the crash points."""
    count = draw.draw(st.integers(1, 2))
    crashes = [draw.draw(st.integers(1, len(crash_points))) for _ in range(count)]
    parts = draw.draw(st.booleans())
    folder = tmp_path / f"run-{'-'.join(map(str, crashes))}-{time.monotonic_ns()}"
    crash_then_resume(data, folder, crashes, parts=parts)


# --- full disk, write errors, read-only work dir --------------------------------------------------


def file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("limit", [40, 200, 700, 3000, 9000, 14000])
def test_a_write_cut_short_fails_with_one_line_and_the_resume_is_right(data, tmp_path, limit):
    """A file size limit (EFBIG, as a full disk's ENOSPC) hits a different file at each limit."""
    work, out = tmp_path / "work", tmp_path / "out.parquet"
    proc = cli(data, work, out, preexec=file_size_limit(limit))
    if proc.returncode != 0:
        assert_one_line_error(proc, out, f"gio-rs: error: {tmp_path}/", ": file too large")
    assert_lone_rows(cli(data, work, out, "--overwrite"), out, data["sampled"])


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size: str):
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                      capture_output=True).returncode:  # fmt: skip
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.parametrize("size", ["8k", "16k", "24k", "40k"])
def test_a_full_disk_fails_with_one_line_and_the_resume_is_right(data, tmp_path, size):
    with mounted_tmpfs(tmp_path / "disk", size) as disk:
        work, out = disk / "work", disk / "out.parquet"
        proc = cli(data, work, out)
        if proc.returncode != 0:
            assert_one_line_error(proc, out, f"gio-rs: error: {disk}/", ": no space left on device")
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        assert_lone_rows(cli(data, work, out, "--overwrite"), out, data["sampled"])


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` made read-only: a read-only bind mount as root (who writes through modes), else
    its mode."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        try:
            yield
        finally:
            os.chmod(folder, 0o755)
        return
    if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode:
        pytest.skip("a read-only bind mount needs root")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.parametrize("state", ["empty", "finished"])
def test_a_read_only_work_dir_fails_with_one_line(data, tmp_path, state):
    work, out = tmp_path / "work", tmp_path / "out.parquet"
    work.mkdir()
    if state == "finished":
        finished_work_dir(data, work, SAMPLED)
    with read_only(work):
        proc = cli(data, work, out)
        assert_one_line_error(proc, out, f"work_dir: cannot write in {work}")
        with pytest.raises(gio_rs.GioError, match=re.escape(f"work_dir: cannot write in {work}")):
            select(data, work_dir=work)
    assert_lone_rows(cli(data, work, out), out, data["sampled"])


def test_a_manifest_without_hashes_from_an_older_version_is_redone_quietly(tmp_path):
    (tmp_path / "scan.json").write_text(json.dumps({"key": "k", "meta": {}, "files": []}))
    work = WorkDir(str(tmp_path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert work.check("scan", "k") == (None, "other")
    finally:
        work.close()
    assert not (tmp_path / "scan.json").exists()


def test_refused_run_names_a_holder_that_writes_its_record_late(tmp_path):
    """The holder writes its record just after taking the lock: a run refused in between waits
    for the record instead of saying "another process" (a race CI once hit at offset 0)."""
    import fcntl
    import threading

    holder = os.open(tmp_path / ".gio-rs.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": "now"}).encode()
    late = threading.Timer(0.3, lambda: os.pwrite(holder, record, 0))
    late.start()
    try:
        with pytest.raises(gio_rs.GioError, match=f"is in use by process {os.getpid()} on host "):
            WorkDirLock(str(tmp_path)).acquire(wait=False, report=print)
    finally:
        late.join()
        os.close(holder)


def test_a_crashed_holders_record_is_not_named(tmp_path):
    """A record left by a process that has ended is not taken for the holder's."""
    import fcntl

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True)  # fmt: skip
    holder = os.open(tmp_path / ".gio-rs.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    stale = {"pid": int(ended.stdout), "host": socket.gethostname(), "since": "then"}
    os.pwrite(holder, json.dumps(stale).encode(), 0)
    try:
        with pytest.raises(gio_rs.GioError, match="is in use by another process;"):
            WorkDirLock(str(tmp_path)).acquire(wait=False, report=print)
    finally:
        os.close(holder)


def test_a_released_lock_leaves_no_record(tmp_path):
    lock = WorkDirLock(str(tmp_path))
    lock.acquire(wait=False, report=print)
    assert (tmp_path / ".gio-rs.lock").read_text()
    lock.release()
    assert (tmp_path / ".gio-rs.lock").read_text() == ""
