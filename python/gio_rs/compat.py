"""`GIOKL`: a drop-in for `grad-info-opt`'s class, backed by the Rust core. Same constructor,
same `fit`, `calculate_statistical_distance` and `gradient_descend` signatures and return shapes,
same results, quirks included (listed on `GIOKL.fit`); the scale helpers (`spark`,
`read_data_from_csv`, `read_data_from_parquet`, `quantize`, `explode`) on Spark DataFrames as in
the reference, and `quantize`/`explode` on arrays too.

grad-info-opt's `from GIO import GIOKL` imports the *module* GIO/GIOKL.py, so its users write
``GIOKL.GIOKL(...)``; ``GIOKL.GIOKL`` is the class itself here, so that line, ``GIOKL(...)`` and
``from gio_rs.GIOKL import GIOKL`` all work. Change ``from GIO import GIOKL`` to
``from gio_rs import GIOKL`` and the subset is the same (docs/migrating.md).
"""

from __future__ import annotations

import random as _random
import sys
import warnings
from typing import Any, Optional, Union

import numpy as np

from . import _core
from ._loop import initial_selection, loop_arrays, run_loop, uniform_start
from ._util.arrays import (
    as_matrix,
    as_vector,
    cast,
    check_bool,
    check_float,
    check_int,
    same_columns,
    working_dtype,
)
from ._util.progress import Reporter
from .estimator import kl_divergence
from .kmeans import KMeans
from .quantize import explode

# fit()'s arguments that are the core loop's parameters (`_core.SelectParams`), as given.
_LOOP_OPTIONS = (
    "k", "max_iter", "stop_criterion", "min_difference", "resets_allowed", "max_resets",
    "max_data_size", "min_kl", "max_sequential_increases", "random_restart_prob", "scale_factor",
    "v_init", "grad_desc_iter", "discard_nearest_for_xy", "lr",
)  # fmt: skip


class GIOKL:
    """Gradient Information Optimization with the averaged k-NN KL estimator.

    Parameters
    ----------
    uniform_low : float
        Lower bound of the uniform start, used by `fit` when neither `D` nor `random_init_pct`
        is given: `uniform_start_size` rows of `dim` values drawn from U[uniform_low, uniform_high).
    uniform_high : float
        Upper bound (excluded) of the uniform start.
    uniform_start_size : int
        Rows of the uniform start.
    dim : int
        Columns of the uniform start: the data's dimension.
    seed : int, optional
        Not in the reference. When given, `fit` draws from its own `random.Random(seed)` and
        `numpy.random.RandomState(seed)`, made afresh for each call, so that a fit is reproducible.
        When None (the default), `fit` draws from Python's global `random` and NumPy's global
        `np.random` exactly as the reference does, so the same global seeds give the same subset.
    verbose : bool
        Not in the reference. Print the reference's lines ("Starting KL", every candidate's KL,
        "KL Div Increase, Resetting G"); default True, as the reference always prints.
    progress : bool
        Not in the reference. Show a progress bar during `fit`.

    Notes
    -----
    Unlike the reference, the constructor starts no SparkSession: `spark` starts one (or takes
    the active one) on first use, so array users never wait for Spark or need pyspark.
    """

    def __init__(
        self,
        uniform_low: float = -1,
        uniform_high: float = 1,
        uniform_start_size: int = 20,
        dim: int = 768,
        *,
        seed: Optional[int] = None,
        verbose: bool = True,
        progress: bool = False,
    ) -> None:
        self.uniform_low = uniform_low
        self.uniform_high = uniform_high
        self.uniform_start_size = uniform_start_size
        self.dim = dim
        self.seed = seed
        self.verbose = verbose
        self.progress = progress
        self.random_init = False
        self._spark: Any = None

    @property
    def spark(self) -> Any:
        """The SparkSession the Spark methods use: the active one, or else a new one (local[*]
        unless Spark's own configuration, e.g. spark-submit, says otherwise). Started on first
        use; assign a session to use another. Needs `pip install gio_rs[spark]`."""
        half = _spark_half("spark")
        if self._spark is None or half.is_stopped(self._spark):
            self._spark = half.default_session()
        return self._spark

    @spark.setter
    def spark(self, session: Any) -> None:
        self._spark = session

    def read_data_from_csv(self, path: Any, path_X: Any, delim: str = "\t") -> tuple:
        """grad-info-opt's input files: headerless, `delim`-separated, the third column (`_c2`) the
        vector as a JSON list ("[0.1, 0.23, ...]"). Returns Spark DataFrames (train, target) with
        every column (`_c0`, `_c1`, `_c2`, ...) plus `features` (array<double>), as the reference.
        Unlike the reference, the files are checked when read (one pass each): a row whose `_c2` is
        not a JSON list of numbers, a NaN or infinite value, vectors of different lengths, a
        missing path raise GioError naming the argument, the file and the rows (by `_c0`)."""
        half = _spark_half("read_data_from_csv")
        return (
            half.read_csv(self.spark, path, "path", delim),
            half.read_csv(self.spark, path_X, "path_X", delim),
        )

    def read_data_from_parquet(self, path: Any, path_X: Any) -> tuple:
        """Parquet files (or folders) with a `features` column of array<double> or array<float>.
        Returns Spark DataFrames (train, target) with every column, `features` as array<double>,
        as the reference. Checked when read, like `read_data_from_csv` (rows named by their index
        in their file)."""
        half = _spark_half("read_data_from_parquet")
        return (
            half.read_parquet(self.spark, path, "path"),
            half.read_parquet(self.spark, path_X, "path_X"),
        )

    def calculate_statistical_distance(
        self, x: Any, y: Any, k: int = 5, eps: float = 1e-8, discard_nearest_for_xy: bool = False
    ) -> float:
        """KL(x ‖ y) by the averaged k-NN estimator (see `gio_rs.kl_divergence`)."""
        return kl_divergence(x, y, k, eps=eps, discard_nearest_for_xy=discard_nearest_for_xy)

    def gradient_descend(
        self,
        X: Any,
        W: Any,
        v: Any,
        scaling_factor: float,
        max_iterations: int,
        lr: float = 0.01,
        k: int = 5,
        discard_nearest_for_xy: bool = False,
    ) -> np.ndarray:
        """`max_iterations` steps of v ← v − lr·scaling_factor·∇_v KL(X ‖ W ∪ {v}); returns v
        (in the dtype of X and W). `k` does not change the gradient; it is accepted for
        compatibility."""
        x_arr = as_matrix("X", X, min_rows=1)
        w_arr = as_matrix("W", W, min_rows=1)
        same_columns("W", w_arr, "X", x_arr.shape[1])
        v_arr = as_vector("v", v, x_arr.shape[1])
        check_int("k", k, minimum=1)
        dtype = working_dtype(x_arr, w_arr)
        x_c, w_c = cast(x_arr, dtype), cast(w_arr, dtype)
        v_out, _ = _core.gradient_descend(
            x_c, w_c, v_arr, scaling_factor, max_iterations, lr, discard_nearest_for_xy
        )
        return v_out.astype(dtype, copy=False)

    def fit(
        self,
        train: Any,
        X: Any,
        D: Any = None,
        k: int = 5,
        max_iter: int = 100,
        stop_criterion: str = "increase",
        min_difference: float = 0,
        resets_allowed: bool = False,
        max_resets: int = 2,
        max_data_size: float = 1,
        min_kl: float = 0,
        max_sequential_increases: int = 3,
        random_init_pct: float = 0,
        random_restart_prob: float = 0,
        scale_factor: Union[str, float] = "auto",
        v_init: str = "mean",
        grad_desc_iter: int = 50,
        discard_nearest_for_xy: bool = False,
        normalize: bool = True,
        lr: float = 0.01,
        *,
        stopping_criterion: Optional[str] = None,
    ) -> tuple:
        """Run GIO exactly as `grad-info-opt` 0.1.2 does.

        Returns ``(W, kl_divs, (v, scale_factor, just_reset, num_resets, increases, adder, kl_divs))``:
        W is an ndarray holding the initial rows followed by the selected train rows; kl_divs is a
        list of floats, one per accepted row (the starting KL and rejected candidates excluded);
        adder is the pool left at the end (train rows not used, in order).

        Reference behaviour kept on purpose (use `gio_rs.select` for the fixed version):

        - ``max_iter=N`` accepts N+1 rows; one more candidate is computed and discarded.
        - A candidate leaves the pool before the stop test, so a rejected row is gone.
        - ``"data_size"`` accepts ``int(max_data_size·len(train)) + 1`` rows.
        - ``"max_resets"`` and ``"sequential_increase_tolerance"`` never stop (unless max_resets=0 /
          max_sequential_increases=0): the run goes to max_iter, accepting increases.
        - ``"min_kl"`` rejects the row that reached the target. An unknown criterion never stops.
        - With `resets_allowed`, a stop refills the pool with all of train (rows may repeat), the
          iteration counter steps back and the next descent is 3× longer.
        - The restart coin (`random_restart_prob`) is drawn on every iteration that is not the
          first or right after a reset, consuming Python's random stream even when it is 0.
        - ``scale_factor="auto"`` is ‖v₀‖/‖∇(v₀)‖ computed once; for a target centred at the origin
          it is ≈ 0 and v never moves.
        - `random_init_pct` rows stay in the pool; with `D` given it is ignored.
        - An exhausted pool raises IndexError.

        Differences: an unknown `v_init` raises GioError (the reference fails with
        UnboundLocalError); invalid values (NaN, k ≥ n, mismatched dimensions) raise GioError.
        `stopping_criterion=` (the keyword grad-info-opt's README uses, which its `fit` rejects
        with TypeError) is taken as `stop_criterion`, with a FutureWarning naming the real keyword.
        `train`, `X` and `D` may be NumPy arrays, jax arrays, torch CPU tensors or anything NumPy
        can view (`__array__`, `__array_interface__`, DLPack): read in place, without a copy, when
        they are float32/float64 and C-contiguous.
        """
        stop_criterion = _stop_criterion(stop_criterion, stopping_criterion)
        arguments = dict(locals())
        train_arr = as_matrix("train", train)
        x_arr = as_matrix("X", X, min_rows=2)
        dim = x_arr.shape[1]
        same_columns("train", train_arr, "X", dim)
        params = _core.SelectParams(
            semantics="reference", **{name: arguments[name] for name in _LOOP_OPTIONS}
        )
        random_init_pct = check_float("random_init_pct", random_init_pct, minimum=0.0, maximum=1.0)
        normalize = check_bool("normalize", normalize)
        if self.seed is None:
            rng: Any = _random
            np_rng: Any = np.random
        else:
            seed = check_int("seed", self.seed, minimum=0, maximum=2**32 - 1)  # RandomState's range
            rng, np_rng = _random.Random(seed), np.random.RandomState(seed)

        def uniform_rows() -> np.ndarray:
            if check_int("dim", self.dim, minimum=1) != dim:
                raise _core.GioError(
                    f"dim: GIOKL(dim={self.dim}) must equal the number of columns of X ({dim})"
                )
            low = check_float("uniform_low", self.uniform_low)
            high = check_float("uniform_high", self.uniform_high)
            size = check_int("uniform_start_size", self.uniform_start_size, minimum=1)
            self.random_init = True
            return uniform_start(np_rng, low, high, size, dim, normalize)

        init_arr, _ = initial_selection(
            train_arr,
            dim,
            init=D,
            init_name="D",
            target_name="X",
            random_init_pct=random_init_pct,
            uniform_rows=uniform_rows,
            rng=rng,
            discard_nearest_for_xy=params.discard_nearest_for_xy,
        )

        reporter = Reporter(
            print_reference=bool(self.verbose), progress=bool(self.progress), total=params.max_iter + 1
        )
        dtype = working_dtype(train_arr, x_arr)
        # The result copies the unselected pool (`adder`), on top of the loop's own working set.
        adder_bytes = train_arr.shape[0] * train_arr.shape[1] * dtype.itemsize
        arrays = loop_arrays(train_arr, x_arr, init_arr, params, extra=adder_bytes, init_name="D")
        out = run_loop(arrays, params, rng=rng, reporter=reporter)
        return _fit_result(arrays, out, dtype)

    def quantize(
        self,
        df_train: Any,
        df_x: Any,
        k: int = 1500,
        rseed: str = "auto",
        rseed1: int = 234,
        rseed2: int = 456,
    ) -> tuple:
        """K-Means on the pool and on the target, as the reference's `quantize`. ``rseed="auto"``
        draws both seeds from Python's `random` as the reference does
        (`random.randint(-1000, 1000)` twice; from `random.Random(seed)` when `seed` is set);
        otherwise `rseed1` and `rseed2` are used.

        - Spark DataFrames (with a `features` array column): pyspark.ml's K-Means seeded as the
          reference seeds it (k-means||, 20 iterations). Returns ``(model_train, model_X,
          transformed_train, transformed_X)``: `KMeansModel`s (`clusterCenters()`) and the frames
          with a `prediction` column. Frames not made by the `read_data_*` methods are checked
          first (one pass); `features` may also be pyspark.ml vectors. A frame with fewer rows
          than `k` (where MLlib fails) makes each of its distinct rows a cluster, with a warning.
        - Arrays: `gio_rs.KMeans` (seed + 1000, as it takes no negative seed). Returns
          ``(model_train, model_X, train_labels, X_labels)``: the models have a Spark-style
          `clusterCenters()`; the labels take the place of the `prediction` column.
        """
        spark_train, spark_x = _is_spark_frame(df_train), _is_spark_frame(df_x)
        if spark_train != spark_x:
            raise TypeError(
                "quantize: df_train and df_x must both be Spark DataFrames or both arrays, got "
                f"{type(df_train).__name__} and {type(df_x).__name__}"
            )
        if rseed == "auto":
            rng: Any = _random if self.seed is None else _random.Random(self.seed)
            rseed1, rseed2 = rng.randint(-1000, 1000), rng.randint(-1000, 1000)
        if spark_train:
            return _spark_half("quantize").quantize(df_train, df_x, k, rseed1, rseed2)
        train_arr = as_matrix("df_train", df_train)
        x_arr = as_matrix("df_x", df_x)
        same_columns("df_x", x_arr, "df_train", train_arr.shape[1])
        seeds = [
            check_int(name, value, minimum=-(2**62)) + 1000
            for name, value in (("rseed1", rseed1), ("rseed2", rseed2))
        ]
        k = check_int("k", k, minimum=1)
        model_train = KMeans(k, random_state=seeds[0]).fit(train_arr)
        model_x = KMeans(k, random_state=seeds[1]).fit(x_arr)
        return model_train, model_x, model_train.labels_, model_x.labels_

    def explode(self, chosen_centroids: Any, kmeans_transformed_df: Any, kmeans_centroids_df: Any) -> Any:
        """The pool rows of the chosen centroids, as the reference's `explode`: each chosen row
        (e.g. the selected part of W) is matched to the centroids equal to it, and the members of
        those clusters are returned. Prints "Found N centroids out of M selected centroids", as
        the reference does; chosen rows that match no centroid are dropped, as there, and a
        warning says how many.

        - Spark: `kmeans_transformed_df` is the transformed frame from `quantize` (with
          `prediction`), `kmeans_centroids_df` a Spark frame of (`id`, `centroid`) rows. Matching
          is by hashing (the reference compares every pair in Python loops), in the dtype of
          `chosen_centroids`. Returns the reference's frame: columns `i` (position in the list of
          matches), `id` (the cluster), then every column of `kmeans_transformed_df` (so
          ``.select("_c0", "_c1")`` works); a cluster matched twice gives its rows twice.
        - Arrays: `kmeans_transformed_df` is the train labels from `quantize`,
          `kmeans_centroids_df` the centers (array or fitted `KMeans`). Returns the member row
          indices, each cluster once (see `gio_rs.quantize.explode` for the order).
        """
        if _is_spark_frame(kmeans_transformed_df):
            chosen = as_matrix("chosen_centroids", chosen_centroids, min_rows=0)
            return _spark_half("explode").explode(
                chosen, kmeans_transformed_df, kmeans_centroids_df, verbose=bool(self.verbose)
            )
        if _is_spark_frame(kmeans_centroids_df):
            raise TypeError(
                "kmeans_transformed_df: kmeans_centroids_df is a Spark DataFrame, so this must be the "
                f"transformed Spark DataFrame quantize returned, got {type(kmeans_transformed_df).__name__}"
            )
        centers = (
            kmeans_centroids_df.cluster_centers_
            if isinstance(kmeans_centroids_df, KMeans)
            else kmeans_centroids_df
        )
        centers = as_matrix("kmeans_centroids_df", centers)
        chosen = as_matrix("chosen_centroids", chosen_centroids)
        same_columns("chosen_centroids", chosen, "kmeans_centroids_df", centers.shape[1])
        lookup = {
            row.tobytes(): i for i, row in reversed(list(enumerate(np.asarray(centers, dtype=np.float64))))
        }
        ids = [lookup.get(row.tobytes()) for row in np.asarray(chosen, dtype=np.float64)]
        matched = [i for i in ids if i is not None]
        if self.verbose:
            print(f"Found {len(matched)} centroids out of {len(ids)} selected centroids")
        if len(matched) < len(ids):
            warnings.warn(
                f"explode: {len(ids) - len(matched)} of {len(ids)} chosen rows match no centroid, dropped",
                stacklevel=2,
            )
        return explode(np.asarray(matched, dtype=np.int64), kmeans_transformed_df).indices


# grad-info-opt's scripts say `GIOKL.GIOKL(...)` (module GIO.GIOKL, class GIOKL): the class is
# its own attribute, and `gio_rs.GIOKL` resolves to it as a "module" too, so that
# `from gio_rs.GIOKL import GIOKL` works like `from GIO.GIOKL import GIOKL`.
GIOKL.GIOKL = GIOKL  # type: ignore[attr-defined]
sys.modules.setdefault(__name__.rpartition(".")[0] + ".GIOKL", GIOKL)  # type: ignore[arg-type]


def _stop_criterion(stop_criterion: str, stopping_criterion: Optional[str]) -> str:
    """`fit`'s stop criterion, also taken from grad-info-opt README's `stopping_criterion`."""
    if stopping_criterion is None:
        return stop_criterion
    if stop_criterion not in ("increase", stopping_criterion):
        raise TypeError(
            f"fit: got stop_criterion={stop_criterion!r} and stopping_criterion="
            f"{stopping_criterion!r}; pass only stop_criterion"
        )
    warnings.warn(
        "fit: `stopping_criterion` is not a keyword of GIOKL.fit (grad-info-opt raises TypeError "
        f"on it); taken as stop_criterion={stopping_criterion!r}: pass stop_criterion instead",
        FutureWarning,
        stacklevel=3,  # the caller of fit
    )
    return stopping_criterion


def _fit_result(arrays: tuple[np.ndarray, np.ndarray, np.ndarray], out: Any, dtype: np.dtype) -> tuple:
    """`fit`'s return value, as the reference builds it: (W, kl_divs, state)."""
    train_c, _, init_c = arrays
    W = np.concatenate([init_c, train_c[out.indices]], axis=0)
    kl_divs = [float(v) for v in out.kl_trace]
    adder = train_c[~out.used]
    state = (
        out.v.astype(dtype),
        out.scale_factor,
        out.just_reset,
        out.num_resets,
        out.increases,
        adder,
        kl_divs,
    )
    return W, kl_divs, state


def _is_spark_frame(value: Any) -> bool:
    """A pyspark DataFrame (classic or Spark Connect), recognised without importing pyspark."""
    return any(
        cls.__name__ == "DataFrame" and cls.__module__.startswith("pyspark.") for cls in type(value).__mro__
    )


def _spark_half(method: str) -> Any:
    """gio_rs.spark.giokl, or an ImportError saying what `GIOKL.<method>` needs."""
    try:
        from .spark import giokl
    except ImportError as exc:
        raise ImportError(
            f"GIOKL.{method} needs pyspark (with pyarrow and pandas): pip install 'gio_rs[spark]' ({exc})"
        ) from exc
    return giokl
