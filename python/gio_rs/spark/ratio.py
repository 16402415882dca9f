"""Density-ratio selection on Spark (`gio_rs.spark.select(method="ratio")`): the same rows as
`gio_rs.select(method="ratio")` in memory, for any partitioning.

1. Summary pass (executors): every run of consecutive `row_id`s inside a partition feeds a
   `gio_rs.ratio.PoolSummaryBuilder` from that row on; the runs' summaries come to the driver,
   which checks that they tile 0..n-1 and merges them in row order (`merge_summaries`).
2. Fit (driver): `gio_rs.ratio.fit_ratio` on the merged summary and the collected target; the
   model is broadcast.
3. Scoring pass (executors): `gio_rs.ratio.ratio_keys` per run (gio_rs kernels), a bounded
   `_core.TopB` per partition; the driver merges the partitions' candidates into the exact global
   top-B (larger key first, ties to the lower row).
4. Output: the chosen rows joined back (broadcast join on `row_id`) with `rank` and the key.

Every random choice of the method is a function of (seed, row_id), so the partitioning changes
no draw; the pool moments of several runs are combined in float64 in row order (their last bits
depend on where the runs start, which no selection in the tests ever noticed).
"""

from __future__ import annotations

import os
import pickle
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import _core
from .._core import GioError
from .._util.arrays import check_int, working_dtype
from .._util.errors import GioWarning
from ..io import RANK_COLUMN
from ..ratio import (
    CV_FOLDS,
    ESTIMATORS,
    FOLD_BLOCK_ROWS,
    MODES,
    SAMPLE_ROWS,
    SAMPLE_SEED_OFFSET,
    PoolSummary,
    PoolSummaryBuilder,
    RatioModel,
    fit_ratio,
    ratio_keys,
    summary_shift,
)
from .engine import ROW_ID, batch_matrix, validate_features

try:
    import pyarrow as pa
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"gio_rs.spark needs pyspark, pyarrow and pandas ({exc}): pip install gio_rs[spark]"
    ) from exc

SCORE_COLUMN = "score"
_FIRST = "_gio_first_row"
_END = "_gio_end_row"
_STATE = "_gio_state"
_KEY = "_gio_key"


@dataclass(frozen=True)
class SparkRatioSelection:
    """The result of `select_ratio`.

    Attributes
    ----------
    rows : DataFrame
        The selected rows of `train_df` (every column) with `rank` (0 = best) and the score
        column (the row's key), in rank order (lazy: runs when used or written).
    indices : int64 array
        The selected `row_id`s in rank order: `gio_rs.select(method="ratio").indices`.
    scores : float64 array
        Their keys, in the same order (`Selection.scores`).
    model : gio_rs.ratio.RatioModel
        The fitted model (parts, calibration, `flat`).
    summary : gio_rs.ratio.PoolSummary
        The pool summary the model was fitted on (moments, pool sample).
    timings_seconds : dict
        Wall time of each step on the driver: "inputs" (validation, the target collected),
        "summary", "fit", "scores" (the scoring pass and the global top-B).
    """

    rows: DataFrame
    indices: np.ndarray
    scores: np.ndarray
    model: RatioModel
    summary: PoolSummary
    timings_seconds: dict

    def write_parquet(self, path: Any, *, mode: str = "errorifexists") -> None:
        """Writes `rows` as parquet to `path` (a directory of part files, in rank order)."""
        self.rows.write.mode(mode).parquet(os.fspath(path))


def select_ratio(
    train_df: DataFrame,
    target_df: DataFrame,
    budget_rows: int,
    *,
    estimator: str = "combined",
    mode: str = "top",
    seed: int = 0,
    init_df: Optional[DataFrame] = None,
    features_col: str = "features",
    id_col: str = ROW_ID,
    score_col: str = SCORE_COLUMN,
    validate: bool = True,
) -> SparkRatioSelection:
    """Density-ratio selection of `budget_rows` rows of `train_df` (see the module docs and
    `gio_rs.select(method="ratio")`). `train_df` needs `id_col`, the pool row index 0..n-1
    (`read_parquet` adds it: the rows' order in the files); the target (and `init_df`) are
    collected to the driver in `id_col` order when they have it."""
    clock = _Clock()
    budget = check_int("budget_rows", budget_rows, minimum=1)
    _check_choice("ratio_estimator", estimator, ESTIMATORS)
    _check_choice("ratio_mode", mode, MODES)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    _check_columns(train_df, features_col, id_col, score_col)
    dim = validate_features(train_df, features_col, id_col=id_col, df_name="train_df") if validate else None
    target = collect_matrix(target_df, features_col, id_col, "target_df", dim=dim, validate=validate)
    init = None
    if init_df is not None:
        init = collect_matrix(
            init_df, features_col, id_col, "init_df", dim=target.shape[1], validate=validate
        )
    dtype = working_dtype(np.empty((0, 1), _element_dtype(train_df, features_col)), target, init)
    pool = train_df.select(F.col(id_col).cast(T.LongType()).alias(id_col), features_col)
    clock.lap("inputs")
    summary = pool_summary(pool, summary_shift(target), seed, dtype, features_col, id_col)
    clock.lap("summary")
    if budget > summary.rows:
        warnings.warn(
            f"budget_rows: {budget} is more than the pool's {summary.rows} rows; "
            "every row is selected, in the mode's order",
            GioWarning,
            stacklevel=2,
        )
        budget = summary.rows
    model = fit_ratio(summary, target, estimator=estimator, seed=seed, init=init, budget_rows=budget)
    clock.lap("fit")
    indices, scores = top_keys(pool, model, mode, seed, budget, features_col, id_col)
    clock.lap("scores")
    rows = _ranked_rows(train_df, indices, scores, id_col, score_col)
    return SparkRatioSelection(rows, indices, scores, model, summary, clock.laps)


class _Clock:
    """Wall time between laps."""

    def __init__(self) -> None:
        self.laps: dict = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise GioError(f"{name}: must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _check_columns(train_df: DataFrame, features_col: str, id_col: str, score_col: str) -> None:
    if id_col not in train_df.columns:
        raise GioError(
            f"id_col: column {id_col!r} is not in train_df; method='ratio' needs each row's index "
            "0..n-1 in the pool (gio_rs.spark.read_parquet adds it)"
        )
    if not isinstance(train_df.schema[id_col].dataType, T.IntegralType):
        raise TypeError(
            f"id_col: column {id_col!r} must hold integers, got {train_df.schema[id_col].dataType}"
        )
    if score_col == RANK_COLUMN or not isinstance(score_col, str):
        raise GioError(f"score_col: expected a column name other than {RANK_COLUMN!r}, got {score_col!r}")
    for column in (score_col, RANK_COLUMN):
        if column in train_df.columns:
            raise GioError(f"score_col: train_df already has a column {column!r}, which the output adds")


def _element_dtype(df: DataFrame, features_col: str) -> np.dtype:
    if features_col not in df.columns:
        raise GioError(
            f"features_col: column {features_col!r} is not in the DataFrame (columns: {df.columns})"
        )
    element = df.schema[features_col].dataType
    element = getattr(element, "elementType", element)
    return np.dtype(np.float32 if isinstance(element, T.FloatType) else np.float64)


def collect_matrix(
    df: DataFrame, features_col: str, id_col: str, name: str, *, dim: Optional[int], validate: bool
) -> np.ndarray:
    """The rows of a small DataFrame (target, init) on the driver as a matrix of its element
    type, in `id_col` order when it has that column."""
    if validate:
        validate_features(df, features_col, dim=dim, id_col=id_col, df_name=name)
    dtype = _element_dtype(df, features_col)
    ordered = (df.orderBy(id_col) if id_col in df.columns else df).select(features_col)
    if hasattr(ordered, "toArrow"):  # pyspark >= 4: one Arrow table, no Row objects
        column = ordered.toArrow().column(0).combine_chunks()
        lengths = np.diff(column.offsets.to_numpy()) if len(column) else np.empty(0)
        if column.null_count or (len(lengths) and (lengths != lengths[0]).any()):
            raise GioError(f"{name}: null or ragged vectors in {features_col!r} (validate=True says where)")
        width = int(lengths[0]) if len(lengths) else 0
        rows = batch_matrix(pa.RecordBatch.from_arrays([column], [features_col]), features_col, width, None)
    else:
        rows = [r[0] for r in ordered.collect()]
    if len(rows) < 2:
        raise GioError(f"{name}: needs at least 2 rows, got {len(rows)}")
    return np.asarray(rows, dtype=dtype)


# ------------------------------------------------------------------------------ runs of rows


def row_runs(ids: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) positions of the runs of consecutive ids (id[i + 1] == id[i] + 1)."""
    if len(ids) == 0:
        return []
    cuts = np.flatnonzero(np.diff(ids) != 1) + 1
    bounds = np.concatenate([[0], cuts, [len(ids)]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _batch_rows(batch: Any, features_col: str, id_col: str, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(ids, rows in the working dtype) of an Arrow batch of (id_col, features_col)."""
    ids = batch.column(batch.schema.get_field_index(id_col)).to_numpy(zero_copy_only=False)
    column = batch.column(batch.schema.get_field_index(features_col))
    dim = len(column[0]) if len(column) else 0
    rows = batch_matrix(batch, features_col, dim, id_col) if len(column) else np.empty((0, 0))
    return ids.astype(np.int64, copy=False), np.ascontiguousarray(rows, dtype=dtype)


# ------------------------------------------------------------------------------ summary pass


def pool_summary(
    pool: DataFrame, shift: np.ndarray, seed: int, dtype: np.dtype, features_col: str, id_col: str
) -> PoolSummary:
    """The pool's `PoolSummary`: one builder per run of consecutive ids on the executors, the
    runs merged on the driver in row order."""
    schema = T.StructType(
        [
            T.StructField(_FIRST, T.LongType(), False),
            T.StructField(_END, T.LongType(), False),
            T.StructField(_STATE, T.BinaryType(), False),
        ]
    )
    shift_b = pool.sparkSession.sparkContext.broadcast(shift)

    def summarize(batches: Iterator[Any]) -> Iterator[Any]:
        return _summarize_batches(batches, shift_b.value, seed, dtype, features_col, id_col)

    runs = pool.mapInArrow(summarize, schema).collect()
    if not runs:
        raise GioError("train_df: the DataFrame has no rows")
    ordered = sorted(((r[_FIRST], r[_END], pickle.loads(r[_STATE])) for r in runs), key=lambda r: r[:2])
    _check_tiling([(first, end) for first, end, _ in ordered], id_col)
    return merge_summaries([state for _, _, state in ordered])


def _summarize_batches(
    batches: Iterator[Any], shift: np.ndarray, seed: int, dtype: np.dtype, features_col: str, id_col: str
) -> Iterator[Any]:
    """mapInArrow body of the summary pass: one (first row, end row, pickled `RunSummary`) per
    maximal run of consecutive ids in the partition, whatever order its pieces arrive in."""
    by_next: dict[int, PoolSummaryBuilder] = {}  # open runs, by the row each expects next
    by_first: dict[int, PoolSummaryBuilder] = {}  # the same runs, by their first row
    for batch in batches:
        ids, rows = _batch_rows(batch, features_col, id_col, dtype)
        for start, stop in row_runs(ids):
            first = int(ids[start])
            builder = by_next.pop(first, None)
            if builder is None:
                builder = by_first[first] = PoolSummaryBuilder(shift, seed=seed, first_row=first)
            builder.add(rows[start:stop], first)
            later = by_first.pop(builder.next_row, None)  # a run that arrived before this one
            if later is not None:
                del by_next[later.next_row]
                builder.merge(later)
            by_next[builder.next_row] = builder
    for builder in by_next.values():
        state = RunSummary.of(builder)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array([builder.first_row], pa.int64()),
                pa.array([builder.next_row], pa.int64()),
                pa.array([pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)], pa.binary()),
            ],
            names=[_FIRST, _END, _STATE],
        )


@dataclass(frozen=True)
class RunSummary:
    """The summary of the pool rows [first, end) and the sample's uniforms (the merge keeps the
    rows with the smallest (u, row) of all runs, as one builder over every row would)."""

    first: int
    end: int
    summary: PoolSummary
    sample_u: np.ndarray

    @staticmethod
    def of(builder: PoolSummaryBuilder) -> RunSummary:
        summary = builder.finish()
        first, end = builder.first_row, builder.next_row
        u = _core.ratio_uniforms(summary.seed + SAMPLE_SEED_OFFSET, first, end - first)
        return RunSummary(first, end, summary, u[summary.sample_rows - first])


def _check_tiling(ranges: list[tuple[int, int]], id_col: str) -> None:
    expected = 0
    for first, end in ranges:
        if first != expected:
            problem = f"row {expected} is missing" if first > expected else f"row {first} appears twice"
            raise GioError(
                f"id_col: column {id_col!r} must number the pool rows 0..n-1, each once ({problem})"
            )
        expected = end


def merge_summaries(runs: list[RunSummary], sample_rows: int = SAMPLE_ROWS) -> PoolSummary:
    """The summary of the union of `runs` (consecutive row ranges, in row order): moments
    combined in float64 in that order (Chan et al.); the sample, the `sample_rows` rows with the
    smallest (u, row) of the runs' samples (what one builder over every row keeps)."""
    if len(runs) == 1:
        return runs[0].summary
    first = runs[0].summary
    total = runs[-1].end
    moments = _combine([r.summary.moments for r in runs])
    folds = []
    for f in range(CV_FOLDS):
        parts = [m for m in (_without_fold(r, f) for r in runs) if m is not None]
        in_fold = fold_count(0, total, f)
        folds.append(_combine(parts) if 0 < in_fold < total else None)
    u = np.concatenate([r.sample_u for r in runs])
    rows = np.concatenate([r.summary.sample_rows for r in runs])
    keep = np.sort(np.lexsort((rows, u))[:sample_rows])  # runs are in row order: so is the sample
    sample = np.concatenate([r.summary.sample for r in runs])[keep]
    return PoolSummary(
        moments=moments,
        fold_moments=tuple(folds),
        sample=np.ascontiguousarray(sample),
        sample_rows=rows[keep],
        shift=first.shift,
        seed=first.seed,
    )


def fold_count(first: int, end: int, fold: int) -> int:
    """Rows of [first, end) in pool fold `fold` ((row // FOLD_BLOCK_ROWS) % CV_FOLDS)."""
    cycle = CV_FOLDS * FOLD_BLOCK_ROWS

    def below(x: int) -> int:
        return (x // cycle) * FOLD_BLOCK_ROWS + min(
            max(x % cycle - fold * FOLD_BLOCK_ROWS, 0), FOLD_BLOCK_ROWS
        )

    return below(end) - below(first)


def _without_fold(run: RunSummary, fold: int) -> Optional[tuple]:
    """The moments of a run's rows outside `fold` (None when it has none)."""
    if run.summary.fold_moments[fold] is not None:
        return run.summary.fold_moments[fold]
    return run.summary.moments if fold_count(run.first, run.end, fold) == 0 else None


def _combine(parts: list[tuple]) -> tuple:
    """(count, mean, covariance) of the union of disjoint row sets, folded left in order."""
    count, mean, cov = parts[0]
    count, mean, scatter = int(count), np.array(mean, dtype=np.float64), np.array(cov) * count
    for n_b, mean_b, cov_b in parts[1:]:
        n = count + n_b
        delta = mean_b - mean
        scatter = scatter + cov_b * n_b + np.outer(delta, delta) * (count * n_b / n)
        mean = mean + delta * (n_b / n)
        count = n
    return count, mean, scatter / count


# ------------------------------------------------------------------------------ scoring pass


def top_keys(
    pool: DataFrame, model: RatioModel, mode: str, seed: int, budget: int, features_col: str, id_col: str
) -> tuple[np.ndarray, np.ndarray]:
    """The exact global top-`budget` (row, key) pairs, best first (larger key, then lower row):
    each partition's top-`budget` by `_core.TopB`, then the merge on the driver."""
    schema = T.StructType(
        [T.StructField(id_col, T.LongType(), False), T.StructField(_KEY, T.DoubleType(), False)]
    )
    model_b = pool.sparkSession.sparkContext.broadcast(model)
    dtype = np.dtype(model.dtype)

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        return _score_batches(batches, model_b.value, mode, seed, budget, dtype, features_col, id_col)

    candidates = pool.mapInArrow(score, schema).toPandas()
    rows = candidates[id_col].to_numpy(np.int64)
    keys = candidates[_KEY].to_numpy(np.float64)
    best = np.lexsort((rows, -keys))[:budget]
    return rows[best], keys[best]


def _score_batches(
    batches: Iterator[Any],
    model: RatioModel,
    mode: str,
    seed: int,
    budget: int,
    dtype: np.dtype,
    features_col: str,
    id_col: str,
) -> Iterator[Any]:
    """mapInArrow body of the scoring pass: the partition's top-`budget` (row, key) pairs."""
    top = _core.TopB(budget)
    for batch in batches:
        ids, rows = _batch_rows(batch, features_col, id_col, dtype)
        for start, stop in row_runs(ids):
            keys = ratio_keys(model, rows[start:stop], int(ids[start]), mode, seed)
            top.push(np.ascontiguousarray(keys, dtype=np.float64), int(ids[start]))
    rows_kept, keys_kept = top.finish()
    yield pa.RecordBatch.from_arrays(
        [pa.array(rows_kept, pa.int64()), pa.array(keys_kept, pa.float64())], names=[id_col, _KEY]
    )


def _ranked_rows(
    train_df: DataFrame, indices: np.ndarray, scores: np.ndarray, id_col: str, score_col: str
) -> DataFrame:
    """The chosen rows of `train_df`, with `rank` and `score_col`, in rank order."""
    import pandas as pd

    chosen = pd.DataFrame(
        {
            id_col: indices.astype(np.int64),
            RANK_COLUMN: np.arange(len(indices), dtype=np.int64),
            score_col: scores,
        }
    )
    schema = T.StructType(
        [
            T.StructField(id_col, T.LongType(), False),
            T.StructField(RANK_COLUMN, T.LongType(), False),
            T.StructField(score_col, T.DoubleType(), False),
        ]
    )
    chosen_df = train_df.sparkSession.createDataFrame(chosen, schema)
    keyed = train_df.withColumn(id_col, F.col(id_col).cast(T.LongType()))
    joined = keyed.join(F.broadcast(chosen_df), on=id_col, how="inner")
    return joined.orderBy(RANK_COLUMN).select(*train_df.columns, RANK_COLUMN, score_col)
