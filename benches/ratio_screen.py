"""Screens the density-ratio estimators of issue 25 inside benches/quality_text.py's own run.

The candidates (gio_rs.reference_ratio, the NumPy oracle) are added to quality_text's method table,
so that they see the same collections, labels, targets, pools, budgets and seeds as every existing
method, and the tables come out in the same format side by side. All arguments are quality_text's
(see its --help); --methods filters here too (e.g. --methods ratio,cosine,target-NN,random).

    python benches/ratio_screen.py --quick --cache /work/cache/quality_text --out ratio.md
    python benches/ratio_screen.py images --quick --out ratio_images.md   # benches/quality.py's runs
    python benches/ratio_screen.py degenerate                              # the degenerate cases
    RATIO_FINAL=1 python benches/ratio_screen.py ...                       # cheap peers + finalists
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality_text as qt  # noqa: E402


def load_reference():
    """gio_rs.reference_ratio from this checkout (the installed gio_rs may be another worktree's)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "python" / "gio_rs" / "reference_ratio.py"
    spec = importlib.util.spec_from_file_location("reference_ratio", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["reference_ratio"] = module
    spec.loader.exec_module(module)
    return module


rr = load_reference()


_MEMO: dict = {}


def memo(task, name, compute):
    """One estimate per task and estimator, shared by the methods that combine them (the memo is
    cleared when a new task comes, so a combination's time counts only what it adds)."""
    key = (id(task), task.seed, task.pool.shape, task.target[:2].tobytes())
    if _MEMO.get("key") != key:
        _MEMO.clear()
        _MEMO["key"] = key
    if name not in _MEMO:
        _MEMO[name] = compute()
    return _MEMO[name]


def gaussian_fixed(task, alpha):
    def compute():
        return rr.gaussian_ratio(task.pool, task.target, task.seed, alpha=alpha)

    scores = memo(task, "gauss1", compute) if alpha == 1.0 else compute()
    return rr.select_top(scores.score, task.budget)


def shrinkage_alpha(pool, kind):
    """Ledoit-Wolf / OAS shrinkage rho of the pool covariance, as alpha = rho / (1 - rho):
    (1 - rho) S + rho mu I is proportional to S + alpha mu I, mu = tr(S)/d."""
    from sklearn.covariance import ledoit_wolf_shrinkage, oas

    x = np.asarray(pool, dtype=np.float64)
    rho = ledoit_wolf_shrinkage(x) if kind == "lw" else oas(x)[1]
    return rho / (1 - rho)


def gaussian_shrunk(task, kind):
    alpha = shrinkage_alpha(task.pool, kind)
    return rr.select_top(rr.gaussian_ratio(task.pool, task.target, task.seed, alpha=alpha).score, task.budget)


def gaussian_cv(task, mode="top"):
    scores = memo(task, "gauss", lambda: rr.gaussian_ratio(task.pool, task.target, task.seed, alpha=None))
    if mode == "top":
        return rr.select_top(scores.score, task.budget)
    return rr.select_sample(scores.log_ratio, task.budget, task.seed)


def knn(task, k, sample_rows=None, mode="top"):
    scores = memo(
        task,
        f"knn{k}/{sample_rows}",
        lambda: rr.knn_ratio(task.pool, task.target, task.seed, k=k, sample_rows=sample_rows),
    )
    if mode == "top":
        return rr.select_top(scores.score, task.budget)
    return rr.select_sample(scores.log_ratio, task.budget, task.seed)


def logistic(task, mode="top"):
    scores = memo(task, "logit", lambda: rr.logistic_ratio(task.pool, task.target, task.seed))
    if mode == "top":
        return rr.select_top(scores.score, task.budget)
    return rr.select_sample(scores.log_ratio, task.budget, task.seed)


def combined(task, parts, how="rank", mode="top"):
    estimates = []
    for part in parts:
        if part == "gauss1":  # the fixed ridge lam = tr(S_p)/d, calibrated by CV at that alpha
            estimates.append(
                memo(task, "gauss1", lambda: rr.gaussian_ratio(task.pool, task.target, task.seed, alpha=1.0))
            )
        elif part == "gauss":
            estimates.append(
                memo(task, "gauss", lambda: rr.gaussian_ratio(task.pool, task.target, task.seed, alpha=None))
            )
        elif part.startswith("knn"):
            k = int(part[3:] or 50)
            estimates.append(
                memo(
                    task,
                    f"knn{k}/None",
                    lambda k=k: rr.knn_ratio(task.pool, task.target, task.seed, k=k, sample_rows=None),
                )
            )
        elif part == "logit":
            estimates.append(
                memo(task, "logit", lambda: rr.logistic_ratio(task.pool, task.target, task.seed))
            )
    if how == "rank":
        score = rr.rank_average(*[e.score for e in estimates])
        return rr.select_top(score, task.budget)
    log_ratio = np.mean([e.log_ratio for e in estimates], axis=0)  # calibrated log r's averaged
    if mode == "top":
        return rr.select_top(log_ratio, task.budget)
    return rr.select_sample(log_ratio, task.budget, task.seed)


def reference_default(task, mode):
    """gio_rs.reference_ratio.select_ratio end to end (estimator "combined", its defaults)."""
    return rr.select_ratio(task.pool, task.target, task.budget, mode=mode, seed=task.seed).indices


def ratio_methods() -> dict:
    m = qt.Method
    table = {
        "ratio DEFAULT select_ratio, top": m(partial(reference_default, mode="top")),
        "ratio DEFAULT select_ratio, sample": m(partial(reference_default, mode="sample")),
    }
    for alpha in (0.1, 1.0, 10.0):
        table[f"ratio gauss alpha={alpha}"] = m(partial(gaussian_fixed, alpha=alpha))
    table["ratio gauss LW"] = m(partial(gaussian_shrunk, kind="lw"), "sklearn")
    table["ratio gauss OAS"] = m(partial(gaussian_shrunk, kind="oas"), "sklearn")
    table["ratio gauss CV"] = m(gaussian_cv)
    table["ratio gauss CV, sample"] = m(partial(gaussian_cv, mode="sample"))
    for k in (10, 20, 50, 100):
        table[f"ratio knn K={k}"] = m(partial(knn, k=k))
    table["ratio knn K=50 S=5000"] = m(partial(knn, k=50, sample_rows=5000))
    table["ratio knn K=50, sample"] = m(partial(knn, k=50, mode="sample"))
    table["ratio logistic CV"] = m(logistic)
    table["ratio logistic CV, sample"] = m(partial(logistic, mode="sample"))
    table["ratio rank(gauss,knn50)"] = m(partial(combined, parts=("gauss", "knn")))
    table["ratio rank(gauss,knn50,logit)"] = m(partial(combined, parts=("gauss", "knn", "logit")))
    table["ratio mean-logr(gauss,knn50)"] = m(partial(combined, parts=("gauss", "knn"), how="mean"))
    table["ratio mean-logr(gauss,knn100)"] = m(partial(combined, parts=("gauss", "knn100"), how="mean"))
    table["ratio mean-logr(gauss,knn50,logit)"] = m(
        partial(combined, parts=("gauss", "knn", "logit"), how="mean")
    )
    table["ratio mean-logr(gauss,knn100,logit)"] = m(
        partial(combined, parts=("gauss", "knn100", "logit"), how="mean")
    )
    table["ratio mean-logr(gauss,knn100,logit), sample"] = m(
        partial(combined, parts=("gauss", "knn100", "logit"), how="mean", mode="sample")
    )
    for how, mode in (("mean", "top"), ("mean", "sample")):
        suffix = ", sample" if mode == "sample" else ""
        table[f"ratio mean-logr(gauss1,knn100,logit){suffix}"] = m(
            partial(combined, parts=("gauss1", "knn100", "logit"), how=how, mode=mode)
        )
    table["ratio rank(gauss,knn100,logit)"] = m(partial(combined, parts=("gauss", "knn100", "logit")))
    table["ratio mean-logr(gauss,knn50), sample"] = m(
        partial(combined, parts=("gauss", "knn"), how="mean", mode="sample")
    )
    return table


FINALISTS = (
    "ratio DEFAULT select_ratio, top",
    "ratio DEFAULT select_ratio, sample",
    "ratio gauss alpha=1.0",
    "ratio gauss CV",
    "ratio knn K=100",
    "ratio logistic CV",
)
PEERS = (
    "GIO greedy, k=5",
    "random",
    "DSIR (data-selection, top-k)",
    "BM25 (bm25s)",
    "cosine to target mean",
    "target-NN",
)


def method_table() -> dict:
    """quality_text's methods plus the ratio candidates; RATIO_FINAL=1: the cheap peers (GIO greedy
    k=5, random, DSIR, BM25, cosine, target-NN; the slow GIO gradient variants come from
    docs/quality.md's run of the same seeds) and the finalists only."""
    import os

    table = base_table()
    table.update(ratio_methods())
    if os.environ.get("RATIO_FINAL") == "1":
        table = {name: table[name] for name in PEERS + FINALISTS}
    return table


def image_method(estimator, mode):
    """benches/quality.py's method signature: (pool, target, budget, seed) -> rows."""

    def run(pool, target, budget, seed):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the flat-ratio warning (counted in the log instead)
            chosen = rr.select_ratio(pool, target, budget, mode=mode, estimator=estimator, seed=seed)
        print(
            f"    ratio {estimator}/{mode}: flat={chosen.flat} gains={chosen.params['gains']}",
            file=sys.stderr,
        )
        return chosen.indices

    return run


def run_images(argv) -> None:
    """benches/quality.py (digits and sklearn tables) with the ratio methods added."""
    import quality

    base = quality.methods

    def methods(greedy_missing):
        table = base(greedy_missing)
        for estimator in ("gaussian", "logistic", "combined"):
            for mode in ("top", "sample"):
                table[f"ratio {estimator}, {mode}"] = image_method(estimator, mode)
        return table

    quality.methods = methods
    sys.argv = [sys.argv[0], *argv]
    quality.main()


def run_degenerate() -> None:
    """The degenerate cases of issue 25 on synthetic data (prints what the reference does)."""
    import warnings

    rng = np.random.default_rng(0)
    d = 20
    pool = rng.normal(size=(500, d))
    pool[:50, :3] += 2.0  # rows 0-49: the target's region
    target = rng.normal(size=(10, d))
    target[:, :3] += 2.0  # 10 rows < 20 columns: singular target covariance
    for estimator in rr.ESTIMATORS:
        for mode in ("top", "sample"):
            chosen = rr.select_ratio(pool, target, 50, mode=mode, estimator=estimator, seed=1)
            print(f"n<d {estimator}/{mode}: in-region {np.mean(chosen.indices < 50):.2f}, flat {chosen.flat}")
    twin = pool.copy()
    twin[:, 5] = 3.0  # a constant column
    twin[100:110] = twin[0:10]  # duplicate rows
    held = target.copy()
    held[:, 5] = 3.0
    chosen = rr.select_ratio(twin, held, 50, seed=1)
    print(f"constant column + duplicates: in-region {np.mean(chosen.indices < 50):.2f}")
    chosen = rr.select_ratio(pool, target, 10_000, seed=1)
    print(f"budget above the pool: {len(chosen.indices)} rows, {len(np.unique(chosen.indices))} distinct")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chosen = rr.select_ratio(rng.normal(size=(1000, d)), rng.normal(size=(100, d)), 100, seed=1)
    print(
        f"target = pool's distribution: flat {chosen.flat}, gains {chosen.params['gains']}, "
        f"warned {len(caught)}"
    )
    # init covers region A of a two-region target: the selection should move to region B
    pool = rng.normal(size=(2000, d))
    pool[:100, 0] += 3
    pool[100:200, 1] += 3
    target = rng.normal(size=(60, d))
    target[:30, 0] += 3
    target[30:, 1] += 3
    init = rng.normal(size=(60, d))
    init[:, 0] += 3
    for mode in ("top", "sample"):
        for label, rows in (("without init", None), ("with init", init)):
            chosen = rr.select_ratio(pool, target, 60, mode=mode, seed=1, init=rows).indices
            a, b = np.mean(chosen < 100), np.mean((chosen >= 100) & (chosen < 200))
            print(f"init {mode} {label}: region A {a:.2f}, region B {b:.2f}")


base_table = qt.method_table
qt.method_table = method_table

if __name__ == "__main__":
    if sys.argv[1:2] == ["images"]:
        run_images(sys.argv[2:])
    elif sys.argv[1:2] == ["degenerate"]:
        run_degenerate()
    else:
        sys.exit(qt.main())
