"""K-Means in scikit-learn's style, backed by the Rust core: greedy k-means++ on a bounded
sample (fast at K in the thousands), Lloyd iterations with tiled Gram-product assignment
(no N×K matrix), centroid sums in float64, deterministic for a `random_state` whatever the
thread count. float32 input stays float32."""

from __future__ import annotations

import random as _random
from typing import Any, Optional, Union

import numpy as np

from . import _core, memory
from ._util.arrays import as_matrix, cast, check_bool, copy_bytes, same_columns, working_dtype
from ._util.progress import IterationBar


class KMeans:
    """K-Means clustering.

    Parameters
    ----------
    n_clusters : int
        Number of clusters K (1 <= K <= number of rows).
    init : "k-means++", "random" or array (K, d)
        "k-means++" is scikit-learn's greedy variant (2 + ln K candidates per center) run on a
        seeded sample of at most `init_sample_size` rows; "random" takes K distinct rows.
    n_init : int
        Runs from different seeds; the lowest inertia is kept (1 run with explicit centers).
    max_iter : int
        Lloyd iterations per run.
    tol : float
        Stop when the centers moved by at most `tol` × (mean per-feature variance), in summed
        squared distance (scikit-learn's rule), or when no label changed.
    random_state : int, optional
        Seed; None draws one from the operating system (not reproducible).
    init_sample_size : int, optional
        Rows k-means++ looks at; default: about one Lloyd iteration's worth, at least 4 per cluster.
    verbose : bool
        Print the inertia after every Lloyd iteration.
    progress : bool
        Show a progress bar of the Lloyd iterations on stderr (tqdm when installed).

    Attributes
    ----------
    cluster_centers_ : array (K, d)
        The centers after `fit`, in the input's float dtype.
    labels_ : array (N,)
        The nearest center of each row `fit` saw.
    inertia_ : float
        Sum of squared distances to the nearest center.
    n_iter_ : int
        Lloyd iterations run.
    n_features_in_ : int
        Columns of the data `fit` saw.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Union[str, Any] = "k-means++",
        n_init: int = 1,
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: Optional[int] = None,
        init_sample_size: Optional[int] = None,
        verbose: bool = False,
        progress: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.init_sample_size = init_sample_size
        self.verbose = verbose
        self.progress = progress

    def fit(self, X: Any, y: Any = None) -> KMeans:
        """Cluster the rows of X (n_samples, n_features). `y` is ignored."""
        return self._fit(as_matrix("X", X))

    def _fit(self, x_arr: np.ndarray) -> KMeans:
        """`fit` on a matrix `as_matrix` accepted already."""
        dtype = working_dtype(x_arr)
        init = self.init
        if not isinstance(init, str):
            init = cast(as_matrix("init", init), np.dtype(np.float64))
        seed = self.random_state
        if seed is None:
            seed = _random.SystemRandom().getrandbits(63)
        params = _core.KMeansParams(
            n_clusters=self.n_clusters,
            init=init,
            n_init=self.n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=seed,
            init_sample_size=self.init_sample_size,
        )
        verbose = check_bool("verbose", self.verbose)
        progress = check_bool("progress", self.progress)
        k = params.n_clusters
        bar = IterationBar(params.max_iter, f"KMeans K={k}") if progress else None
        callback = None
        if verbose or bar is not None:

            def callback(iteration: int, inertia: float) -> None:
                if verbose:
                    print(f"KMeans iteration {iteration}: inertia {inertia:.6g}")
                if bar is not None:
                    bar(iteration, inertia)

        n, d = x_arr.shape
        memory.require(
            f"KMeans with {k} clusters on {n} x {d} rows",
            copy_bytes(x_arr, dtype) + _core.kmeans_bytes(n, d, k, dtype.itemsize, params.init_sample_size),
            ("pass float32 data or " if dtype.itemsize == 8 else "") + "quantise a sample of the rows",
        )
        try:
            fit = _core.kmeans(cast(x_arr, dtype), params, callback)
        finally:
            if bar is not None:
                bar.close()
        self.cluster_centers_ = fit.centers.astype(dtype, copy=False)
        self.labels_ = fit.labels
        self.inertia_ = fit.inertia
        self.n_iter_ = fit.n_iter
        self.n_features_in_ = d
        return self

    def _fitted_centers(self) -> np.ndarray:
        if not hasattr(self, "cluster_centers_"):
            raise _core.GioError("KMeans: call fit before predict/transform")
        return np.asarray(self.cluster_centers_, dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Index of the nearest center for every row of X (ties to the lowest index)."""
        centers = self._fitted_centers()
        x_arr = as_matrix("X", X)
        same_columns("X", x_arr, "the fitted centers", centers.shape[1])
        labels, _ = _core.kmeans_assign(self._assign_input(x_arr, centers), centers)
        return labels

    @staticmethod
    def _assign_input(x_arr: np.ndarray, centers: np.ndarray) -> np.ndarray:
        """X in its working dtype, once the assignment's working set fits the memory budget."""
        dtype = working_dtype(x_arr)
        memory.require(
            f"assigning {x_arr.shape[0]} rows to {len(centers)} centers",
            copy_bytes(x_arr, dtype) + _core.assign_bytes(x_arr.shape[0], x_arr.shape[1], len(centers)),
        )
        return cast(x_arr, dtype)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """`fit(X)` then the labels of X."""
        return self.fit(X).labels_

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distances from every row of X to every center, (n_samples, K): this one
        materialises the N×K matrix, use `predict` for labels only."""
        centers = self._fitted_centers()
        x_arr = as_matrix("X", X)
        same_columns("X", x_arr, "the fitted centers", centers.shape[1])
        n, k = x_arr.shape[0], len(centers)
        memory.require(
            f"the {n} x {k} distance matrix of transform",
            # The assignment's working set bounds this one's, plus the N × K float64 result.
            copy_bytes(x_arr, np.dtype(np.float64)) + _core.assign_bytes(n, x_arr.shape[1], k) + 8 * n * k,
            "use predict for labels only",
        )
        x64 = np.asarray(x_arr, dtype=np.float64)
        # ‖x‖² − 2·x·c + ‖c‖², formed in place: the N × K result is the only large allocation.
        out = x64 @ centers.T
        out *= -2.0
        out += np.einsum("ij,ij->i", x64, x64)[:, None]
        out += np.einsum("ij,ij->i", centers, centers)[None, :]
        np.maximum(out, 0.0, out=out)
        return np.sqrt(out, out=out)

    def clusterCenters(self) -> list:  # noqa: N802 - pyspark.ml's KMeansModel spelling
        """The centers as a list of arrays, like pyspark.ml's `KMeansModel.clusterCenters()`, so
        code written for the reference's Spark models runs unchanged."""
        return list(self._fitted_centers())

    def score(self, X: Any) -> float:
        """Minus the inertia of X under the fitted centers (higher is better, as in scikit-learn)."""
        centers = self._fitted_centers()
        x_arr = as_matrix("X", X)
        same_columns("X", x_arr, "the fitted centers", centers.shape[1])
        _, dists = _core.kmeans_assign(self._assign_input(x_arr, centers), centers)
        return -float(dists.sum())
