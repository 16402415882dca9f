"""The formats gio_rs reads, told from a file's extension (and a `.tsv`'s first line), and the
checks and error wrapping every reader shares."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from .._core import GioError
from .._util.errors import first_error_line

FORMATS = ("npy", "parquet", "arrow", "jsonl", "reference-tsv", "csv", "tsv", "text")
# Read through gio_rs.io.batches (in pieces, then joined) rather than in one call.
CHUNKED_FORMATS = ("arrow", "jsonl")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_COMPRESSED_SUFFIXES = (".gz", ".zst")
_ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
ROW_INDEX_COLUMN = "row_index"
CLUSTER_COLUMN = "cluster"
RANK_COLUMN = "rank"
SCORE_COLUMN = "score"  # method="ratio": the key each row was ranked by


def _looks_like_reference_tsv(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
    except OSError:
        return False
    fields = first.rstrip("\r\n").split("\t")
    return len(fields) >= 3 and fields[2].strip().startswith("[")


def is_compressed(path: str) -> bool:
    return Path(path).suffix.lower() in _COMPRESSED_SUFFIXES


def check_input(path: str) -> None:
    """GioError for a missing or zero-byte input file: checked before reading it (no reader
    explains an empty file well: numpy says "No data left in file")."""
    if not os.path.exists(path):
        raise GioError(f"{path}: no such file or directory")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise GioError(f"{path}: is empty (0 bytes)")


@contextlib.contextmanager
def reader_errors(path: str, fmt: str) -> Iterator[None]:
    """Turn any exception raised while reading `path` into a GioError naming the file (the
    original chained as its cause), so that a reader failure is always one clear line.
    GioError and ImportError (a missing optional dependency) pass through unchanged."""
    try:
        yield
    except (GioError, ImportError):
        raise
    except Exception as exc:  # numpy, pyarrow, json, Spark...: each raises its own kinds
        cause = f"{type(exc).__name__}: {first_error_line(exc)}"
        raise GioError(f"{path}: could not be read as {fmt} ({cause})") from exc


def warn_if_cut_short(path: str, *, stacklevel: int = 2) -> None:
    """Warn when a text file does not end with a line break. Such a file reads without error
    even when it was cut short (a copy interrupted, a disk full), and then its last row is
    silently incomplete: a number missing digits, a sentence missing words. Files written by
    programs end with a line break; a hand-made one may not, so this warns, not fails."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        last = fh.read(1)
    if last not in (b"\n", b"\r"):
        warnings.warn(
            f"{path}: the last line does not end with a line break; if the file was cut short, "
            "its last row is incomplete",
            stacklevel=stacklevel,
        )


def file_format(path: str) -> str:
    """The format of the file `path` from its extension (and, for `.tsv`, its first line)."""
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes[-2:]]
    if suffixes[-1:] and suffixes[-1] in _COMPRESSED_SUFFIXES and suffixes[0] in _JSONL_SUFFIXES:
        return "jsonl"
    suffix = p.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix in _ARROW_SUFFIXES:
        return "arrow"
    if suffix == ".npy":
        return "npy"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    if suffix == ".txt":
        return "text"
    if suffix in (".tsv", ".tab"):
        return "reference-tsv" if _looks_like_reference_tsv(p) else "tsv"
    raise GioError(
        f"{path}: cannot tell the format from the extension {suffix!r}; "
        f"use .npy, .parquet, .arrow, .jsonl(.gz|.zst), .csv, .tsv or .txt, or give the format "
        f"({', '.join(FORMATS)})"
    )
