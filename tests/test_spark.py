"""gio_rs.spark against a local SparkSession (local[2]): readers, assign, quantize, select and
explode, checked against brute force and the in-memory pipeline on the same centroids and labels."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gio_rs
import gio_rs.spark as gs
from gio_rs import reference
from gio_rs.spark import engine as spark_engine

DIM = 6


def blobs(rng: np.random.Generator, n: int, n_centers: int, dtype=np.float32) -> np.ndarray:
    centers = rng.normal(0, 4, (n_centers, DIM))
    return (centers[rng.integers(0, n_centers, n)] + rng.normal(size=(n, DIM))).astype(dtype)


def write_parquet_parts(directory, x: np.ndarray, n_files: int, *, float_type=None) -> None:
    """`x` split over `n_files` files (several row groups each), a `name` column carried along."""
    directory.mkdir()
    float_type = float_type or (pa.float32() if x.dtype == np.float32 else pa.float64())
    for f, part in enumerate(np.array_split(np.arange(len(x)), n_files)):
        table = pa.table(
            {
                "name": [f"row{i}" for i in part],
                "features": pa.array(list(x[part]), type=pa.list_(float_type)),
            }
        )
        pq.write_table(table, directory / f"part-{f:05d}.parquet", row_group_size=25)


def sorted_pandas(df, by: str = "row_id"):
    return df.toPandas().sort_values(by).reset_index(drop=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("spark_data")
    train = blobs(rng, 400, 12)
    target = blobs(rng, 60, 3)
    write_parquet_parts(root / "train", train, 3)
    write_parquet_parts(root / "target", target, 2)
    return {"root": root, "train": train, "target": target}


@pytest.fixture(scope="module")
def train_df(spark, data):
    return gs.read_parquet(spark, str(data["root"] / "train"))


@pytest.fixture(scope="module")
def target_df(spark, data):
    return gs.read_parquet(spark, str(data["root"] / "target"))


# ------------------------------------------------------------------------------------------------
# Readers


def test_import_gio_rs_does_not_import_pyspark():
    code = "import sys, gio_rs; assert 'pyspark' not in sys.modules and 'gio_rs.spark' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_read_parquet_round_trip_with_ids_in_file_order(spark, data, train_df):
    got = sorted_pandas(train_df)
    assert list(got.columns) == ["row_id", "name", "features"]
    assert got["row_id"].tolist() == list(range(len(data["train"])))
    assert got["name"].tolist() == [f"row{i}" for i in range(len(data["train"]))]
    np.testing.assert_array_equal(np.stack(got["features"].to_numpy()).astype(np.float32), data["train"])


def test_read_parquet_ids_do_not_depend_on_the_partitioning(spark, data, train_df):
    # Small splits cut the files between row groups: the ids must stay the files' row order.
    before = sorted_pandas(train_df)
    spark.conf.set("spark.sql.files.maxPartitionBytes", "2000")
    try:
        split = gs.read_parquet(spark, str(data["root"] / "train"))
        assert split.rdd.getNumPartitions() > 3
        after = sorted_pandas(split)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert after["row_id"].tolist() == before["row_id"].tolist()
    assert after["name"].tolist() == before["name"].tolist()


def test_read_reference_tsv_round_trip(spark, tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(90, DIM))
    for f, part in enumerate(np.array_split(np.arange(len(x)), 3)):
        lines = [f"id{i}\tsentence {i}\t{json.dumps(x[i].tolist())}\n" for i in part]
        (tmp_path / f"part-{f:05d}.tsv").write_text("".join(lines))
    got = sorted_pandas(gs.read_reference_tsv(spark, str(tmp_path)))
    assert list(got.columns) == ["row_id", "_c0", "_c1", "features"]
    assert got["row_id"].tolist() == list(range(len(x)))
    assert got["_c0"].tolist() == [f"id{i}" for i in range(len(x))]
    np.testing.assert_array_equal(np.stack(got["features"].to_numpy()), x)


def test_read_reference_tsv_reports_unparseable_vectors(spark, tmp_path):
    (tmp_path / "part-00000.tsv").write_text("a\tb\t[1.0, 2.0]\nc\td\tnot a vector\ne\tf\t[3.0, 4.0]\n")
    df = gs.read_reference_tsv(spark, str(tmp_path))
    with pytest.raises(gio_rs.GioError, match=r"column 'features': 1 null vector\(s\) \(row_id 1\)"):
        gs.validate_features(df)


# ------------------------------------------------------------------------------------------------
# Assign and quantize


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_assign_agrees_with_brute_force(spark, dtype):
    rng = np.random.default_rng(11)
    x = blobs(rng, 300, 5, dtype)
    centers = rng.normal(0, 4, (9, DIM))
    # Any DataFrame: no row_id, features built by Spark itself, several partitions.
    element = "float" if dtype == np.float32 else "double"
    df = spark.createDataFrame(
        [(i, x[i].tolist()) for i in range(len(x))], f"key long, emb array<{element}>"
    ).repartition(3)
    got = sorted_pandas(gs.assign(df, centers, features_col="emb", distance_col="d2"), "key")
    sq = ((x.astype(np.float64)[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(got["cluster"].to_numpy(), sq.argmin(axis=1))
    np.testing.assert_allclose(got["d2"].to_numpy(), sq.min(axis=1), rtol=1e-9, atol=1e-9)
    assert got["cluster"].dtype == np.int64


def test_quantize_is_seeded(train_df, data):
    first = gs.quantize(train_df, 12, seed=5, max_iter=10)
    again = gs.quantize(train_df, 12, seed=5, max_iter=10)
    assert first.shape == (12, DIM) and first.dtype == np.float64
    np.testing.assert_allclose(first, again, rtol=1e-12, atol=1e-12)
    # The centers are K-Means centers: each is the mean of the rows nearest to it.
    labels = brute_force_labels(data["train"], first)
    for c in np.unique(labels):
        np.testing.assert_allclose(first[c], data["train"][labels == c].mean(axis=0), atol=0.05)


# ------------------------------------------------------------------------------------------------
# Select and explode

# scale_factor=1: with "auto" (about 600 on these centroids) the first descent starting on a target
# row is chaotic, and the oracle's own picks change when the target moves by 1e-12, so no exact
# comparison with it would be fair; with 1 the run is well conditioned.
SELECT_OPTIONS = {
    "k": 3,
    "stop_criterion": "data_size",
    "max_data_size": 0.3,
    "v_init": "jump",
    "scale_factor": 1.0,
}


@pytest.fixture(scope="module")
def spark_selection(train_df, target_df):
    return gs.select(
        train_df, target_df, n_clusters=12, n_clusters_target=8, seed=2, kmeans_max_iter=10, **SELECT_OPTIONS
    )


def brute_force_labels(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """The nearest center of every row, from exact differences in float64 (ties: lowest index)."""
    with np.errstate(over="ignore"):
        return ((x.astype(np.float64)[:, None, :] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)


def members_of(chosen, labels: np.ndarray) -> list:
    """By hand: each chosen cluster's rows, clusters in first-chosen order (once), rows ascending."""
    return [i for c in dict.fromkeys(int(c) for c in chosen) for i in np.flatnonzero(labels == c).tolist()]


def test_select_equals_the_oracle_on_the_same_centroids(spark_selection, data):
    """The selection among the centroids Spark computed is the NumPy oracle's (its uniform start
    and its draws made as `select` documents them for seed=2), and the rows are the members of the
    chosen clusters under brute-force labels."""
    result = spark_selection
    assert result.train_centers.shape == (12, DIM) and result.target_centers.shape == (8, DIM)
    start = reference._uniform_start(np.random.RandomState(2), -1.0, 1.0, 20, DIM, True)
    oracle = reference.greedy_select(
        result.train_centers, result.target_centers, start, rng=random.Random(2), fixed=True, **SELECT_OPTIONS
    )
    assert result.selection.indices.tolist() == oracle.indices
    np.testing.assert_allclose(result.selection.kl_trace, oracle.kl_trace, rtol=1e-9, atol=1e-9)
    assert result.selection.stop_reason == oracle.stop_reason == "data_size"
    assert len(result.selection.indices) == int(0.3 * 12) + 1

    labels = brute_force_labels(data["train"], result.train_centers)
    rows = result.rows.toPandas()  # the DataFrame's own order
    assert rows["row_id"].tolist() == members_of(oracle.indices, labels)
    assert rows["cluster"].tolist() == labels[rows["row_id"].to_numpy()].tolist()
    assert result.clusters.tolist() == list(dict.fromkeys(oracle.indices))
    assert result.repeated_clusters.tolist() == [
        c for c in dict.fromkeys(oracle.indices) if oracle.indices.count(c) > 1
    ]


def test_exploded_rows_are_exactly_the_members_of_the_chosen_clusters(spark_selection, data):
    rows = spark_selection.rows.toPandas()
    assert list(rows.columns) == ["row_id", "name", "features", "cluster"]
    sq = ((data["train"][:, None, :].astype(np.float64) - spark_selection.train_centers[None]) ** 2).sum(
        axis=2
    )
    labels = sq.argmin(axis=1)
    chosen = set(spark_selection.selection.indices.tolist())
    assert set(rows["cluster"]) == chosen
    expected = sorted(np.flatnonzero(np.isin(labels, list(chosen))).tolist())
    assert sorted(rows["row_id"]) == expected
    assert rows["row_id"].is_unique
    for _, row in rows.iterrows():  # each row carries its own columns and its own cluster
        assert row["name"] == f"row{row['row_id']}"
        np.testing.assert_array_equal(np.asarray(row["features"], np.float32), data["train"][row["row_id"]])
        assert row["cluster"] == labels[row["row_id"]]


def test_select_on_given_centroids_is_reproducible_and_writes_parquet(
    spark_selection, train_df, target_df, tmp_path
):
    again = gs.select(
        train_df,
        target_df,
        train_centers=spark_selection.train_centers,
        target_centers=spark_selection.target_centers,
        seed=2,
        **SELECT_OPTIONS,
    )
    np.testing.assert_array_equal(again.selection.indices, spark_selection.selection.indices)
    again.write_parquet(str(tmp_path / "out"))
    written = pq.read_table(tmp_path / "out").to_pandas()
    expected = spark_selection.rows.toPandas()
    assert written["row_id"].tolist() == expected["row_id"].tolist()
    assert written["cluster"].tolist() == expected["cluster"].tolist()
    assert written["name"].tolist() == expected["name"].tolist()


def test_small_target_is_used_as_it_is(train_df, target_df, data):
    result = gs.select(
        train_df,
        target_df,
        train_centers=np.asarray(data["train"][:20], dtype=np.float64),
        n_clusters_target=100,
        seed=0,
        **SELECT_OPTIONS,
    )
    np.testing.assert_array_equal(result.target_centers, data["target"].astype(np.float64))


def test_explode_keeps_first_chosen_order_and_each_cluster_once(spark):
    df = spark.createDataFrame([(i, i % 4) for i in range(12)], "row_id long, cluster int")
    got = gs.explode(df, [2, 0, 2]).toPandas()
    assert got["row_id"].tolist() == [2, 6, 10, 0, 4, 8]
    assert got["cluster"].tolist() == [2, 2, 2, 0, 0, 0]
    assert gs.explode(df, np.zeros(0, np.int64)).count() == 0


# ------------------------------------------------------------------------------------------------
# Bad input


def vectors_df(spark, vectors, element: str = "double"):
    return spark.createDataFrame(
        [(i, v) for i, v in enumerate(vectors)], f"row_id long, features array<{element}>"
    )


def test_missing_column_is_named(train_df):
    with pytest.raises(gio_rs.GioError, match=r"features_col: column 'emb' is not in df"):
        gs.assign(train_df, np.zeros((2, DIM)), features_col="emb")
    with pytest.raises(gio_rs.GioError, match=r"features_col: column 'emb' is not in train_df"):
        gs.select(train_df, train_df, n_clusters=4, features_col="emb")
    with pytest.raises(gio_rs.GioError, match=r"features_col: column 'emb' is not in path"):
        gs.read_parquet(train_df.sparkSession, train_df.inputFiles(), features_col="emb")


def test_wrong_column_type_is_named(spark):
    df = spark.createDataFrame([(1, "x")], "row_id long, features string")
    with pytest.raises(TypeError, match=r"features_col: column 'features' of df must be array<float>"):
        gs.validate_features(df)


@pytest.mark.parametrize(
    "vectors, message",
    [
        (
            [[1.0, 2.0], [1.0, 2.0, 3.0], [4.0, 5.0], [6.0, 7.0]],
            r"vectors have different lengths \(2 to 3; most have 2\) \(row_id 1\)",
        ),
        ([[1.0, 2.0], None, [3.0, 4.0], None], r"2 null vector\(s\) \(row_id 1, 3\)"),
        ([[1.0, 2.0], [3.0, None], [3.0, 4.0]], r"1 vector\(s\) with null elements \(row_id 1\)"),
        (
            [[1.0, float("nan")], [3.0, 4.0], [float("inf"), 1.0]],
            r"2 vector\(s\) with NaN or infinite values \(row_id 0, 2\)",
        ),
        ([[], []], r"empty vector\(s\) \(row_id 0, 1\)"),
    ],
)
def test_bad_vectors_fail_naming_the_column_and_rows(spark, vectors, message):
    df = vectors_df(spark, vectors)
    with pytest.raises(gio_rs.GioError, match=r"^df: column 'features': " + message):
        gs.assign(df, np.zeros((2, 2)))
    with pytest.raises(gio_rs.GioError, match=r"^train_df: column 'features': " + message):
        gs.select(df, df, n_clusters=2)


HOSTILE_VALUES = st.one_of(
    st.none(),
    st.floats(),  # NaN, ±inf, huge and tiny values
    st.sampled_from([0.0, 1e30, -1e-30, 3e38]),
)


@settings(max_examples=15)  # every case runs Spark jobs
@given(
    vectors=st.lists(st.one_of(st.none(), st.lists(HOSTILE_VALUES, max_size=3)), min_size=1, max_size=6),
    n_centers=st.integers(1, 3),
)
def test_hostile_vectors_are_labelled_or_refused_by_name(spark, vectors, n_centers):
    """assign on arbitrary vectors (nulls, ragged, NaN, ±inf, huge): correct labels for a clean
    column, else a GioError naming the column, with the offending row ids."""
    df = vectors_df(spark, vectors)
    centers = np.arange(2 * n_centers, dtype=np.float64).reshape(n_centers, 2)
    try:
        rows = gs.assign(df, centers).collect()
    except gio_rs.GioError as exc:
        assert str(exc).startswith("df: column 'features': "), exc
        # The offending rows, or (every vector the same other length) the length that differs.
        lengths = {len(v) for v in vectors if v is not None}
        whole_column = (
            f"vectors have {lengths.pop() if len(lengths) == 1 else '?'} values, the centers have 2"
        )
        assert "(row_id " in str(exc) or str(exc).endswith(whole_column), exc
        clean = all(v is not None and len(v) == 2 and None not in v and np.isfinite(v).all() for v in vectors)
        assert not clean, exc
    else:
        labels = {r["row_id"]: r["cluster"] for r in rows}
        x = np.array([vectors[i] for i in sorted(labels)], dtype=np.float64)
        assert len(labels) == len(vectors) and np.isfinite(x).all()
        assert [labels[i] for i in sorted(labels)] == brute_force_labels(x, centers).tolist()


def test_vectors_must_match_the_centers(spark):
    df = vectors_df(spark, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(
        gio_rs.GioError, match=r"^df: column 'features': vectors have 3 values, the centers have 2"
    ):
        gs.assign(df, np.zeros((2, 2)))


def test_target_must_match_the_pool(spark):
    train = vectors_df(spark, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    target = vectors_df(spark, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(gio_rs.GioError, match=r"^target_df: column 'features': vectors have 3 values"):
        gs.select(train, target, n_clusters=2)


def test_unvalidated_bad_rows_still_fail_in_the_executors(spark):
    df = vectors_df(spark, [[1.0, 2.0], [1.0, 2.0, 3.0]])
    with pytest.raises(
        Exception, match=r"features: vectors must have 2 values, like the centers \(row_id 1\)"
    ):
        gs.assign(df, np.zeros((2, 2)), validate=False).collect()


def test_output_column_must_be_new(train_df):
    with pytest.raises(gio_rs.GioError, match=r"^output_col: column 'name' already exists"):
        gs.assign(train_df, np.zeros((2, DIM)), output_col="name")


def test_executor_side_checks_on_a_sliced_arrow_batch():
    # Spark may hand the kernel slices of larger Arrow buffers: offsets then do not start at 0.
    ids = pa.array(np.arange(6, dtype=np.int64))
    vectors = pa.array([[9.0, 9.0], [1.0, 2.0], [3.0, 4.0], [5.0, None], [7.0, 8.0], [0.0, 1.0]])
    batch = pa.RecordBatch.from_arrays([ids, vectors], names=["row_id", "features"]).slice(1, 5)
    with pytest.raises(gio_rs.GioError, match=r"^features: vector\(s\) with null elements \(row_id 3\)$"):
        spark_engine.batch_matrix(batch, "features", 2, "row_id")
    clean = batch.slice(0, 2)
    np.testing.assert_array_equal(
        spark_engine.batch_matrix(clean, "features", 2, "row_id"), [[1.0, 2.0], [3.0, 4.0]]
    )
    with pytest.raises(gio_rs.GioError, match=r"^features: vectors must have 3 values.*\(rows 0, 1 of"):
        spark_engine.batch_matrix(clean, "features", 3, None)


def test_cli_engine_spark_matches_the_api(spark, tmp_path):
    """`gio-rs select --engine spark` on parquet: the clusters `gs.select` chooses with the same
    options, and exactly their members' rows, every column kept."""
    import os

    rng = np.random.default_rng(11)
    pool = rng.normal(size=(300, 4))
    target = rng.normal(loc=0.5, size=(40, 4))
    pq.write_table(
        pa.table({"name": [f"r{i}" for i in range(300)], "features": pool.tolist()}), tmp_path / "p.parquet"
    )
    pq.write_table(pa.table({"features": target.tolist()}), tmp_path / "t.parquet")
    args = ["select", "--engine", "spark", "--master", "local[2]", "--train", "p.parquet",
            "--target", "t.parquet", "--clusters", "12", "--clusters-target", "6", "--k", "2",
            "--stop", "data_size", "--max-data-size", "0.3", "--seed", "3",
            "--out", "sel", "--quiet"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "gio_rs", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ))  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "sel.summary.json").read_text())
    rows = pq.read_table(tmp_path / "sel").to_pandas()

    api = gs.select(
        gs.read_parquet(spark, str(tmp_path / "p.parquet")),
        gs.read_parquet(spark, str(tmp_path / "t.parquet")),
        n_clusters=12,
        n_clusters_target=6,
        k=2,
        stop_criterion="data_size",
        max_data_size=0.3,
        seed=3,
    )
    assert summary["clusters"] == api.clusters.tolist()
    assert summary["kl_trace"] == pytest.approx(api.selection.kl_trace.tolist(), rel=1e-12)
    labels = brute_force_labels(pool, api.train_centers)
    expected = members_of(api.clusters, labels)
    assert sorted(rows["row_id"]) == sorted(expected)
    assert rows["cluster"].tolist() == labels[rows["row_id"].to_numpy()].tolist()
    assert rows["name"].tolist() == [f"r{i}" for i in rows["row_id"]]
    np.testing.assert_array_equal(np.stack(rows["features"].to_numpy()), pool[rows["row_id"].to_numpy()])


def test_budget_rows_gives_exactly_n_ranked_rows_as_in_memory(spark_selection, train_df, target_df, data):
    """`budget_rows` on Spark: N rows with ranks 0..N-1, the rows and order `gio_rs.ranking`
    gives on the same centroids and labels."""
    from gio_rs import ranking

    centers, target_centers = spark_selection.train_centers, spark_selection.target_centers
    options = {"k": 2, "v_init": "jump"}
    result = gs.select(train_df, target_df, train_centers=centers, target_centers=target_centers, seed=2,
                       budget_rows=70, **options)  # fmt: skip
    rows = result.rows.toPandas()
    assert len(rows) == 70 and rows["rank"].tolist() == list(range(70))
    assert list(rows.columns) == ["row_id", "name", "features", "cluster", "rank"]
    labels = brute_force_labels(data["train"], centers)
    sizes = np.bincount(labels, minlength=len(centers))
    seeded = {**options, "seed": 2}
    chosen = ranking.choose_clusters(gio_rs.select, centers, target_centers, sizes, 70, seeded)
    assert result.selection.indices.tolist() == chosen.indices.tolist()
    explosion = gio_rs.explode(chosen.indices, labels, n_clusters=len(centers))
    distances = ranking.target_distances(data["train"], explosion.indices, target_centers)
    order = ranking.rank_order(explosion.cluster_of_row, explosion.clusters, distances, explosion.indices)
    assert rows["row_id"].tolist() == explosion.indices[order][:70].tolist()
