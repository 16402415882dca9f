"""Memory budget: sizes parse, the budget comes from set_memory_budget / GIO_RS_MEMORY_BUDGET /
the memory available, every entry point refuses work over budget before starting it (inputs
untouched), and the documented working-set formulas (gio_rs.memory) bound the measured peak."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gio_rs
from gio_rs import GioError, _core, cli, memory, ratio


@pytest.fixture(autouse=True)
def follow_environment(monkeypatch):
    """Each test starts from the default setting (GIO_RS_MEMORY_BUDGET unset: "auto")."""
    monkeypatch.delenv(memory.ENV, raising=False)
    monkeypatch.setattr(memory, "_setting", None)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("8GiB", 8 << 30),
        ("500MB", 500_000_000),
        (" 1.5 kib ", 1536),
        ("2e3", 2000),
        (4096, 4096),
        ("auto", "auto"),
        ("off", None),
        (None, None),
    ],
)
def test_budget_sizes_parse(text, expected):
    assert memory.parse_budget("budget", text) == expected


@pytest.mark.parametrize("bad", ["8 furlongs", "-1GB", "0", "", "nan", 0, -5, float("inf")])
def test_bad_budgets_name_the_setting(bad):
    with pytest.raises(GioError, match=r"^budget: "):
        gio_rs.set_memory_budget(bad)


def test_bad_budget_type_is_a_type_error():
    with pytest.raises(TypeError, match=r"^budget: "):
        gio_rs.set_memory_budget([1])


def test_budget_sources_in_order(monkeypatch):
    available = memory.available_bytes()
    assert available is not None and 0 < available < 1 << 50
    assert memory.memory_budget_setting() == "auto"
    monkeypatch.setenv(memory.ENV, "3GiB")
    assert gio_rs.memory_budget() == 3 << 30
    monkeypatch.setenv(memory.ENV, "off")
    assert gio_rs.memory_budget() is None
    assert gio_rs.set_memory_budget("1MiB") is None  # returns the setting it replaced
    assert gio_rs.memory_budget() == 1 << 20  # the call wins over the variable
    with memory.temporary_budget("2MiB", "--memory-budget"):
        assert gio_rs.memory_budget() == 2 << 20
    assert gio_rs.set_memory_budget(None) == 1 << 20
    assert gio_rs.memory_budget() is None


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(20000, 16)), rng.normal(0.2, 1.0, (400, 16))


def _entry_points(train, target):
    fitted = gio_rs.KMeans(4, random_state=0).fit(train[:200])
    return {
        "select": lambda: gio_rs.select(train, target, max_iter=2, stop_criterion="data_size"),
        "select greedy": lambda: gio_rs.select(train, target, method="greedy", max_iter=2),
        "select quantized": lambda: gio_rs.select(train, target, n_clusters=50, max_iter=2),
        "GIOKL.fit": lambda: gio_rs.GIOKL(dim=16, verbose=False).fit(train, target, max_iter=2),
        "KMeans.fit": lambda: gio_rs.KMeans(8).fit(train),
        "KMeans.predict": lambda: fitted.predict(train),
        "KMeans.transform": lambda: fitted.transform(train),
        "KMeans.score": lambda: fitted.score(train),
        "quantize": lambda: gio_rs.quantize(train, target, 20),
        "kl_divergence": lambda: gio_rs.kl_divergence(target, train),
        "knn_kl_divergence": lambda: gio_rs.knn_kl_divergence(target, train),
        "kl_gradient": lambda: gio_rs.kl_gradient(target, train, train[0]),
        "select ratio": lambda: gio_rs.select(train, target, method="ratio", budget_rows=100),
    }


def test_every_entry_point_refuses_work_over_budget_before_starting():
    train, target = _data()
    before = train.copy(), target.copy()
    calls = _entry_points(train, target)
    gio_rs.set_memory_budget("64KiB")
    for name, call in calls.items():
        with pytest.raises(GioError, match=r"^memory_budget: .* needs about .* more than 64\.0 KiB") as err:
            call()
        assert "set_memory_budget" in str(err.value), name
    np.testing.assert_array_equal(train, before[0])
    np.testing.assert_array_equal(target, before[1])
    gio_rs.set_memory_budget("off")
    for call in calls.values():
        call()


def test_a_copy_to_the_working_layout_counts(monkeypatch):
    """A Fortran-ordered pool is copied to rows: that copy is part of the working set."""
    train, target = _data()
    needed_c = _core.select_bytes(len(train), len(target), 16, n_start=20, max_iter=3)
    gio_rs.set_memory_budget(needed_c + 1024)
    gio_rs.select(train, target, max_iter=3, stop_criterion="data_size")
    with pytest.raises(GioError, match="^memory_budget: "):
        gio_rs.select(np.asfortranarray(train), target, max_iter=3, stop_criterion="data_size")


def test_ratio_is_refused_naming_the_quantity_before_any_work(monkeypatch):
    """select(method="ratio") checks its working set (memory.ratio_bytes, plus the copy of a
    float32 pool to float64 beside a float64 target) against the budget before it starts."""
    train, target = _data()
    train = train.astype(np.float32)  # the target is float64: the pool is copied to float64
    before = train.copy()
    needed = train.size * 8 + memory.ratio_bytes(20000, 400, 16, 8, 500, estimator="combined", mode="top")
    started = []
    gio_rs.set_memory_budget(needed - 1)
    with monkeypatch.context() as patch, pytest.raises(GioError) as err:
        patch.setattr(ratio, "PoolSummaryBuilder", lambda *a, **k: started.append(1))
        gio_rs.select(train, target, method="ratio", budget_rows=500)
    assert str(err.value).startswith(
        "memory_budget: density-ratio selection (estimator 'combined', mode 'top') of 500 of 20000 x 16 "
        "rows for 400 target rows needs about"
    ), err.value
    assert "select_stream(method='ratio')" in str(err.value)
    assert started == [] and np.array_equal(train, before)  # refused before any work
    gio_rs.set_memory_budget(needed)
    assert len(gio_rs.select(train, target, method="ratio", budget_rows=500).indices) == 500


# Measures the peak resident memory select(method="ratio") adds and prints it with the estimate.
RATIO_MEASURE = textwrap.dedent(
    """
    import json, sys
    import numpy as np, gio_rs
    from gio_rs import memory
    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    M, n, d, B, init_rows = map(int, sys.argv[1:6])
    estimator, mode = sys.argv[6:8]
    rng = np.random.default_rng(0)
    train = rng.normal(size=(M, d))
    target = rng.normal(0.3, 1, (n, d))
    init = rng.normal(0.1, 1, (init_rows, d)) if init_rows else None
    options = dict(method="ratio", ratio_estimator=estimator, ratio_mode=mode)
    gio_rs.select(train[:3000], target[:300], budget_rows=10, **options)  # the code, faulted in
    open("/proc/self/clear_refs", "w").write("5")
    base = status("VmRSS:")
    gio_rs.select(train, target, budget_rows=B, init=init, **options)
    estimate = memory.ratio_bytes(M, n, d, 8, B, estimator=estimator, mode=mode, init_rows=init_rows)
    print(json.dumps({"measured": status("VmHWM:") - base, "estimate": estimate}))
    """
)


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux clear_refs")
@pytest.mark.parametrize(
    "workload",
    [
        (1_000_000, 500, 8, 5000, 0, "gaussian", "top"),  # the rows' scores and keys dominate
        (1_000_000, 500, 8, 5000, 300, "logistic", "sample"),  # with init: the residual's temporaries
        (30_000, 300, 8, 2000, 300, "combined", "top"),  # the k-NN counts' blocks, the fits
    ],
    ids=lambda w: f"{w[5]}-{w[6]}-M{w[0]}-init{w[4]}",
)
def test_ratio_working_set_bounds_the_measured_peak(workload):
    done = subprocess.run(
        [sys.executable, "-c", RATIO_MEASURE, *map(str, workload)],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, RAYON_NUM_THREADS="2", GIO_RS_MEMORY_BUDGET="off", PYTHONWARNINGS="ignore"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    measured, estimate = result["measured"], result["estimate"]
    assert measured <= estimate, result  # an upper bound...
    assert estimate <= 2 * measured + (8 << 20), result  # ...and a useful one


def test_command_line_flag(tmp_path: Path, capsys):
    train, target = _data()
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "target.npy", target)
    out = tmp_path / "out.npy"
    argv = ["select", "--train", str(tmp_path / "train.npy"), "--target", str(tmp_path / "target.npy")]
    argv += ["--out", str(out), "--quiet", "--max-iter", "2", "--stop", "data_size"]
    assert cli.main(argv + ["--memory-budget", "100KB"]) == cli.EXIT_ERROR
    assert capsys.readouterr().err.startswith("gio-rs: error: --memory-budget: selection from 20000 x 16")
    assert not out.exists()
    assert cli.main(argv + ["--memory-budget", "lots"]) == cli.EXIT_ERROR
    assert "--memory-budget: cannot read 'lots'" in capsys.readouterr().err
    assert memory.memory_budget_setting() == "auto"  # the flag does not outlive the command
    assert cli.main(argv + ["--memory-budget", "1GiB"]) == 0 and out.exists()


# Measures the peak resident memory a call adds (Linux: VmHWM, reset through clear_refs) and
# prints it with the documented estimate.
MEASURE = textwrap.dedent(
    """
    import json, sys
    import numpy as np, gio_rs
    from gio_rs import _core
    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    kind, M, n, d, K, dtype = sys.argv[1], *map(int, sys.argv[2:6]), np.dtype(sys.argv[6])
    rng = np.random.default_rng(0)
    train = rng.normal(size=(M, d)).astype(dtype)
    target = rng.normal(0.3, 1, (n, d)).astype(dtype)
    fitted = gio_rs.KMeans(K, max_iter=1, random_state=0).fit(train[: 2 * K])
    gio_rs.kl_divergence(target[:10], train[:10], 1)
    item = dtype.itemsize
    if kind == "select":
        call = lambda: gio_rs.select(train, target, max_iter=3, grad_desc_iter=3, stop_criterion="data_size")
        estimate = _core.select_bytes(M, n, d, n_start=20, max_iter=3)
    elif kind == "select_fortran":
        train = np.asfortranarray(train)
        call = lambda: gio_rs.select(train, target, max_iter=3, grad_desc_iter=3, stop_criterion="data_size")
        estimate = _core.select_bytes(M, n, d, n_start=20, max_iter=3) + M * d * item
    elif kind == "greedy":
        call = lambda: gio_rs.select(train, target, method="greedy", max_iter=3)
        estimate = _core.select_bytes(M, n, d, n_start=0, max_iter=3, greedy=True)
    elif kind == "kmeans":
        call = lambda: gio_rs.KMeans(K, max_iter=3, random_state=0).fit(train)
        estimate = _core.kmeans_bytes(M, d, K, item)
    elif kind == "predict":
        call = lambda: fitted.predict(train)
        estimate = _core.assign_bytes(M, d, K)
    elif kind == "transform":
        call = lambda: fitted.transform(train)
        estimate = _core.assign_bytes(M, d, K) + 8 * M * K + (0 if item == 8 else M * d * 8)
    elif kind == "kl":
        call = lambda: gio_rs.kl_divergence(target, train, 5)
        estimate = _core.select_bytes(M, n, d, n_start=0, max_iter=0)
    open("/proc/self/clear_refs", "w").write("5")
    base = status("VmRSS:")
    call()
    print(json.dumps({"measured": status("VmHWM:") - base, "estimate": estimate}))
    """
)

WORKLOADS = [
    ("select", 200_000, 4000, 32, 8, "float64"),
    ("select_fortran", 100_000, 1000, 32, 8, "float64"),
    ("greedy", 20_000, 1000, 32, 8, "float64"),
    ("greedy", 20_000, 1000, 32, 8, "float32"),
    ("kmeans", 200_000, 100, 32, 100, "float64"),
    ("kmeans", 200_000, 100, 32, 100, "float32"),
    ("kmeans", 100_000, 100, 64, 2000, "float64"),
    ("predict", 300_000, 100, 32, 100, "float64"),
    ("transform", 100_000, 100, 16, 100, "float32"),
    ("kl", 100_000, 8000, 32, 8, "float64"),
]


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux clear_refs")
@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: f"{w[0]}-{w[5]}-M{w[1]}")
def test_documented_working_set_bounds_the_measured_peak(workload):
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *map(str, workload)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, RAYON_NUM_THREADS="2", GIO_RS_MEMORY_BUDGET="off"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    measured, estimate = result["measured"], result["estimate"]
    assert measured <= estimate, result  # an upper bound...
    assert estimate <= 2 * measured + (8 << 20), result  # ...and a useful one


def test_available_memory_follows_a_container_limit(tmp_path, monkeypatch):
    """cgroup v2: limit − usage, where usage's reclaimable page cache counts as free."""
    import builtins

    files = {
        "/sys/fs/cgroup/memory.max": "1000000000\n",
        "/sys/fs/cgroup/memory.current": "600000000\n",
        "/sys/fs/cgroup/memory.stat": "anon 400000000\ninactive_file 150000000\n",
        "/proc/meminfo": "MemTotal: 16000000 kB\nMemAvailable: 8000000 kB\n",
    }
    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if str(path) in files:
            target = tmp_path / str(path).replace("/", "_")
            target.write_text(files[str(path)])
            return real_open(target, *args, **kwargs)
        if str(path).startswith("/sys/fs/cgroup/memory/"):  # no cgroup v1 here
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert memory.available_bytes() == 1_000_000_000 - 600_000_000 + 150_000_000
    files["/sys/fs/cgroup/memory.max"] = "max\n"  # no container limit: the system's MemAvailable
    assert memory.available_bytes() == 8_000_000 * 1024


# --- the out-of-core pipeline: the budget bounds the whole process's peak resident memory -------

STREAM_RUN = textwrap.dedent(
    """
    import json, sys
    from gio_rs import cli
    code = cli.main(sys.argv[1:])
    peak = [int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM")]
    print(json.dumps({"code": code, "peak": peak[0]}))
    """
)
needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")


@pytest.fixture(scope="module")
def stream_files(tmp_path_factory) -> Path:
    """300 000 x 32 float32 rows around 50 centres in 3 parquet shards, a 2 000-row target."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("stream")
    (folder / "pool").mkdir()
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (50, 32)).astype(np.float32)
    for shard in range(3):
        x = centres[rng.integers(0, 50, 100_000)] + rng.standard_normal((100_000, 32), dtype=np.float32)
        column = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 32)
        pq.write_table(pa.table({"features": column}), folder / "pool" / f"part-{shard}.parquet")
    target = centres[rng.integers(0, 5, 2000)] + rng.standard_normal((2000, 32), dtype=np.float32)
    np.save(folder / "target.npy", target)
    return folder


def _stream(folder: Path, budget: str, *extra: str) -> tuple[dict, str]:
    argv = ["select", "--train", str(folder / "pool"), "--target", str(folder / "target.npy"),
            "--budget-rows", "5000", "--out", str(folder / "out.parquet"), "--overwrite", "--quiet",
            "--memory-budget", budget, *extra]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", STREAM_RUN, *argv], capture_output=True, text=True, timeout=600,
        env=dict(os.environ, RAYON_NUM_THREADS="2"),
    )  # fmt: skip
    assert done.stdout, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@needs_proc
def test_a_stream_that_fits_its_budget_runs_and_stays_under_it(stream_files):
    import pyarrow.parquet as pq

    # The job peaks at about 220 MiB. Its stages plan from what the process holds once pyarrow is
    # imported (more right after an install, when more library pages are resident: it then needs
    # a 270 MiB budget, 240 MiB in an old install) and keep room for the library pages still to
    # come: 280 MiB fits either way.
    result, err = _stream(stream_files, "280MiB", "--clusters", "100")
    assert result["code"] == 0, err
    assert result["peak"] <= 280 << 20, result  # the whole process, interpreter and all
    assert pq.read_metadata(stream_files / "out.parquet").num_rows == 5000


@needs_proc
@pytest.mark.parametrize("budget", [230, 250])
def test_a_stream_at_the_edge_of_its_budget_is_refused_or_runs_under_it(stream_files, budget):
    """Budgets around the job's need (refused right after an install, run or refused in an old
    one): whichever happens, the process never outgrows the budget."""
    result, err = _stream(stream_files, f"{budget}MiB", "--clusters", "100")
    assert result["peak"] <= budget << 20, result
    assert result["code"] == 0 or "stage does not fit" in err, err


@needs_proc
def test_a_stream_that_cannot_fit_is_refused_naming_the_stage_the_quantity_and_what_fits(stream_files):
    # K-Means with too many clusters for the budget: refused before it starts, with the most
    # clusters the budget allows.
    result, err = _stream(stream_files, "280MiB", "--clusters", "30000")
    assert result["code"] == cli.EXIT_ERROR and result["peak"] <= 280 << 20, result
    assert "error: --memory-budget: the kmeans stage does not fit: K-Means with 30000 clusters " in err
    assert "of dimension 32, even on a sample of 30000 rows, needs about" in err, err
    fitting = int(re.search(r"the largest cluster count that fits is --clusters=(\d+)", err)[1])
    assert 100 < fitting < 30000
    # A budget whose room cannot hold the first pass's reader: refused at the scan, with the
    # largest batch that fits, before the process outgrows the budget.
    result, err = _stream(stream_files, "220MiB", "--clusters", "100")
    assert result["code"] == cli.EXIT_ERROR and result["peak"] <= 220 << 20, result
    assert "the scan stage does not fit: reading the pool 32768 rows at a time needs about" in err, err
    batch = int(re.search(r"the largest batch that fits is --batch-rows=(\d+)", err)[1])
    assert 0 < batch < 32768
