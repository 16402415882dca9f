"""Files of the work dir written with their SHA-256 computed on the way (no second read), and
fsynced before a manifest names them; `file_record` hashes a file already on disk. Also the
test-only crash points (see `crash_point`)."""

from __future__ import annotations

import hashlib
import os
import signal
from typing import Any, Optional

from .._util.errors import naming

HASH = "sha256"
_READ_BYTES = 1 << 20
# Test-only (tests/test_workdir.py), not a user feature: $GIO_RS_TEST_CRASH_AT=N makes the process
# kill itself with SIGKILL at the N-th crash point it reaches; $GIO_RS_TEST_CRASH_TRACE=file
# appends the name of every crash point reached to that file.
_CRASH_AT = "GIO_RS_TEST_CRASH_AT"
_CRASH_TRACE = "GIO_RS_TEST_CRASH_TRACE"
_crash_state: dict[str, Any] = {}


def crash_point(where: str) -> None:
    """A place where tests kill the process (see `_CRASH_AT`); nothing otherwise."""
    if not _crash_state:
        at = os.environ.get(_CRASH_AT)
        _crash_state.update(at=int(at) if at else None, trace=os.environ.get(_CRASH_TRACE), seen=0)
    if _crash_state["at"] is None and _crash_state["trace"] is None:
        return
    _crash_state["seen"] += 1
    if _crash_state["trace"]:
        with open(_crash_state["trace"], "a", encoding="utf-8") as fh:
            fh.write(where + "\n")
    if _crash_state["seen"] == _crash_state["at"]:
        os.kill(os.getpid(), signal.SIGKILL)


def file_record(path: str) -> dict:
    """{"size", "sha256"} of a file on disk, read a piece at a time."""
    digest = hashlib.new(HASH)
    size = 0
    with open(path, "rb") as fh:
        while True:
            block = fh.read(_READ_BYTES)
            if not block:
                break
            digest.update(block)
            size += len(block)
    return {"size": size, HASH: digest.hexdigest()}


class HashedWriter:
    """A file written front to back, hashed as it goes. `resume_from`: keep the first bytes of an
    existing file (hashed once, here), and append after them. `close()` fsyncs and returns the
    file's record; `record()` is the record of what is written so far, fsynced."""

    def __init__(self, path: str, *, hashed: bool = True, resume_from: int = 0) -> None:
        self.path = path
        self._digest = hashlib.new(HASH) if hashed else None
        self.size = 0
        if resume_from:
            self._fh: Any = open(path, "r+b")
            self._fh.truncate(resume_from)
            while self.size < resume_from:
                block = self._fh.read(min(_READ_BYTES, resume_from - self.size))
                if not block:
                    break
                self._update(block)
        else:
            self._fh = open(path, "wb")

    def _update(self, data: Any) -> None:
        if self._digest is not None:
            self._digest.update(data)
        self.size += memoryview(data).nbytes

    def write(self, data: Any) -> int:
        crash_point(f"write {os.path.basename(self.path)}")
        try:
            self._fh.write(data)
        except OSError as exc:
            raise naming(exc, self.path) from exc
        self._update(data)
        return memoryview(data).nbytes

    def record(self) -> Optional[dict]:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise naming(exc, self.path) from exc
        if self._digest is None:
            return None
        return {"size": self.size, HASH: self._digest.hexdigest()}

    def close(self) -> Optional[dict]:
        if self._fh.closed:
            return None
        try:
            found = self.record()
        except BaseException:
            self.abandon()
            raise
        try:
            self._fh.close()
        except OSError as exc:
            raise naming(exc, self.path) from exc
        return found

    def abandon(self) -> None:
        """Closed without a record (after a failure: a failed flush is not raised again)."""
        if not self._fh.closed:
            try:
                self._fh.close()
            except OSError:
                pass
