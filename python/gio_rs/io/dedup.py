"""Exact duplicate rows, found by hashing the vectors: two independent 64-bit hashes of each row's
values (a collision of both between different rows has probability about 2^-128 per pair, so at
20 M rows about 1e-24 over all pairs), grouped by sorting. Rows are fed in batches, so that a pool
larger than memory is scanned once; when more than `memory_rows` rows have been fed, the hashes
go to partition files on disk (by their top bits) and each partition is sorted on its own.

Two rows are duplicates when every value is equal (0.0 and -0.0 count as equal; NaN never occurs:
inputs are checked first). The first occurrence (lowest row) of a group is kept; the others are
reported as repeating it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import _core

_RECORD = np.dtype([("h1", "<u8"), ("h2", "<u8"), ("row", "<i8")])
_PARTITION_BITS = 8  # 256 partition files once spilled
_MEMORY_ROWS = 4 << 20  # records kept in memory before spilling (24 bytes each: 96 MiB)
SHOWN = 1000  # duplicate rows listed in a summary


@dataclass(frozen=True)
class Duplicates:
    """Rows that repeat an earlier row: `rows[i]` has the same vector as `first[i]` < rows[i]
    (the first row of its group). Sorted by `rows`."""

    rows: np.ndarray
    first: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def groups(self) -> int:
        """Distinct vectors that occur more than once."""
        return int(len(np.unique(self.first)))

    def report(self, *, dropped: bool, shown: int = SHOWN) -> dict[str, Any]:
        """For a JSON summary: how many, and which (the first `shown` as [row, first row])."""
        pairs = np.column_stack([self.rows[:shown], self.first[:shown]]).tolist()
        return {
            "duplicate_rows": len(self),
            "groups": self.groups,
            "dropped": bool(dropped and len(self)),
            "rows": pairs,
            "rows_listed": len(pairs),
        }

    @classmethod
    def none(cls) -> Duplicates:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64))


class DuplicateFinder:
    """Feed batches of rows in order with `add`, then `finish` for the duplicates. Spills to
    files under `folder` (a temporary folder by default) past `memory_rows` rows."""

    def __init__(self, folder: Optional[str] = None, *, memory_rows: int = _MEMORY_ROWS) -> None:
        self._folder = folder
        self._own_folder: Optional[str] = None
        self._memory_rows = memory_rows
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._files: Optional[list[Any]] = None
        self._next_row = 0

    def add(self, x: np.ndarray, first_row: Optional[int] = None) -> None:
        """Rows `first_row`, `first_row + 1`, ... (default: right after the previous batch)."""
        if first_row is None:
            first_row = self._next_row
        h1, h2 = canonical_hashes(x)
        self.add_hashes(h1, h2, first_row)

    def add_hashes(self, h1: np.ndarray, h2: np.ndarray, first_row: int) -> None:
        records = np.empty(len(h1), _RECORD)
        records["h1"], records["h2"] = h1, h2
        records["row"] = np.arange(first_row, first_row + len(h1), dtype=np.int64)
        self._next_row = first_row + len(h1)
        if self._files is None:
            self._pending.append(records)
            self._pending_rows += len(records)
            if self._pending_rows > self._memory_rows:
                self._spill()
        else:
            self._write(records)

    def _spill(self) -> None:
        base = self._folder
        if base is None:
            base = self._own_folder = tempfile.mkdtemp(prefix="gio-rs-dedup-")
        else:
            os.makedirs(base, exist_ok=True)
        self._files = [
            open(os.path.join(base, f"hashes-{p:03d}.bin"), "wb") for p in range(1 << _PARTITION_BITS)
        ]
        for records in self._pending:
            self._write(records)
        self._pending, self._pending_rows = [], 0

    def _write(self, records: np.ndarray) -> None:
        assert self._files is not None
        part = (records["h1"] >> np.uint64(64 - _PARTITION_BITS)).astype(np.uint8)
        order = np.argsort(part, kind="stable")  # a radix sort for 8-bit keys
        bounds = np.searchsorted(part[order], np.arange((1 << _PARTITION_BITS) + 1))
        for p in range(1 << _PARTITION_BITS):
            if bounds[p + 1] > bounds[p]:
                records[order[bounds[p] : bounds[p + 1]]].tofile(self._files[p])

    def finish(self) -> Duplicates:
        """The duplicates among every row added; removes the spill files."""
        try:
            if self._files is None:
                found = [
                    _duplicates_in(np.concatenate(self._pending) if self._pending else np.empty(0, _RECORD))
                ]
            else:
                names = [f.name for f in self._files]
                for f in self._files:
                    f.close()
                found = []
                for name in names:
                    found.append(_duplicates_in(np.fromfile(name, dtype=_RECORD)))
                    os.remove(name)
        finally:
            self.close()
        rows = np.concatenate([f[0] for f in found])
        first = np.concatenate([f[1] for f in found])
        order = np.argsort(rows, kind="stable")
        return Duplicates(rows[order], first[order])

    def close(self) -> None:
        if self._files is not None:
            for f in self._files:
                if not f.closed:
                    f.close()
        self._pending = []
        if self._own_folder is not None:
            shutil.rmtree(self._own_folder, ignore_errors=True)
            self._own_folder = None


def _duplicates_in(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, first rows) of the records whose hashes equal a lower row's, each group's first row
    its lowest (the core's `duplicate_pairs`: one sort of the records by hashes, then row)."""
    if len(records) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    columns = (np.ascontiguousarray(records[name]) for name in ("h1", "h2", "row"))
    return _core.duplicate_pairs(*columns)


def find_duplicates(x: np.ndarray) -> Duplicates:
    """The exact duplicate rows of an in-memory matrix."""
    finder = DuplicateFinder()
    step = 1 << 16
    for start in range(0, len(x), step):
        finder.add(x[start : start + step], start)
    return finder.finish()


def canonical_hashes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit hashes of every row of `x` (2-D, finite values), equal for equal vectors
    whatever dtype their file stores them in: a row whose values are all exactly float32 is
    hashed as float32, any other as float64 (float32 -> float64 is exact, so equal values always
    meet). Each 64-bit word of the row (two float32 values, or one float64; -0.0 read as 0.0) is
    mixed with a key for its position (SplitMix64); the first hash sums the mixed words, the
    second sums them times odd per-position factors, and both sums are mixed again: each depends
    on every value and its position (the core's `canonical_row_hashes`, in parallel)."""
    x = np.asarray(x)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    return _core.canonical_row_hashes(np.ascontiguousarray(x, dtype=dtype))


def drop_target_duplicates(x: np.ndarray, name: str = "target") -> tuple[np.ndarray, Duplicates]:
    """`x` without its exact duplicate rows (the first of each group kept), with a warning
    naming them: a repeated target row is at distance zero from its copy, which the k-NN
    estimator clips to 1e-10, so it weighs as if it were its own dense region."""
    found = find_duplicates(x)
    return _drop_found(x, found, f"{name}: {len(found)} exact duplicate rows dropped"), found


def _drop_found(x: np.ndarray, found: Duplicates, what: str) -> np.ndarray:
    """`x` without the rows in `found`, with a warning that starts with `what` and names them
    (attributed to the caller of the public function that called this one)."""
    if not len(found):
        return x
    import warnings

    shown = ", ".join(map(str, found.rows[:10].tolist())) + (", ..." if len(found) > 10 else "")
    warnings.warn(
        f"{what} (rows {shown}): a repeated target row is at distance zero from its copy, which the "
        "estimator clips",
        stacklevel=4,
    )
    keep = np.ones(len(x), dtype=bool)
    keep[found.rows] = False
    return x[keep]


def text_hashes(texts: list) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit hashes (one 128-bit BLAKE2b digest) of each text's UTF-8 bytes. For text input
    duplicates are rows with the same text: embedding the same sentence twice can differ in the
    last bits (the batch it was padded in changes the rounding), so its vectors are not compared."""
    import hashlib

    digests = b"".join(hashlib.blake2b(str(t).encode("utf-8"), digest_size=16).digest() for t in texts)
    pairs = np.frombuffer(digests, dtype="<u8").reshape(len(texts), 2) if texts else np.zeros((0, 2), "<u8")
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def find_text_duplicates(texts: list) -> Duplicates:
    """The rows of `texts` whose text repeats an earlier row's."""
    finder = DuplicateFinder()
    h1, h2 = text_hashes(list(texts))
    finder.add_hashes(h1, h2, 0)
    return finder.finish()


def drop_duplicates(
    x: np.ndarray, name: str = "target", texts: Optional[list] = None
) -> tuple[np.ndarray, Duplicates]:
    """`drop_target_duplicates`, comparing `texts` instead of the vectors when given."""
    if texts is None:
        return drop_target_duplicates(x, name)
    found = find_text_duplicates(texts)
    what = f"{name}: {len(found)} rows repeat an earlier row's text and are dropped"
    return _drop_found(x, found, what), found
