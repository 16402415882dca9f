"""Screens the density-ratio estimators of issue 25 inside benches/quality_text.py's own run.

The candidates (gio_rs.reference_ratio, the NumPy oracle) are added to quality_text's method table,
so that they see the same collections, labels, targets, pools, budgets and seeds as every existing
method, and the tables come out in the same format side by side. All arguments are quality_text's
(see its --help); --methods filters here too (e.g. --methods ratio,cosine,target-NN,random).

    python benches/ratio_screen.py --quick --cache /work/cache/quality_text --out ratio.md
    python benches/ratio_screen.py images --quick --out ratio_images.md   # benches/quality.py's runs
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
    return rr.select_top(rr.gaussian_ratio(task.pool, task.target, task.seed, alpha=alpha).score, task.budget)


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
    scores = memo(task, "gauss", lambda: rr.gaussian_ratio(task.pool, task.target, task.seed))
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
        if part == "gauss":
            estimates.append(
                memo(task, "gauss", lambda: rr.gaussian_ratio(task.pool, task.target, task.seed))
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


def ratio_methods() -> dict:
    m = qt.Method
    table = {}
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
    table["ratio rank(gauss,knn100,logit)"] = m(partial(combined, parts=("gauss", "knn100", "logit")))
    table["ratio mean-logr(gauss,knn50), sample"] = m(
        partial(combined, parts=("gauss", "knn"), how="mean", mode="sample")
    )
    return table


FINALISTS = (
    "ratio gauss alpha=1.0",
    "ratio gauss CV",
    "ratio gauss CV, sample",
    "ratio knn K=100",
    "ratio logistic CV",
    "ratio mean-logr(gauss,knn100)",
    "ratio mean-logr(gauss,knn100,logit)",
    "ratio mean-logr(gauss,knn100,logit), sample",
    "ratio rank(gauss,knn100,logit)",
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


base_table = qt.method_table
qt.method_table = method_table

if __name__ == "__main__":
    if sys.argv[1:2] == ["images"]:
        run_images(sys.argv[2:])
    else:
        sys.exit(qt.main())
