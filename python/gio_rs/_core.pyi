"""Type stubs for the Rust extension `gio_rs._core`. Arrays must already be C-contiguous and of
one float dtype (float32 or float64), and checked with `check_finite`; the public wrappers in the
package take care of that. Options are checked here, by the core's rules."""

from typing import Any, Callable, Optional, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "GioError",
    "SelectParams",
    "KMeansParams",
    "SelectionResult",
    "KMeansFit",
    "check_int",
    "check_float",
    "check_bool",
    "check_finite",
    "kl_divergence",
    "kl_gradient",
    "gradient_descend",
    "knn_kl_divergence",
    "select",
    "kmeans",
    "kmeans_assign",
    "select_bytes",
    "kmeans_bytes",
    "assign_bytes",
    "simd_level",
    "MomentsAccumulator",
    "TopB",
    "GaussianRatioFit",
    "FoldedMoments",
    "ratio_uniforms",
    "ratio_target_folds",
    "ratio_fit_gaussian",
    "ratio_scores",
    "ratio_gumbel_keys",
    "ratio_knn_counts",
    "ratio_fit_logistic",
    "ratio_calibrate",
    "canonical_row_hashes",
    "duplicate_pairs",
    "__version__",
]

__version__: str

class GioError(ValueError):
    """Invalid input to gio_rs. The message names the argument and the problem."""

@final
class SelectParams:
    """The options of a selection run, checked (the keyword names of `gio_rs.select` and
    `GIOKL.fit`, plus `method` and `semantics`: "fixed" or "reference"); options not given take the
    core's defaults."""

    def __new__(cls, **options: Any) -> SelectParams: ...
    method: str
    max_iter: int
    discard_nearest_for_xy: bool
    record_v_opts: bool

@final
class KMeansParams:
    """The options of a K-Means fit, checked (`gio_rs.KMeans`'s names; `random_state` an integer,
    `init` "k-means++", "random" or a float64 array of K rows)."""

    def __new__(cls, **options: Any) -> KMeansParams: ...
    n_clusters: int
    max_iter: int
    init_sample_size: int

@final
class SelectionResult:
    """What a selection loop produced."""

    indices: npt.NDArray[np.int64]
    kl_trace: npt.NDArray[np.float64]
    kl_start: float
    candidate_kl: npt.NDArray[np.float64]
    descent_iters: npt.NDArray[np.int64]
    v_opts: npt.NDArray[np.float64]
    scale_factor: float
    v: npt.NDArray[np.float64]
    just_reset: bool
    num_resets: int
    increases: int
    used: npt.NDArray[np.bool_]
    stop_reason: str

@final
class KMeansFit:
    """A fitted K-Means model."""

    centers: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]
    inertia: float
    n_iter: int

def check_int(name: str, value: Any, *, minimum: int, maximum: int = ...) -> int: ...
def check_float(
    name: str, value: Any, *, minimum: Optional[float] = None, maximum: Optional[float] = None
) -> float: ...
def check_bool(name: str, value: Any) -> bool: ...
def check_finite(name: str, array: npt.NDArray[np.floating]) -> None: ...
def kl_divergence(
    x: npt.NDArray[np.floating], y: npt.NDArray[np.floating], k: Any, eps: Any, discard_nearest_for_xy: Any
) -> float: ...
def kl_gradient(
    x: npt.NDArray[np.floating],
    w: npt.NDArray[np.floating],
    v: npt.NDArray[np.float64],
    discard_nearest_for_xy: Any,
) -> npt.NDArray[np.float64]: ...
def gradient_descend(
    x: npt.NDArray[np.floating],
    w: npt.NDArray[np.floating],
    v: npt.NDArray[np.float64],
    scaling_factor: Any,
    max_iterations: Any,
    lr: Any,
    discard_nearest_for_xy: Any,
) -> tuple[npt.NDArray[np.float64], float]: ...
def knn_kl_divergence(x: npt.NDArray[np.floating], y: npt.NDArray[np.floating], k: Any) -> float: ...
def select(
    train: npt.NDArray[np.floating],
    x: npt.NDArray[np.floating],
    w0: npt.NDArray[np.floating],
    params: SelectParams,
    *,
    random: Optional[Callable[[], float]] = None,
    pick: Optional[Callable[[int], int]] = None,
    callback: Any = None,
) -> SelectionResult: ...
def kmeans(
    x: npt.NDArray[np.floating],
    params: KMeansParams,
    callback: Optional[Callable[[int, float], Any]] = None,
) -> KMeansFit: ...
def kmeans_assign(
    x: npt.NDArray[np.floating], centers: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...
def select_bytes(
    n_train: int,
    n_target: int,
    dim: int,
    *,
    n_start: int,
    max_iter: int,
    greedy: bool = False,
    itemsize: int = 8,
) -> int: ...
def kmeans_bytes(n_rows: int, dim: int, n_clusters: int, itemsize: int, sample_size: int = 0) -> int: ...
def assign_bytes(n_rows: int, dim: int, n_clusters: int) -> int: ...
def simd_level() -> str:
    """The SIMD level the kernels dispatched to on this CPU: "avx512" or "avx2" (x86-64 with FMA),
    "neon" (aarch64) or "scalar" (elsewhere, or with GIO_RS_NO_SIMD=1; GIO_RS_NO_AVX512=1 skips
    AVX-512). Chosen once per process."""

# The density-ratio core (issue 25; src/python_ratio.rs).

@final
class MomentsAccumulator:
    def __new__(cls, dim: int, shift: Optional[npt.NDArray[np.float64]] = None) -> MomentsAccumulator: ...
    def add(self, rows: npt.NDArray[np.floating]) -> None: ...
    def merge(self, other: MomentsAccumulator) -> None: ...
    @property
    def count(self) -> int: ...
    def finish(self) -> tuple[int, npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...

@final
class FoldedMoments:
    def __new__(cls, shift: npt.NDArray[np.float64], folds: int = 5, first_row: int = 0) -> FoldedMoments: ...
    def add(self, rows: npt.NDArray[np.floating]) -> None: ...
    def merge(self, other: FoldedMoments) -> None: ...
    @property
    def count(self) -> int: ...
    @property
    def next_row(self) -> int: ...
    @property
    def folds(self) -> int: ...
    def finish(
        self, left_out: Optional[int] = None
    ) -> tuple[int, npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...

def ratio_uniforms(seed: int, first_row: int, count: int) -> npt.NDArray[np.float64]: ...
def ratio_target_folds(n: int, folds: int, seed: int) -> npt.NDArray[np.int64]: ...

@final
class TopB:
    def __new__(cls, capacity: int) -> TopB: ...
    def push(self, keys: npt.NDArray[np.float64], first_row: int = 0) -> None: ...
    def merge(self, other: TopB) -> None: ...
    def __len__(self) -> int: ...
    def finish(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...

@final
class GaussianRatioFit:
    @property
    def w(self) -> npt.NDArray[np.float64]: ...
    @property
    def bias(self) -> float: ...
    @property
    def alpha(self) -> float: ...
    @property
    def ridge(self) -> float: ...
    @property
    def calibration_scale(self) -> float: ...
    @property
    def calibration_offset(self) -> float: ...
    @property
    def gain(self) -> float: ...
    @property
    def cv(self) -> list[tuple[float, float, float, float]]: ...
    @property
    def pool_mean(self) -> npt.NDArray[np.float64]: ...
    @property
    def target_mean(self) -> npt.NDArray[np.float64]: ...
    @property
    def pool_rows(self) -> int: ...

def ratio_fit_gaussian(
    pool: npt.NDArray[np.floating],
    target: npt.NDArray[np.floating],
    *,
    alphas: Optional[list[float]] = None,
    folds: int = 5,
    seed: int = 0,
) -> GaussianRatioFit: ...
def ratio_scores(
    rows: npt.NDArray[np.floating], w: npt.NDArray[np.float64], bias: float
) -> npt.NDArray[np.float64]: ...
def ratio_gumbel_keys(
    log_ratio: npt.NDArray[np.float64], seed: int, first_row: int = 0
) -> npt.NDArray[np.float64]: ...
def ratio_knn_counts(
    queries: npt.NDArray[np.floating],
    target: npt.NDArray[np.floating],
    background: npt.NDArray[np.floating],
    k: int,
    self_index: Optional[npt.NDArray[np.int64]] = None,
) -> npt.NDArray[np.int64]: ...
def ratio_fit_logistic(
    positives: npt.NDArray[np.floating],
    negatives: npt.NDArray[np.floating],
    *,
    l2: float = 0.01,
    sample_weight: Optional[npt.NDArray[np.float64]] = None,
    max_iter: int = 50,
    tolerance: float = 1e-10,
) -> tuple[npt.NDArray[np.float64], float, int, bool, float]: ...
def ratio_calibrate(
    target_scores: npt.NDArray[np.float64], pool_scores: npt.NDArray[np.float64]
) -> tuple[float, float, float]: ...
def canonical_row_hashes(
    x: npt.NDArray[np.floating],
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]: ...
def duplicate_pairs(
    first: npt.NDArray[np.uint64], second: npt.NDArray[np.uint64], rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
