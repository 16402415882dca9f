"""Type stubs for the Rust extension `gio_rs._core`. Arrays must already be C-contiguous and of
one float dtype (float32 or float64); the public wrappers in the package take care of that."""

from typing import Any, Callable, Optional

import numpy as np
import numpy.typing as npt

__all__ = [
    "GioError",
    "kl_divergence",
    "kl_gradient",
    "gradient_descend",
    "greedy_select",
    "exact_greedy_select",
    "knn_kl_divergence",
    "kmeans",
    "kmeans_assign",
    "simd_level",
    "__version__",
]

__version__: str

class GioError(ValueError):
    """Invalid input to gio_rs. The message names the argument and the problem."""

def kl_divergence(
    x: npt.NDArray[np.floating], y: npt.NDArray[np.floating], k: int, eps: float, discard_nearest_for_xy: bool
) -> float: ...
def kl_gradient(
    x: npt.NDArray[np.floating],
    w: npt.NDArray[np.floating],
    v: npt.NDArray[np.float64],
    discard_nearest_for_xy: bool,
) -> npt.NDArray[np.float64]: ...
def gradient_descend(
    x: npt.NDArray[np.floating],
    w: npt.NDArray[np.floating],
    v: npt.NDArray[np.float64],
    scale_factor: Optional[float],
    steps: int,
    lr: float,
    discard_nearest_for_xy: bool,
) -> tuple[npt.NDArray[np.float64], float]: ...
def greedy_select(
    train: npt.NDArray[np.floating],
    x: npt.NDArray[np.floating],
    w0: npt.NDArray[np.floating],
    *,
    k: int,
    max_iter: int,
    stop_criterion: str,
    min_difference: float,
    resets_allowed: bool,
    max_resets: int,
    max_data_size: float,
    min_kl: float,
    max_sequential_increases: int,
    random_restart_prob: float,
    scale_factor: Optional[float],
    v_init: str,
    grad_desc_iter: int,
    discard_nearest_for_xy: bool,
    lr: float,
    fixed: bool,
    record_v_opts: bool,
    random: Optional[Callable[[], float]],
    pick: Optional[Callable[[int], int]],
    callback: Any,
) -> dict[str, Any]: ...
def exact_greedy_select(
    train: npt.NDArray[np.floating],
    x: npt.NDArray[np.floating],
    w0: npt.NDArray[np.floating],
    *,
    k: int,
    max_iter: int,
    stop_criterion: str,
    min_difference: float,
    max_data_size: float,
    min_kl: float,
    max_sequential_increases: int,
    max_table_bytes: int,
    callback: Any,
) -> dict[str, Any]: ...
def knn_kl_divergence(x: npt.NDArray[np.floating], y: npt.NDArray[np.floating], k: int) -> float: ...
def kmeans(
    x: npt.NDArray[np.floating],
    *,
    n_clusters: int,
    max_iter: int,
    tol: float,
    n_init: int,
    seed: int,
    init: str,
    centers: Optional[npt.NDArray[np.float64]],
    init_sample_size: int,
    callback: Optional[Callable[[int, float], Any]],
) -> dict[str, Any]: ...
def kmeans_assign(
    x: npt.NDArray[np.floating], centers: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...
def simd_level() -> str:
    """The SIMD level the kernels dispatched to on this CPU: "avx512" or "avx2" (x86-64 with FMA),
    "neon" (aarch64) or "scalar" (elsewhere, or with GIO_RS_NO_SIMD=1; GIO_RS_NO_AVX512=1 skips
    AVX-512). Chosen once per process."""
