"""Greedy GIO selection on NumPy arrays: `select` (fixed semantics, the modern API) and the
shared plumbing that `GIOKL.fit` (reference semantics) uses too.

With the default method="gradient" each step runs gradient descent on a relaxed candidate v, snaps
v to the nearest unused pool row, evaluates KL(target ‖ selection ∪ {row}) and applies the stop
criterion; method="greedy" adds the pool row that lowers the unaveraged k-NN estimate most,
exactly (see `select`).
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import numpy as np

from . import _core, memory
from ._arrays import as_matrix, cast, check_bool, check_float, check_int, same_columns, working_dtype
from ._progress import CandidateEvent, Reporter
from .quantize import quantize

STOP_CRITERIA = (
    "increase",
    "max_resets",
    "min_difference",
    "sequential_increase_tolerance",
    "min_kl",
    "data_size",
)
V_INITS = ("mean", "prev_opt", "jump")
METHODS = ("gradient", "greedy")
# The default cap on method="greedy"'s distance table (pool rows × target rows × 8 bytes).
GREEDY_MAX_BYTES = 1 << 32
# Options only the gradient method uses, with their defaults: method="greedy" refuses any other
# value rather than ignore it silently.
_GRADIENT_ONLY = {
    "resets_allowed": False,
    "max_resets": 2,
    "random_restart_prob": 0.0,
    "scale_factor": "auto",
    "v_init": "mean",
    "grad_desc_iter": 50,
    "discard_nearest_for_xy": False,
    "lr": 0.01,
    "uniform_low": -1.0,
    "uniform_high": 1.0,
    "uniform_start_size": 20,
    "normalize": True,
    "record_v_opts": False,
}


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
        `quantization.train_centers` with `n_clusters`), else None.
    scale_factor : float
        The gradient scale used by the descent (NaN with method="greedy").
    n_resets : int
        Pool resets performed.
    v_opts : array or None
        v after every descent (rows), when `record_v_opts=True`.
    clusters, cluster_of_row, repeated_clusters, quantization : with `n_clusters` only
        The chosen pool clusters in selection order, the cluster of each row of `indices`, the
        clusters chosen more than once, and the K-Means models (`gio_rs.quantize.Quantization`).
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

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def kl_final(self) -> float:
        """KL after the last accepted row (kl_start when nothing was accepted)."""
        return float(self.kl_trace[-1]) if len(self.kl_trace) else self.kl_start


@dataclass(frozen=True)
class LoopOptions:
    """Validated loop options, in the core's vocabulary."""

    k: int
    max_iter: int
    stop_criterion: str
    min_difference: float
    resets_allowed: bool
    max_resets: int
    max_data_size: float
    min_kl: float
    max_sequential_increases: int
    random_restart_prob: float
    scale_factor: Optional[float]
    v_init: str
    grad_desc_iter: int
    discard_nearest_for_xy: bool
    lr: float


def loop_options(
    *,
    k: Any,
    max_iter: Any,
    stop_criterion: Any,
    min_difference: Any,
    resets_allowed: Any,
    max_resets: Any,
    max_data_size: Any,
    min_kl: Any,
    max_sequential_increases: Any,
    random_restart_prob: Any,
    scale_factor: Any,
    v_init: Any,
    grad_desc_iter: Any,
    discard_nearest_for_xy: Any,
    lr: Any,
    fixed: bool,
    n_target: int,
) -> LoopOptions:
    """Checks every option; names in errors are the argument names."""
    k = check_int("k", k, minimum=1)
    if k > n_target - 1:
        raise _core.GioError(f"k: must be <= n - 1 = {n_target - 1} for a target of {n_target} rows, got {k}")
    if not isinstance(stop_criterion, str):
        raise TypeError(f"stop_criterion: expected a string, got {type(stop_criterion).__name__}")
    if fixed and stop_criterion not in STOP_CRITERIA:
        raise _core.GioError(
            f"stop_criterion: unknown criterion {stop_criterion!r}; expected one of {STOP_CRITERIA}"
        )
    if not isinstance(v_init, str) or v_init not in V_INITS:
        raise _core.GioError(f"v_init: unknown value {v_init!r}; expected one of {V_INITS}")
    if isinstance(scale_factor, str):
        if scale_factor != "auto":
            raise _core.GioError(f"scale_factor: expected 'auto' or a number, got {scale_factor!r}")
        scale = None
    else:
        scale = check_float("scale_factor", scale_factor)
    return LoopOptions(
        k=k,
        max_iter=check_int("max_iter", max_iter, minimum=0),
        stop_criterion=stop_criterion,
        min_difference=check_float("min_difference", min_difference),
        resets_allowed=check_bool("resets_allowed", resets_allowed),
        max_resets=check_int("max_resets", max_resets, minimum=0),
        max_data_size=check_float("max_data_size", max_data_size, minimum=0.0),
        min_kl=check_float("min_kl", min_kl),
        max_sequential_increases=check_int("max_sequential_increases", max_sequential_increases, minimum=0),
        random_restart_prob=check_float("random_restart_prob", random_restart_prob, minimum=0.0, maximum=1.0),
        scale_factor=scale,
        v_init=v_init,
        grad_desc_iter=check_int("grad_desc_iter", grad_desc_iter, minimum=0),
        discard_nearest_for_xy=check_bool("discard_nearest_for_xy", discard_nearest_for_xy),
        lr=check_float("lr", lr),
    )


def uniform_start(np_rng: Any, low: float, high: float, size: int, dim: int, normalize: bool) -> np.ndarray:
    """The reference's uniform start: `np_rng.uniform(low, high, (size, dim))`, each row scaled to
    unit L2 norm when `normalize` (an all-zero row is left as is)."""
    rows = np.asarray(np_rng.uniform(low=low, high=high, size=(size, dim)), dtype=np.float64)
    if normalize:
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        rows = np.where(norms == 0, rows, rows / np.where(norms == 0, 1.0, norms))
    return rows


def initial_selection(
    train: np.ndarray,
    dim: int,
    *,
    init: Any,
    init_name: str,
    target_name: str,
    random_init_pct: float,
    uniform_rows: Callable[[], np.ndarray],
    rng: Any,
    discard_nearest_for_xy: bool,
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The reference's start (its `fit`, lines 148-155): `init` when given; else
    `int(random_init_pct·len(train))` train rows drawn with `rng.sample` (they stay in the pool);
    else `uniform_rows()`. Returns the rows and, for drawn train rows, their indices."""
    indices = None
    if init is not None:
        rows = as_matrix(init_name, init)
        same_columns(init_name, rows, target_name, dim)
    elif random_init_pct > 0:
        amount = int(random_init_pct * len(train))
        if amount < 1:
            raise _core.GioError(
                f"random_init_pct: {random_init_pct} of {len(train)} train rows is less than one row"
            )
        indices = np.asarray(rng.sample(range(len(train)), amount), dtype=np.int64)
        rows = train[indices]
    else:
        rows = uniform_rows()
    if discard_nearest_for_xy and len(rows) < 2:
        raise _core.GioError(f"{init_name}: needs at least 2 rows with discard_nearest_for_xy=True")
    return rows, indices


def pick_row(rng: Any) -> Callable[[int], int]:
    """A row draw that consumes `rng` exactly as the reference's `random.sample(rows, 1)`."""
    return lambda n: rng.sample(range(n), 1)[0]


def loop_arrays(
    train: np.ndarray,
    target: np.ndarray,
    init: np.ndarray,
    max_iter: int,
    *,
    greedy: bool,
    extra: int = 0,
    init_name: str = "init",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """train, target and init cast to one working dtype (float32 stays float32; init follows),
    once the loop's working set (see gio_rs.memory; `extra` bytes more for the caller's own use)
    fits the memory budget. Arrays must be validated already; init (named `init_name` in
    errors) must fit the working dtype."""
    dtype = working_dtype(train, target)
    f32_max = float(np.finfo(np.float32).max)
    if dtype == np.float32 and init.dtype.itemsize > 4 and init.size and float(np.abs(init).max()) > f32_max:
        raise _core.GioError(
            f"{init_name}: has values beyond the float32 range (±{f32_max:.3g}), while train and the "
            "target are float32, so the selection runs in float32; pass them as float64"
        )
    copies = sum(memory.copy_bytes(a, dtype) for a in (train, target, init))
    needed = copies + extra
    needed += memory.select_bytes(
        len(train),
        len(target),
        target.shape[1],
        n_start=len(init),
        max_iter=max_iter,
        greedy=greedy,
        itemsize=dtype.itemsize,
    )
    what = "greedy selection" if greedy else "selection"
    what += f" from {len(train)} x {target.shape[1]} rows for {len(target)} target rows"
    memory.require(what, needed, "quantise first (n_clusters)" if greedy or len(train) > 100_000 else "")
    return cast(train, dtype), cast(target, dtype), cast(init, dtype)


def run_loop(
    train: np.ndarray,
    target: np.ndarray,
    init: np.ndarray,
    opts: LoopOptions,
    *,
    fixed: bool,
    rng: Any,
    reporter: Reporter,
    record_v_opts: bool = False,
) -> dict:
    """Runs the core loop on arrays from `loop_arrays`."""
    try:
        return _core.greedy_select(
            train,
            target,
            init,
            k=opts.k,
            max_iter=opts.max_iter,
            stop_criterion=opts.stop_criterion,
            min_difference=opts.min_difference,
            resets_allowed=opts.resets_allowed,
            max_resets=opts.max_resets,
            max_data_size=opts.max_data_size,
            min_kl=opts.min_kl,
            max_sequential_increases=opts.max_sequential_increases,
            random_restart_prob=opts.random_restart_prob,
            scale_factor=opts.scale_factor,
            v_init=opts.v_init,
            grad_desc_iter=opts.grad_desc_iter,
            discard_nearest_for_xy=opts.discard_nearest_for_xy,
            lr=opts.lr,
            fixed=fixed,
            record_v_opts=record_v_opts,
            random=rng.random,
            pick=pick_row(rng),
            callback=reporter,
        )
    finally:
        reporter.close()


def run_exact_greedy(
    train: np.ndarray,
    target: np.ndarray,
    init: np.ndarray,
    opts: LoopOptions,
    *,
    max_table_bytes: int,
    reporter: Reporter,
) -> dict:
    """Runs the core's exact greedy loop on arrays from `loop_arrays`."""
    try:
        return _core.exact_greedy_select(
            train,
            target,
            init,
            k=opts.k,
            max_iter=opts.max_iter,
            stop_criterion=opts.stop_criterion,
            min_difference=opts.min_difference,
            max_data_size=opts.max_data_size,
            min_kl=opts.min_kl,
            max_sequential_increases=opts.max_sequential_increases,
            max_table_bytes=max_table_bytes,
            callback=reporter,
        )
    finally:
        reporter.close()


def _check_greedy_options(stop_criterion: Any, given: dict[str, Any]) -> None:
    """method="greedy": refuses the gradient method's options when set to anything but their
    defaults, and the criterion that needs pool resets."""
    for name, default in _GRADIENT_ONLY.items():
        value = given[name]
        if isinstance(value, bool) != isinstance(default, bool) or value != default:
            raise _core.GioError(
                f"{name}: only used by method='gradient'; leave it at its default ({default!r}) "
                "with method='greedy'"
            )
    if stop_criterion == "max_resets":
        raise _core.GioError(
            "stop_criterion: 'max_resets' resets the pool, which method='greedy' never does; "
            "use 'increase', 'min_difference', 'sequential_increase_tolerance', 'min_kl' or 'data_size'"
        )


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
) -> Selection:
    """Select rows of `train` that make `init ∪ selection` most informative about `target`:
    greedily minimise the k-NN estimate of KL(target ‖ init ∪ selection) (GIO).

    Two methods:

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

    Which setting (measured in docs/quality.md on digits, tabular sets and three text collections;
    no rule computed from the target alone picks the winner, so it depends on the job):

    - more data like a target slice of a mixed pool (domain selection): any target-aware setting
      (text: 4–8× random). ``v_init="mean"`` (the default) ranks the pool by distance to one point
      near the target mean; it wins when the target is a tight, distinct region (its spread well
      below the pool's), ``v_init="jump"`` or greedy with k = 5 when it is diffuse. Try `n_clusters`.
    - keep the clean part of a damaged pool (target = clean rows of the same source):
      ``v_init="jump"``; not ``"mean"``, which favours rows pulled towards the mean (blurred
      images: 31% clean against jump's 89%). Exact duplicates share one vector: deduplicate first.
    - a small, precise selection: ``method="greedy"``, k=1, ``stop_criterion="increase"``.
    - a representative sample of the pool's own distribution: not GIO (random or k-means win).

    With ``method="greedy"`` the estimate stops changing once every target row has its k nearest
    pool rows selected (at most n·k rows): every candidate then ties and rows are taken in index
    order. ``"increase"`` stops around there; a larger `max_iter`/``"data_size"`` budget is filled with
    those arbitrary rows.

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
    method : "gradient" or "greedy"
        See above.
    k : int
        Neighbour rank of the estimator.
    max_iter, stop_criterion, min_difference, resets_allowed, max_resets, max_data_size, min_kl,
    max_sequential_increases : stopping (see above).
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
    n_clusters, n_clusters_target : int, optional
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
    greedy_max_bytes : int
        method="greedy" refuses to build a distance table larger than this (default 4 GiB) and
        raises GioError naming `train`; quantise (`n_clusters`) for larger problems.
    budget_rows : int, optional
        Exactly this many pool rows, ranked (`gio_rs.ranking`): `indices[:m]` is what a budget of
        m rows gives. Replaces `max_iter`, `stop_criterion` and `max_data_size` (leave them at
        their defaults): without `n_clusters` the loop runs until it has accepted `budget_rows`
        distinct rows; with it, until the chosen clusters hold that many rows, whose members are
        ranked cluster by cluster in selection order and, inside a cluster, by squared distance to
        the nearest target centroid (nearest first, ties by row), the last cluster trimmed.
        `stop_reason` is then "budget_rows".

    Returns a `Selection`. The GIL is released while the core runs; Ctrl-C interrupts it. A run
    whose working set would exceed the memory budget (`gio_rs.set_memory_budget`, env
    GIO_RS_MEMORY_BUDGET, default the memory available; see `gio_rs.memory`) raises GioError
    before it starts.
    float32 input stays float32 in memory; distances and sums are computed in float64.
    """
    if budget_rows is not None:
        arguments = dict(locals())  # every argument as given, for the budget's own loop
        from .ranking import select_with_budget

        return select_with_budget(select, arguments)
    if not isinstance(method, str) or method not in METHODS:
        raise _core.GioError(f"method: unknown value {method!r}; expected one of {METHODS}")
    greedy = method == "greedy"
    if greedy:
        _check_greedy_options(
            stop_criterion,
            {
                "resets_allowed": resets_allowed,
                "max_resets": max_resets,
                "random_restart_prob": random_restart_prob,
                "scale_factor": scale_factor,
                "v_init": v_init,
                "grad_desc_iter": grad_desc_iter,
                "discard_nearest_for_xy": discard_nearest_for_xy,
                "lr": lr,
                "uniform_low": uniform_low,
                "uniform_high": uniform_high,
                "uniform_start_size": uniform_start_size,
                "normalize": normalize,
                "record_v_opts": record_v_opts,
            },
        )
        max_table_bytes = check_int("greedy_max_bytes", greedy_max_bytes, minimum=0)
    train_arr = as_matrix("train", train)
    target_arr = as_matrix("target", target, min_rows=2)
    dim = target_arr.shape[1]
    same_columns("train", train_arr, "target", dim)
    quantization = None
    if n_clusters is not None:
        quantization = quantize(
            train_arr,
            target_arr,
            n_clusters,
            n_clusters_target=n_clusters_target,
            seed=seed,
            max_iter=check_int("kmeans_max_iter", kmeans_max_iter, minimum=1),
            progress=check_bool("progress", progress),
            kmeans_sample_rows=kmeans_sample_rows,
        )
        train_arr, target_arr = quantization.train_centers, quantization.target_centers
    elif n_clusters_target is not None:
        raise _core.GioError("n_clusters_target: only used together with n_clusters")
    elif kmeans_sample_rows is not None:
        raise _core.GioError("kmeans_sample_rows: only used together with n_clusters")
    opts = loop_options(
        k=k,
        max_iter=max_iter,
        stop_criterion=stop_criterion,
        min_difference=min_difference,
        resets_allowed=resets_allowed,
        max_resets=max_resets,
        max_data_size=max_data_size,
        min_kl=min_kl,
        max_sequential_increases=max_sequential_increases,
        random_restart_prob=random_restart_prob,
        scale_factor=scale_factor,
        v_init=v_init,
        grad_desc_iter=grad_desc_iter,
        discard_nearest_for_xy=discard_nearest_for_xy,
        lr=lr,
        fixed=True,
        n_target=target_arr.shape[0],
    )
    random_init_pct = check_float("random_init_pct", random_init_pct, minimum=0.0, maximum=1.0)
    normalize = check_bool("normalize", normalize)
    record_v_opts = check_bool("record_v_opts", record_v_opts)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable or None, got {type(callback).__name__}")
    if seed is not None:
        seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)  # RandomState's range
    rng = _random.Random(seed)

    def uniform_rows() -> np.ndarray:
        if greedy:
            return np.empty((0, dim))
        size = check_int("uniform_start_size", uniform_start_size, minimum=1)
        low = check_float("uniform_low", uniform_low)
        high = check_float("uniform_high", uniform_high)
        if not low < high:
            raise _core.GioError(f"uniform_high: must be > uniform_low = {low}, got {high}")
        return uniform_start(np.random.RandomState(seed), low, high, size, dim, normalize)

    init_arr, init_indices = initial_selection(
        train_arr,
        dim,
        init=init,
        init_name="init",
        target_name="target",
        random_init_pct=random_init_pct,
        uniform_rows=uniform_rows,
        rng=rng,
        discard_nearest_for_xy=opts.discard_nearest_for_xy,
    )

    reporter = Reporter(callback, check_bool("progress", progress), total=opts.max_iter + 1)
    # init_name: what a start that does not fit float32 came from (the uniform start's bounds)
    init_name = "init" if init is not None or init_indices is not None else "uniform_low"
    arrays = loop_arrays(train_arr, target_arr, init_arr, opts.max_iter, greedy=greedy, init_name=init_name)
    if greedy:
        out = run_exact_greedy(*arrays, opts, max_table_bytes=max_table_bytes, reporter=reporter)
    else:
        out = run_loop(
            *arrays,
            opts,
            fixed=True,
            rng=rng,
            reporter=reporter,
            record_v_opts=record_v_opts,
        )
    indices, clusters, cluster_of_row, repeated = out["indices"], None, None, None
    if quantization is not None:
        explosion = quantization.explode(indices)
        indices, clusters = explosion.indices, out["indices"]
        cluster_of_row, repeated = explosion.cluster_of_row, explosion.repeated
    return Selection(
        indices=indices,
        kl_trace=out["kl_trace"],
        kl_start=float(out["kl_start"]),
        stop_reason=str(out["stop_reason"]),
        candidate_kl=out["candidate_kl"],
        init=arrays[2],
        init_indices=init_indices,
        scale_factor=float(out["scale_factor"]),
        n_resets=int(out["num_resets"]),
        v_opts=out["v_opts"] if record_v_opts else None,
        clusters=clusters,
        cluster_of_row=cluster_of_row,
        repeated_clusters=repeated,
        quantization=quantization,
    )
