"""Greedy GIO selection on NumPy arrays: `select` (fixed semantics, the modern API)
(the loop plumbing `GIOKL.fit` shares is in `gio_rs._loop`).

With the default method="gradient" each step runs gradient descent on a relaxed candidate v, snaps
v to the nearest unused pool row, evaluates KL(target ‖ selection ∪ {row}) and applies the stop
criterion; method="greedy" adds the pool row that lowers the unaveraged k-NN estimate most,
exactly (see `select`).
"""

from __future__ import annotations

import inspect
import random as _random
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import numpy as np

from . import _core, memory
from ._loop import initial_selection, loop_arrays, run_loop, uniform_start
from ._util.arrays import (
    as_matrix,
    check_bool,
    check_float,
    check_int,
    copy_bytes,
    same_columns,
    working_dtype,
)
from ._util.progress import CandidateEvent, Reporter
from .quantize import Quantization, quantize_matrices

# The default cap on method="greedy"'s distance table (pool rows × target rows × 8 bytes).
GREEDY_MAX_BYTES = 1 << 32
# The uniform start's options with their defaults: method="greedy" starts from an empty selection
# and refuses any other value rather than ignore it silently (the core refuses the gradient
# method's loop options the same way).
_UNIFORM_START = {"uniform_low": -1.0, "uniform_high": 1.0, "uniform_start_size": 20, "normalize": True}
# select()'s arguments that are the core loop's parameters (`_core.SelectParams`), as given.
_LOOP_OPTIONS = (
    "method", "k", "max_iter", "stop_criterion", "min_difference", "max_data_size", "min_kl",
    "max_sequential_increases", "resets_allowed", "max_resets", "random_restart_prob",
    "scale_factor", "v_init", "grad_desc_iter", "discard_nearest_for_xy", "lr", "record_v_opts",
)  # fmt: skip


@dataclass(frozen=True)
class Selection:
    """The result of `select`.

    Attributes
    ----------
    indices : int64 array
        Rows of `train` accepted, in selection order (a row can repeat after a pool reset).
    kl_trace : float64 array
        KL(target ‖ selection) after each accepted row.
    kl_start : float
        KL of the initial selection alone.
    stop_reason : str
        What ended the run: a stop criterion's name, "max_iter" or "pool_exhausted".
    candidate_kl : float64 array
        KL of every candidate, rejected ones included (the last is often the rejected one).
    init : array
        The initial selection's rows (not part of `indices` unless drawn from train).
    init_indices : int64 array or None
        Rows of `train` used as the initial selection with `random_init_pct` (rows of
        `Quantization.train_centers` with `n_clusters`), else None.
    scale_factor : float
        The gradient scale used by the descent (NaN with method="greedy").
    n_resets : int
        Pool resets performed.
    v_opts : array or None
        v after every descent (rows), when `record_v_opts=True`.
    clusters : int64 array or None
        With `n_clusters` only: the chosen pool clusters, in selection order.
    cluster_of_row : int64 array or None
        With `n_clusters` only: the cluster of each row of `indices`.
    repeated_clusters : int64 array or None
        With `n_clusters` only: the clusters chosen more than once.
    quantization : Quantization or None
        With `n_clusters` only: the K-Means models (`gio_rs.Quantization`).
    scores : float64 array or None
        With method="ratio" only: each selected row's key, in the order of `indices` (decreasing):
        ratio_mode="top", the ranking score (the mean calibrated log r; one estimator alone: its
        raw score); "sample", log r + the row's Gumbel noise. None for the other methods.
    ratio_model : gio_rs.ratio.RatioModel or None
        With method="ratio" only: the fitted model (its parts, calibration, `flat`).
    """

    indices: np.ndarray
    kl_trace: np.ndarray
    kl_start: float
    stop_reason: str
    candidate_kl: np.ndarray
    init: np.ndarray
    init_indices: Optional[np.ndarray]
    scale_factor: float
    n_resets: int
    v_opts: Optional[np.ndarray] = None
    clusters: Optional[np.ndarray] = None
    cluster_of_row: Optional[np.ndarray] = None
    repeated_clusters: Optional[np.ndarray] = None
    quantization: Any = None
    scores: Optional[np.ndarray] = None
    ratio_model: Any = None

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def kl_final(self) -> float:
        """KL after the last accepted row (kl_start when nothing was accepted)."""
        return float(self.kl_trace[-1]) if len(self.kl_trace) else self.kl_start


def select(
    train: Any,
    target: Any,
    *,
    init: Any = None,
    method: str = "gradient",
    k: int = 5,
    max_iter: int = 100,
    stop_criterion: str = "increase",
    min_difference: float = 0.0,
    resets_allowed: bool = False,
    max_resets: int = 2,
    max_data_size: float = 1.0,
    min_kl: float = 0.0,
    max_sequential_increases: int = 3,
    random_init_pct: float = 0.0,
    random_restart_prob: float = 0.0,
    scale_factor: Union[str, float] = "auto",
    v_init: str = "mean",
    grad_desc_iter: int = 50,
    discard_nearest_for_xy: bool = False,
    lr: float = 0.01,
    uniform_low: float = -1.0,
    uniform_high: float = 1.0,
    uniform_start_size: int = 20,
    normalize: bool = True,
    seed: Optional[int] = None,
    callback: Optional[Callable[[CandidateEvent], Any]] = None,
    progress: bool = False,
    record_v_opts: bool = False,
    n_clusters: Optional[int] = None,
    n_clusters_target: Optional[int] = None,
    kmeans_max_iter: int = 300,
    greedy_max_bytes: int = GREEDY_MAX_BYTES,
    budget_rows: Optional[int] = None,
    kmeans_sample_rows: Optional[int] = None,
    ratio_estimator: str = "combined",
    ratio_mode: str = "top",
) -> Selection:
    """Select rows of `train` that make `init ∪ selection` most informative about `target`:
    greedily minimise the k-NN estimate of KL(target ‖ init ∪ selection) (GIO).

    Three methods:

    - ``method="gradient"`` (default): GIO as published and as `grad-info-opt` runs it, on the
      averaged k-NN estimator (`kl_divergence`): each step descends on a relaxed point v and snaps
      it to the nearest unused pool row.
    - ``method="greedy"``: exact greedy on the unaveraged Wang–Kulkarni–Verdú estimator
      (`knn_kl_divergence`): each step adds the unused pool row that lowers the estimate most
      (ties: the lowest index). The averaged estimator's gradient ignores which rows are
      selected; this one rewards covering target regions still far from the selection. The
      pool-to-target distances are computed once (a float64 table of len(train) × len(target)
      values, O(M·n·d)); each step costs O(M·n) (in parallel) plus O(n·k). Without `init` or
      `random_init_pct` it starts from an empty selection. While the selection holds fewer than k
      rows the estimate is undefined: `kl_trace`/`candidate_kl` hold NaN there (no criterion stops
      on NaN), and the choice uses the same estimator at rank r = (rows after adding) instead of
      k, i.e. each target row's distance to its farthest selected row. Stopping: `max_iter`,
      ``"increase"``, ``"min_difference"``, ``"sequential_increase_tolerance"``, ``"min_kl"`` and
      ``"data_size"`` as below (``max_iter`` and ``"data_size"`` are checked before a step, so
      no candidate is evaluated and thrown away; a row rejected by a criterion ends the run);
      ``"max_resets"``, `resets_allowed`, `max_resets`, `random_restart_prob`, `scale_factor`,
      `v_init`, `grad_desc_iter`, `discard_nearest_for_xy`, `lr`, `uniform_*`, `normalize` and
      `record_v_opts` belong to the gradient method: anything but their defaults raises GioError.
      `n_clusters` works as with the gradient method (greedy among centroids).
    - ``method="ratio"``: GIO's objective at a budget, by the density ratio (docs/ratio.md): at a
      fixed budget, the subset of the pool that follows the target is the pool reweighted by
      r(x) = p_target(x)/p_pool(x). log r is estimated for every pool row (`ratio_estimator`:
      ``"combined"``, the default, is the mean of the calibrated ``"gaussian"`` closed form with
      λ = tr(S_p)/d, the ``"knn"`` ratio with K = 100 and the ``"logistic"`` regression target vs
      pool), then `budget_rows` rows are kept (required): ``ratio_mode="top"`` the largest, for
      domain selection and quality filtering; ``"sample"`` a seeded importance resample without
      replacement (Gumbel top-k on log r), for matching the target's distribution. `indices`
      come in rank order and `scores` hold each row's key. With `init` (m rows already held) the
      new rows follow the residual ((m + B) r_t − m r_init)/B, r_init the same estimator fitted
      with init as the target. When the target is indistinguishable from the pool (flat ratio)
      a `GioWarning` says so and ``"sample"`` draws a seeded uniform sample; a budget above the
      pool warns and takes every row, in the mode's order. Only `init`, `seed` (None: 0),
      `progress`, `budget_rows`, `ratio_estimator` and `ratio_mode` apply: any other option set
      raises GioError. The same rows for any thread count, SIMD level, batching (`gio_rs.ratio`).

    Which setting (measured in docs/quality.md on digits, tabular sets and three text collections):

    - more data like a target slice of a mixed pool (domain selection), or the clean part of a
      damaged pool: ``method="ratio"`` with ``budget_rows`` (mode ``"top"``, the default
      estimator): above every GIO setting and peer on each text collection and on corrupted
      digits. Exact duplicates score alike: deduplicate first.
    - a selection that follows the target's distribution (importance resampling):
      ``method="ratio"``, ``ratio_mode="sample"``.
    - a small, precise selection whose size you do not know: ``method="greedy"``, k=1,
      ``stop_criterion="increase"``; the published descent (``method="gradient"``) to reproduce
      the paper.
    - a representative sample of the pool's own distribution: not GIO (random or k-means win;
      ``method="ratio"`` detects the flat ratio and its ``"sample"`` mode is then uniform).

    With ``method="greedy"`` the estimate stops changing once every target row has its k nearest
    pool rows selected (after about n·k rows): every candidate then ties, and the rest are taken by
    the Gaussian closed-form density ratio of the pool against the target (largest first, ties to
    the lowest index), not by row index. ``"increase"`` stops around there; a larger
    `max_iter`/``"data_size"`` budget is filled with those target-like rows.

    The options and their defaults are those of `grad-info-opt`'s `GIOKL.fit`, and the loop is
    the reference's, with its bugs fixed:

    - ``stop_criterion="sequential_increase_tolerance"`` accepts up to `max_sequential_increases`
      consecutive KL increases and stops on the next one (the reference never stops);
    - ``"max_resets"`` refills the pool on each KL increase until `max_resets` resets were made, then
      stops on the next increase (the reference never stops unless max_resets=0);
    - ``"min_kl"`` keeps the row whose KL fell below `min_kl`, then stops (the reference drops it);
    - an unknown `stop_criterion` or `v_init` raises GioError (the reference never stops / crashes);
    - an exhausted pool ends the run with ``stop_reason="pool_exhausted"`` (the reference raises);
    - the restart coin is drawn only when ``random_restart_prob > 0``.

    Kept from the reference, on purpose: the stop test runs after the candidate is removed from the
    pool (a rejected row is gone); ``max_iter=N`` accepts N+1 rows (the reference's
    ``total_iter > max_iter``); ``"data_size"`` accepts ``int(max_data_size·len(train)) + 1`` rows;
    ``"increase"`` stops on the first candidate whose KL is larger than the previous one;
    ``"min_difference"`` stops when the KL fell by less than `min_difference`; resets (with
    `resets_allowed`) refill the pool with all of train, so rows can repeat in `indices`.

    Parameters
    ----------
    train : array (M, d)
        The pool G to select from.
    target : array (n, d)
        Sample X of the target distribution; n >= 2 and 1 <= k <= n - 1.
    init : array (m0, d), optional
        Rows already selected (D). Without it: `random_init_pct` > 0 draws that share of train
        rows (they stay in the pool), otherwise `uniform_start_size` uniform random rows in
        [uniform_low, uniform_high)^d, L2-normalised when `normalize` (method="greedy": an empty
        selection).
    method : "gradient", "greedy" or "ratio"
        See above.
    k : int
        Neighbour rank of the estimator.
    max_iter : int
        The run accepts at most max_iter + 1 rows (the reference's count; see above).
    stop_criterion : str
        "increase", "min_difference", "min_kl", "data_size", "max_resets" or
        "sequential_increase_tolerance" (see above).
    min_difference : float
        "min_difference" stops when the KL fell by less than this.
    resets_allowed : bool
        On a stop, refill the pool with all of train and go on, up to `max_resets` times.
    max_resets : int
        Resets allowed, with `resets_allowed` or stop_criterion="max_resets".
    max_data_size : float in [0, 1]
        "data_size" accepts int(max_data_size·len(train)) + 1 rows.
    min_kl : float
        "min_kl" stops at the first row whose KL falls below this, keeping it.
    max_sequential_increases : int
        "sequential_increase_tolerance" accepts up to this many consecutive increases.
    random_init_pct : float in [0, 1]
        Without `init`: start from this share of train rows, drawn at random (see `init`).
    uniform_low : float
        Lower bound of the uniform start used without `init` and `random_init_pct` (see `init`).
    uniform_high : float
        Upper bound (excluded) of the uniform start.
    uniform_start_size : int
        Rows of the uniform start.
    normalize : bool
        Scale each row of the uniform start to unit L2 norm.
    random_restart_prob : float in [0, 1]
        Probability of a 3× longer descent on an ordinary iteration.
    scale_factor : "auto" or float
        Gradient scale; "auto" is ‖v₀‖/‖∇(v₀)‖ at the start (≈ 0 for a target centred at the origin,
        in which case v never moves: pass a number then).
    v_init : "mean", "prev_opt" or "jump"
        Where v starts each descent: mean(target), the previous optimum, or a random target row.
    grad_desc_iter : int
        Descent steps per iteration (3× on the first, after a reset, or on a random restart).
    discard_nearest_for_xy : bool
        The estimator variant where each target row ignores its nearest selected row.
    lr : float
        Learning rate of the descent.
    seed : int, optional
        Seeds every random draw (uniform start, random_init_pct, jump, restarts): the same seed gives
        the same selection, whatever the thread count. 0 <= seed < 2**32 (NumPy's RandomState).
    callback : callable, optional
        Called with a `CandidateEvent` after every candidate. An exception raised by it stops the run
        and propagates.
    progress : bool
        Show a progress bar (tqdm when installed, else a line on stderr).
    record_v_opts : bool
        Keep v after every descent in `Selection.v_opts`.
    n_clusters : int, optional
        Quantise first (GIO at scale): K-Means on the pool (`n_clusters`) and on the target
        (`n_clusters_target`, default the same; a target with at most that many rows is used as
        it is), select among the pool's centroids for the target's centroids, then explode the
        chosen clusters to all their rows. `indices` are then rows of `train` (each chosen
        cluster's members, clusters in first-chosen order, rows ascending inside a cluster);
        `clusters` holds the chosen cluster ids in selection order (a cluster chosen twice after a
        reset appears twice there, and in `repeated_clusters`, but its rows once in `indices`);
        `kl_trace` is measured on centroids. `seed` also seeds the K-Means fits, which run at
        most `kmeans_max_iter` Lloyd iterations each. The pool's fit runs on every row when it
        fits the memory budget, else on a seeded sample of as many rows as fit (then every row
        is labelled by `predict`, a slice at a time): `kmeans_sample_rows` sets that sample's
        size. For pools in files larger than memory, see `gio_rs.select_stream`.
    n_clusters_target : int, optional
        Clusters of the target with `n_clusters` (default: `n_clusters`; see there).
    kmeans_max_iter : int
        Lloyd iterations per K-Means fit with `n_clusters`.
    greedy_max_bytes : int
        method="greedy" refuses to build a distance table larger than this (default 4 GiB) and
        raises GioError naming `train`; quantise (`n_clusters`) for larger problems.
    ratio_estimator : "combined", "gaussian", "knn" or "logistic"
        With method="ratio": the estimate of log r (see above).
    ratio_mode : "top" or "sample"
        With method="ratio": the B largest, or a seeded importance resample (see above).
    budget_rows : int, optional
        Required with method="ratio": the rows to select (see above). Otherwise: exactly this
        many pool rows, ranked (`gio_rs.ranking`): `indices[:m]` is what a budget of m rows gives.
        Replaces `max_iter`, `stop_criterion` and `max_data_size` (leave them at
        their defaults): without `n_clusters` the loop runs until it has accepted `budget_rows`
        distinct rows; with it, until the chosen clusters hold that many rows, whose members are
        ranked cluster by cluster in selection order and, inside a cluster, by squared distance to
        the nearest target centroid (nearest first, ties by row), the last cluster trimmed.
        `stop_reason` is then "budget_rows".

    Returns
    -------
    Selection
        The selected rows, the KL trace and how the run ended.

    Notes
    -----
    The GIL is released while the core runs; Ctrl-C interrupts it. A run
    whose working set would exceed the memory budget (`gio_rs.set_memory_budget`, env
    GIO_RS_MEMORY_BUDGET, default the memory available; see `gio_rs.memory`) raises GioError
    before it starts.
    float32 input stays float32 in memory; distances and sums are computed in float64.
    """
    arguments = dict(locals())  # every argument as given
    routed = _route(arguments)
    if routed is not None:
        return routed
    params = _core.SelectParams(
        semantics="fixed",
        **{name: arguments[name] for name in _LOOP_OPTIONS},
        # The table cap is only read, and so only checked, by the greedy method.
        **({"greedy_max_bytes": greedy_max_bytes} if method == "greedy" else {}),
    )
    greedy = params.method == "greedy"
    uniform = {name: arguments[name] for name in _UNIFORM_START}
    if greedy:
        _refuse_uniform_start(uniform)
    train_arr, target_arr, quantization = _matrices(arguments)
    dim = target_arr.shape[1]
    random_init_pct = check_float("random_init_pct", random_init_pct, minimum=0.0, maximum=1.0)
    uniform["normalize"] = check_bool("normalize", normalize)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable or None, got {type(callback).__name__}")
    if seed is not None:
        seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)  # RandomState's range
    rng = _random.Random(seed)
    init_arr, init_indices = initial_selection(
        train_arr,
        dim,
        init=init,
        init_name="init",
        target_name="target",
        random_init_pct=random_init_pct,
        uniform_rows=_uniform_rows(None if greedy else uniform, seed, dim),
        rng=rng,
        discard_nearest_for_xy=params.discard_nearest_for_xy,
    )
    reporter = Reporter(callback, check_bool("progress", progress), total=params.max_iter + 1)
    # init_name: what a start that does not fit float32 came from (the uniform start's bounds)
    init_name = "init" if init is not None or init_indices is not None else "uniform_low"
    arrays = loop_arrays(train_arr, target_arr, init_arr, params, init_name=init_name)
    out = run_loop(arrays, params, rng=rng, reporter=reporter)
    return _result(out, params, arrays[2], init_indices, quantization)


# select()'s arguments that method="ratio" reads; every other one must keep its default.
_RATIO_OPTIONS = (
    "train", "target", "init", "method", "seed", "progress", "budget_rows", "ratio_estimator",
    "ratio_mode",
)  # fmt: skip


def _select_ratio(arguments: dict[str, Any]) -> Selection:
    """select(method="ratio"): `gio_rs.ratio.select_ratio`, as a `Selection`."""
    from .ratio import select_ratio

    defaults = inspect.signature(select).parameters
    for name, value in arguments.items():
        default = defaults[name].default
        if name not in _RATIO_OPTIONS and not _is_default(value, default):
            raise _core.GioError(f"{name}: not used by method='ratio'; leave it at its default ({default!r})")
    if arguments["budget_rows"] is None:
        raise _core.GioError("budget_rows: required with method='ratio' (the rows to select)")
    seed = 0 if arguments["seed"] is None else arguments["seed"]
    train, target, init = _ratio_matrices(arguments)
    out = select_ratio(
        train,
        target,
        arguments["budget_rows"],
        estimator=arguments["ratio_estimator"],
        mode=arguments["ratio_mode"],
        seed=seed,
        init=init,
        progress=arguments["progress"],
    )
    empty = np.empty(0)
    init = empty.reshape(0, out.model.dim) if arguments["init"] is None else arguments["init"]
    return Selection(
        indices=out.indices,
        kl_trace=empty,
        kl_start=float("nan"),
        stop_reason="budget_rows",
        candidate_kl=empty,
        init=np.asarray(init),
        init_indices=None,
        scale_factor=float("nan"),
        n_resets=0,
        scores=out.scores,
        ratio_model=out.model,
    )


def _ratio_matrices(arguments: dict[str, Any]) -> tuple[Any, Any, Any]:
    """train, target and init as matrices, after refusing (GioError) a ratio selection whose
    working set (`memory.ratio_bytes`, with the copies to the working dtype) exceeds the memory
    budget, before any work. Options the estimate cannot read are left to `select_ratio` to name."""
    from .ratio import ESTIMATORS, MODES

    train = as_matrix("train", arguments["train"])
    target = as_matrix("target", arguments["target"], min_rows=2)
    init = None if arguments["init"] is None else as_matrix("init", arguments["init"], min_rows=2)
    estimator, mode = arguments["ratio_estimator"], arguments["ratio_mode"]
    if estimator not in ESTIMATORS or mode not in MODES:
        return train, target, init
    budget = check_int("budget_rows", arguments["budget_rows"], minimum=1)
    dtype = working_dtype(train, target, init)
    needed = sum(copy_bytes(a, dtype) for a in (train, target, init))
    needed += memory.ratio_bytes(
        len(train), len(target), train.shape[1], dtype.itemsize, budget, estimator=estimator, mode=mode,
        init_rows=0 if init is None else len(init),
    )  # fmt: skip
    what = (
        f"density-ratio selection (estimator {estimator!r}, mode {mode!r}) of {min(budget, len(train))} of "
        f"{len(train)} x {train.shape[1]} rows for {len(target)} target rows"
    )
    memory.require(what, needed, "gio_rs.select_stream(method='ratio') scores a pool in pieces")
    return train, target, init


def _is_default(value: Any, default: Any) -> bool:
    if value is None or default is None:
        return value is default
    return isinstance(value, bool) == isinstance(default, bool) and value == default


def _route(arguments: dict[str, Any]) -> Optional[Selection]:
    """method="ratio" (`_select_ratio`) and `budget_rows` (`gio_rs.ranking`) run elsewhere; None
    for a plain loop."""
    if arguments["method"] == "ratio":
        return _select_ratio(arguments)
    _refuse_ratio_options(arguments)
    if arguments["budget_rows"] is not None:
        from .ranking import select_with_budget

        return select_with_budget(select, arguments)
    return None


def _refuse_ratio_options(arguments: dict[str, Any]) -> None:
    for name in ("ratio_estimator", "ratio_mode"):
        default = inspect.signature(select).parameters[name].default
        if arguments[name] != default:
            raise _core.GioError(f"{name}: only used by method='ratio'")


def _matrices(arguments: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, Optional[Quantization]]:
    """train and target as matrices of one width; with `n_clusters`, their centroids instead
    (and the quantisation)."""
    train = as_matrix("train", arguments["train"])
    target = as_matrix("target", arguments["target"], min_rows=2)
    same_columns("train", train, "target", target.shape[1])
    if arguments["n_clusters"] is not None:
        quantization = quantize_matrices(
            train,
            target,
            arguments["n_clusters"],
            n_clusters_target=arguments["n_clusters_target"],
            seed=arguments["seed"],
            max_iter=check_int("kmeans_max_iter", arguments["kmeans_max_iter"], minimum=1),
            progress=check_bool("progress", arguments["progress"]),
            kmeans_sample_rows=arguments["kmeans_sample_rows"],
        )
        return quantization.train_centers, quantization.target_centers, quantization
    if arguments["n_clusters_target"] is not None:
        raise _core.GioError("n_clusters_target: only used together with n_clusters")
    if arguments["kmeans_sample_rows"] is not None:
        raise _core.GioError("kmeans_sample_rows: only used together with n_clusters")
    return train, target, None


def _uniform_rows(
    uniform: Optional[dict[str, Any]], seed: Optional[int], dim: int
) -> Callable[[], np.ndarray]:
    """The uniform start, drawn (and its options checked) only when the start needs it; no rows
    when `uniform` is None (method="greedy")."""

    def rows() -> np.ndarray:
        if uniform is None:
            return np.empty((0, dim))
        return uniform_start(np.random.RandomState(seed), dim=dim, **_checked_uniform(uniform))

    return rows


def _refuse_uniform_start(given: dict[str, Any]) -> None:
    """method="greedy" starts from an empty selection: the uniform start's options must keep their
    defaults."""
    for name, default in _UNIFORM_START.items():
        value = given[name]
        if isinstance(value, bool) != isinstance(default, bool) or value != default:
            raise _core.GioError(
                f"{name}: only used by method='gradient'; leave it at its default ({default!r}) "
                "with method='greedy'"
            )


def _checked_uniform(given: dict[str, Any]) -> dict[str, Any]:
    """The uniform start's options, checked when the start is drawn."""
    size = check_int("uniform_start_size", given["uniform_start_size"], minimum=1)
    low = check_float("uniform_low", given["uniform_low"])
    high = check_float("uniform_high", given["uniform_high"])
    if not low < high:
        raise _core.GioError(f"uniform_high: must be > uniform_low = {low}, got {high}")
    return {"low": low, "high": high, "size": size, "normalize": given["normalize"]}


def _result(
    out: _core.SelectionResult,
    params: _core.SelectParams,
    init: np.ndarray,
    init_indices: Optional[np.ndarray],
    quantization: Optional[Quantization],
) -> Selection:
    """The public `Selection` of a core run, exploded to pool rows when quantised."""
    indices, clusters, cluster_of_row, repeated = out.indices, None, None, None
    if quantization is not None:
        explosion = quantization.explode(indices)
        indices, clusters = explosion.indices, out.indices
        cluster_of_row, repeated = explosion.cluster_of_row, explosion.repeated
    return Selection(
        indices=indices,
        kl_trace=out.kl_trace,
        kl_start=out.kl_start,
        stop_reason=out.stop_reason,
        candidate_kl=out.candidate_kl,
        init=init,
        init_indices=init_indices,
        scale_factor=out.scale_factor,
        n_resets=out.num_resets,
        v_opts=out.v_opts if params.record_v_opts else None,
        clusters=clusters,
        cluster_of_row=cluster_of_row,
        repeated_clusters=repeated,
        quantization=quantization,
    )
