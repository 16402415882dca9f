"""The Spark half of `GIOKL`: grad-info-opt's `read_data_from_csv`, `read_data_from_parquet`,
`quantize` and `explode` on Spark DataFrames, with the reference's inputs and outputs (same
columns, same MLlib K-Means, same joined result) and errors that name the argument, the file, the
column and the rows instead of a Java stack trace. `gio_rs.compat` imports it on the first use of
a Spark method; it needs `gio_rs[spark]`."""

from __future__ import annotations

import os
import warnings
import weakref
from typing import Any

import numpy as np
from pyspark.ml.clustering import KMeans as _SparkKMeans
from pyspark.ml.clustering import KMeansModel
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .._core import GioError
from .._util.arrays import check_int
from . import engine as gs

FEATURES = "features"
PREDICTION = "prediction"
_FILE = "_gio_file"
_ROW = "_gio_row"
_MAX_EXAMPLES = 5
_INF = float("inf")

# Frames returned by the readers below, already checked: quantize does not scan them again.
# Maps each frame to (rows, vector length).
_checked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def default_session() -> SparkSession:
    """The active SparkSession if there is one; else, in a script that Spark did not launch and
    did not configure (no spark-submit, no PYSPARK_SUBMIT_ARGS), a new local[*] session, as
    grad-info-opt's `SparkSession.builder.getOrCreate()` gives; else the session Spark's own
    configuration describes."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    configured = any(v in os.environ for v in ("PYSPARK_GATEWAY_PORT", "PYSPARK_SUBMIT_ARGS"))
    if configured or _has_spark_context():
        return SparkSession.builder.getOrCreate()
    return gs.session("local[*]", quiet=False)


def _has_spark_context() -> bool:
    from pyspark import SparkContext

    return getattr(SparkContext, "_active_spark_context", None) is not None


def is_stopped(session: Any) -> bool:
    """True when `session`'s SparkContext has been stopped (a Spark Connect session never is)."""
    try:
        return session.sparkContext._jsc is None
    except Exception:  # Spark Connect: no SparkContext
        return False


# --------------------------------------------------------------------------------------------
# Readers


def read_csv(spark: SparkSession, path: Any, name: str, delim: Any) -> DataFrame:
    """grad-info-opt's TSV: headerless, `_c2` the vector as a JSON list. Returns every column
    (`_c0`, `_c1`, `_c2`, ...) plus `features` array<double> (no null elements), as the
    reference does; checked in one pass (rows that are not a JSON list of numbers, NaN/inf,
    vectors of different lengths), the error naming the file and the rows by their `_c0`."""
    if not isinstance(delim, str) or not delim:
        raise TypeError(f"delim: expected a non-empty string, got {delim!r}")
    paths = gs.input_paths(name, path)
    raw = _read(name, paths, lambda: spark.read.option("delimiter", delim).csv(paths))
    if "_c2" not in raw.columns:
        raise GioError(
            f"{name}: {_shown(paths)}: expected at least 3 columns separated by {delim!r} "
            f"(the third, _c2, the vector as a JSON list), found {len(raw.columns)}"
        )
    if FEATURES in raw.columns:  # cannot happen with headerless files; kept for clarity
        raise GioError(f"{name}: already has a column {FEATURES!r}")
    parsed = F.from_json(F.col("_c2"), T.ArrayType(T.DoubleType()))
    located = raw.select(
        "*", F.col("_metadata.file_path").alias(_FILE), F.col("_c0").alias(_ROW), parsed.alias(FEATURES)
    )
    problems = [
        ("no value (fewer than 3 columns)", F.col("_c2").isNull()),
        ("a value that is not a JSON list of numbers", F.col("_c2").isNotNull() & F.col(FEATURES).isNull()),
    ]
    rows, dim = _check(name, "_c2", located, problems, row_label="_c0")
    out = raw.withColumn(FEATURES, _non_null_doubles(parsed))
    _checked[out] = (rows, dim)
    return out


def read_parquet(spark: SparkSession, path: Any, name: str) -> DataFrame:
    """grad-info-opt's parquet input: every column, `features` array<float|double> made
    array<double> with no null elements (the reference's schema); checked in one pass, the error
    naming the file and the row positions within it."""
    paths = gs.input_paths(name, path)
    raw = _read(name, paths, lambda: spark.read.parquet(*paths))
    if FEATURES not in raw.columns:
        raise GioError(f"{name}: {_shown(paths)}: no column {FEATURES!r} (columns: {', '.join(raw.columns)})")
    dtype = raw.schema[FEATURES].dataType
    if not (isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, (T.FloatType, T.DoubleType))):
        raise GioError(
            f"{name}: {_shown(paths)}: column {FEATURES!r} must be array<double> or array<float>, "
            f"got {dtype.simpleString()}"
        )
    located = raw.select(
        "*", F.col("_metadata.file_path").alias(_FILE), F.col("_metadata.row_index").alias(_ROW)
    )
    rows, dim = _check(
        name, FEATURES, located, [("a null vector", F.col(FEATURES).isNull())], row_label="row index"
    )
    out = raw.withColumn(FEATURES, _non_null_doubles(F.col(FEATURES)))
    _checked[out] = (rows, dim)
    return out


def _read(name: str, paths: list, read: Any) -> DataFrame:
    try:
        return read()
    except Exception as exc:  # AnalysisException (missing path), Py4J errors, ...
        raise GioError(f"{name}: cannot read {_shown(paths)}: {_first_line(exc)}") from None


def _non_null_doubles(vectors: Any) -> Any:
    """array<double> whose elements are declared non-null, the type MLlib's K-Means requires of
    an array column (grad-info-opt gets it through a Python UDF). Only applied to checked
    vectors, where the coalesce never fires."""
    return F.transform(vectors, lambda v: F.coalesce(v.cast(T.DoubleType()), F.lit(0.0)))


def _check(name: str, column: str, located: DataFrame, problems: list, *, row_label: str) -> tuple[int, int]:
    """One aggregate pass over `located` (which has `features`, the file and a row label);
    raises GioError naming `name`, `column`, the files and up to 5 rows of the first problem
    found. Returns (rows, vector length)."""
    vec = F.col(FEATURES)
    present = vec.isNotNull()
    problems = problems + [
        ("a null element", present & F.exists(vec, lambda v: v.isNull())),
        ("a NaN or infinite value", present & F.exists(vec, lambda v: F.isnan(v) | (F.abs(v) == _INF))),
        ("an empty vector", present & (F.size(vec) == 0)),
    ]
    length = F.when(present, F.size(vec))
    stats = located.agg(
        F.count(F.lit(1)).alias("rows"),
        F.min(length).alias("lo"),
        F.max(length).alias("hi"),
        *[F.sum(F.when(cond, 1).otherwise(0)).alias(f"p{i}") for i, (_, cond) in enumerate(problems)],
    ).first()

    def fail(count: int, what: str, condition: Any) -> None:
        found = located.filter(condition).select(_FILE, _ROW).limit(_MAX_EXAMPLES).collect()
        raise GioError(
            f"{name}: column {column!r}: {count} row(s) with {what}: {_where(found, count, row_label)}"
        )

    if stats["rows"] == 0:
        raise GioError(f"{name}: no rows")
    for i, (what, condition) in enumerate(problems):
        if stats[f"p{i}"]:
            fail(stats[f"p{i}"], what, condition)
    lo, hi = stats["lo"], stats["hi"]
    if lo != hi:
        common = located.groupBy(F.size(vec).alias("n")).count().orderBy(F.desc("count"), "n").first()["n"]
        odd = F.size(vec) != common
        count = located.filter(odd).count()
        fail(count, f"a vector length other than {common} (lengths range from {lo} to {hi})", odd)
    return int(stats["rows"]), int(lo)


def _where(found: list, count: int, row_label: str) -> str:
    """'train.tsv: _c0 'a', 'b'; other.tsv: _c0 'c'' (files by base name, first-seen order)."""
    by_file: dict = {}
    for row in found:
        by_file.setdefault(os.path.basename(str(row[_FILE])), []).append(_short(row[_ROW]))
    parts = [f"{f}: {row_label} {', '.join(labels)}" for f, labels in by_file.items()]
    return "; ".join(parts) + (", ..." if count > len(found) else "")


def _short(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    return str(value)


def _shown(paths: list) -> str:
    return paths[0] if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more)"


def _first_line(exc: BaseException) -> str:
    """The message of a Spark/Py4J error without its JVM stack trace."""
    for line in str(exc).splitlines():
        line = line.strip().lstrip(": ")
        if line and not line.startswith(("at ", "An error occurred while calling")):
            return line[:500]
    return type(exc).__name__


# --------------------------------------------------------------------------------------------
# quantize


def quantize(df_train: Any, df_x: Any, k: Any, seed_train: Any, seed_x: Any) -> tuple:
    """grad-info-opt's `quantize` on Spark frames: MLlib K-Means (`KMeans().setK(k).setSeed(s)`:
    k-means||, 20 iterations) on each frame's `features`; returns (model_train, model_X,
    transformed_train, transformed_X), the transformed frames with a `prediction` column."""
    k = check_int("k", k, minimum=2)  # MLlib's minimum
    seeds = [check_int(n, s, minimum=-(2**63)) for n, s in (("rseed1", seed_train), ("rseed2", seed_x))]
    model_train, transformed_train = _kmeans("df_train", df_train, k, seeds[0])
    model_x, transformed_x = _kmeans("df_x", df_x, k, seeds[1])
    return model_train, model_x, transformed_train, transformed_x


def _kmeans(name: str, df: Any, k: int, seed: int) -> tuple[KMeansModel, DataFrame]:
    if not isinstance(df, DataFrame):
        raise TypeError(f"{name}: expected a Spark DataFrame, got {type(df).__name__}")
    if PREDICTION in df.columns:
        raise GioError(f"{name}: already has a column {PREDICTION!r}, which K-Means would add")
    known = _checked.get(df)
    if known is None:
        if FEATURES not in df.columns:
            raise GioError(f"{name}: no column {FEATURES!r} (columns: {', '.join(df.columns)})")
        if isinstance(df.schema[FEATURES].dataType, VectorUDT):  # an ML pipeline's vectors: kept
            ids = [gs.ROW_ID] if gs.ROW_ID in df.columns else []
            as_arrays = df.select(*ids, vector_to_array(F.col(FEATURES)).alias(FEATURES))
            gs.validate_features(as_arrays, FEATURES, df_name=name)
        else:
            gs.validate_features(df, FEATURES, df_name=name)
            df = df.withColumn(FEATURES, _non_null_doubles(F.col(FEATURES)))
        rows = df.count()
    else:
        rows = known[0]
    data, init_mode = df.select(FEATURES), "k-means||"
    if rows < k:
        # MLlib fails (ArrayIndexOutOfBounds) when a frame has fewer distinct rows than k. A frame
        # with fewer rows than k is small: K-Means on its distinct rows with k = their number and
        # a random start (which then takes every row) makes each distinct row its own cluster,
        # the best clustering there is.
        data = data.distinct()
        distinct = data.count()
        if distinct < 2:
            raise GioError(f"{name}: K-Means needs at least 2 distinct rows, got {distinct}")
        warnings.warn(
            f"quantize: {name} has {rows} rows, fewer than k={k}: each of its {distinct} distinct "
            "rows is its own cluster",
            stacklevel=3,
        )
        k, init_mode = distinct, "random"
    try:
        model = _SparkKMeans().setK(k).setSeed(seed).setInitMode(init_mode).fit(data)
        transformed = model.transform(df)
    except Exception as exc:
        message = _first_line(exc)
        hint = (
            f" (MLlib fails this way when {name} has fewer distinct rows than k={k}: pass a smaller k)"
            if "ArrayIndexOutOfBoundsException" in message
            else ""
        )
        raise GioError(f"{name}: Spark's K-Means failed: {message}{hint}") from None
    return model, transformed


# --------------------------------------------------------------------------------------------
# explode


def explode(chosen: np.ndarray, transformed: Any, centroids_df: Any, *, verbose: bool) -> DataFrame:
    """grad-info-opt's `explode`: each chosen row is mapped to the ids of the centroids equal to
    it (compared in the chosen rows' dtype, as the reference compares two jax arrays; by hashing,
    not a Python loop over every pair), then the (i, id) pairs are joined with the transformed
    frame on id == prediction. Returns the reference's frame: columns `i`, `id`, then every
    column of `transformed`; a cluster paired twice gives its rows twice."""
    if not isinstance(transformed, DataFrame):
        raise TypeError(
            "kmeans_transformed_df: expected the Spark DataFrame quantize returned, got "
            f"{type(transformed).__name__}"
        )
    if PREDICTION not in transformed.columns:
        raise GioError(
            f"kmeans_transformed_df: no column {PREDICTION!r} (columns: {', '.join(transformed.columns)}); "
            "pass the transformed frame quantize returned"
        )
    ids, centers = _collect_centroids(centroids_df, chosen.shape[1])
    paired, unmatched = _pair(chosen, ids, centers)
    if verbose:
        print(f"Found {len(paired)} centroids out of {len(chosen)} selected centroids")
    if unmatched:
        warnings.warn(
            f"explode: {unmatched} of {len(chosen)} chosen rows match no centroid, dropped", stacklevel=3
        )
    pairs = transformed.sparkSession.createDataFrame(
        [(i, int(c)) for i, c in enumerate(paired)],
        T.StructType([T.StructField("i", T.LongType(), False), T.StructField("id", T.LongType(), False)]),
    )
    return F.broadcast(pairs).join(transformed, pairs["id"] == transformed[PREDICTION])


def _collect_centroids(centroids_df: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, centers) of an (id, centroid) frame, sorted by id, checked."""
    name = "kmeans_centroids_df"
    if not isinstance(centroids_df, DataFrame):
        raise TypeError(
            f"{name}: expected a Spark DataFrame of (id, centroid), got {type(centroids_df).__name__}"
        )
    for column in ("id", "centroid"):
        if column not in centroids_df.columns:
            raise GioError(
                f"{name}: no column {column!r} (columns: {', '.join(centroids_df.columns)}); expected "
                "(id, centroid) rows, e.g. spark.createDataFrame([(i, c.tolist()) for i, c in "
                "enumerate(model_train.clusterCenters())], schema=['id', 'centroid'])"
            )
    rows = centroids_df.select("id", "centroid").collect()
    if not rows:
        raise GioError(f"{name}: no rows")
    ids, vectors, bad = [], [], []
    for row in rows:
        cid, vec = row["id"], row["centroid"]
        try:
            if isinstance(cid, bool) or int(cid) != cid:
                raise ValueError
            values = np.asarray(vec.toArray() if hasattr(vec, "toArray") else vec, dtype=np.float64)
            if values.shape != (dim,) or not np.isfinite(values).all():
                raise ValueError
        except (TypeError, ValueError):
            bad.append(cid)
            continue
        ids.append(int(cid))
        vectors.append(values)
    if bad:
        shown = ", ".join(map(str, bad[:_MAX_EXAMPLES])) + (", ..." if len(bad) > _MAX_EXAMPLES else "")
        raise GioError(
            f"{name}: column 'centroid' must hold {dim} finite numbers per row (the width of "
            f"chosen_centroids) and 'id' an integer: {len(bad)} bad row(s), id {shown}"
        )
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    return np.asarray(ids, dtype=np.int64)[order], np.vstack(vectors)[order]


def _pair(chosen: np.ndarray, ids: np.ndarray, centers: np.ndarray) -> tuple[list, int]:
    """For each chosen row, every centroid id whose centroid equals it, in id order (the
    reference's `paired`), by hashing rows in the dtype of `chosen`; -0.0 equals 0.0 as in the
    reference's list comparison. Also returns how many chosen rows matched nothing."""
    dtype = chosen.dtype if chosen.dtype.kind == "f" else np.dtype(np.float64)
    lookup: dict = {}
    for cid, row in zip(ids.tolist(), np.ascontiguousarray(centers.astype(dtype) + 0)):
        lookup.setdefault(row.tobytes(), []).append(cid)
    keys = np.ascontiguousarray(chosen.astype(dtype, copy=False) + 0)
    found = [lookup.get(row.tobytes(), ()) for row in keys]
    return [cid for ids_of_row in found for cid in ids_of_row], sum(1 for f in found if not f)
