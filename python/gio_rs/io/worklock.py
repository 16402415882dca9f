"""One run at a time on a work dir: an OS lock (`fcntl.flock`) on a file inside it, held for the
whole run. The OS releases it when the process ends however it ends (kill -9 included), so a
crashed run never leaves a stale lock. The holder writes its pid, host and start time into the
file, for the message a second run prints."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from typing import Callable, Optional

from .._core import GioError

LOCK_NAME = ".gio-rs.lock"
# A refused run reads the holder's record this many times, this many seconds apart (see holder).
HOLDER_READS = 20
HOLDER_READ_PAUSE = 0.05


class WorkDirLock:
    """The lock of the work dir `folder`, taken by `acquire` (raises GioError when another
    process holds it, or waits for it with `wait`), released by `release` or the process's end."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self._fd: Optional[int] = None

    def acquire(self, *, wait: bool, report: Callable[[str], None]) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise GioError(f"work_dir: cannot write in {self.folder} ({exc.strerror or exc})") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise GioError(f"work_dir: cannot lock {self.path} ({exc.strerror or exc})") from exc
                holder = self.holder()
                if not wait:
                    raise GioError(
                        f"work_dir: {self.folder} is in use by {holder}; wait for it to finish or pass "
                        "--wait (wait=True)"
                    ) from None
                report(f"work dir: waiting for {holder}, which is using {self.folder}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._record(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _record(self, fd: int) -> None:
        """Who holds the lock, for the message of a run refused or waiting."""
        text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode()  # fmt: skip
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, text, 0)
        except OSError as exc:  # a full disk: the lock holds all the same; a clear error now
            raise GioError(f"work_dir: cannot write in {self.folder} ({exc.strerror or exc})") from exc

    def holder(self) -> str:
        """The process holding the lock, as its lock file names it. The holder writes its record
        just after it takes the lock, so an empty record, or one naming a process of this host that
        has ended (a crashed run's), is read again for up to a second before giving up."""
        for _ in range(HOLDER_READS):
            found = self._read_record()
            if found is not None and (found[1] != socket.gethostname() or _alive(found[0])):
                pid, host, since = found
                return f"process {pid} on host {host} (since {since})"
            time.sleep(HOLDER_READ_PAUSE)
        return "another process"

    def _read_record(self) -> Optional[tuple[int, str, str]]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                found = json.loads(fh.read() or "{}")
            return int(found["pid"]), str(found["host"]), str(found.get("since", "?"))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def release(self) -> None:
        if self._fd is not None:
            try:  # no record left behind to be read as the next holder's
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: it exists
        return True
    return True
