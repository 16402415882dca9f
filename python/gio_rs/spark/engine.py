"""The Spark engine: sessions, readers, K-Means, assignment, explode and `select` (see
`gio_rs.spark`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import _core, ranking
from .._core import GioError
from .._util.arrays import as_matrix, check_int
from ..io import RANK_COLUMN
from ..selection import Selection
from ..selection import select as _select_in_memory

try:
    import pyarrow as pa
    from pyspark.ml.clustering import KMeans as _SparkKMeans
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"gio_rs.spark needs pyspark, pyarrow and pandas ({exc}): pip install gio_rs[spark]"
    ) from exc

ROW_ID = "row_id"
# Helper columns of the readers; dropped before a reader returns.
_FILE = "_gio_file"
_ROW_IN_FILE = "_gio_row_in_file"
_OFFSET = "_gio_file_offset"
_RANK = "_gio_cluster_rank"
_NEAREST = "_gio_nearest_target"
_DISTANCE = "_gio_target_distance"
_MAX_IDS_IN_ERRORS = 5


def session(
    master: str = "local[*]",
    *,
    app_name: str = "gio_rs",
    config: Optional[dict] = None,
    quiet: bool = True,
) -> SparkSession:
    """A SparkSession for gio_rs (or the active one, reconfigured where Spark allows).

    On a local master the Python workers run this interpreter (`PYSPARK_PYTHON`, unless already
    set), so they import the same gio_rs; on a cluster the executors need gio_rs installed (see
    docs/scale.md, "Running on a real cluster"). `quiet` turns off the web UI, the console progress
    bars and INFO/WARN logs."""
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName(app_name)
    if quiet:
        builder = builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
    for key, value in (config or {}).items():
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    if quiet:
        spark.sparkContext.setLogLevel("ERROR")
    return spark


# --------------------------------------------------------------------------------------------
# Readers


def read_parquet(
    spark: SparkSession, path: Any, *, features_col: str = "features", id_col: str = ROW_ID
) -> DataFrame:
    """Embeddings stored as parquet with an array<float> or array<double> column `features_col`;
    every other column is carried. Adds `id_col`, the row's position in the files taken in path
    order (file 0's rows, then file 1's, ...): the same whatever the partitioning, the cluster
    size or the Spark configuration. Reading counts the rows of each file (one small job)."""
    raw = spark.read.parquet(*input_paths("path", path))
    _check_features_type("path", raw, features_col)
    _check_free_column("id_col", raw, id_col)
    located = raw.withColumn(_FILE, F.col("_metadata.file_path")).withColumn(
        _ROW_IN_FILE, F.col("_metadata.row_index")
    )
    return _with_row_ids(located, raw.columns, id_col)


def read_reference_tsv(
    spark: SparkSession,
    path: Any,
    *,
    features_col: str = "features",
    id_col: str = ROW_ID,
    sep: str = "\t",
) -> DataFrame:
    """Embeddings in the reference's format (`GIOKL.read_data_from_csv`): headerless TSV whose
    third column `_c2` holds the vector as a JSON list ("[0.1, 0.23, ...]"). Returns `id_col`
    (position in the files taken in path order), the other text columns (`_c0`, `_c1`, ...) and
    `features_col` (array<double>); `_c2` itself is dropped. A `_c2` that is not a JSON list of
    numbers becomes a null vector, reported by `validate_features`. Each file is read whole by
    one task (so that rows can be numbered within it): write many part files, as Spark does."""
    raw = spark.read.options(sep=sep, header="false", multiLine="true").csv(*input_paths("path", path))
    if "_c2" not in raw.columns:
        raise GioError(
            f"path: expected at least 3 columns separated by {sep!r} (_c2 = vector), got {raw.columns}"
        )
    _check_free_column("id_col", raw, id_col)
    if features_col != "_c2":
        _check_free_column("features_col", raw, features_col)
    located = raw.withColumn(_FILE, F.col("_metadata.file_path"))
    numbered_schema = T.StructType(located.schema.fields + [T.StructField(_ROW_IN_FILE, T.LongType(), False)])
    # Whole files arrive in order inside one partition (multiLine), so a running count per file
    # is each row's position in its file.
    numbered = located.mapInArrow(_number_rows_in_files, numbered_schema)
    with_ids = _with_row_ids(numbered, raw.columns, id_col, files=located)
    with_vectors = with_ids.withColumn(features_col, F.from_json(F.col("_c2"), T.ArrayType(T.DoubleType())))
    return with_vectors if features_col == "_c2" else with_vectors.drop("_c2")


def input_paths(name: str, path: Any) -> list:
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths:
        raise GioError(f"{name}: no path given")
    return [os.fspath(p) for p in paths]


def _number_rows_in_files(batches: Iterator[Any]) -> Iterator[Any]:
    """mapInArrow body: appends each row's position within its file (rows of a file are
    contiguous and in file order within a partition)."""
    seen: dict = {}
    for batch in batches:
        files = batch.column(batch.schema.get_field_index(_FILE)).to_pylist()
        positions = np.empty(len(files), dtype=np.int64)
        for i, name in enumerate(files):
            positions[i] = seen.get(name, 0)
            seen[name] = positions[i] + 1
        yield pa.RecordBatch.from_arrays(
            list(batch.columns) + [pa.array(positions, type=pa.int64())],
            names=batch.schema.names + [_ROW_IN_FILE],
        )


def _with_row_ids(
    located: DataFrame, columns: list, id_col: str, *, files: Optional[DataFrame] = None
) -> DataFrame:
    """`located` has the file path and the row's position in its file; the id is the position in
    the files sorted by path. The per-file row counts (of `files`, default `located`: any frame
    with the same rows and the file column) are collected to the driver."""
    counts = (located if files is None else files).groupBy(_FILE).count().collect()
    offsets, total = [], 0
    for row in sorted(counts, key=lambda r: r[_FILE]):
        offsets.append((row[_FILE], total))
        total += row["count"]
    spark = located.sparkSession
    schema = T.StructType([T.StructField(_FILE, T.StringType()), T.StructField(_OFFSET, T.LongType())])
    offsets_df = spark.createDataFrame(offsets, schema)
    joined = located.join(F.broadcast(offsets_df), on=_FILE, how="inner")
    row_id = (F.col(_OFFSET) + F.col(_ROW_IN_FILE)).cast(T.LongType()).alias(id_col)
    return joined.select(row_id, *[F.col(c) for c in columns])


# --------------------------------------------------------------------------------------------
# Validation


def _check_features_type(df_name: str, df: DataFrame, features_col: str) -> None:
    if not isinstance(features_col, str):
        raise TypeError(f"features_col: expected a column name, got {type(features_col).__name__}")
    if features_col not in df.columns:
        raise GioError(f"features_col: column {features_col!r} is not in {df_name} (columns: {df.columns})")
    dtype = df.schema[features_col].dataType
    if not (isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, (T.FloatType, T.DoubleType))):
        raise TypeError(
            f"features_col: column {features_col!r} of {df_name} must be array<float> or array<double>, "
            f"got {dtype.simpleString()}"
        )


def _check_free_column(name: str, df: DataFrame, column: str) -> None:
    if not isinstance(column, str) or not column:
        raise TypeError(f"{name}: expected a column name, got {column!r}")
    if column in df.columns:
        raise GioError(f"{name}: column {column!r} already exists; pass another name")


def validate_features(
    df: DataFrame,
    features_col: str = "features",
    *,
    dim: Optional[int] = None,
    id_col: str = ROW_ID,
    df_name: str = "df",
) -> int:
    """Checks `features_col` in one pass over `df` and returns the vector length: the column
    exists and is array<float|double>, no vector is null, no element is null, NaN or infinite,
    all vectors have the same length (`dim` when given), `df` has rows. Raises GioError naming
    `df_name` and the column, with up to 5 offending `id_col` values when `df` has that column."""
    _check_features_type(df_name, df, features_col)
    col = F.col(features_col)
    present = col.isNotNull()
    has_null = present & F.exists(col, lambda v: v.isNull())
    non_finite = present & F.exists(col, lambda v: F.isnan(v) | (F.abs(v) == F.lit(float("inf"))))
    length = F.when(present, F.size(col))
    stats = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(~present, 1).otherwise(0)).alias("null_vectors"),
        F.sum(F.when(has_null, 1).otherwise(0)).alias("null_elements"),
        F.sum(F.when(non_finite, 1).otherwise(0)).alias("non_finite"),
        F.min(length).alias("min_len"),
        F.max(length).alias("max_len"),
    ).first()
    where = f"{df_name}: column {features_col!r}"

    def offending(condition: Any) -> str:
        if id_col not in df.columns:
            return ""
        ids = [r[0] for r in df.filter(condition).select(id_col).limit(_MAX_IDS_IN_ERRORS).collect()]
        return f" ({id_col} {', '.join(map(str, ids))}{', ...' if len(ids) == _MAX_IDS_IN_ERRORS else ''})"

    if stats["rows"] == 0:
        raise GioError(f"{where}: the DataFrame has no rows")
    if stats["null_vectors"]:
        raise GioError(f"{where}: {stats['null_vectors']} null vector(s){offending(~present)}")
    if stats["null_elements"]:
        raise GioError(f"{where}: {stats['null_elements']} vector(s) with null elements{offending(has_null)}")
    if stats["non_finite"]:
        raise GioError(
            f"{where}: {stats['non_finite']} vector(s) with NaN or infinite values{offending(non_finite)}"
        )
    lo, hi = stats["min_len"], stats["max_len"]
    if lo == 0:
        raise GioError(f"{where}: empty vector(s){offending(F.size(col) == 0)}")
    if lo != hi:
        common = df.groupBy(F.size(col).alias("n")).count().orderBy(F.desc("count"), "n").first()["n"]
        raise GioError(
            f"{where}: vectors have different lengths ({lo} to {hi}; most have {common})"
            f"{offending(F.size(col) != common)}"
        )
    if dim is not None and lo != dim:
        raise GioError(f"{where}: vectors have {lo} values, the centers have {dim}")
    return int(lo)


# --------------------------------------------------------------------------------------------
# Quantise and assign


def quantize(
    df: DataFrame,
    n_clusters: int,
    *,
    features_col: str = "features",
    seed: int = 0,
    max_iter: int = 20,
    tol: float = 1e-4,
    init_steps: int = 2,
    validate: bool = True,
) -> np.ndarray:
    """K-Means of the rows of `df` with `pyspark.ml.clustering.KMeans` (k-means|| init, `seed`)
    on the cluster; returns the centroids as a float64 array (K', d) on the driver. MLlib may
    return fewer than `n_clusters` centroids when the data has fewer distinct points. The same
    data, partitioning and seed give the same centroids (MLlib sums partitions in the order
    they arrive, so the last bits can differ)."""
    k = check_int("n_clusters", n_clusters, minimum=2)  # MLlib's minimum
    seed = check_int("seed", seed, minimum=0)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    init_steps = check_int("init_steps", init_steps, minimum=1)
    if validate:
        validate_features(df, features_col, df_name="df")
    else:
        _check_features_type("df", df, features_col)
    vectors = df.select(array_to_vector(F.col(features_col)).alias("features"))
    model = _SparkKMeans(
        k=k,
        seed=seed,
        maxIter=max_iter,
        tol=float(tol),
        initMode="k-means||",
        initSteps=init_steps,
        featuresCol="features",
    ).fit(vectors)
    return np.vstack([np.asarray(c, dtype=np.float64) for c in model.clusterCenters()])


def assign(
    df: DataFrame,
    centers: Any,
    *,
    features_col: str = "features",
    output_col: str = "cluster",
    distance_col: Optional[str] = None,
    id_col: str = ROW_ID,
    validate: bool = True,
) -> DataFrame:
    """`df` with `output_col` (int64): the index of the nearest of `centers` (K, d) for every
    row, ties to the lowest index, computed per Arrow batch on the executors by the gio_rs kernel
    (float32 vectors stay float32; distances in float64). `distance_col`, when given, adds the
    squared distance to that center. The centers are broadcast once. Lazy: nothing runs until
    the result is used (after the one validation pass when `validate`)."""
    centers64 = np.ascontiguousarray(as_matrix("centers", centers), dtype=np.float64)
    dim = centers64.shape[1]
    _check_free_column("output_col", df, output_col)
    if distance_col is not None:
        _check_free_column("distance_col", df, distance_col)
    if validate:
        validate_features(df, features_col, dim=dim, id_col=id_col, df_name="df")
    else:
        _check_features_type("df", df, features_col)
    broadcast = df.sparkSession.sparkContext.broadcast(centers64)
    fields = [T.StructField(output_col, T.LongType(), False)]
    if distance_col is not None:
        fields.append(T.StructField(distance_col, T.DoubleType(), False))
    schema = T.StructType(df.schema.fields + fields)
    columns = (features_col, id_col if id_col in df.columns else None, output_col, distance_col)

    def label_batches(batches: Iterator[Any]) -> Iterator[Any]:
        return _label_batches(batches, broadcast.value, *columns)

    return df.mapInArrow(label_batches, schema)


def _label_batches(
    batches: Iterator[Any],
    centers: np.ndarray,
    features_col: str,
    id_col: Optional[str],
    output_col: str,
    distance_col: Optional[str],
) -> Iterator[Any]:
    """mapInArrow body of `assign`, run on the executors."""
    for batch in batches:
        x = batch_matrix(batch, features_col, centers.shape[1], id_col)
        labels, sq_dists = _core.kmeans_assign(x, centers)
        arrays = list(batch.columns) + [pa.array(labels, type=pa.int64())]
        names = batch.schema.names + [output_col]
        if distance_col is not None:
            arrays.append(pa.array(sq_dists, type=pa.float64()))
            names.append(distance_col)
        yield pa.RecordBatch.from_arrays(arrays, names=names)


def batch_matrix(batch: Any, features_col: str, dim: int, id_col: Optional[str]) -> np.ndarray:
    """The (rows, dim) matrix of an Arrow list column, without copying when it has no nulls.
    Checks again what `validate_features` checks, so that `validate=False` cannot feed the kernel
    bad rows (the error then reaches the driver inside Spark's PythonException)."""
    column = batch.column(batch.schema.get_field_index(features_col))
    n = len(column)

    def fail(problem: str, bad: np.ndarray) -> None:
        rows = np.flatnonzero(bad)[:_MAX_IDS_IN_ERRORS]
        if id_col is not None:
            ids = batch.column(batch.schema.get_field_index(id_col)).to_numpy(zero_copy_only=False)[rows]
            which = f"{id_col} {', '.join(map(str, ids))}"
        else:
            which = f"rows {', '.join(map(str, rows))} of an Arrow batch"
        raise GioError(f"{features_col}: {problem} ({which})")

    if column.null_count:
        fail("null vector(s)", np.asarray(column.is_null()))
    offsets = column.offsets.to_numpy()
    lengths = np.diff(offsets)
    if n and (lengths != dim).any():
        fail(f"vectors must have {dim} values, like the centers", lengths != dim)
    values = column.values.slice(offsets[0], offsets[-1] - offsets[0]) if n else column.values.slice(0, 0)
    if values.null_count:
        starts = offsets[:-1] - offsets[0]  # `values` starts at offsets[0]
        fail(
            "vector(s) with null elements",
            np.add.reduceat(np.asarray(values.is_null(), np.int64), starts) > 0,
        )
    x = values.to_numpy(zero_copy_only=False).reshape(n, dim)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        fail("vector(s) with NaN or infinite values", ~finite)
    return x


# --------------------------------------------------------------------------------------------
# Explode and select


def explode(
    assigned: DataFrame,
    chosen_clusters: Any,
    *,
    cluster_col: str = "cluster",
    id_col: str = ROW_ID,
) -> DataFrame:
    """The rows of `assigned` whose `cluster_col` is one of `chosen_clusters` (in selection order,
    repeats allowed): a broadcast join on the cluster id. Rows come ordered as
    `gio_rs.explode` orders them: clusters in first-chosen order, then by `id_col` (when
    present); each cluster's rows appear once."""
    if cluster_col not in assigned.columns:
        raise GioError(
            f"cluster_col: column {cluster_col!r} is not in assigned (columns: {assigned.columns})"
        )
    chosen = np.asarray(chosen_clusters)
    if chosen.ndim != 1 or (chosen.size and chosen.dtype.kind not in "iu"):
        raise TypeError("chosen_clusters: expected a 1-D integer array of cluster ids")
    distinct, first = np.unique(chosen.astype(np.int64), return_index=True)
    order = distinct[np.argsort(first, kind="stable")]
    ranks = [(int(c), rank) for rank, c in enumerate(order)]
    schema = T.StructType(
        [T.StructField(cluster_col, T.LongType(), False), T.StructField(_RANK, T.LongType(), False)]
    )
    chosen_df = assigned.sparkSession.createDataFrame(ranks, schema)
    keyed = assigned.withColumn(cluster_col, F.col(cluster_col).cast(T.LongType()))
    joined = keyed.join(F.broadcast(chosen_df), on=cluster_col, how="inner")
    sort_keys = [_RANK] + ([id_col] if id_col in assigned.columns else [])
    return joined.orderBy(*sort_keys).select(*assigned.columns)


def _ranked_rows(
    assigned: DataFrame,
    chosen: np.ndarray,
    sizes: np.ndarray,
    target_centers: np.ndarray,
    budget: int,
    features_col: str,
    cluster_col: str,
    id_col: str,
) -> DataFrame:
    """The first `budget` rows of the chosen clusters in rank order, with a `rank` column: the
    rank of a row is the rows of the clusters chosen before its own plus its place in its
    cluster by (squared distance to the nearest target centroid, id_col)."""
    from pyspark.sql import Window

    order = ranking.first_occurrences(chosen)
    starts = np.concatenate([[0], np.cumsum(sizes[order])[:-1]])
    offsets = [(int(c), int(start)) for c, start in zip(order, starts)]
    schema = T.StructType(
        [T.StructField(cluster_col, T.LongType(), False), T.StructField(_OFFSET, T.LongType(), False)]
    )
    offsets_df = assigned.sparkSession.createDataFrame(offsets, schema)
    keyed = assigned.withColumn(cluster_col, F.col(cluster_col).cast(T.LongType()))
    members = keyed.join(F.broadcast(offsets_df), on=cluster_col, how="inner")
    with_distance = assign(
        members,
        target_centers,
        features_col=features_col,
        output_col=_NEAREST,
        distance_col=_DISTANCE,
        id_col=id_col,
        validate=False,
    )
    ties = [F.col(_DISTANCE)] + ([F.col(id_col)] if id_col in assigned.columns else [])
    within = Window.partitionBy(cluster_col).orderBy(*ties)
    rank = (F.col(_OFFSET) + F.row_number().over(within) - 1).cast(T.LongType())
    ranked = with_distance.withColumn(RANK_COLUMN, rank)
    kept = ranked.filter(F.col(RANK_COLUMN) < budget).orderBy(RANK_COLUMN)
    return kept.select(*assigned.columns, RANK_COLUMN)


@dataclass(frozen=True)
class SparkSelection:
    """The result of `select`.

    Attributes
    ----------
    rows : DataFrame
        The selected train rows, every column of `train_df` plus the cluster id; clusters in
        first-chosen order, rows by id inside a cluster (lazy: runs when used or written).
    selection : gio_rs.Selection
        The driver-side selection among the centroids: `indices` are the chosen cluster ids in
        selection order (repeats possible after a pool reset), `kl_trace`, `stop_reason`, ...
    clusters : int64 array
        The distinct chosen clusters, in first-chosen order.
    repeated_clusters : int64 array
        Clusters chosen more than once (their rows appear once in `rows`).
    train_centers : float64 array (K, d)
        The pool's centroids the selection ran on.
    target_centers : float64 array (K_target, d)
        The target's centroids the selection ran on.
    assigned : DataFrame
        `train_df` with the cluster column (lazy).
    """

    rows: DataFrame
    selection: Selection
    clusters: np.ndarray
    repeated_clusters: np.ndarray
    train_centers: np.ndarray
    target_centers: np.ndarray
    assigned: DataFrame

    def write_parquet(self, path: str, *, mode: str = "errorifexists") -> None:
        """Writes `rows` as parquet to `path` (a directory of part files, in row order)."""
        self.rows.write.mode(mode).parquet(os.fspath(path))


def select(
    train_df: DataFrame,
    target_df: DataFrame,
    *,
    n_clusters: Optional[int] = None,
    n_clusters_target: Optional[int] = None,
    train_centers: Any = None,
    target_centers: Any = None,
    features_col: str = "features",
    id_col: str = ROW_ID,
    cluster_col: str = "cluster",
    seed: int = 0,
    kmeans_max_iter: int = 20,
    validate: bool = True,
    budget_rows: Optional[int] = None,
    **select_kwargs: Any,
) -> SparkSelection:
    """GIO at scale on Spark: quantise → select among centroids → explode.

    1. Centroids: `train_centers` / `target_centers` when given, else `quantize` (MLlib K-Means on
       the executors) with `n_clusters` for the pool and `n_clusters_target` (default the same)
       for the target; a target with at most that many rows is used as it is, ordered by
       `id_col` (as `gio_rs.quantize` does). Seeds: `seed` for the pool, `seed + 1` for the target.
    2. `gio_rs.select(train_centers, target_centers, seed=seed, **select_kwargs)` on the driver
       (every option of `gio_rs.select`: k, max_iter, stop_criterion, v_init, ...).
    3. `assign` the train rows to the pool centroids (gio_rs kernel in the partitions) and
       `explode` the chosen clusters: `SparkSelection.rows`.

    With `budget_rows=N`, exactly N rows (the pool permitting), ranked as `gio_rs.ranking` ranks
    them (clusters in selection order, then by squared distance to the nearest target centroid,
    then by `id_col`), with a `rank` column; the selection among centroids runs until its
    clusters hold N rows (their sizes come from one count on the executors).

    Everything is seeded: the same data, partitioning and seed give the same rows. Driver memory:
    both centroid sets (K × d float64 each) and the selection state on them.
    """
    for banned in ("train", "target"):
        if banned in select_kwargs:
            raise TypeError(f"{banned}: not an option of gio_rs.spark.select (pass train_df/target_df)")
    seed = check_int("seed", seed, minimum=0)
    if validate:
        dim = validate_features(train_df, features_col, id_col=id_col, df_name="train_df")
        validate_features(target_df, features_col, dim=dim, id_col=id_col, df_name="target_df")
    else:
        _check_features_type("train_df", train_df, features_col)
        _check_features_type("target_df", target_df, features_col)
    if train_centers is None:
        if n_clusters is None:
            raise GioError("n_clusters: required unless train_centers is given")
        train_centers = quantize(
            train_df,
            n_clusters,
            features_col=features_col,
            seed=seed,
            max_iter=kmeans_max_iter,
            validate=False,
        )
    else:
        train_centers = np.ascontiguousarray(as_matrix("train_centers", train_centers), dtype=np.float64)
    if target_centers is None:
        k_target = n_clusters if n_clusters_target is None else n_clusters_target
        target_centers = _target_centers(target_df, k_target, features_col, id_col, seed + 1, kmeans_max_iter)
    else:
        target_centers = np.ascontiguousarray(as_matrix("target_centers", target_centers), dtype=np.float64)
    if train_centers.shape[1] != target_centers.shape[1]:
        raise GioError(
            f"target_centers: have {target_centers.shape[1]} columns, train_centers {train_centers.shape[1]}"
        )

    assigned = assign(
        train_df,
        train_centers,
        features_col=features_col,
        output_col=cluster_col,
        id_col=id_col,
        validate=False,
    )
    if budget_rows is None:
        selection = _select_in_memory(train_centers, target_centers, seed=seed, **select_kwargs)
        chosen = np.asarray(selection.indices, dtype=np.int64)
        rows = explode(assigned, chosen, cluster_col=cluster_col, id_col=id_col)
    else:
        names = (features_col, cluster_col, id_col)
        selection, chosen, rows = _select_budget(
            assigned, train_centers, target_centers, budget_rows, {**select_kwargs, "seed": seed}, names
        )
    distinct, first, counts = np.unique(chosen, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    return SparkSelection(
        rows=rows,
        selection=selection,
        clusters=distinct[order],
        repeated_clusters=distinct[order][counts[order] > 1],
        train_centers=train_centers,
        target_centers=target_centers,
        assigned=assigned,
    )


def _select_budget(
    assigned: DataFrame,
    train_centers: np.ndarray,
    target_centers: np.ndarray,
    budget_rows: int,
    select_kwargs: dict,
    names: tuple[str, str, str],
) -> tuple[Selection, np.ndarray, DataFrame]:
    """`select` with `budget_rows`: clusters chosen until they hold the budget (gio_rs.ranking),
    their rows ranked. `names`: the features, cluster and id columns."""
    features_col, cluster_col, id_col = names
    budget = ranking.check_budget(budget_rows, select_kwargs)
    counts = assigned.groupBy(cluster_col).count().collect()
    sizes = np.zeros(len(train_centers), dtype=np.int64)
    for row in counts:
        sizes[int(row[cluster_col])] = int(row["count"])
    options = {
        k: v for k, v in select_kwargs.items() if k not in ("max_iter", "stop_criterion", "max_data_size")
    }
    selection = ranking.choose_clusters(
        _select_in_memory, train_centers, target_centers, sizes, budget, options
    )
    chosen = np.asarray(selection.indices, dtype=np.int64)
    rows = _ranked_rows(assigned, chosen, sizes, target_centers, budget, features_col, cluster_col, id_col)
    return selection, chosen, rows


def _target_centers(
    target_df: DataFrame, k_target: Optional[int], features_col: str, id_col: str, seed: int, max_iter: int
) -> np.ndarray:
    """The target's centroids, or its rows when it has no more than `k_target` of them (collected
    in `id_col` order, as the in-memory pipeline uses them)."""
    if k_target is None:
        raise GioError("n_clusters_target: required unless target_centers or n_clusters is given")
    k_target = check_int("n_clusters_target", k_target, minimum=2)
    head = target_df.select(*([id_col] if id_col in target_df.columns else []), features_col)
    if id_col in target_df.columns:
        head = head.orderBy(id_col)
    rows = head.limit(k_target + 1).collect()
    if len(rows) <= k_target:
        return np.asarray([r[features_col] for r in rows], dtype=np.float64)
    return quantize(
        target_df, k_target, features_col=features_col, seed=seed, max_iter=max_iter, validate=False
    )
