"""Research driver (issue 25, task H2): does self-training on the pool sample sharpen the ratio?

Under the PU model p_pool = pi p_t + (1 - pi) p_other, so P(target-like | pool row) = pi r(x).
After the first fit (M0), the top pi*S rows of the pool sample (pi = budget / pool rows, times a
multiplier) are moved to the target side and every part is refitted with target' = target u them
(Gaussian: target mean; k-NN: moved from the background to the target side; logistic: positives
target', negatives the rest of the sample), calibrated as before. Uses the product's kernels
(gio_rs.ratio's private part fits) for speed; the tasks are benches/quality_text.py's domain job
(same collections, labels, targets, pools, budgets, seeds).

    OPENBLAS_NUM_THREADS=1 python benches/ratio_self_train.py --cache /work/cache/quality_text \
        --collections fortunes --seeds 0,1,2 --budget-factor 1 --json out.json
    python benches/ratio_self_train.py --summarise out.json more.json   # the tables of such runs

Variants: "st pi" (the top pi*S sample rows, pi = budget / pool rows), "st pi/2" (half as many),
"st pi x2rounds" (twice), "st pi post" (those of the top pi*S whose posterior pi r > 1/2),
"st pi cap2n" / "cap1n" (at most 2x / 1x the target's rows), "K=200" / "S=5000" (the first fit
with another k-NN K or pool sample size); "... lin": a one-round variant's refit of the Gaussian
and logistic parts with the first fit's k-NN part. Findings: docs/ratio.md, "Tried and not adopted".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality_text as qt  # noqa: E402

from gio_rs import _core, ratio  # noqa: E402


def part_log_ratios(summary, target, pseudo, seed, pool):
    """Calibrated log r of every pool row for each part, with the pool sample's rows `pseudo`
    (positions in the sample) moved to the target side."""
    keep = np.ones(len(summary.sample), bool)
    keep[pseudo] = False
    target2 = np.ascontiguousarray(np.vstack([target, summary.sample[pseudo]]).astype(target.dtype))
    reduced = dataclasses.replace(
        summary, sample=np.ascontiguousarray(summary.sample[keep]), sample_rows=summary.sample_rows[keep]
    )
    n_folds = min(ratio.CV_FOLDS, len(target2))
    t_folds = _core.ratio_target_folds(len(target2), n_folds, seed)
    gauss = ratio._fit_gaussian(summary, target2, t_folds)
    logit = ratio._fit_logistic(reduced, target2, t_folds)
    knn = ratio._fit_knn(reduced, target2)
    out = {}
    for part in (gauss, logit):
        out[part.name] = part.scale * part.raw(pool, 0) + part.offset
    # pool rows: self = its position in target2 (pseudo) or in the reduced sample
    own = np.full(len(pool), -1, dtype=np.int64)
    own[summary.sample_rows[pseudo]] = len(target) + np.arange(len(pseudo))
    own[reduced.sample_rows] = len(target2) + np.arange(len(reduced.sample_rows))
    counts = _core.ratio_knn_counts(pool, target2, reduced.sample, knn.k, own)
    raw = ratio.knn_score(counts, knn.k, len(target2), len(reduced.sample), knn.prior)
    out["knn"] = knn.scale * raw + knn.offset
    z = np.mean([p.auc_z for p in (gauss, logit, knn)])
    return out, float(z)


def choose_pseudo(summary, log_r_pool, budget, multiplier, cap, how):
    """Positions in the pool sample of the pseudo-positives."""
    s = len(summary.sample)
    pi = budget / summary.rows
    count = int(round(multiplier * pi * s))
    if cap is not None:
        count = min(count, int(cap))
    count = max(0, min(count, s - 2))
    log_r = log_r_pool[summary.sample_rows]
    order = np.argsort(-log_r, kind="stable")
    if how == "post":  # posterior pi r > 1/2, at most `count`
        count = min(count, int(np.sum(log_r > np.log(0.5 / pi))))
    return np.sort(order[:count])


def variants():
    # name: (multiplier, rounds, cap (x target rows or None), how)
    return {
        "st pi": (1.0, 1, None, "top"),
        "st pi/2": (0.5, 1, None, "top"),
        "st pi x2rounds": (1.0, 2, None, "top"),
        "st pi post": (1.0, 1, None, "post"),
        "st pi cap2n": (1.0, 1, 2, "top"),
        "st pi cap1n": (1.0, 1, 1, "top"),
        "st pi/2 post": (0.5, 1, None, "post"),
    }


def base_variant(task, name):
    """Variants of the first fit itself: K (the k-NN's neighbours) or S (the pool sample)."""
    pool = np.ascontiguousarray(task.pool)
    target = np.ascontiguousarray(task.target)
    k, s = ratio.KNN_K, ratio.SAMPLE_ROWS
    if name.startswith("K="):
        k = int(name[2:])
    elif name.startswith("S="):
        s = int(name[2:])
    builder = ratio.PoolSummaryBuilder(ratio.summary_shift(target), seed=task.seed, sample_rows=s)
    builder.add(pool, 0)
    saved = ratio.KNN_K
    ratio.KNN_K = k
    try:
        parts, z = part_log_ratios(builder.finish(), target, np.empty(0, np.int64), task.seed, pool)
    finally:
        ratio.KNN_K = saved
    return np.mean(list(parts.values()), axis=0), z


def run_task(task, names):
    pool = np.ascontiguousarray(task.pool)
    target = np.ascontiguousarray(task.target)
    builder = ratio.PoolSummaryBuilder(ratio.summary_shift(target), seed=task.seed)
    builder.add(pool, 0)
    summary = builder.finish()
    started = time.perf_counter()
    base, z0 = part_log_ratios(summary, target, np.empty(0, np.int64), task.seed, pool)
    t_base = time.perf_counter() - started
    base_lr = np.mean(list(base.values()), axis=0)
    results = {"base": (base_lr, z0, 0)}
    for name in names:
        if name.startswith(("K=", "S=")):
            log_r, z = base_variant(task, name)
            results[name] = (log_r, z, 0)
    for name, (mult, rounds, cap, how) in variants().items():
        if name not in names:
            continue
        log_r = base_lr
        z = z0
        for _ in range(rounds):
            capn = None if cap is None else cap * len(target)
            pseudo = choose_pseudo(summary, log_r, task.budget, mult, capn, how)
            parts, z = part_log_ratios(summary, target, pseudo, task.seed, pool)
            log_r = np.mean(list(parts.values()), axis=0)
        results[name] = (log_r, z, len(pseudo))
        if rounds == 1:  # the same refit for the linear parts only, the k-NN part from the first fit
            linear = np.mean([parts["gaussian"], parts["logistic"], base["knn"]], axis=0)
            results[name + " lin"] = (linear, z, len(pseudo))
    return results, t_base


def summarise(paths) -> None:
    """Per collection and variant: label-averaged in-domain % (mean ± sd over seeds), the worst
    label (averaged over seeds), and the paired difference to the first fit over label x seed."""
    from collections import defaultdict

    data: dict = {}
    for path in paths:
        data.update(json.loads(Path(path).read_text()))
    table: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    for key, row in data.items():
        collection, label, seed = key.rsplit("/", 2)
        for variant, cell in row.items():
            table[collection][variant][int(seed)][label] = cell["in"] * 100
    for collection, variants_run in table.items():
        print(f"{collection}")
        base = variants_run["base"]
        for variant, seeds in variants_run.items():
            means = [np.mean(list(seeds[s].values())) for s in sorted(seeds)]
            labels = sorted({label for s in seeds for label in seeds[s]})
            worst = min(np.mean([seeds[s][lb] for s in seeds if lb in seeds[s]]) for lb in labels)
            diffs = [seeds[s][lb] - base[s][lb] for s in seeds for lb in seeds[s]]
            sd = np.std(means, ddof=1) if len(means) > 1 else 0.0
            print(
                f"  {variant:16s} seeds {sorted(seeds)}: {np.mean(means):.1f} ± {sd:.1f}, worst {worst:.1f}, "
                f"vs first fit {np.mean(diffs):+.2f} (better {sum(d > 0 for d in diffs)}, "
                f"worse {sum(d < 0 for d in diffs)} of {len(diffs)})"
            )


def main():
    if sys.argv[1:2] == ["--summarise"]:
        summarise(sys.argv[2:])
        return
    p = argparse.ArgumentParser()
    p.add_argument("--cache", default="/work/cache/quality_text")
    p.add_argument("--collections", default="fortunes,wordnet,rotten_tomatoes")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--budget-factor", type=float, default=1.0)
    p.add_argument("--max-labels", type=int)
    p.add_argument("--variants", default=",".join(variants()))
    p.add_argument("--json")
    args = p.parse_args()
    names = args.variants.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = qt.Settings(seeds=seeds, max_labels=args.max_labels)
    out = {}
    for cname in args.collections.split(","):
        collection, _ = qt.load_collection(cname, Path(args.cache), settings)
        vectors = qt.embed_cached(collection.texts, Path(args.cache), cname)
        every = np.arange(len(collection))
        for label_number, (label, _count) in enumerate(qt.eligible_labels(collection, settings)):
            members = np.flatnonzero(collection.labels == label)
            for seed in seeds:
                rng = np.random.default_rng([seed, label_number])
                target_rows = np.sort(rng.choice(members, settings.target_rows, replace=False))
                pool_rows = np.setdiff1d(every, target_rows)
                in_domain = collection.labels[pool_rows] == label
                budget = max(1, int(round(args.budget_factor * in_domain.sum())))
                task = qt.Task(vectors[pool_rows], vectors[target_rows], [], [], budget, seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res, t_base = run_task(task, names)
                row = {}
                for name, (log_r, z, npseudo) in res.items():
                    top = np.argsort(-log_r, kind="stable")[:budget]
                    row[name] = {"in": float(in_domain[top].mean()), "z": z, "pseudo": npseudo}
                out[f"{cname}/{label}/{seed}"] = row
                print(
                    f"{cname}/{label}/{seed} B={budget} ({t_base:.1f}s) "
                    + " ".join(f"{n}={v['in'] * 100:.1f}" for n, v in row.items()),
                    flush=True,
                )
                if args.json:
                    Path(args.json).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
