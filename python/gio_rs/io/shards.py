"""An input as shards: a file, a folder of files of one format (a Hugging Face `datasets` folder
included) or a list of files."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .._core import GioError
from .formats import check_input, file_format

SHARD_FORMATS = ("npy", "parquet", "arrow", "jsonl", "csv", "tsv", "reference-tsv", "text")
_COMPRESSION = {".gz": "gzip", ".zst": "zstd"}
_HF_STATE = "state.json"
_HF_DICT = "dataset_dict.json"


@dataclass(frozen=True)
class Shard:
    """One file of an input: its path, format and (jsonl) compression."""

    path: str
    fmt: str
    compression: Optional[str] = None

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this file's contents cheaply: its absolute path, size and mtime."""
        stat = os.stat(self.path)
        return {"path": os.path.abspath(self.path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def shard_format(path: str) -> tuple[str, Optional[str]]:
    """The format (and jsonl compression) of one file, from its extension and for `.tsv` its
    first line; GioError for an extension gio_rs does not read."""
    fmt = file_format(path)
    return fmt, (_COMPRESSION.get(Path(path).suffix.lower()) if fmt == "jsonl" else None)


def _is_data_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith((".", "_"))


def hf_dataset_files(folder: str) -> Optional[list[str]]:
    """The Arrow files of a Hugging Face `datasets` folder (save_to_disk), in order; None when
    `folder` is not one. A DatasetDict folder raises GioError naming its splits."""
    base = Path(folder)
    if (base / _HF_DICT).is_file():
        try:
            splits = json.loads((base / _HF_DICT).read_text(encoding="utf-8")).get("splits", [])
        except (OSError, ValueError, AttributeError):
            splits = []
        example = f"{folder.rstrip(os.sep)}{os.sep}{splits[0]}" if splits else f"{folder}/<split>"
        raise GioError(
            f"{folder}: a Hugging Face DatasetDict (splits: {', '.join(map(str, splits)) or '?'}); "
            f"give one split's folder, e.g. {example}"
        )
    state_file = base / _HF_STATE
    if not state_file.is_file():
        return None
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        files = [entry["filename"] for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GioError(
            f"{state_file}: not a Hugging Face datasets state file (no readable _data_files: {exc})"
        ) from exc
    if not files:
        raise GioError(f"{folder}: the Hugging Face dataset lists no data files in {_HF_STATE}")
    paths = [str(base / name) for name in files]
    for path in paths:
        check_input(path)
    return paths


def list_shards(path: Any, *, fmt: Optional[str] = None, name: str = "path") -> list[Shard]:
    """The shards of an input: a file, a folder (Hugging Face dataset, or files of one format) or
    a list of files. `fmt` forces the format of every file. GioError for a missing or empty
    file, a folder without data files or with files of different formats."""
    if isinstance(path, (list, tuple)):
        if not path:
            raise GioError(f"{name}: an empty list of files")
        shards = [s for p in path for s in list_shards(p, fmt=fmt, name=name)]
        _same_format(shards, name)
        return shards
    path = os.fspath(path)
    check_input(path)
    if fmt is not None and fmt not in SHARD_FORMATS:
        raise GioError(f"format: expected one of {', '.join(SHARD_FORMATS)}, got {fmt!r}")
    if os.path.isdir(path):
        hf_files = hf_dataset_files(path)
        if hf_files is not None:
            return [Shard(p, fmt or "arrow") for p in hf_files]
        files = sorted(p for p in Path(path).iterdir() if _is_data_file(p))
        if not files:
            raise GioError(f"{path}: a folder without data files (sub-folders are not read)")
        shards = []
        for file in files:
            check_input(str(file))
            shards.append(_shard(str(file), fmt))
        _same_format(shards, path)
        return shards
    return [_shard(path, fmt)]


def _shard(path: str, fmt: Optional[str]) -> Shard:
    if fmt is None:
        found, compression = shard_format(path)
        return Shard(path, found, compression)
    compression = _COMPRESSION.get(Path(path).suffix.lower()) if fmt == "jsonl" else None
    return Shard(path, fmt, compression)


def _same_format(shards: list[Shard], where: str) -> None:
    formats = sorted({s.fmt for s in shards})
    if len(formats) > 1:
        examples = {s.fmt: s.path for s in shards}
        raise GioError(
            f"{where}: files of different formats ({', '.join(f'{f}: {examples[f]}' for f in formats)}); "
            "a dataset's shards must share one format"
        )


def detect_format(path: str) -> str:
    """The format of `path` from its extension (and, for `.tsv`, its first line); for a folder,
    the format of its files (a Hugging Face `datasets` folder holds Arrow files)."""
    if Path(path).is_dir():
        return list_shards(path)[0].fmt
    return file_format(path)
