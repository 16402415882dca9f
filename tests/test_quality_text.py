"""benches/quality_text.py runs end to end on a tiny slice (no score is asserted: that is the
benchmark's job), and its pieces do what they say: the DSIR shortcut selects what the
data-selection library selects, the WordNet reader parses real lines, the degradations damage.

Needs the `bench` and `text` extras and the packaged MiniLM (scripts/test.sh installs them); these
tests fail rather than skip without them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benches"))

import quality_text  # noqa: E402
import text_collections  # noqa: E402


def test_the_bench_runs_end_to_end_on_a_tiny_slice(tmp_path):
    out, raw = tmp_path / "tables.md", tmp_path / "scores.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benches" / "quality_text.py"),
            "--tiny",
            "--cache",
            str(tmp_path / "cache"),
            "--out",
            str(out),
            "--json",
            str(raw),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    tables = out.read_text(encoding="utf-8")
    assert "unavailable" not in tables, tables
    methods = list(quality_text.method_table())
    scores = json.loads(raw.read_text(encoding="utf-8"))
    labels = scores["domain"]["fortunes"]
    assert len(labels) == 2
    for label in labels:
        assert list(label["methods"]) == methods
        for cell in label["methods"].values():
            (share,) = cell["scores"]["in_domain"]
            assert 0.0 <= share <= 1.0
            (covered,) = cell["scores"]["heldout_covered"]
            assert 0.0 <= covered <= 1.0
            (kl,) = cell["scores"]["heldout_kl"]
            assert np.isfinite(kl)
    quality = scores["quality"]["fortunes"]["methods"]
    assert list(quality) == methods
    damages = ("shuffled", "truncated", "boilerplate", "other script")
    for cell in quality.values():
        assert set(cell["scores"]) == {"clean", "duplicates", *damages, *(f"{d} excluded" for d in damages)}
        for damage in damages:
            (excluded,) = cell["scores"][f"{damage} excluded"]
            assert 0.0 <= excluded <= 1.0
    for method in methods:
        assert f"| {method} |" in tables
    # Methods run in separate processes merge into the tables of one run.
    halves = []
    for part, names in enumerate((methods[: len(methods) // 2], methods[len(methods) // 2 :])):
        half = json.loads(raw.read_text(encoding="utf-8"))
        for label in half["domain"]["fortunes"]:
            label["methods"] = {m: label["methods"][m] for m in names}
        half["quality"]["fortunes"]["methods"] = {m: quality[m] for m in names}
        halves.append(tmp_path / f"half{part}.json")
        halves[-1].write_text(json.dumps(half), encoding="utf-8")
    merged = quality_text.merged_tables([str(h) for h in reversed(halves)], 6)
    rows = [line for line in tables.splitlines() if line.startswith("| ")]
    assert [line for line in merged if line.startswith("| ")] == rows
    # A second run reads every embedding from the cache.
    again = subprocess.run(
        [
            sys.executable,
            str(REPO / "benches" / "quality_text.py"),
            "--tiny",
            "--cache",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "embedded" not in again.stderr


@pytest.fixture(scope="module")
def fortunes_slice():
    collection = text_collections.load_fortunes(Path("/nonexistent"))
    rows = np.random.default_rng(0).permutation(len(collection))[:300]
    return [collection.texts[i] for i in rows], collection.labels[rows]


def test_the_dsir_shortcut_selects_what_the_library_selects(fortunes_slice):
    texts, labels = fortunes_slice
    label = labels[0]
    target = [t for t, lab in zip(texts, labels) if lab == label][:10]
    pool = [t for t in texts if t not in target]
    dim = np.zeros((1, 4), np.float32)
    for budget in (5, 40):
        task = quality_text.Task(dim, dim, pool, target, budget, seed=0)
        ours = quality_text.dsir_rows(task)
        theirs = quality_text.dsir_rows_library(task)
        assert len(ours) == budget
        # top-k of the same weights; the library's argpartition may break an exact tie differently
        weights = quality_text.dsir_counts(pool) @ dsir_log_diff(pool, target)
        threshold = np.sort(weights)[::-1][budget - 1]
        assert set(ours[weights[ours] > threshold]) == set(theirs[weights[theirs] > threshold])
        assert np.allclose(np.sort(weights[ours]), np.sort(weights[theirs]))


def dsir_log_diff(pool, target):
    pool_probs = np.asarray(quality_text.dsir_counts(pool).sum(axis=0), dtype=float).ravel()
    target_probs = np.asarray(quality_text.dsir_counts(target).sum(axis=0), dtype=float).ravel()
    return np.log(target_probs / target_probs.sum() + 1e-8) - np.log(pool_probs / pool_probs.sum() + 1e-8)


def test_wordnet_lines_become_glosses_labelled_by_lexicographer_file():
    lines = [
        "  1 This software and database is being provided to you, the LICENSEE, by  \n",
        "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived or known or inferred "
        "to have its own distinct existence (living or nonliving)  \n",
        "07386614 11 n 05 meow 0 mew 0 miaou 0 miaow 0 miaul 0 005 @ 07382572 n 0000 | the sound made by a "
        "cat (or any sound resembling this)  \n",
        '00001740 05 n 01 dog 0 000 | a member of the genus Canis; "the dog barked all night"  \n',
    ]
    texts, labels = text_collections.parse_wordnet_data(lines)
    assert labels == ["noun.Tops", "noun.event", "noun.animal"]
    assert [text_collections.normalise(t) for t in texts] == [
        "that which is perceived or known or inferred to have its own distinct existence "
        "(living or nonliving)",
        "the sound made by a cat (or any sound resembling this)",
        'a member of the genus Canis; "the dog barked all night"',
    ]


def test_fortunes_are_split_into_labelled_texts_without_overstrike(fortunes_slice):
    texts, labels = fortunes_slice
    assert len(set(labels)) > 20
    assert all(text and "\x08" not in text and "\n" not in text for text in texts)
    assert text_collections.normalise("b\x08bo\x08ol\x08ld\x08d  text\n") == "bold text"


def test_every_degradation_damages_the_text_and_the_pool_is_shuffled(fortunes_slice):
    texts, labels = fortunes_slice
    rng = np.random.default_rng(0)
    text = "The quick brown fox jumps over the lazy dog near the river bank."
    for kind, damage in quality_text.DAMAGE.items():
        copy = damage(text, rng)
        if kind == "duplicate":
            assert copy == text
        else:
            assert copy != text, kind
    assert quality_text.other_script("Abc xyz!", rng) == "Абц ксыз!"
    cut = quality_text.truncated(text, rng).split()
    assert 0 < len(cut) < len(text.split()) and cut == text.split()[: len(cut)]
    assert sorted(quality_text.shuffled(text, rng).split()) == sorted(text.split())
    collection = text_collections.Collection("slice", texts, labels, "test")
    settings = quality_text.Settings(seeds=[0], target_rows=10, quality_clean=100)
    pool, target = quality_text.quality_pool(collection, settings, seed=0)
    assert pool.n_clean == 100 and len(target) == 10
    assert len(pool.texts) == 100 + sum(round(rate * 100) for rate in quality_text.DAMAGE_RATES.values())
    assert set(target).isdisjoint(pool.source)
    clean_positions = np.flatnonzero(pool.kinds == "clean")
    assert clean_positions.max() > 100  # not all first: row order tells nothing
    for row in np.flatnonzero(pool.kinds == "duplicate"):
        assert pool.texts[row] == texts[pool.source[row]]
