"""The density-ratio selection out of core (`select_stream(method="ratio")`, `gio-rs select
--method ratio`): the rows and scores of in-memory `gio_rs.select(method="ratio")` for every
estimator and mode, any batch size, a folder of shards; the output ranked with `row_index`,
`rank` and `score`; the output through a third read when the candidates do not fit; duplicates
never selected; resuming from a work dir; errors named. Small data: seconds in all."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gio_rs
from gio_rs import cli, memory
from gio_rs.stream import ratio_run, select_stream

ESTIMATORS = ("combined", "gaussian", "knn", "logistic")
MODES = ("top", "sample")
BUDGET, SEED = 150, 7


@pytest.fixture(scope="module")
def blobs() -> dict:
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 3, (10, 6))
    pool = (centres[rng.integers(0, 10, 2400)] + rng.normal(size=(2400, 6))).astype(np.float32)
    target = (centres[rng.integers(0, 2, 200)] + rng.normal(size=(200, 6))).astype(np.float32)
    return {"pool": pool, "target": target}


def in_memory(blobs: dict, estimator: str, mode: str, budget: int = BUDGET) -> gio_rs.Selection:
    return gio_rs.select(
        blobs["pool"], blobs["target"], method="ratio", budget_rows=budget,
        ratio_estimator=estimator, ratio_mode=mode, seed=SEED,
    )  # fmt: skip


def write_shards(folder: Path, pool: np.ndarray, bounds: list[int]) -> Path:
    folder.mkdir()
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        features = pa.array(pool[a:b].tolist(), pa.list_(pa.float32()))
        table = pa.table({"id": [f"doc-{j}" for j in range(a, b)], "features": features})
        pq.write_table(table, folder / f"part-{i:03d}.parquet", row_group_size=97)
    return folder


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_the_rows_of_the_in_memory_selection_at_any_batch_size(blobs, estimator, mode):
    expected = in_memory(blobs, estimator, mode)
    for batch_rows in (61, 1000, 4096):
        found = select_stream(
            blobs["pool"], blobs["target"], method="ratio", budget_rows=BUDGET, ratio_estimator=estimator,
            ratio_mode=mode, seed=SEED, batch_rows=batch_rows,
        )  # fmt: skip
        np.testing.assert_array_equal(found.indices, expected.indices, err_msg=f"batch_rows={batch_rows}")
        np.testing.assert_array_equal(found.scores, expected.scores)
        assert len(found) == BUDGET and not found.spilled


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_a_shard_folder_gives_the_same_rows_and_a_ranked_output(blobs, estimator, mode, tmp_path):
    expected = in_memory(blobs, estimator, mode)
    shards = write_shards(tmp_path / "pool", blobs["pool"], [0, 700, 1500, 2400])
    out = tmp_path / "selected"
    found = select_stream(
        shards, blobs["target"], method="ratio", budget_rows=BUDGET, ratio_estimator=estimator,
        ratio_mode=mode, seed=SEED, batch_rows=256, out=f"{out}/", shard_bytes=4096,
    )  # fmt: skip
    np.testing.assert_array_equal(found.indices, expected.indices)
    assert found.output["rows"] == BUDGET and found.output["parts"] > 1
    written = pq.read_table(out)
    assert written.column("rank").to_pylist() == list(range(BUDGET))
    np.testing.assert_array_equal(written.column("row_index").to_numpy(), expected.indices)
    np.testing.assert_array_equal(written.column("score").to_numpy(), expected.scores)
    assert written.column("id").to_pylist() == [f"doc-{i}" for i in expected.indices]
    vectors = np.array(written.column("features").to_pylist(), dtype=np.float32)
    np.testing.assert_array_equal(vectors, blobs["pool"][expected.indices])


def test_the_output_reads_the_pool_again_when_the_candidates_do_not_fit(blobs, tmp_path, monkeypatch):
    shards = write_shards(tmp_path / "pool", blobs["pool"], [0, 1200, 2400])
    options = dict(method="ratio", budget_rows=BUDGET, ratio_estimator="gaussian", seed=SEED, batch_rows=300)
    kept = select_stream(shards, blobs["target"], out=tmp_path / "kept.parquet", **options)
    monkeypatch.setattr(ratio_run, "plan", lambda *args: (False, BUDGET, 10))
    lines: list[str] = []
    spilled = select_stream(
        shards, blobs["target"], out=tmp_path / "spilled.jsonl", report=lines.append, **options
    )
    assert spilled.spilled and not kept.spilled
    assert any("(about 10 would)" in line and "reads the pool once more" in line for line in lines)
    np.testing.assert_array_equal(spilled.indices, kept.indices)
    a = pq.read_table(tmp_path / "kept.parquet").to_pylist()
    with open(tmp_path / "spilled.jsonl", encoding="utf-8") as fh:
        b = [json.loads(line) for line in fh]
    assert [r["row_index"] for r in a] == [r["row_index"] for r in b]
    assert [r["rank"] for r in b] == list(range(BUDGET))
    assert [r["id"] for r in a] == [r["id"] for r in b]
    np.testing.assert_allclose([r["score"] for r in a], [r["score"] for r in b])


def _vector_shards(folder: Path, pool: np.ndarray, kinds: list, only_vectors: bool) -> Path:
    folder.mkdir()
    for i, kind in enumerate(kinds):
        a, b = i * 800, (i + 1) * 800
        features = pa.array(pool[a:b].tolist(), kind)
        columns = {"features": features} if only_vectors else {"features": features, "id": np.arange(a, b)}
        table = pa.table(columns).replace_schema_metadata({"made": "here"})
        pq.write_table(table, folder / f"part-{i:03d}.parquet", row_group_size=131)
    return folder


@pytest.mark.parametrize(
    "kinds, only_vectors",
    [
        ([pa.list_(pa.float32())] * 3, False),
        ([pa.list_(pa.float32())] * 3, True),
        ([pa.large_list(pa.float64())] * 3, False),
        ([pa.list_(pa.float32(), 6)] * 3, True),
        ([pa.list_(pa.float32()), pa.list_(pa.float64()), pa.list_(pa.float32())], False),
        ([pa.list_(pa.float32()), pa.large_list(pa.float32()), pa.list_(pa.float32())], False),
    ],
    ids=["list32", "only-vectors", "large64", "fixed32", "mixed-dtypes", "mixed-lists"],
)
def test_candidate_vectors_kept_as_arrays_write_the_same_bytes(
    blobs, tmp_path, monkeypatch, kinds, only_vectors
):
    """The scoring pass keeps the candidates' vectors as NumPy rows and rebuilds their column:
    the output file is byte for byte the one pyarrow's take and filter of the whole rows give."""
    from gio_rs.stream import ratio_score

    shards = _vector_shards(tmp_path / "pool", blobs["pool"], kinds, only_vectors)
    options = dict(method="ratio", budget_rows=BUDGET, ratio_estimator="gaussian", seed=SEED, batch_rows=173)
    fast = select_stream(shards, blobs["target"], out=tmp_path / "fast.parquet", **options)
    monkeypatch.setattr(ratio_score.VectorColumn, "of", classmethod(lambda cls, *args: None))
    plain = select_stream(shards, blobs["target"], out=tmp_path / "plain.parquet", **options)
    np.testing.assert_array_equal(fast.indices, plain.indices)
    assert (tmp_path / "fast.parquet").read_bytes() == (tmp_path / "plain.parquet").read_bytes()
    written = pq.read_table(tmp_path / "fast.parquet")
    if len(set(kinds)) == 1:
        assert written.schema.field("features").type == kinds[0]
    np.testing.assert_array_equal(
        np.array(written.column("features").to_pylist(), np.float32), blobs["pool"][fast.indices]
    )


def test_a_budget_whose_keys_do_not_fit_is_refused_with_the_largest_that_does(blobs, monkeypatch):
    # The room the scoring pass plans for, made smaller than 2000 rows' keys (a real budget that
    # small is refused earlier, by the scan's measured memory: issue 28's whole-process budget).
    monkeypatch.setattr(memory, "planned_bytes", lambda reserved=0: 1000 * 64)
    with pytest.raises(gio_rs.GioError, match="the largest budget_rows that fits is 1000"):
        select_stream(blobs["pool"], blobs["target"], method="ratio", budget_rows=2000, seed=SEED)


def test_duplicates_are_never_selected_and_the_rest_keep_their_order(blobs):
    pool = blobs["pool"].copy()
    pool[100:110] = pool[0]  # ten copies of row 0
    pool[2000] = pool[5]
    copies = {*range(100, 110), 2000}
    found = select_stream(pool, blobs["target"], method="ratio", budget_rows=BUDGET, seed=SEED)
    assert not copies & set(found.indices.tolist())
    assert sorted(found.duplicates.rows.tolist()) == sorted(copies)
    # The fit sees every row as read; the ranking skips the copies: the in-memory top (B + copies)
    # without them.
    wider = gio_rs.select(pool, blobs["target"], method="ratio", budget_rows=BUDGET + len(copies), seed=SEED)
    expected = [r for r in wider.indices.tolist() if r not in copies][:BUDGET]
    assert found.indices.tolist() == expected
    kept_all = select_stream(
        pool, blobs["target"], method="ratio", budget_rows=BUDGET, seed=SEED, dedup="none"
    )
    np.testing.assert_array_equal(kept_all.indices, wider.indices[:BUDGET])


def test_a_rerun_reuses_every_stage_and_writes_the_same_rows(blobs, tmp_path):
    shards = write_shards(tmp_path / "pool", blobs["pool"], [0, 1000, 2400])
    options = dict(method="ratio", budget_rows=BUDGET, ratio_estimator="gaussian", seed=SEED,
                   work_dir=tmp_path / "work", overwrite=True)  # fmt: skip
    first = select_stream(shards, blobs["target"], out=tmp_path / "a.parquet", **options)
    lines: list[str] = []
    again = select_stream(shards, blobs["target"], out=tmp_path / "a.parquet", report=lines.append, **options)
    assert again.reused == ["scan", "ratio_summary", "ratio_fit", "ratio_scores"]
    assert any("reusing the ratio_scores stage" in line for line in lines)
    np.testing.assert_array_equal(first.indices, again.indices)
    assert pq.read_table(tmp_path / "a.parquet").column("row_index").to_pylist() == first.indices.tolist()
    other = select_stream(shards, blobs["target"], ratio_mode="sample", **options)
    assert other.reused == ["scan", "ratio_summary", "ratio_fit"]  # only the scores depend on the mode


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "budget_rows: method='ratio' needs"),
        ({"budget_rows": 10, "n_clusters": 5}, "n_clusters: method='ratio'"),
        ({"budget_rows": 10, "ratio_estimator": "magic"}, "ratio_estimator: expected one of"),
        ({"budget_rows": 10, "ratio_mode": "best"}, "ratio_mode: expected one of"),
        ({"budget_rows": 10, "k": 3}, "k: not an option of method='ratio'"),
        ({"budget_rows": 5000}, "budget_rows: 5000 rows asked, the pool has 2400"),
    ],
)
def test_bad_options_are_named(blobs, options, message):
    with pytest.raises(gio_rs.GioError, match=message):
        select_stream(blobs["pool"], blobs["target"], method="ratio", seed=SEED, **options)


# --- the command line ------------------------------------------------------------------------


def test_the_command_line_writes_the_rows_and_a_summary(blobs, tmp_path, capsys):
    shards = write_shards(tmp_path / "pool", blobs["pool"], [0, 1000, 2400])
    pq.write_table(pa.table({"features": pa.array(blobs["target"].tolist())}), tmp_path / "t.parquet")
    out = tmp_path / "sel.parquet"
    code = cli.main([
        "select", "--train", str(shards), "--target", str(tmp_path / "t.parquet"), "--out", str(out),
        "--method", "ratio", "--budget-rows", str(BUDGET), "--ratio-estimator", "knn",
        "--ratio-mode", "sample", "--seed", str(SEED), "--batch-rows", "500",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    expected = in_memory(blobs, "knn", "sample")
    summary = json.loads((tmp_path / "sel.summary.json").read_text())
    assert summary["indices"] == expected.indices.tolist()
    assert summary["ratio"]["estimator"] == "knn" and summary["ratio"]["mode"] == "sample"
    assert summary["counts"]["selected_rows"] == BUDGET and summary["stop_reason"] == "budget_rows"
    assert pq.read_table(out).column("row_index").to_pylist() == expected.indices.tolist()
    assert "ratio scores:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--method", "ratio"], "budget_rows: method='ratio' needs"),
        (["--method", "ratio", "--budget-rows", "5", "--clusters", "4"], "--n-clusters: not an option"),
        (["--method", "ratio", "--budget-rows", "5", "--k", "2"], "k: not an option of method='ratio'"),
        (["--method", "ratio", "--budget-rows", "5", "--plot", "p.png"], "--plot: not available"),
    ],
)
def test_command_line_errors_are_one_line(blobs, tmp_path, capsys, flags, message):
    np.save(tmp_path / "p.npy", blobs["pool"])
    np.save(tmp_path / "t.npy", blobs["target"])
    base = ["select", "--train", str(tmp_path / "p.npy"), "--target", str(tmp_path / "t.npy")]
    code = cli.main([*base, "--out", str(tmp_path / "o.parquet"), *flags])
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR, err
    assert err.splitlines()[-1].startswith("gio-rs: error: ") and message in err.splitlines()[-1]
    assert not (tmp_path / "o.parquet").exists()


def test_the_help_names_the_ratio_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["select", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--ratio-estimator", "--ratio-mode", "ratio (the B rows of largest density ratio"):
        assert flag in text


def test_a_bad_row_is_named_through_the_read_ahead(blobs, tmp_path):
    pool = blobs["pool"].copy()
    pool[1700, 2] = np.nan
    shards = write_shards(tmp_path / "pool", pool, [0, 1000, 2400])
    with pytest.raises(gio_rs.GioError, match=r"part-001\.parquet.*row"):
        select_stream(shards, blobs["target"], method="ratio", budget_rows=10, batch_rows=128)


def test_the_read_ahead_keeps_the_order_raises_errors_and_stops_when_closed():
    from gio_rs.stream.prefetch import prefetch

    assert list(prefetch(iter(range(1000)), depth=3)) == list(range(1000))

    def failing():
        yield 1
        raise ValueError("bad piece")

    found = prefetch(failing())
    assert next(found) == 1
    with pytest.raises(ValueError, match="bad piece"):
        next(found)
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    early = prefetch(endless(), depth=2)
    assert [next(early) for _ in range(5)] == list(range(5))
    early.close()  # joins the thread: returns only once it stopped
    assert len(produced) <= 5 + 2 + 2


def test_the_plan_keeps_the_rows_when_they_fit_and_names_the_largest_budget_that_does():
    from types import SimpleNamespace

    from gio_rs import memory
    from gio_rs.stream.ratio_score import plan

    ctx = SimpleNamespace(batch_rows=100)
    with memory.temporary_budget(memory.RUNTIME_FOOTPRINT + 10_000_000, "test"):
        keep, capacity, largest = plan(ctx, None, 50_000, 1000.0, 0)
        assert not keep and capacity == 62_500
        assert plan(ctx, None, largest, 1000.0, 0)[0] and not plan(ctx, None, largest + 50, 1000.0, 0)[0]
        with pytest.raises(gio_rs.GioError, match="the largest budget_rows that fits is 156250"):
            plan(ctx, None, 200_000, 1000.0, 0)


def test_the_command_line_waits_for_a_held_work_dir_with_wait(blobs, tmp_path, capsys):
    from gio_rs.io.workdir import WorkDir

    np.save(tmp_path / "p.npy", blobs["pool"])
    np.save(tmp_path / "t.npy", blobs["target"])
    work = tmp_path / "work"
    args = [
        "select", "--train", str(tmp_path / "p.npy"), "--target", str(tmp_path / "t.npy"),
        "--method", "ratio", "--budget-rows", str(BUDGET), "--seed", str(SEED), "--work-dir", str(work),
    ]  # fmt: skip
    held = WorkDir(str(work))  # as a run in this process would hold it
    try:
        code = cli.main([*args, "--out", str(tmp_path / "refused.parquet")])
        assert code == cli.EXIT_ERROR and "is in use by process" in capsys.readouterr().err
        threading.Timer(1.0, held.close).start()  # released while the second command waits
        assert cli.main([*args, "--out", str(tmp_path / "sel.parquet"), "--wait"]) == 0
    finally:
        held.close()
    rows = pq.read_table(tmp_path / "sel.parquet").column("row_index").to_pylist()
    assert rows == in_memory(blobs, "combined", "top").indices.tolist()
