"""GIOKL's Spark half against a local SparkSession (local[2]): the readers, quantize and explode on
Spark frames (the same members as the array path for the same centroids; the reference's pairing
and joined frame), errors naming the file, column and rows, and grad-info-opt's README scale
example run as a script with only its import line changed."""

# ruff: noqa: E501  (the README example below is kept verbatim, long lines included)

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_compat import as_gio_rs, run_script

from gio_rs import GIOKL, GioError

# grad-info-opt's README, the scale example, verbatim (PATH_TO_TRAIN, PATH_TO_TARGET and
# OUTPUT_PATH are its placeholders, which the user fills in: here the runner provides them).
README_SCALE = r"""from GIO import GIOKL
import jax.numpy as jnp
import matplotlib.pyplot as plt
import pyspark.sql.functions as F

# Initialize class
gio_kl = GIOKL.GIOKL(uniform_low=-1, uniform_high=1, uniform_start_size=20, dim=768)

# Read data
train_df, target_df = gio_kl.read_data_from_csv(PATH_TO_TRAIN, PATH_TO_TARGET)

# Quantize data
model_train, model_X, transformed_train, transformed_X = gio_kl.quantize(train_df, target_df)

X = jnp.array(model_X.clusterCenters())
train = jnp.array(model_train.clusterCenters())
centroids_df = gio_kl.spark.createDataFrame(data=[(i, each.tolist()) for i, each in enumerate(model_train.clusterCenters())], schema=["id", "centroid"])

# Perform the Algorithm
W, kl_divs, _ = gio_kl.fit(train, X, max_iter=300, stopping_criterion='sequential_increase_tolerance', v_init='jump')
W = W[20:] # Remove the uniform start

# Explode back to original data and write resulting data
full_selections_df = gio_kl.explode(W, transformed_train, centroids_df)
full_selections_df.select(F.col("_c0"), F.col("_c1")).write.option("delimiter", "\t").csv(OUTPUT_PATH)


# Plot results
plt.plot(kl_divs)
plt.title("KL Divergence vs. Iterations")
plt.xlabel("Iterations")
plt.ylabel("KL Divergence")
plt.show()
"""

DIM = 6


def write_tsv(path, vectors, prefix="t", raw=None) -> None:
    """grad-info-opt's format: `_c0` id, `_c1` text, `_c2` the vector as a JSON list; `raw` maps
    row numbers to a verbatim `_c2` (or None for a line with two columns)."""
    raw = raw or {}
    lines = []
    for i, v in enumerate(vectors):
        third = raw.get(i, json.dumps(np.asarray(v).tolist()))
        lines.append(f"{prefix}{i}\tsentence {i}" + ("" if third is None else f"\t{third}") + "\n")
    path.write_text("".join(lines))


def blobs(rng, n, n_centers, spread=4.0):
    centers = rng.normal(0, spread, (n_centers, DIM))
    return centers[rng.integers(0, n_centers, n)] + rng.normal(size=(n, DIM))


def plain(message: str) -> bool:
    """One clear message: no JVM stack trace, no Python traceback."""
    return "\tat " not in message and "Traceback" not in message and len(message) < 800


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(11)
    root = tmp_path_factory.mktemp("compat_spark")
    train, target = blobs(rng, 240, 12), blobs(rng, 60, 3) + 0.5
    (root / "train").mkdir()
    write_tsv(root / "train" / "part-0.tsv", train[:130])
    write_tsv(root / "train" / "part-1.tsv", train[130:], prefix="u")
    write_tsv(root / "target.tsv", target, prefix="x")
    ids = [f"t{i}" for i in range(130)] + [f"u{i}" for i in range(110)]
    return {"root": root, "train": train, "target": target, "ids": ids}


@pytest.fixture(scope="module")
def model(spark):
    return GIOKL.GIOKL(uniform_low=-1, uniform_high=1, uniform_start_size=20, dim=DIM)


@pytest.fixture(scope="module")
def frames(model, files):
    return model.read_data_from_csv(str(files["root"] / "train"), str(files["root"] / "target.tsv"))


@pytest.fixture(scope="module")
def quantized(model, frames):
    return model.quantize(*frames, k=10, rseed="manual", rseed1=-7, rseed2=4)


# ------------------------------------------------------------------------------------------------
# Session and readers


def test_spark_starts_lazily_and_reuses_the_active_session(spark):
    model = GIOKL(dim=DIM)
    assert model._spark is None  # the constructor does not touch Spark
    assert model.spark is spark
    other = object()
    model.spark = other
    assert model.spark is other


def test_read_data_from_csv_gives_the_reference_columns(frames, files):
    train_df, target_df = frames
    assert train_df.columns == ["_c0", "_c1", "_c2", "features"]
    field = train_df.schema["features"].dataType
    assert field.simpleString() == "array<double>" and field.containsNull is False  # as MLlib needs
    got = {r["_c0"]: (r["_c1"], r["features"]) for r in train_df.collect()}
    assert sorted(got) == sorted(files["ids"])
    for i, name in enumerate(files["ids"]):
        np.testing.assert_array_equal(got[name][1], files["train"][i])
    assert target_df.count() == 60


def test_read_data_from_parquet_gives_double_features_and_quantizes(model, tmp_path):
    rng = np.random.default_rng(5)
    x = blobs(rng, 80, 4).astype(np.float32)
    for name, rows in (("train", x[:60]), ("target", x[60:])):
        (tmp_path / name).mkdir()
        table = pa.table(
            {
                "name": [f"{name}{i}" for i in range(len(rows))],
                "features": pa.array(list(rows), type=pa.list_(pa.float32())),
            }
        )
        pq.write_table(table, tmp_path / name / "part-0.parquet")
    train_df, target_df = model.read_data_from_parquet(str(tmp_path / "train"), str(tmp_path / "target"))
    assert train_df.columns == ["name", "features"]
    assert train_df.schema["features"].dataType.simpleString() == "array<double>"
    by_name = {r["name"]: r["features"] for r in train_df.collect()}
    np.testing.assert_array_equal(np.asarray(by_name["train3"]), x[3].astype(np.float64))
    m_train, m_x, t_train, t_x = model.quantize(train_df, target_df, k=3, rseed="manual")
    assert len(m_train.clusterCenters()) == 3 and t_x.columns == ["name", "features", "prediction"]


# ------------------------------------------------------------------------------------------------
# quantize and explode


def labels_in_file_order(transformed, ids):
    prediction = {r["_c0"]: r["prediction"] for r in transformed.select("_c0", "prediction").collect()}
    return np.array([prediction[name] for name in ids], dtype=np.int64)


def test_spark_quantize_is_mllib_kmeans_with_a_prediction_column(quantized, files):
    model_train, model_x, transformed_train, transformed_x = quantized
    centers = np.array(model_train.clusterCenters())
    assert centers.shape == (10, DIM) and len(model_x.clusterCenters()) == 10
    assert transformed_train.columns == ["_c0", "_c1", "_c2", "features", "prediction"]
    labels = labels_in_file_order(transformed_train, files["ids"])
    # MLlib's prediction is the nearest center.
    nearest = ((files["train"][:, None, :] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(labels, nearest)


def test_spark_explode_gives_the_members_the_array_path_gives(spark, model, quantized, files, capsys):
    model_train, model_x, transformed_train, _ = quantized
    centroids_df = spark.createDataFrame(
        data=[(i, each.tolist()) for i, each in enumerate(model_train.clusterCenters())],
        schema=["id", "centroid"],
    )
    # float32, as jnp.array(...) makes them in grad-info-opt's README (jax itself is only imported
    # in child processes: it warns on every later os.fork() of this one).
    train = np.array(model_train.clusterCenters(), dtype=np.float32)
    X = np.array(model_x.clusterCenters(), dtype=np.float32)
    W, _, _ = model.fit(train, X, max_iter=3, stop_criterion="data_size", v_init="jump")
    chosen = W[20:]
    assert chosen.dtype == np.float32 and len(chosen) == 4
    capsys.readouterr()
    exploded = model.explode(chosen, transformed_train, centroids_df)
    assert exploded.columns == ["i", "id", "_c0", "_c1", "_c2", "features", "prediction"]
    spark_rows = sorted(files["ids"].index(r["_c0"]) for r in exploded.select("_c0").collect())

    labels = labels_in_file_order(transformed_train, files["ids"])
    centers = np.array(model_train.clusterCenters())
    array_rows = model.explode(np.asarray(chosen, dtype=np.float64), labels, centers.astype(np.float32))
    assert spark_rows == sorted(array_rows.tolist())
    # ... and they are exactly the members of the chosen clusters.
    chosen_ids = [int(np.flatnonzero((centers.astype(np.float32) == row).all(axis=1))[0]) for row in chosen]
    assert spark_rows == np.flatnonzero(np.isin(labels, chosen_ids)).tolist()
    assert capsys.readouterr().out.splitlines()[-2:] == ["Found 4 centroids out of 4 selected centroids"] * 2


def test_explode_pairs_as_the_reference_does(spark, model, capsys):
    """Every centroid equal to a chosen row is paired (in id order), -0.0 equals 0.0, a row that
    matches nothing is dropped with a warning; a cluster paired twice gives its rows twice."""
    transformed = spark.createDataFrame(
        [("a", 0), ("b", 1), ("c", 1), ("d", 2), ("e", 3), ("f", 3)], schema=["_c0", "prediction"]
    )
    centroids = spark.createDataFrame(
        [(3, [1.0, 2.0]), (0, [0.0, 5.0]), (2, [7.0, 7.0]), (1, [1.0, 2.0])], schema=["id", "centroid"]
    )
    chosen = np.array([[1.0, 2.0], [-0.0, 5.0], [9.0, 9.0], [1.0, 2.0]])
    with pytest.warns(UserWarning, match=r"^explode: 1 of 4 chosen rows match no centroid, dropped$"):
        out = model.explode(chosen, transformed, centroids)
    assert capsys.readouterr().out == "Found 5 centroids out of 4 selected centroids\n"
    got = sorted((r["i"], r["id"], r["_c0"]) for r in out.collect())
    assert got == [
        (0, 1, "b"),
        (0, 1, "c"),
        (1, 3, "e"),
        (1, 3, "f"),
        (2, 0, "a"),
        (3, 1, "b"),
        (3, 1, "c"),
        (4, 3, "e"),
        (4, 3, "f"),
    ]


def test_quantize_clusters_a_frame_smaller_than_k_with_a_warning(model, frames, files):
    with pytest.warns(UserWarning) as caught:
        m_train, m_x, t_train, _ = model.quantize(*frames, rseed="manual")  # k=1500 by default
    messages = [str(w.message) for w in caught]
    assert messages == [
        "quantize: df_train has 240 rows, fewer than k=1500: each of its 240 distinct rows is its own cluster",
        "quantize: df_x has 60 rows, fewer than k=1500: each of its 60 distinct rows is its own cluster",
    ]
    assert len(m_train.clusterCenters()) == 240 and len(m_x.clusterCenters()) == 60
    centers = {tuple(c) for c in m_train.clusterCenters()}
    assert centers == {tuple(r) for r in files["train"]}  # every row its own center
    for r in t_train.select("features", "prediction").collect():
        assert tuple(m_train.clusterCenters()[r["prediction"]]) == tuple(r["features"])


def test_quantize_checks_frames_it_did_not_read(spark, model):
    ragged = spark.createDataFrame(
        [(0, [1.0, 2.0]), (1, [1.0, 2.0]), (2, [1.0])], schema=["row_id", "features"]
    )
    good = spark.createDataFrame([(0, [1.0, 2.0]), (1, [3.0, 2.0])], schema=["row_id", "features"])
    with pytest.raises(
        GioError, match=r"^df_train: column 'features': vectors have different lengths"
    ) as err:
        model.quantize(ragged, good, k=2)
    assert "row_id 2" in str(err.value) and plain(str(err.value))
    with pytest.raises(GioError, match=r"^df_x: no column 'features'"):
        model.quantize(good, good.withColumnRenamed("features", "emb"), k=2)
    with pytest.raises(TypeError, match="both be Spark DataFrames or both arrays"):
        model.quantize(good, np.zeros((3, 2)))


def test_quantize_takes_ml_vector_features_as_the_reference_does(spark, model, frames, quantized):
    from pyspark.ml.functions import array_to_vector
    from pyspark.ml.linalg import VectorUDT

    as_vectors = [f.withColumn("features", array_to_vector("features")) for f in frames]
    m_train, _, t_train, _ = model.quantize(*as_vectors, k=10, rseed="manual", rseed1=-7, rseed2=4)
    np.testing.assert_array_equal(np.array(m_train.clusterCenters()), np.array(quantized[0].clusterCenters()))
    assert isinstance(t_train.schema["features"].dataType, VectorUDT)
    before = {r["_c0"]: r["prediction"] for r in quantized[2].select("_c0", "prediction").collect()}
    assert {r["_c0"]: r["prediction"] for r in t_train.select("_c0", "prediction").collect()} == before


# ------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {1: '[1, "q"]', 3: "not json"},
            r"^path: column '_c2': 2 row\(s\) with a value that is not a JSON list of numbers: "
            r"bad\.tsv: _c0 't1', 't3'$",
        ),
        ({2: "[1.0, 2.0, 3.0]"}, r"^path: column '_c2': 1 row\(s\) with a vector length other than 2 "),
        ({4: "[NaN, 1.0]", 5: "[1.0, Infinity]"}, r"^path: column '_c2': 2 row\(s\) with a NaN or infinite "),
        ({0: "[1.0, null]"}, r"^path: column '_c2': 1 row\(s\) with a null element: bad\.tsv: _c0 't0'$"),
        (
            {3: None},
            r"^path: column '_c2': 1 row\(s\) with no value \(fewer than 3 columns\): bad\.tsv: _c0 't3'$",
        ),
        ({i: "[]" for i in range(6)}, r"^path: column '_c2': 6 row\(s\) with an empty vector: .*, \.\.\.$"),
    ],
)
def test_bad_tsv_rows_are_named_by_file_column_and_row(model, tmp_path, files, raw, message):
    write_tsv(tmp_path / "bad.tsv", np.arange(12.0).reshape(6, 2), raw=raw)
    with pytest.raises(GioError, match=message) as err:
        model.read_data_from_csv(str(tmp_path / "bad.tsv"), str(files["root"] / "target.tsv"))
    assert plain(str(err.value))


def test_ragged_rows_are_named(model, tmp_path, files):
    write_tsv(tmp_path / "ragged.tsv", np.arange(12.0).reshape(6, 2), prefix="r", raw={2: "[1.0, 2.0, 3.0]"})
    with pytest.raises(
        GioError,
        match=r"^path_X: column '_c2': 1 row\(s\) with a vector length other than 2 \(lengths range from "
        r"2 to 3\): ragged\.tsv: _c0 'r2'$",
    ):
        model.read_data_from_csv(str(files["root"] / "target.tsv"), str(tmp_path / "ragged.tsv"))


def test_missing_paths_and_too_few_columns_are_named(model, tmp_path, files):
    target = str(files["root"] / "target.tsv")
    with pytest.raises(GioError, match=r"^path: cannot read .*missing\.tsv: ") as err:
        model.read_data_from_csv(str(tmp_path / "missing.tsv"), target)
    assert plain(str(err.value))
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"features": pa.array([[1.0, 2.0]], pa.list_(pa.float64()))}), good)
    with pytest.raises(GioError, match=r"^path_X: cannot read .*nope\.parquet: ") as err:
        model.read_data_from_parquet(str(good), str(tmp_path / "nope.parquet"))
    assert plain(str(err.value))
    with pytest.raises(GioError, match=r"^path: cannot read .*train: .*Could not read footer") as err:
        model.read_data_from_parquet(str(files["root"] / "train"), str(good))  # TSV files, not parquet
    assert plain(str(err.value))
    (tmp_path / "two.tsv").write_text("a\tb\nc\td\n")
    with pytest.raises(GioError, match=r"^path: .*two\.tsv: expected at least 3 columns separated by '\\t'"):
        model.read_data_from_csv(str(tmp_path / "two.tsv"), target)


def test_bad_parquet_rows_are_named_by_file_and_row_index(model, tmp_path, files):
    (tmp_path / "p").mkdir()
    vectors = [[1.0, 2.0], [3.0, 4.0], [float("nan"), 1.0], [5.0, 6.0]]
    pq.write_table(
        pa.table({"features": pa.array(vectors, pa.list_(pa.float64()))}), tmp_path / "p" / "a.parquet"
    )
    with pytest.raises(
        GioError,
        match=r"^path: column 'features': 1 row\(s\) with a NaN or infinite value: a\.parquet: row index 2$",
    ):
        model.read_data_from_parquet(str(tmp_path / "p"), str(tmp_path / "p"))
    pq.write_table(pa.table({"emb": pa.array([[1.0]], pa.list_(pa.float64()))}), tmp_path / "b.parquet")
    with pytest.raises(GioError, match=r"^path: .*b\.parquet: no column 'features' \(columns: emb\)$"):
        model.read_data_from_parquet(str(tmp_path / "b.parquet"), str(tmp_path / "b.parquet"))


def test_bad_centroid_frames_are_named(spark, model, quantized):
    transformed = quantized[2]
    chosen = np.array(quantized[0].clusterCenters()[:2])
    no_centroid = spark.createDataFrame([(0, [1.0] * DIM)], schema=["id", "center"])
    with pytest.raises(GioError, match=r"^kmeans_centroids_df: no column 'centroid' \(columns: id, center\)"):
        model.explode(chosen, transformed, no_centroid)
    bad = spark.createDataFrame(
        [(0, [1.0] * DIM), (1, [1.0] * (DIM - 1)), (2, None)], schema="id long, centroid array<double>"
    )
    with pytest.raises(
        GioError, match=r"^kmeans_centroids_df: column 'centroid' must hold 6 finite .*id 1, 2$"
    ):
        model.explode(chosen, transformed, bad)
    centroids = spark.createDataFrame([(0, [1.0] * DIM)], schema=["id", "centroid"])
    with pytest.raises(GioError, match=r"^kmeans_transformed_df: no column 'prediction'"):
        model.explode(chosen, transformed.drop("prediction"), centroids)
    with pytest.raises(TypeError, match=r"^kmeans_transformed_df: kmeans_centroids_df is a Spark DataFrame"):
        model.explode(chosen, np.zeros(5, dtype=np.int64), centroids)


# ------------------------------------------------------------------------------------------------
# grad-info-opt's README, scale example


def test_readme_scale_example_runs_unchanged_but_for_the_import(tmp_path):
    """Its fit runs to max_iter (the alias keeps grad-info-opt's never-stopping
    'sequential_increase_tolerance'): 301 clusters chosen of the pool's, so the pool needs more
    than 301 distinct rows; 20 rows repeat others, so some chosen clusters have two members."""
    rng = np.random.default_rng(3)
    distinct = rng.normal(0, 1, (320, 768)) / np.sqrt(768)
    train = np.vstack([distinct, distinct[rng.choice(320, 20, replace=False)]])
    target = rng.normal(0.02, 1, (40, 768)) / np.sqrt(768)
    write_tsv(tmp_path / "train.tsv", train, prefix="t")
    write_tsv(tmp_path / "target.tsv", target, prefix="x")
    placeholders = {
        "PATH_TO_TRAIN": str(tmp_path / "train.tsv"),
        "PATH_TO_TARGET": str(tmp_path / "target.tsv"),
        "OUTPUT_PATH": str(tmp_path / "selected"),
    }
    env = {
        "PYSPARK_SUBMIT_ARGS": "--master local[2] --driver-memory 1g --conf spark.ui.enabled=false "
        "--conf spark.sql.shuffle.partitions=4 pyspark-shell",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }
    dump = {
        "W": "W",
        "centers": "model_train.clusterCenters()",
        "labels": "[(r['_c0'], r['prediction']) for r in transformed_train.select('_c0', 'prediction').collect()]",
    }
    done, out = run_script(tmp_path, as_gio_rs(README_SCALE), init_globals=placeholders, dump=dump, env=env)

    W, centers = out["W"], out["centers"]
    assert W.dtype == np.float32 and W.shape == (301, 768)  # max_iter=300 accepts 301 rows
    assert len(centers) == 320  # k=1500 > 340 rows: every distinct row is its own cluster
    chosen = set()
    for row in W:
        match = np.flatnonzero((centers.astype(np.float32) == row).all(axis=1))
        assert len(match) == 1
        chosen.add(int(match[0]))
    assert len(chosen) == 301
    members = sorted(name for name, cluster in out["labels"] if int(cluster) in chosen)
    written = []
    for part in sorted((tmp_path / "selected").glob("part-*")):
        written += [line.split("\t") for line in part.read_text().splitlines()]
    assert sorted(name for name, _ in written) == members
    assert all(text == f"sentence {name[1:]}" for name, text in written)
    assert len(members) > len(chosen)  # some chosen clusters hold a repeated row
    assert "Found 301 centroids out of 301 selected centroids" in done.stdout.splitlines()
    assert re.search(r"FutureWarning: fit: `stopping_criterion` is not a keyword", done.stderr)
