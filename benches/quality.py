"""Does the selection help? Selection quality on real data that ships with scikit-learn (no download).

Methods, each given the same pool, target and budget:
  GIO gradient   gio_rs.select (reference semantics), run to exactly the budget, v_init "mean" and "jump"
  GIO greedy     gio_rs.select(..., method="greedy"), when this build has it (else reported unavailable),
                 with k = 5 like every other estimate and with k = 1
  random         a uniform sample of the pool
  k-center       greedy farthest-point coverage of the pool (Sener & Savarese), from a random pool row
  k-means        K-Means on the pool with `budget` clusters, the pool row nearest each centroid
  target-NN      round robin over the target rows, each taking its nearest unselected pool row
  ratio          gio_rs.select(method="ratio", budget_rows=budget): the density ratio p_target / p_pool
                 by each `ratio_estimator` ("combined" default, "gaussian", "knn", "logistic") in mode
                 "top" (the largest ratios), and the default in mode "sample" (importance resampling)

Experiments (every number is a mean over --seeds seeds; a seed draws the split, the corruptions and
every method's randomness):
  1. budget   Each data set is split 70/30 (stratified); the 30% side is split again into a small
              target sample (the target distribution, min(100, a third) rows) and the test set. Each
              method selects 25% of the pool; a LogisticRegression trained on the selection is scored
              on the test set, against one trained on the whole pool.
  1b. target  digits with targets of 30, 100 and 300 rows (nested, one shared test set): how much
              the target-aware methods depend on the target's size.
  2. quality  digits only: the pool holds every clean pool image plus one corrupted copy of it
              (Gaussian noise, blur or a masked 4x4 block, one of the three at random), so half the
              pool is clean. The target is the clean target sample. Each method selects 25% of the
              pool; reported: the share of clean rows selected (random: 50%) and the test accuracy.
  3. KL, time Both experiments report KL(target || selection) with the estimator GIO minimises
              (gio_rs.kl_divergence, averaged over neighbour ranks) and with the plain
              Wang-Kulkarni-Verdu k-NN estimator (NumPy, below), and each method's wall time.

    python benches/quality.py [--quick] [--seeds 5] [--out results.md]
"""

from __future__ import annotations

import argparse
import inspect
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Optional

import numpy as np
from scipy import ndimage
from sklearn import datasets
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import gio_rs

K = 5  # neighbour rank of every KL estimate and of GIO itself
BUDGET_SHARE = 0.25
POOL_SHARE = 0.7
MAX_TARGET_ROWS = 100

# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class Split:
    pool: np.ndarray
    pool_labels: np.ndarray
    target: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    pool_clean: Optional[np.ndarray] = None  # experiment 2: True for the clean rows of the pool
    pool_corruption: Optional[np.ndarray] = None  # experiment 2: "clean", "noise", "blur" or "mask"


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features scaled to [0, 1] (digits: pixel / 16; the tabular sets: per-column min-max), so the
    target's mean is away from the origin and GIO's `scale_factor="auto"` is meaningful."""
    bunch = getattr(datasets, f"load_{name}")()
    features = np.asarray(bunch.data, dtype=np.float64)
    if name == "digits":
        features = features / 16.0
    else:
        low, high = features.min(axis=0), features.max(axis=0)
        features = (features - low) / np.where(high > low, high - low, 1.0)
    return features, np.asarray(bunch.target)


def split(features: np.ndarray, labels: np.ndarray, seed: int) -> Split:
    pool, held, pool_labels, held_labels = train_test_split(
        features, labels, train_size=POOL_SHARE, stratify=labels, random_state=seed
    )
    n_target = min(MAX_TARGET_ROWS, len(held) // 3)
    target, test, _, test_labels = train_test_split(
        held, held_labels, train_size=n_target, stratify=held_labels, random_state=seed
    )
    return Split(pool, pool_labels, target, test, test_labels)


def split_target_sizes(features: np.ndarray, labels: np.ndarray, seed: int, sizes: list[int]) -> list[Split]:
    """The 70/30 split of `split`, with the 30% side cut once into a reservoir of max(sizes) rows and a
    test set; the target of size s is the reservoir's first s rows, so every size shares one test set."""
    pool, held, pool_labels, held_labels = train_test_split(
        features, labels, train_size=POOL_SHARE, stratify=labels, random_state=seed
    )
    reservoir, test, _, test_labels = train_test_split(
        held, held_labels, train_size=max(sizes), stratify=held_labels, random_state=seed
    )
    return [Split(pool, pool_labels, reservoir[:size], test, test_labels) for size in sizes]


CORRUPTIONS = ("noise", "blur", "mask")


def corrupt(images: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One corrupted copy of each 8x8 digit in [0, 1]: Gaussian noise (sd 0.25, clipped), a Gaussian
    blur (sigma 1 pixel) or a zeroed 4x4 block at a random place. Returns the copies and their kind."""
    kinds = rng.integers(0, len(CORRUPTIONS), len(images))
    out = images.reshape(-1, 8, 8).copy()
    for row, kind in enumerate(kinds):
        if CORRUPTIONS[kind] == "noise":
            out[row] = np.clip(out[row] + rng.normal(0.0, 0.25, (8, 8)), 0.0, 1.0)
        elif CORRUPTIONS[kind] == "blur":
            out[row] = ndimage.gaussian_filter(out[row], sigma=1.0, mode="constant")
        else:
            top, left = rng.integers(0, 5, 2)
            out[row, top : top + 4, left : left + 4] = 0.0
    return out.reshape(len(images), -1), np.asarray(CORRUPTIONS)[kinds]


def with_corrupted_copies(data: Split, seed: int) -> Split:
    """The pool plus one corrupted copy of each row, in a random order: row order must not tell clean
    from corrupted (GIO greedy breaks ties by the lowest index, and ties are common once every target
    row's k nearest pool rows are selected)."""
    rng = np.random.default_rng(seed)
    copies, kinds = corrupt(data.pool, rng)
    order = rng.permutation(2 * len(data.pool))
    return Split(
        pool=np.vstack([data.pool, copies])[order],
        pool_labels=np.concatenate([data.pool_labels, data.pool_labels])[order],
        target=data.target,
        test=data.test,
        test_labels=data.test_labels,
        pool_clean=np.concatenate([np.ones(len(data.pool), bool), np.zeros(len(copies), bool)])[order],
        pool_corruption=np.concatenate([np.full(len(data.pool), "clean"), kinds])[order],
    )


def corrupted_split(features: np.ndarray, labels: np.ndarray, seed: int) -> Split:
    return with_corrupted_copies(split(features, labels, seed), seed)


# ---------------------------------------------------------------------------------------------
# Methods: each maps (pool, target, budget, seed) to `budget` distinct pool rows


def gio_gradient(v_init: str) -> Callable:
    def run(pool, target, budget, seed):
        # data_size with max_data_size=1 never fires first; max_iter=budget-1 accepts exactly budget rows.
        sel = gio_rs.select(
            pool,
            target,
            k=K,
            max_iter=budget - 1,
            stop_criterion="data_size",
            max_data_size=1.0,
            v_init=v_init,
            seed=seed,
        )
        return sel.indices

    return run


def greedy_support() -> Optional[str]:
    """None when this gio_rs has method="greedy", else why not."""
    if "method" not in inspect.signature(gio_rs.select).parameters:
        return f"gio_rs at {gio_rs.__file__} has no select(method=...)"
    rng = np.random.default_rng(0)
    try:
        gio_rs.select(rng.random((12, 3)), rng.random((8, 3)), k=2, max_iter=2, method="greedy", seed=0)
    except (TypeError, ValueError) as error:
        return f'gio_rs.select(method="greedy") failed: {error}'
    return None


def gio_greedy(k: int) -> Callable:
    def run(pool, target, budget, seed):
        # Deterministic (no random draw); starts from an empty selection. max_iter as for the gradient.
        sel = gio_rs.select(
            pool,
            target,
            k=k,
            max_iter=budget - 1,
            stop_criterion="data_size",
            max_data_size=1.0,
            method="greedy",
            seed=seed,
        )
        return sel.indices

    return run


RATIO_ESTIMATORS = ("combined", "gaussian", "knn", "logistic")  # "combined" is the default
RATIO_CALLS: dict = {}  # (estimator, mode) -> [selections, selections that warned the ratio is flat]


def ratio_support() -> Optional[str]:
    """None when this gio_rs has select(method="ratio"), else why not."""
    rng = np.random.default_rng(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gio_rs.select(rng.random((40, 3)), rng.random((10, 3)) + 0.5, method="ratio", budget_rows=5)
    except (TypeError, ValueError) as error:
        return f'gio_rs.select(method="ratio") failed: {error}'
    return None


def gio_ratio(estimator: str, mode: str) -> Callable:
    def run(pool, target, budget, seed):
        # The flat-ratio warning (target indistinguishable from the pool) is counted, not shown.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sel = gio_rs.select(
                pool,
                target,
                method="ratio",
                budget_rows=budget,
                ratio_estimator=estimator,
                ratio_mode=mode,
                seed=seed,
            )
        count = RATIO_CALLS.setdefault((estimator, mode), [0, 0])
        count[0] += 1
        count[1] += bool(sel.ratio_model.flat)
        return sel.indices

    return run


def random_rows(pool, target, budget, seed):
    return np.random.default_rng(seed).choice(len(pool), budget, replace=False)


def k_center(pool, target, budget, seed):
    """Farthest-point greedy: each step adds the pool row farthest from the selection."""
    first = int(np.random.default_rng(seed).integers(len(pool)))
    chosen = [first]
    nearest = np.linalg.norm(pool - pool[first], axis=1)
    for _ in range(budget - 1):
        row = int(np.argmax(nearest))
        chosen.append(row)
        nearest = np.minimum(nearest, np.linalg.norm(pool - pool[row], axis=1))
    return np.asarray(chosen)


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def k_means_nearest(pool, target, budget, seed):
    """The pool row nearest each of `budget` K-Means centroids (a row already taken by an earlier
    centroid gives way to that centroid's next nearest row)."""
    centers = gio_rs.KMeans(budget, n_init=1, random_state=seed).fit(pool).cluster_centers_
    order = np.argsort(squared_distances(centers, pool), axis=1, kind="stable")
    taken = np.zeros(len(pool), bool)
    chosen = []
    for row_order in order:
        row = next(int(r) for r in row_order if not taken[r])
        taken[row] = True
        chosen.append(row)
    return np.asarray(chosen)


def target_nearest(pool, target, budget, seed):
    """Round robin over the target rows (in a seeded order): each takes its nearest unselected row."""
    order = np.argsort(squared_distances(target, pool), axis=1, kind="stable")
    visit = np.random.default_rng(seed).permutation(len(target))
    cursor = np.zeros(len(target), int)
    taken = np.zeros(len(pool), bool)
    chosen = []
    while len(chosen) < budget:
        for t in visit:
            while taken[order[t, cursor[t]]]:
                cursor[t] += 1
            row = int(order[t, cursor[t]])
            taken[row] = True
            chosen.append(row)
            if len(chosen) == budget:
                break
    return np.asarray(chosen)


# ---------------------------------------------------------------------------------------------
# Scores


def wkv_kl(target: np.ndarray, selection: np.ndarray, k: int = K) -> float:
    """Wang-Kulkarni-Verdu k-NN estimate of KL(target || selection): each target row's k-th nearest
    selected row against its k-th nearest other target row (squared distances clipped to
    [1e-10, 1e20], as in every gio_rs estimator)."""
    n, d = target.shape
    m = len(selection)
    nu_sq = np.sort(squared_distances(target, selection), axis=1)[:, k - 1]
    rho_sq = np.sort(squared_distances(target, target), axis=1)[:, k]  # column 0 is the row itself
    log_ratio = 0.5 * (np.log(np.clip(nu_sq, 1e-10, 1e20)) - np.log(np.clip(rho_sq, 1e-10, 1e20)))
    return float(d * np.mean(log_ratio) + np.log(m / (n - 1)))


def test_accuracy(data: Split, rows: np.ndarray) -> float:
    labels = data.pool_labels[rows]
    classes = np.unique(labels)
    if len(classes) == 1:  # a selection of one class: the classifier can only predict it
        return float(np.mean(data.test_labels == classes[0]))
    model = LogisticRegression(max_iter=5000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny selections
        model.fit(data.pool[rows], labels)
    return float(model.score(data.test, data.test_labels))


@dataclass
class Scores:
    accuracy: list = field(default_factory=list)
    clean_share: list = field(default_factory=list)
    kl: list = field(default_factory=list)
    kl_wkv: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    classes: list = field(default_factory=list)
    kinds: list = field(default_factory=list)  # experiment 2: share of each corruption among the rows
    excluded: list = field(default_factory=list)  # experiment 2: share of each corruption's rows left out


def evaluate(method: Callable, data: Split, budget: int, seed: int, scores: Scores) -> None:
    start = time.perf_counter()
    rows = np.asarray(method(data.pool, data.target, budget, seed), dtype=np.int64)
    scores.seconds.append(time.perf_counter() - start)
    if len(rows) != budget or len(np.unique(rows)) != budget:
        raise RuntimeError(f"selected {len(rows)} rows ({len(np.unique(rows))} distinct), budget {budget}")
    selection = data.pool[rows]
    scores.accuracy.append(test_accuracy(data, rows))
    scores.kl.append(gio_rs.kl_divergence(data.target, selection, k=K))
    scores.kl_wkv.append(wkv_kl(data.target, selection))
    scores.classes.append(len(np.unique(data.pool_labels[rows])))
    if data.pool_clean is not None:
        scores.clean_share.append(float(np.mean(data.pool_clean[rows])))
        kinds = data.pool_corruption[rows]
        scores.kinds.append([float(np.mean(kinds == kind)) for kind in ("clean",) + CORRUPTIONS])
        scores.excluded.append(
            [
                1.0 - float(np.sum(kinds == kind) / np.sum(data.pool_corruption == kind))
                for kind in CORRUPTIONS
            ]
        )


# ---------------------------------------------------------------------------------------------
# Runs and tables


def methods(
    greedy_missing: Optional[str], ratio_missing: Optional[str] = None
) -> dict[str, Optional[Callable]]:
    """Name -> method; None for a method this build lacks."""
    table = {
        "GIO gradient, v_init=mean": gio_gradient("mean"),
        "GIO gradient, v_init=jump": gio_gradient("jump"),
        "GIO greedy": None if greedy_missing else gio_greedy(K),
        "GIO greedy, k=1": None if greedy_missing else gio_greedy(1),
        "random": random_rows,
        "k-center": k_center,
        "k-means": k_means_nearest,
        "target-NN": target_nearest,
    }
    for estimator in RATIO_ESTIMATORS:
        name = "ratio, combined (default)" if estimator == "combined" else f"ratio, {estimator}"
        table[f"{name}, top"] = None if ratio_missing else gio_ratio(estimator, "top")
    table["ratio, combined (default), sample"] = None if ratio_missing else gio_ratio("combined", "sample")
    return table


def mean_sd(values, scale=1.0, digits=1) -> str:
    values = np.asarray(values, dtype=np.float64) * scale
    if len(values) < 2:
        return f"{values.mean():.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def budget_table(name: str, shape, sizes, full: list, results: dict[str, Optional[Scores]]) -> list[str]:
    full_acc = np.mean(full)
    lines = [
        f"**{name}** ({shape[0]} × {shape[1]}): pool {sizes[0]}, target {sizes[1]}, test {sizes[2]}, "
        f"budget {sizes[3]} rows; whole pool: test accuracy {mean_sd(full, 100)}%",
        "",
        "| method | test accuracy % | loss vs pool (points) | relative loss % | classes | KL averaged "
        "| KL (WKV) | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, scores in results.items():
        if scores is None:
            lines.append(f"| {method} | unavailable | | | | | | |")
            continue
        acc = np.asarray(scores.accuracy)
        lines.append(
            f"| {method} | {mean_sd(acc, 100)} | {(full_acc - acc.mean()) * 100:.1f} "
            f"| {(full_acc - acc.mean()) / full_acc * 100:.1f} | {np.mean(scores.classes):.1f} "
            f"| {mean_sd(scores.kl, digits=2)} | {mean_sd(scores.kl_wkv, digits=2)} "
            f"| {np.mean(scores.seconds):.3f} |"
        )
    return lines


def target_size_table(sizes, n_pool, budget, n_test, results: dict[str, list[Optional[Scores]]]) -> list[str]:
    lines = [
        f"**digits, target size**: pool {n_pool}, budget {budget} rows, one test set of {n_test} rows; "
        "test accuracy % by target rows",
        "",
        "| method | " + " | ".join(f"target {size}" for size in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for method, per_size in results.items():
        cells = ["unavailable" if s is None else mean_sd(s.accuracy, 100) for s in per_size]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def quality_table(sizes, full: list, results: dict[str, Optional[Scores]]) -> list[str]:
    lines = [
        f"**digits, half the pool corrupted**: pool {sizes[0]} (half clean), target {sizes[1]} clean, "
        f"test {sizes[2]}, budget {sizes[3]} rows; whole (mixed) pool: test accuracy {mean_sd(full, 100)}%. "
        "Share of the selection that is noisy, blurred or masked, and the share of each corruption's "
        f"copies the selection excludes (its recall; random {100 * (1 - sizes[3] / sizes[0]):.0f}%).",
        "",
        "| method | clean share % | noise % | blur % | mask % | noise excluded % | blur excluded % "
        "| mask excluded % | test accuracy % | KL averaged | KL (WKV) | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, scores in results.items():
        if scores is None:
            lines.append(f"| {method} | unavailable |" + " |" * 10)
            continue
        kinds = np.asarray(scores.kinds) * 100
        excluded = np.asarray(scores.excluded).mean(axis=0) * 100
        lines.append(
            f"| {method} | {mean_sd(scores.clean_share, 100)} | {kinds[:, 1].mean():.1f} "
            f"| {kinds[:, 2].mean():.1f} | {kinds[:, 3].mean():.1f} | "
            + " | ".join(f"{value:.1f}" for value in excluded)
            + f" | {mean_sd(scores.accuracy, 100)} "
            f"| {mean_sd(scores.kl, digits=2)} | {mean_sd(scores.kl_wkv, digits=2)} "
            f"| {np.mean(scores.seconds):.3f} |"
        )
    return lines


def run_experiment(make_data, seeds, table: dict[str, Optional[Callable]], label: str):
    """Runs every method on `make_data(seed)` for each seed; returns sizes, full-pool accuracies and
    the scores per method."""
    results = {name: (Scores() if method else None) for name, method in table.items()}
    full = []
    for seed in seeds:
        data = make_data(seed)
        budget = int(round(BUDGET_SHARE * len(data.pool)))
        full.append(test_accuracy(data, np.arange(len(data.pool))))
        for name, method in table.items():
            if method is not None:
                evaluate(method, data, budget, seed, results[name])
        print(f"  {label}: seed {seed} done", file=sys.stderr, flush=True)
    sizes = (len(data.pool), len(data.target), len(data.test), budget)
    return sizes, full, results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds, digits only")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", help="also write the results as Markdown to this file")
    args = parser.parse_args()
    seeds = list(range(2 if args.quick else args.seeds))
    names = ["digits"] if args.quick else ["digits", "breast_cancer", "wine", "iris"]

    greedy_missing, ratio_missing = greedy_support(), ratio_support()
    table = methods(greedy_missing, ratio_missing)
    started = time.perf_counter()
    out = [
        f"gio_rs {getattr(gio_rs, '__version__', '?')} ({gio_rs.__file__}), SIMD {gio_rs.simd_level()}, "
        f"Python {platform.python_version()}, seeds {seeds}, k = {K}, budget {BUDGET_SHARE:.0%} of the pool",
        "",
    ]
    if greedy_missing:
        out += [f"GIO greedy: unavailable ({greedy_missing}).", ""]
    if ratio_missing:
        out += [f"ratio: unavailable ({ratio_missing}).", ""]

    out += ["### 1. Budget: 25% of the pool, LogisticRegression test accuracy", ""]
    for name in names:
        features, labels = load(name)
        sizes, full, results = run_experiment(
            partial(split, features, labels), seeds, table, f"budget/{name}"
        )
        out += budget_table(name, features.shape, sizes, full, results) + [""]

    out += ["### 1b. Target size (digits)", ""]
    features, labels = load("digits")
    target_sizes = [30, 100, 300]
    per_size = {name: [Scores() if method else None for _ in target_sizes] for name, method in table.items()}
    for seed in seeds:
        splits = split_target_sizes(features, labels, seed, target_sizes)
        budget = int(round(BUDGET_SHARE * len(splits[0].pool)))
        for name, method in table.items():
            for data, scores in zip(splits, per_size[name]):
                if method is not None:
                    evaluate(method, data, budget, seed, scores)
        print(f"  target size: seed {seed} done", file=sys.stderr, flush=True)
    out += target_size_table(target_sizes, len(splits[0].pool), budget, len(splits[0].test), per_size) + [""]

    out += ["### 2. Quality: clean rows against corrupted copies (digits)", ""]
    features, labels = load("digits")
    sizes, full, results = run_experiment(
        partial(corrupted_split, features, labels), seeds, table, "quality/digits"
    )
    out += quality_table(sizes, full, results) + [""]
    if RATIO_CALLS:
        counts = ", ".join(f"{e}/{m} {flat} of {n}" for (e, m), (n, flat) in RATIO_CALLS.items())
        out += [f"Ratio selections that warned the ratio is flat (all experiments): {counts}.", ""]
    out += [f"Total run time {time.perf_counter() - started:.0f} s."]

    text = "\n".join(out)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
