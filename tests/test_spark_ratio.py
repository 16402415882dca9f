"""gio_rs.spark's density-ratio selection against a local SparkSession (local[2]): the rows are
those of the in-memory `gio_rs.select(method="ratio")` for any partitioning; the summary merge
against one builder over every row; errors."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gio_rs
import gio_rs.spark as gs
from gio_rs import ratio
from gio_rs.spark import ratio as spark_ratio

DIM = 6


def domain_data(rng: np.random.Generator, n_pool: int, n_target: int) -> tuple[np.ndarray, np.ndarray]:
    """A pool of background rows with 10% of rows from the target's region."""
    pool = rng.normal(size=(n_pool, DIM))
    pool[: n_pool // 10] += 1.5
    rng.shuffle(pool)
    target = rng.normal(size=(n_target, DIM)) + 1.5
    return pool.astype(np.float32), target.astype(np.float32)


def write_parts(directory, x: np.ndarray, n_files: int) -> None:
    directory.mkdir()
    for f, part in enumerate(np.array_split(np.arange(len(x)), n_files)):
        table = pa.table(
            {
                "name": [f"row{i}" for i in part],
                "features": pa.array(list(x[part]), type=pa.list_(pa.float32())),
            }
        )
        pq.write_table(table, directory / f"part-{f:05d}.parquet", row_group_size=100)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark_ratio")
    pool, target = domain_data(np.random.default_rng(11), 1800, 40)
    write_parts(root / "train", pool, 4)
    write_parts(root / "target", target, 1)
    return {"root": root, "train": pool, "target": target}


def read(spark, data, partitioning: str):
    """The pool with a given partitioning: one partition per file; files cut between row
    groups; a shuffle (rows of a partition out of order, every run short); every file in one
    partition."""
    path = str(data["root"] / "train")
    if partitioning == "splits":
        spark.conf.set("spark.sql.files.maxPartitionBytes", "6000")
        try:
            df = gs.read_parquet(spark, path).cache()
            assert df.rdd.getNumPartitions() > 4
        finally:
            spark.conf.unset("spark.sql.files.maxPartitionBytes")
        return df
    df = gs.read_parquet(spark, path)
    if partitioning == "shuffled":
        return df.repartition(3)
    if partitioning == "one":
        return df.coalesce(1)
    return df


@pytest.fixture(scope="module")
def frames(spark, data):
    """The pool under each partitioning and the target, read once (each read is a Spark job)."""
    out = {p: read(spark, data, p) for p in ("files", "splits", "shuffled", "one")}
    out["target"] = gs.read_parquet(spark, str(data["root"] / "target"))
    return out


# Both modes, each under two partitionings (every pipeline is a few Spark jobs: seconds each).
@pytest.mark.parametrize(
    "mode, partitioning", [("top", "files"), ("top", "shuffled"), ("sample", "splits"), ("sample", "one")]
)
def test_selects_the_rows_of_the_in_memory_method(data, frames, mode, partitioning):
    budget, seed = 120, 5
    want = gio_rs.select(
        data["train"], data["target"], method="ratio", budget_rows=budget, ratio_mode=mode, seed=seed
    )
    got = gs.select(
        frames[partitioning],
        frames["target"],
        method="ratio",
        budget_rows=budget,
        ratio_mode=mode,
        seed=seed,
        validate=partitioning == "files",
    )
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-9, atol=1e-12)
    rows = got.rows.toPandas()
    assert list(rows.columns) == ["row_id", "name", "features", "rank", "score"]
    assert rows["rank"].tolist() == list(range(budget))
    assert rows["row_id"].tolist() == want.indices.tolist()
    assert rows["name"].tolist() == [f"row{i}" for i in want.indices]
    np.testing.assert_array_equal(rows["score"].to_numpy(), got.scores)


@pytest.mark.parametrize("estimator", ["knn", "logistic"])
def test_other_estimators_match_memory(data, frames, estimator):
    want = gio_rs.select(
        data["train"], data["target"], method="ratio", budget_rows=50, ratio_estimator=estimator
    )
    got = gs.select_ratio(frames["splits"], frames["target"], 50, estimator=estimator, validate=False)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-9, atol=1e-12)


def test_a_pool_larger_than_the_sample_matches_memory(spark, tmp_path):
    # 21 000 rows: the pool sample (20 000 rows) is drawn across partitions and merged.
    pool, target = domain_data(np.random.default_rng(3), 21_000, 30)
    write_parts(tmp_path / "train", pool, 3)
    write_parts(tmp_path / "target", target, 1)
    want = gio_rs.select(pool, target, method="ratio", budget_rows=300, ratio_estimator="gaussian", seed=1)
    got = gs.select_ratio(
        gs.read_parquet(spark, str(tmp_path / "train")),
        gs.read_parquet(spark, str(tmp_path / "target")),
        300,
        estimator="gaussian",
        seed=1,
        validate=False,
    )
    assert len(got.summary.sample_rows) == ratio.SAMPLE_ROWS
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-9, atol=1e-12)


def test_init_counts_as_in_memory(spark, data, frames, tmp_path):
    init = data["train"][:30] + np.float32(1.5)
    want = gio_rs.select(data["train"], data["target"], method="ratio", budget_rows=80, init=init)
    init_df = spark.createDataFrame(
        [(i, row.tolist()) for i, row in enumerate(init)], "row_id long, features array<float>"
    )
    got = gs.select(
        frames["files"], frames["target"], method="ratio", budget_rows=80, init_df=init_df, validate=False
    )
    np.testing.assert_array_equal(got.indices, want.indices)
    got.write_parquet(tmp_path / "out")
    back = pq.read_table(tmp_path / "out").to_pandas().sort_values("rank")
    assert back["row_id"].tolist() == got.indices.tolist()
    assert back["rank"].tolist() == list(range(80))


# ------------------------------------------------------------------------------ the summary merge


@pytest.mark.parametrize("cuts", [[700, 1500], [1, 255, 256, 1281], [2999]])
def test_merged_runs_summarise_like_one_builder(cuts):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 5)).astype(np.float32)
    shift = ratio.summary_shift(x[:50])
    whole = ratio.PoolSummaryBuilder(shift, seed=4, sample_rows=100)
    whole.add(x, 0)
    want = whole.finish()
    runs = []
    for first, end in zip([0, *cuts], [*cuts, len(x)]):
        builder = ratio.PoolSummaryBuilder(shift, seed=4, first_row=first, sample_rows=100)
        builder.add(x[first:end], first)
        runs.append(spark_ratio.RunSummary.of(builder))
    got = spark_ratio.merge_summaries(runs, sample_rows=100)
    np.testing.assert_array_equal(got.sample_rows, want.sample_rows)
    np.testing.assert_array_equal(got.sample, want.sample)
    assert got.moments[0] == want.moments[0]
    for a, b in zip(got.moments[1:], want.moments[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for fold_got, fold_want in zip(got.fold_moments, want.fold_moments):
        assert (fold_got is None) == (fold_want is None)
        if fold_want is not None:
            assert fold_got[0] == fold_want[0]
            np.testing.assert_allclose(fold_got[1], fold_want[1], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(fold_got[2], fold_want[2], rtol=1e-10, atol=1e-12)


def test_fold_count_matches_listing_the_rows():
    for first, end in [(0, 0), (0, 1), (3, 2000), (255, 257), (1279, 1281), (500, 9000)]:
        listed = np.bincount(ratio.pool_folds(np.arange(first, end)), minlength=ratio.CV_FOLDS)
        assert [spark_ratio.fold_count(first, end, f) for f in range(ratio.CV_FOLDS)] == listed.tolist()


def test_row_runs():
    assert spark_ratio.row_runs(np.array([], dtype=np.int64)) == []
    assert spark_ratio.row_runs(np.array([4, 5, 6, 9, 10, 2])) == [(0, 3), (3, 5), (5, 6)]


# ------------------------------------------------------------------------------ errors


def test_errors_name_the_argument(frames):
    train, target = frames["files"], frames["target"]
    with pytest.raises(gio_rs.GioError, match="budget_rows: required"):
        gs.select(train, target, method="ratio")
    with pytest.raises(gio_rs.GioError, match="n_clusters: not used by method='ratio'"):
        gs.select(train, target, method="ratio", budget_rows=5, n_clusters=10)
    with pytest.raises(gio_rs.GioError, match="ratio_estimator: must be one of"):
        gs.select(train, target, method="ratio", budget_rows=5, ratio_estimator="nope")
    with pytest.raises(gio_rs.GioError, match="id_col: column 'row_id' is not in train_df"):
        gs.select_ratio(train.drop("row_id"), target, 5)
    with pytest.raises(gio_rs.GioError, match=r"id_col: .* \(row 7 is missing\)"):
        gs.select_ratio(train.filter("row_id != 7"), target, 5)
    with pytest.raises(gio_rs.GioError, match="row 3 appears twice"):
        gs.select_ratio(train.union(train.filter("row_id = 3")), target, 5)
    with pytest.raises(gio_rs.GioError, match="score_col: train_df already has a column 'name'"):
        gs.select_ratio(train, target, 5, score_col="name")


def test_budget_above_the_pool_warns_and_takes_every_row(data, frames):
    small = frames["files"].filter("row_id < 300")
    with pytest.warns(gio_rs.GioWarning, match="budget_rows: 500 is more than the pool's 300 rows"):
        got = gs.select_ratio(small, frames["target"], 500, validate=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gio_rs.GioWarning)
        want = gio_rs.select(data["train"][:300], data["target"], method="ratio", budget_rows=500)
    np.testing.assert_array_equal(got.indices, want.indices)


def test_cli_engine_spark_method_ratio_matches_memory(tmp_path):
    """`gio-rs select --engine spark --method ratio`: the in-memory rows, ranked, with their keys."""
    import json
    import os
    import subprocess
    import sys

    pool, target = domain_data(np.random.default_rng(8), 500, 30)
    write_parts(tmp_path / "p", pool, 2)
    write_parts(tmp_path / "t", target, 1)
    args = ["select", "--engine", "spark", "--master", "local[2]", "--train", "p", "--target", "t",
            "--method", "ratio", "--budget-rows", "40", "--ratio-mode", "sample", "--seed", "3",
            "--out", "sel", "--quiet"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "gio_rs", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ))  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = pq.read_table(tmp_path / "sel").to_pandas().sort_values("rank")
    want = gio_rs.select(pool, target, method="ratio", budget_rows=40, ratio_mode="sample", seed=3)
    assert rows["row_id"].tolist() == want.indices.tolist()
    assert rows["name"].tolist() == [f"row{i}" for i in want.indices]
    np.testing.assert_allclose(rows["score"].to_numpy(), want.scores, rtol=1e-9, atol=1e-12)
    summary = json.loads((tmp_path / "sel.summary.json").read_text())
    assert summary["rows_selected"] == 40 and summary["parameters"]["method"] == "ratio"
