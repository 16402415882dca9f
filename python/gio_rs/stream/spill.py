"""Files the stream keeps on disk between passes: the vectors of a pool read once (text embedded
once, one-shot iterators) and the label of every pool row."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _core
from ..io.workdir import WorkDir

LABEL_BYTES = 4


class Spill:
    """Vectors written to a raw file in row order during the scan and read back by later passes
    (for text, embedded once; for one-shot iterators, read once)."""

    def __init__(self, work: WorkDir, name: str) -> None:
        self.work, self.name = work, name
        self.path = work.path(name)
        self.dtype: Optional[np.dtype] = None
        self.dim = 0
        self.rows = 0
        self._fh: Any = None

    def append(self, x: np.ndarray) -> None:
        if self._fh is None:
            self.dtype, self.dim = x.dtype, x.shape[1]
            self._fh = self.work.writer(self.name)  # hashed as it is written
        self._fh.write(np.ascontiguousarray(x, dtype=self.dtype).tobytes())
        self.rows += len(x)

    def finish(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            self.work.close_writer(self.name, fh)

    def abandon(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fh.abandon()

    def meta(self) -> dict:
        return {"dtype": str(self.dtype), "dim": self.dim, "rows": self.rows}

    @classmethod
    def from_meta(cls, work: WorkDir, name: str, meta: dict) -> Spill:
        spill = cls(work, name)
        spill.dtype, spill.dim, spill.rows = np.dtype(meta["dtype"]), int(meta["dim"]), int(meta["rows"])
        return spill

    def reader(self) -> SpillReader:
        return SpillReader(self)


class SpillReader:
    def __init__(self, spill: Spill) -> None:
        self.spill = spill
        self._fh = open(spill.path, "rb")

    def read(self, start: int, count: int) -> np.ndarray:
        assert self.spill.dtype is not None
        row_bytes = self.spill.dim * self.spill.dtype.itemsize
        self._fh.seek(start * row_bytes)
        data = np.fromfile(self._fh, dtype=self.spill.dtype, count=count * self.spill.dim)
        if len(data) != count * self.spill.dim:
            raise _core.GioError(f"{self.spill.path}: the spill file is shorter than the rows it should hold")
        return data.reshape(count, self.spill.dim)

    def close(self) -> None:
        self._fh.close()


class LabelFile:
    """The label of every pool row (int32, -1 for a row left out as a duplicate), on disk."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self, start: int, count: int) -> np.ndarray:
        with open(self.path, "rb") as fh:
            fh.seek(start * LABEL_BYTES)
            data = np.fromfile(fh, dtype=np.int32, count=count)
        if len(data) != count:
            raise _core.GioError(f"{self.path}: holds fewer labels than the pool has rows")
        return data
