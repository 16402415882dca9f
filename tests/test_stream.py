"""The out-of-core pipeline (gio_rs.stream, `gio-rs select --clusters`): the same selection as the
in-memory path on parquet shards, jsonl and a Hugging Face folder; budgets in rows and their rank
prefixes; duplicates; resuming from a work dir; bad input named by file and row or line, with
nothing written. Small data: the whole file runs in seconds."""

from __future__ import annotations

import gzip
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gio_rs
from gio_rs import GioError, cli, ranking, stream
from gio_rs import io as gio_io
from gio_rs.stream import clusters as clusters_stage
from gio_rs.stream import labels as labels_stage
from gio_rs.stream import resources

DATA = Path(__file__).resolve().parent / "data"
OPTIONS = {"k": 4, "v_init": "jump", "stop_criterion": "data_size", "max_data_size": 0.3}
K, K_TARGET, SEED, KMEANS_ITER = 24, 8, 5, 25


@pytest.fixture(scope="module")
def blobs() -> dict:
    rng = np.random.default_rng(11)
    centres = rng.normal(0, 4, (12, 6))
    pool = (centres[rng.integers(0, 12, 1800)] + rng.normal(size=(1800, 6))).astype(np.float32)
    target = (centres[rng.integers(0, 3, 150)] + rng.normal(size=(150, 6))).astype(np.float32)
    return {"pool": pool, "target": target, "ids": [f"doc-{i}" for i in range(len(pool))]}


def vector_column(x: np.ndarray) -> pa.Array:
    return pa.array(x.tolist(), pa.list_(pa.float32() if x.dtype == np.float32 else pa.float64()))


def write_parquet_shards(folder: Path, pool: np.ndarray, ids: list, shards: int = 3) -> Path:
    folder.mkdir()
    bounds = np.linspace(0, len(pool), shards + 1).astype(int)
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        table = pa.table({"id": ids[a:b], "features": vector_column(pool[a:b])})
        pq.write_table(table, folder / f"part-{i:03d}.parquet", row_group_size=200)
    return folder


def write_jsonl(path: Path, pool: np.ndarray, ids: list, opener=open, notes: bool = True) -> Path:
    """One object per line; `note` is text on every other line (null on all with notes=False)."""
    with opener(path, "wt", encoding="utf-8") as fh:
        for i, row in enumerate(pool):
            note = "x" if notes and i % 2 == 0 else None
            fh.write(json.dumps({"id": ids[i], "features": row.tolist(), "note": note}) + "\n")
    return path


def write_target(path: Path, target: np.ndarray) -> Path:
    pq.write_table(pa.table({"features": vector_column(target)}), path)
    return path


def in_memory(pool: np.ndarray, target: np.ndarray, **extra) -> gio_rs.Selection:
    return gio_rs.select(
        pool, target, n_clusters=K, n_clusters_target=K_TARGET, seed=SEED, kmeans_max_iter=KMEANS_ITER,
        **OPTIONS, **extra,
    )  # fmt: skip


def streamed(pool, target, **extra) -> stream.StreamSelection:
    return gio_rs.select_stream(
        pool, target, n_clusters=K, n_clusters_target=K_TARGET, seed=SEED, kmeans_max_iter=KMEANS_ITER,
        batch_rows=128, **OPTIONS, **extra,
    )  # fmt: skip


def ranked_rows(selection: gio_rs.Selection, pool: np.ndarray) -> np.ndarray:
    """The in-memory selection's rows in the stream's rank order."""
    q = selection.quantization
    distances = ranking.target_distances(pool, selection.indices, q.target_centers)
    order = ranking.rank_order(
        selection.cluster_of_row, ranking.first_occurrences(selection.clusters), distances, selection.indices
    )
    return selection.indices[order]


# --- the same selection as in memory ------------------------------------------------------------


@pytest.mark.parametrize("layout", ["parquet-shards", "jsonl", "jsonl.gz-shards", "npy-memmap"])
def test_stream_selects_what_the_in_memory_path_selects(layout, blobs, tmp_path):
    pool, target, ids = blobs["pool"], blobs["target"], blobs["ids"]
    if layout == "parquet-shards":
        source: object = write_parquet_shards(tmp_path / "pool", pool, ids)
    elif layout == "jsonl":
        source = write_jsonl(tmp_path / "pool.jsonl", pool, ids)
    elif layout == "jsonl.gz-shards":
        (tmp_path / "pool").mkdir()
        # The first shard's `note` is null throughout (type null), the second's text.
        write_jsonl(tmp_path / "pool" / "a.jsonl.gz", pool[:1000], ids[:1000], gzip.open, notes=False)
        write_jsonl(tmp_path / "pool" / "b.jsonl.gz", pool[1000:], ids[1000:], gzip.open)
        source = tmp_path / "pool"
    else:
        np.save(tmp_path / "pool.npy", pool)
        source = np.load(tmp_path / "pool.npy", mmap_mode="r")
    read = pool if layout == "npy-memmap" else gio_io.read_table(source).features
    assert read.dtype == (np.float64 if "jsonl" in layout else np.float32)
    expected = in_memory(read, target)
    out = tmp_path / "selected.parquet"
    got = streamed(source, write_target(tmp_path / "target.parquet", target), out=out)
    np.testing.assert_array_equal(got.clusters, expected.clusters)
    np.testing.assert_array_equal(got.centers, expected.quantization.train_centers)
    np.testing.assert_array_equal(got.indices, ranked_rows(expected, read))
    assert got.sample_rows == len(pool) and got.selection.stop_reason == expected.stop_reason
    written = pq.read_table(out)
    np.testing.assert_array_equal(written.column("row_index").to_numpy(), got.indices)
    np.testing.assert_array_equal(written.column("rank").to_numpy(), np.arange(len(got)))
    np.testing.assert_array_equal(written.column("cluster").to_numpy(), got.cluster_of_row)
    if layout != "npy-memmap":
        assert written.column("id").to_pylist() == [ids[i] for i in got.indices]
    if "jsonl" in layout:
        assert written.column("note").type == pa.string()


def test_hugging_face_folder_without_the_datasets_package(tmp_path):
    """tests/data/hf_dataset was written by `datasets` save_to_disk (two Arrow stream shards)."""
    folder = DATA / "hf_dataset"
    x = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)  # how it was made
    table = gio_io.read_table(folder, features_col="embedding")
    np.testing.assert_array_equal(table.features, x)
    assert table.columns.column("id").to_pylist() == [f"doc-{i}" for i in range(12)]
    target = x[:5] + 0.01
    expected = gio_rs.select(x, target, n_clusters=4, seed=1, k=2, max_iter=1, kmeans_max_iter=10)
    got = gio_rs.select_stream(
        folder, target, n_clusters=4, seed=1, k=2, max_iter=1, kmeans_max_iter=10, features_col="embedding",
        out=tmp_path / "out.jsonl",
    )  # fmt: skip
    np.testing.assert_array_equal(got.clusters, expected.clusters)
    np.testing.assert_array_equal(np.sort(got.indices), np.sort(expected.indices))
    lines = [json.loads(t) for t in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["row_index"] for row in lines] == got.indices.tolist()
    assert [row["text"] for row in lines] == [f"sentence {i}" for i in got.indices]
    dict_folder = tmp_path / "dd"
    dict_folder.mkdir()
    (dict_folder / "dataset_dict.json").write_text('{"splits": ["train", "test"]}')
    with pytest.raises(
        gio_rs.GioError, match=r"DatasetDict \(splits: train, test\); give one split's folder"
    ):
        gio_io.read_table(dict_folder)


def test_sampled_fit_then_streaming_assignment_matches_predict_and_explode(blobs, tmp_path):
    """With K-Means on a sample, the pass over the rows labels them as `predict` does and the
    explode takes the members of the chosen clusters, as in memory with the same centroids."""
    pool, target = blobs["pool"], blobs["target"]
    got = streamed(
        write_parquet_shards(tmp_path / "pool", pool, blobs["ids"]), target, kmeans_sample_rows=600
    )
    assert got.sample_rows == 600
    model = gio_rs.KMeans(K)
    model.cluster_centers_ = got.centers
    labels = model.predict(pool)
    np.testing.assert_allclose(got.pool_inertia, -model.score(pool), rtol=1e-9)
    chosen = gio_rs.select(got.centers, got.target_centers, seed=SEED, **OPTIONS)
    np.testing.assert_array_equal(got.clusters, chosen.indices)
    explosion = gio_rs.explode(chosen.indices, labels, n_clusters=K)
    np.testing.assert_array_equal(np.sort(got.indices), np.sort(explosion.indices))
    # The in-memory pipeline samples the same rows for the same seed (gio_rs.sampling).
    q = gio_rs.quantize(pool, target, K, n_clusters_target=K_TARGET, seed=SEED, max_iter=KMEANS_ITER,
                        kmeans_sample_rows=600)  # fmt: skip
    np.testing.assert_array_equal(q.train_centers, got.centers)
    np.testing.assert_array_equal(q.train_labels, labels)


def test_sample_fit_inertia_close_to_a_full_fit(blobs):
    pool = np.repeat(blobs["pool"], 3, axis=0) + np.random.default_rng(1).normal(0, 0.3, (5400, 6)).astype(
        np.float32
    )
    full = gio_rs.KMeans(K, random_state=0, max_iter=50).fit(pool)
    q = gio_rs.quantize(pool, pool[:50], K, seed=0, max_iter=50, kmeans_sample_rows=1000)
    sampled = gio_rs.KMeans(K)
    sampled.cluster_centers_ = q.train_centers
    ratio = -sampled.score(pool) / full.inertia_
    assert q.sample_rows == 1000 and ratio < 1.1, ratio


def test_select_samples_when_the_whole_fit_is_over_budget():
    rng = np.random.default_rng(0)
    pool, target = rng.normal(size=(100_000, 16)), rng.normal(0.3, 1.0, (300, 16))
    whole = gio_rs._core.kmeans_bytes(100_000, 16, 40, 8)
    try:
        gio_rs.set_memory_budget(int(whole * 0.6))
        sel = gio_rs.select(pool, target, n_clusters=40, max_iter=3, seed=0, kmeans_max_iter=5)
    finally:
        gio_rs.set_memory_budget(None)
    q = sel.quantization
    assert q.sample_rows is not None and 40 <= q.sample_rows < 100_000
    assert len(q.train_labels) == 100_000 and len(q.train_model.labels_) == q.sample_rows


# --- budgets in rows ----------------------------------------------------------------------------


def test_budget_rows_gives_exactly_n_rows_and_prefixes_are_smaller_budgets(blobs, tmp_path):
    pool, target = blobs["pool"], blobs["target"]
    source = write_parquet_shards(tmp_path / "pool", pool, blobs["ids"])
    opts = {k: v for k, v in OPTIONS.items() if k in ("k", "v_init")}
    runs = {}
    for n in (37, 250, 611):
        runs[n] = gio_rs.select_stream(
            source, target, n_clusters=K, n_clusters_target=K_TARGET, seed=SEED, kmeans_max_iter=KMEANS_ITER,
            budget_rows=n, out=tmp_path / f"b{n}.parquet", **opts,
        )  # fmt: skip
        written = pq.read_table(tmp_path / f"b{n}.parquet")
        assert written.num_rows == n == len(runs[n])
        np.testing.assert_array_equal(written.column("rank").to_numpy(), np.arange(n))
        assert len(np.unique(runs[n].indices)) == n
    big = runs[611]
    for n in (37, 250):  # a prefix of the ranked output is what the smaller budget selects
        np.testing.assert_array_equal(runs[n].indices, big.indices[:n])
        np.testing.assert_array_equal(runs[n].cluster_of_row, big.cluster_of_row[:n])
    # The same ranking in memory.
    memory_run = gio_rs.select(pool, target, n_clusters=K, n_clusters_target=K_TARGET, seed=SEED,
                               kmeans_max_iter=KMEANS_ITER, budget_rows=250, **opts)  # fmt: skip
    np.testing.assert_array_equal(memory_run.indices, runs[250].indices)
    # Inside a cluster rows come nearest the target first; the last cluster is the one trimmed.
    clusters = big.cluster_of_row
    distances = ranking.target_distances(pool, big.indices, big.target_centers)
    for c in np.unique(clusters):
        assert np.all(np.diff(distances[clusters == c]) >= 0)
    with pytest.raises(gio_rs.GioError, match="budget_rows: 5000 is more than the 1800 pool rows"):
        gio_rs.select_stream(source, target, n_clusters=K, budget_rows=5000, **opts)
    with pytest.raises(gio_rs.GioError, match=r"^max_iter: budget_rows=3 sets when the selection stops"):
        gio_rs.select_stream(source, target, n_clusters=K, budget_rows=3, max_iter=9)


def test_budget_rows_without_clusters_from_the_command_line(blobs, tmp_path, capsys):
    pool, target = blobs["pool"][:400], blobs["target"]
    np.save(tmp_path / "pool.npy", pool)
    np.save(tmp_path / "target.npy", target)
    common = ["select", "--train", str(tmp_path / "pool.npy"), "--target", str(tmp_path / "target.npy"),
              "--k", "4", "--v-init", "jump", "--seed", "2", "--quiet"]  # fmt: skip
    assert cli.main([*common, "--budget-rows", "60", "--out", str(tmp_path / "a.parquet")]) == 0
    assert cli.main([*common, "--budget-rows", "25", "--out", str(tmp_path / "b.jsonl")]) == 0
    a = pq.read_table(tmp_path / "a.parquet")
    b = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert a.num_rows == 60 and a.column("rank").to_pylist() == list(range(60))
    assert [row["row_index"] for row in b] == a.column("row_index").to_pylist()[:25]
    expected = gio_rs.select(pool, target, k=4, v_init="jump", seed=2, budget_rows=60)
    assert a.column("row_index").to_pylist() == expected.indices.tolist()


# --- duplicates ---------------------------------------------------------------------------------


def test_duplicates_are_reported_and_dropped_or_kept(blobs, tmp_path, capsys):
    pool, target = blobs["pool"].copy(), blobs["target"].copy()
    pool[1500] = pool[3]  # across shards
    pool[1501] = pool[3]
    pool[700] = pool[650]
    pool[20, 0], pool[21] = -0.0, pool[20]  # -0.0 and 0.0 are equal values
    pool[21, 0] = 0.0
    target[100] = target[7]
    source = write_parquet_shards(tmp_path / "pool", pool, blobs["ids"])
    write_target(tmp_path / "target.parquet", target)
    base = ["select", "--train", str(source), "--target", str(tmp_path / "target.parquet"),
            "--clusters", "24", "--seed", "1", "--k", "4", "--v-init", "jump", "--stop", "data_size",
            "--max-data-size", "1.0", "--max-iter", "23", "--quiet"]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # shown on stderr by the command, as a user sees it
        assert cli.main([*base, "--out", str(tmp_path / "exact.parquet")]) == 0
    err = capsys.readouterr().err
    assert "--target: 1 exact duplicate rows dropped (rows 100)" in err
    summary = json.loads((tmp_path / "exact.summary.json").read_text())
    pool_report = summary["duplicates"]["pool"]
    assert pool_report["duplicate_rows"] == 4 and pool_report["groups"] == 3 and pool_report["dropped"]
    assert pool_report["rows"] == [[21, 20], [700, 650], [1500, 3], [1501, 3]]
    assert summary["duplicates"]["target"]["rows"] == [[100, 7]]
    assert summary["counts"]["pool_rows_kept"] == 1796
    kept = pq.read_table(tmp_path / "exact.parquet").column("row_index").to_numpy()
    assert len(kept) == 1796 and not np.isin(kept, [21, 700, 1500, 1501]).any()  # every cluster chosen
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main([*base, "--dedup", "none", "--out", str(tmp_path / "none.parquet")]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "none.summary.json").read_text())
    assert (
        summary["duplicates"]["pool"]["duplicate_rows"] == 4 and not summary["duplicates"]["pool"]["dropped"]
    )
    assert pq.read_table(tmp_path / "none.parquet").num_rows == 1800
    # In memory (no --clusters) the same report and the same rule.
    np.save(tmp_path / "pool.npy", pool)
    small = ["select", "--train", str(tmp_path / "pool.npy"), "--target", str(tmp_path / "target.parquet"),
             "--quiet", "--k", "4", "--budget-rows", "1796"]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main([*small, "--out", str(tmp_path / "m.parquet")]) == 0
    rows = pq.read_table(tmp_path / "m.parquet").column("row_index").to_numpy()
    assert len(np.unique(rows)) == 1796 and not np.isin(rows, [21, 700, 1500, 1501]).any()
    assert json.loads((tmp_path / "m.summary.json").read_text())["duplicates"]["pool"]["duplicate_rows"] == 4


# --- resume -------------------------------------------------------------------------------------


def test_a_resumed_run_equals_an_uninterrupted_one(blobs, tmp_path, monkeypatch):
    pool, target = blobs["pool"], blobs["target"]
    source = write_parquet_shards(tmp_path / "pool", pool, blobs["ids"], shards=4)
    write_target(tmp_path / "target.parquet", target)
    options = dict(n_clusters=K, n_clusters_target=K_TARGET, seed=SEED, kmeans_max_iter=KMEANS_ITER,
                   kmeans_sample_rows=900, budget_rows=400, batch_rows=100, k=4, v_init="jump")  # fmt: skip
    whole = gio_rs.select_stream(
        source, tmp_path / "target.parquet", out=tmp_path / "whole.parquet", **options
    )

    # Interrupt the labelling pass in its third shard.
    original = labels_stage.checkpoint
    calls = []

    def interrupt(ctx, *args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(ctx, *args, **kwargs)

    monkeypatch.setattr(labels_stage, "checkpoint", interrupt)
    work = tmp_path / "work"
    with pytest.raises(KeyboardInterrupt):
        gio_rs.select_stream(
            source, tmp_path / "target.parquet", out=tmp_path / "r.parquet", work_dir=work, **options
        )
    assert not (tmp_path / "r.parquet").exists()
    monkeypatch.setattr(labels_stage, "checkpoint", original)
    lines: list = []
    resumed = gio_rs.select_stream(
        source, tmp_path / "target.parquet", out=tmp_path / "r.parquet", work_dir=work, report=lines.append,
        **options,
    )  # fmt: skip
    assert resumed.reused == ["scan", "target", "kmeans", "labels of 1 shard(s)"]
    assert any("reusing the kmeans stage" in line for line in lines)
    np.testing.assert_array_equal(resumed.indices, whole.indices)
    assert pq.read_table(tmp_path / "r.parquet").equals(pq.read_table(tmp_path / "whole.parquet"))
    again = gio_rs.select_stream(
        source, tmp_path / "target.parquet", work_dir=work, report=lines.append, **options
    )
    assert again.reused == ["scan", "target", "kmeans", "labels", "selection"]
    np.testing.assert_array_equal(again.indices, whole.indices)
    changed = gio_rs.select_stream(
        source, tmp_path / "target.parquet", work_dir=work, report=lines.append, **{**options, "seed": 6}
    )
    assert changed.reused == ["scan"]  # the seed changes the fits and everything after
    assert any("made with other inputs or options" in line for line in lines)


def test_the_sample_depends_on_the_budget_not_on_the_resident_memory(blobs, tmp_path, monkeypatch):
    """The same inputs, options and budget choose the same K-Means sample (so the same centroids
    and selection) however much memory the process holds, and a rerun on a machine where it holds
    more reuses every stage; when what it holds leaves too little room, the kmeans stage refuses,
    naming the sample and the largest one that fits now, which then runs."""
    pool, target = blobs["pool"], blobs["target"]
    source = write_parquet_shards(tmp_path / "pool", pool, blobs["ids"])
    write_target(tmp_path / "target.parquet", target)
    batch = 128
    # What the kmeans stage holds besides the sample, all fixed by the inputs and options.
    reserved = resources.reader_bytes(batch, 6, 4) + gio_rs._core.assign_bytes(batch, 6, K) + 16 * K * 6
    reserved += 4 * K_TARGET * 6
    need = gio_rs.sampling.kmeans_need
    monkeypatch.setattr(resources, "_FIRST_READ_FIXED", 1 << 20)  # the scan's reader: tiny files
    monkeypatch.setattr(gio_rs.memory, "library_reserve", lambda: 0)  # what is held: only `resident`
    # Room for about half the pool's fit besides the runtime's fixed model.
    budget = gio_rs.memory.RUNTIME_FOOTPRINT + reserved + int(need(900, 6, K, 4) / clusters_stage.SAFETY)
    work = tmp_path / "work"
    runs = []
    for resident in (50 << 20, 100 << 20):  # another machine, or a model loaded beside
        monkeypatch.setattr(gio_rs.memory, "resident_bytes", lambda resident=resident: resident)
        with gio_rs.memory.temporary_budget(budget, "test"):
            runs.append(streamed(source, tmp_path / "target.parquet", work_dir=work))
    first, second = runs
    assert K < first.sample_rows < len(pool)
    assert second.sample_rows == first.sample_rows
    assert second.reused == ["scan", "target", "kmeans", "labels", "selection"]
    np.testing.assert_array_equal(second.centers, first.centers)
    np.testing.assert_array_equal(second.indices, first.indices)
    # Holding all but room for half the sample: refused before reading it, naming what fits.
    resident = budget - reserved - need(first.sample_rows // 2, 6, K, 4)
    monkeypatch.setattr(gio_rs.memory, "resident_bytes", lambda: resident)
    with gio_rs.memory.temporary_budget(budget, "test"), pytest.raises(GioError) as refused:
        streamed(source, tmp_path / "target.parquet")
    message = str(refused.value)
    assert "the kmeans stage does not fit" in message, message
    assert f"on a sample of {first.sample_rows} rows" in message, message
    fitting = int(re.search(r"the largest sample that fits now is kmeans_sample_rows=(\d+)", message)[1])
    assert K <= fitting < first.sample_rows
    with gio_rs.memory.temporary_budget(budget, "test"):
        smaller = streamed(source, tmp_path / "target.parquet", kmeans_sample_rows=fitting)
    assert smaller.sample_rows == fitting
    # Without a work dir, holding yet another amount: the same sample again.
    monkeypatch.setattr(gio_rs.memory, "resident_bytes", lambda: 60 << 20)
    with gio_rs.memory.temporary_budget(budget, "test"):
        third = streamed(source, tmp_path / "target.parquet")
    assert third.sample_rows == first.sample_rows and third.reused == []
    np.testing.assert_array_equal(third.centers, first.centers)
    np.testing.assert_array_equal(third.indices, first.indices)


# --- bad input: one line naming the file and row or line, nothing written -----------------------


def _cli_error(capsys, tmp_path: Path, train: Path, *extra: str) -> str:
    out = tmp_path / "o.parquet"
    code = cli.main(["select", "--train", str(train), "--target", str(tmp_path / "target.parquet"),
                     "--clusters", "4", "--out", str(out), "--work-dir", str(tmp_path / "w"),
                     *extra])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == cli.EXIT_ERROR and err[-1].startswith("gio-rs: error: "), err
    assert not out.exists() and not (tmp_path / "o.summary.json").exists()
    assert not list(tmp_path.glob(".o.parquet*"))
    return err[-1]


def test_bad_input_is_named_by_file_and_row(blobs, tmp_path, capsys):
    pool, target = blobs["pool"][:300], blobs["target"]
    write_target(tmp_path / "target.parquet", target)
    folder = write_parquet_shards(tmp_path / "pool", pool, blobs["ids"][:300], shards=2)
    pq.write_table(
        pa.table({"id": ["z"] * 5, "features": vector_column(pool[:5, :5])}), folder / "part-009.parquet"
    )
    err = _cli_error(capsys, tmp_path, folder)
    assert "part-009.parquet: vectors of 5 components (row 0)" in err and "part-000.parquet has 6" in err

    lines = [json.dumps({"id": i, "features": r.tolist()}) for i, r in enumerate(pool)]
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines[:41] + [lines[41][:-7]] + lines[42:]) + "\n")
    assert "broken.jsonl: line 42 is not valid JSON" in _cli_error(capsys, tmp_path, broken)

    missing = tmp_path / "missing.jsonl"
    missing.write_text("\n".join(lines[:9] + [json.dumps({"id": 9})] + lines[10:]) + "\n")
    assert "missing.jsonl: line 10: no field 'features'" in _cli_error(capsys, tmp_path, missing)
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(lines) + "\n")
    err = _cli_error(capsys, tmp_path, good, "--features-col", "vec")
    assert "good.jsonl: no field 'vec' from line 1 on; fields: ['id', 'features']" in err

    nan = tmp_path / "nan.jsonl"
    nan.write_text("\n".join(lines[:3] + [json.dumps({"id": 3, "features": [1e400] * 6})] + lines[4:]) + "\n")
    assert "nan.jsonl: lines with NaN or infinite values: 4" in _cli_error(capsys, tmp_path, nan)

    for suffix, opener in ((".jsonl.gz", gzip.open), (".jsonl.zst", None)):
        whole = tmp_path / f"whole{suffix}"
        data = ("\n".join(lines) + "\n").encode()
        if opener is None:
            with pa.output_stream(whole, compression="zstd") as fh:
                fh.write(data)
        else:
            with opener(whole, "wb") as fh:
                fh.write(data)
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
        err = _cli_error(capsys, tmp_path, cut)
        assert f"cut{suffix}: " in err and "cut short or corrupt" in err
        assert "Truncated" in err

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.jsonl").write_text(lines[0] + "\n")
    pq.write_table(pa.table({"features": vector_column(pool[:3])}), mixed / "b.parquet")
    assert "files of different formats" in _cli_error(capsys, tmp_path, mixed)


def test_sharded_output_folder_with_a_size_limit(blobs, tmp_path):
    pool, target = blobs["pool"], blobs["target"]
    got = streamed(pool, target, out=str(tmp_path / "sel") + "/", out_format="jsonl", shard_bytes=20_000)
    parts = sorted((tmp_path / "sel").iterdir())
    assert len(parts) > 3 and all(p.name.startswith("part-") and p.suffix == ".jsonl" for p in parts)
    assert all(p.stat().st_size <= 20_000 for p in parts)
    rows = [json.loads(line) for p in parts for line in p.read_text().splitlines()]
    assert [r["row_index"] for r in rows] == got.indices.tolist()
    assert [r["rank"] for r in rows] == list(range(len(got)))
    np.testing.assert_allclose([r["features"] for r in rows], pool[got.indices])
    with pytest.raises(gio_rs.GioError, match="already exists"):
        streamed(pool, target, out=str(tmp_path / "sel") + "/")
    streamed(pool, target, out=str(tmp_path / "sel") + "/", overwrite=True)
    assert sorted(p.suffix for p in (tmp_path / "sel").iterdir())[0] == ".parquet"


def test_formats_read_the_same_vectors(blobs, tmp_path):
    pool = blobs["pool"][:200]
    table = pa.table({"id": list(range(200)), "features": vector_column(pool)})
    with pa.OSFile(str(tmp_path / "f.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=37)
    with pa.OSFile(str(tmp_path / "s.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=37)
    write_jsonl(tmp_path / "p.jsonl", pool, list(range(200)))
    write_jsonl(tmp_path / "p.jsonl.gz", pool, list(range(200)), gzip.open)
    with pa.output_stream(str(tmp_path / "p.jsonl.zst"), compression="zstd") as fh:
        fh.write((tmp_path / "p.jsonl").read_bytes())
    for name in ("f.arrow", "s.arrow"):
        np.testing.assert_array_equal(gio_io.read_table(tmp_path / name).features, pool)
    for name in ("p.jsonl", "p.jsonl.gz", "p.jsonl.zst"):
        read = gio_io.read_table(tmp_path / name)
        np.testing.assert_array_equal(read.features, pool.astype(np.float64))
        assert read.columns.column("note").type == pa.string()  # null in some lines, text in others


def test_explode_through_sort_runs_on_disk_gives_the_same_output(blobs, tmp_path, monkeypatch):
    """Rows that would not fit in memory at once are sorted in rank ranges on disk: the output
    is the same as when they all fit."""
    pool, target = blobs["pool"], blobs["target"]
    source = write_jsonl(tmp_path / "pool.jsonl", pool, blobs["ids"])
    options = dict(n_clusters=K, n_clusters_target=K_TARGET, seed=SEED, kmeans_max_iter=KMEANS_ITER,
                   budget_rows=900, batch_rows=128, k=4, v_init="jump")  # fmt: skip
    whole = gio_rs.select_stream(source, target, out=tmp_path / "a.parquet", **options)
    monkeypatch.setattr(resources, "bucket_bytes", lambda reader=0: 2000)  # a few rows per run
    spilled = gio_rs.select_stream(source, target, out=tmp_path / "b.parquet", **options)
    np.testing.assert_array_equal(spilled.indices, whole.indices)
    assert pq.read_table(tmp_path / "b.parquet").equals(pq.read_table(tmp_path / "a.parquet"))


def test_duplicate_hashing_rules():
    from gio_rs.io import dedup

    rng = np.random.default_rng(3)
    x32 = rng.normal(size=(50, 5)).astype(np.float32)
    # The same values stored as float32 in one file and float64 in another are duplicates.
    a, b = dedup.canonical_hashes(x32), dedup.canonical_hashes(x32.astype(np.float64))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    finder = dedup.DuplicateFinder(memory_rows=20)  # spills to partition files past 20 rows
    finder.add(x32, 0)
    finder.add(np.concatenate([x32[[4, 9]].astype(np.float64), rng.normal(size=(3, 5))]), 50)
    found = finder.finish()
    assert found.rows.tolist() == [50, 51] and found.first.tolist() == [4, 9]
    near = x32[:1].copy()
    near[0, 0] = np.nextafter(near[0, 0], np.float32(np.inf))  # one bit apart: not a duplicate
    assert len(dedup.find_duplicates(np.concatenate([x32[:1], near]))) == 0
    texts = ["a", "b", "a", "é", "e\u0301", "é"]
    assert dedup.find_text_duplicates(texts).rows.tolist() == [2, 5]
    # float64 values beyond float32's range hash as float64 (no overflow warning, an error here)
    huge = np.array([[1e150], [5e149], [1e150]])
    assert dedup.find_duplicates(huge).rows.tolist() == [2]


def test_bad_arguments_are_named(blobs, tmp_path):
    pool, target = blobs["pool"][:300], blobs["target"]
    cases = [
        (dict(train=pool, target=target, n_clusters=4, dedup="fuzzy"), r"^dedup: expected one of"),
        (dict(train=pool, target=target, n_clusters=0), r"^n_clusters: "),
        (dict(train=pool, target=target, n_clusters=4, budget_rows=0), r"^budget_rows: "),
        (dict(train=pool, target=target[:, :4], n_clusters=4), r"^target: "),
        (
            dict(train=pool, target=target, n_clusters=400),
            r"^n_clusters: 400 clusters need at least 400 rows",
        ),
        (dict(train=pool, target=target, n_clusters=4, kmeans_sample_rows=2), r"^kmeans_sample_rows: "),
        (dict(train=[pool, pool[:, :5]], target=target, n_clusters=4), r"^train\[1\]: has 5 columns"),
        (dict(train=iter([pool]), target=target, n_clusters=4, work_dir=tmp_path / "w"), r"^work_dir: "),
    ]
    for kwargs, message in cases:
        with pytest.raises(gio_rs.GioError, match=message):
            gio_rs.select_stream(**kwargs)
    bad = pool.copy()
    bad[[5, 250], 1] = np.nan
    with pytest.raises(gio_rs.GioError, match=r"^train: rows with NaN or infinite values: 5$"):
        gio_rs.select_stream(bad, target, n_clusters=4, batch_rows=100)
    with pytest.raises(TypeError, match="^callback: "):
        gio_rs.select_stream(pool, target, n_clusters=4, callback=print)
    # An iterator is read once and copied to a spill file: the same result as the array.
    options = dict(n_clusters=6, seed=1, k=3, max_iter=3, batch_rows=64)
    from_iterator = gio_rs.select_stream(iter([pool[:100], pool[100:]]), target, **options)
    np.testing.assert_array_equal(
        from_iterator.indices, gio_rs.select_stream(pool, target, **options).indices
    )


def test_text_pool_is_embedded_once_and_deduplicated_by_text(tmp_path, capsys):
    cooking = ["Whisk the eggs with sugar.", "Bake the bread for forty minutes.", "Simmer the sauce slowly.",
               "Chop the onions finely.", "Season the soup with salt."]  # fmt: skip
    other = ["The stock market fell today.", "Interest rates rose again.", "The striker scored twice.",
             "The match ended in a draw.", "Bonds rallied after the report."]  # fmt: skip
    pool = (cooking + other) * 2
    (tmp_path / "pool.jsonl").write_text(
        "".join(json.dumps({"n": i, "text": t}) + "\n" for i, t in enumerate(pool))
    )
    (tmp_path / "target.txt").write_text(
        "Fry the garlic in olive oil.\nKnead the dough.\nRoast the carrots.\n"
    )
    code = cli.main(["select", "--train", str(tmp_path / "pool.jsonl"),
                     "--target", str(tmp_path / "target.txt"), "--text-column", "text", "--clusters", "3",
                     "--k", "2", "--budget-rows", "4", "--seed", "1", "--batch-rows", "4",
                     "--out", str(tmp_path / "sel.jsonl"), "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "sel.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and len({r["text"] for r in rows}) == 4
    assert sum(r["text"] in cooking for r in rows) >= 3
    summary = json.loads((tmp_path / "sel.summary.json").read_text())
    assert summary["duplicates"]["pool"]["duplicate_rows"] == 10
    assert summary["duplicates"]["pool"]["rows"][:2] == [[10, 0], [11, 1]]
