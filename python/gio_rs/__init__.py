"""gio_rs: fast Gradient Information Optimization (GIO) for training-data selection.

GIO (Everaert & Potts, arXiv 2306.11670) picks rows of a pool so that, together with an optional
existing set, they carry the most information about a small target sample: it greedily minimises a
k-nearest-neighbour estimate of KL(target ‖ selection). The heavy lifting runs in a Rust core
(rayon, SIMD, GIL released).

Public API:

- `select(train, target, ...) -> Selection`: the selection loop, reference bugs fixed.
- `kl_divergence(x, y, k)` and `kl_gradient(x, w, v)`: the estimator and its gradient;
  `knn_kl_divergence(x, y, k)`: the unaveraged estimator `select(method="greedy")` minimises.
- `GIOKL`: drop-in for `grad-info-opt`'s class, reference behaviour kept.
- `KMeans`: K-Means in scikit-learn's style (fit/predict/transform), deterministic for a seed.
- `quantize(train, target, n_clusters)` and `explode(chosen_clusters, labels)`: GIO at scale;
  `select(..., n_clusters=K)` runs quantise → select among centroids → explode;
  `select_stream(files_or_batches, target, n_clusters=K, ...)` does it on a pool larger than
  memory, read a piece at a time (gio_rs.stream). `select(..., budget_rows=N)`: exactly N rows,
  ranked (gio_rs.ranking).
- `select(train, target, method="ratio", budget_rows=B)`: density-ratio selection, GIO's
  objective solved at a budget (gio_rs.ratio: `PoolSummaryBuilder`, `fit_ratio`, `ratio_keys`
  for streams and clusters); `GioWarning` when the ratio is flat or the budget exceeds the pool.
- `reference`: a plain NumPy implementation of the same math, slow and readable.
- `embed` (needs `gio_rs[text]`): sentence embeddings without torch. `gio_rs.embed(sentences)`
  embeds (the module is callable); `gio_rs.embed.load_model`, `read_sentences`... as in the module.
- `spark` (needs `gio_rs[spark]`): GIO on a Spark cluster.
- `GioError`: raised for invalid input (a ValueError), and when a run's working set would
  exceed the memory budget (`set_memory_budget`, env GIO_RS_MEMORY_BUDGET; see `gio_rs.memory`).

`embed`, `spark` and `generate_text_embeddings` (grad-info-opt's `GenerateEmbeddings`) are
imported on first use (`gio_rs.embed`, `gio_rs.spark`, `import gio_rs.spark`, ...): `import gio_rs`
loads neither tokenizers/safetensors nor pyspark.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import ratio, reference
from ._core import GioError, simd_level
from ._core import __version__ as __version__
from ._util.errors import GioWarning
from ._util.progress import CandidateEvent
from .compat import GIOKL
from .estimator import kl_divergence, kl_gradient, knn_kl_divergence
from .kmeans import KMeans
from .memory import memory_budget, set_memory_budget
from .quantize import Explosion, Quantization, explode, quantize
from .selection import Selection, select
from .stream import StreamSelection, select_stream

__all__ = [
    "GIOKL",
    "CandidateEvent",
    "Explosion",
    "GioError",
    "GioWarning",
    "KMeans",
    "Quantization",
    "Selection",
    "StreamSelection",
    "explode",
    "kl_divergence",
    "kl_gradient",
    "knn_kl_divergence",
    "memory_budget",
    "quantize",
    "ratio",
    "reference",
    "select",
    "select_stream",
    "set_memory_budget",
    "simd_level",
]

# Submodules with heavy optional dependencies, imported on first access (PEP 562). Not in
# __all__ nor dir(): `from gio_rs import *` and help(gio_rs) must not import pyspark.
_LAZY_SUBMODULES = ("embed", "spark", "generate_text_embeddings")

if TYPE_CHECKING:  # for type checkers and IDEs; at run time, __getattr__ imports them
    from . import embed as embed
    from . import generate_text_embeddings as generate_text_embeddings
    from . import spark as spark


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        # import_module also binds gio_rs.<name>, so this runs once per submodule.
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
