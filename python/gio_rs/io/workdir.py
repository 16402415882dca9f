"""Where `gio_rs.stream` keeps the state of a run: its spill files (labels, hashes, embedded text)
and, with a work dir, the finished stages so that a rerun after a crash or Ctrl-C reuses them.

A kept work dir is locked for the whole run (`worklock`): a second run on it is refused with one
line naming the process that holds it, or waits for it (`wait`).

Each stage (scan, target, kmeans, labels, selection, and any stage added later through this API)
writes its files, then a manifest `<stage>.json`: a key (a SHA-256 of everything the stage depends
on: the inputs' paths, sizes and modification times, the options that shape it, and the *sealed*
keys of the stages before it), its metadata, and the size and SHA-256 of every file it wrote. The
files are fsynced first and the manifest is written last, atomically (temporary file, fsync,
rename, fsync of the folder): it is the stage's commit point. A rerun reuses a stage only when its
manifest has the same key and every file has its recorded size and hash; a stage that does not
verify is recomputed with a one-line warning naming the stage and the file. A stage's sealed key
(`sealed_key`) chains its key with the hash of its files and metadata, so a stage recomputed with
other content invalidates every stage after it. A stage about to be recomputed first loses its
manifest, so files cut short by a crash, a full disk or a write error are never trusted.
Without a work dir the files go to a temporary folder removed at the end (no lock, no hashing).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from typing import Any, Callable, Optional

from .._core import GioError
from .._util.errors import naming
from .hashed_files import HASH, HashedWriter, crash_point, file_record
from .worklock import WorkDirLock

MANIFEST_VERSION = 2


class DamagedStageWarning(UserWarning):
    """A stage file of the work dir does not match its record: the stage is recomputed."""


def key_of(*parts: Any) -> str:
    """A stable hash of JSON-able parts (numbers, strings, lists, dicts)."""
    text = json.dumps([MANIFEST_VERSION, *parts], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checksum(value: Any) -> str:
    text = json.dumps([MANIFEST_VERSION, value], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _ignore(line: str) -> None:
    pass


class WorkDir:
    """A folder for a run's state. `path=None`: a temporary folder under `scratch_parent` (or the
    system's), removed by `close()`; otherwise `path` itself, kept, and locked until `close()`
    (`wait`: wait for a run holding it instead of raising GioError)."""

    def __init__(
        self,
        path: Optional[str],
        *,
        scratch_parent: Optional[str] = None,
        wait: bool = False,
        report: Callable[[str], None] = _ignore,
    ) -> None:
        self.resumable = path is not None
        self._lock: Optional[WorkDirLock] = None
        self._written: dict[str, tuple[int, int, dict]] = {}
        self._sealed: dict[str, tuple[str, str]] = {}
        if path is None:
            self.folder = tempfile.mkdtemp(prefix=".gio-rs-work-", dir=scratch_parent)
            return
        self.folder = os.path.abspath(os.fspath(path))
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise GioError(f"work_dir: {path} exists and is not a folder")
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as exc:
            raise GioError(f"work_dir: cannot create {path} ({exc.strerror or exc})") from exc
        self._lock = WorkDirLock(self.folder)
        self._lock.acquire(wait=wait, report=report)
        try:
            self._check_writable()
        except BaseException:
            self.close()
            raise

    def _check_writable(self) -> None:
        """A read-only folder fails here, with one line, not in the middle of a stage."""
        try:
            fd, probe = tempfile.mkstemp(prefix=".gio-rs-probe-", dir=self.folder)
            os.close(fd)
            os.remove(probe)
        except OSError as exc:
            raise GioError(f"work_dir: cannot write in {self.folder} ({exc.strerror or exc})") from exc

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def _manifest(self, stage: str) -> str:
        return self.path(f"{stage}.json")

    # -- writing a stage's files --

    def writer(self, name: str) -> HashedWriter:
        """A new file `name`, hashed as it is written (with a work dir); its record is kept for
        `save` when it is closed with `close_writer`."""
        return HashedWriter(self.path(name), hashed=self.resumable)

    def resume_writer(self, name: str, record: Any, what: str) -> Optional[HashedWriter]:
        """File `name` kept up to the `record` ({"size", "sha256"}) a checkpoint made of its
        first bytes and open to append, or None (with a warning naming `what` and the file)
        when they do not match it."""
        if not isinstance(record, dict) or not os.path.exists(self.path(name)):
            return None
        size = int(record.get("size", -1))
        if os.path.getsize(self.path(name)) < size:
            self._warn(what, name, f"is shorter than its checkpoint ({size} bytes)", "starting it again")
            return None
        writer = HashedWriter(self.path(name), resume_from=size)
        if writer.size != size or writer.record() != record:
            writer.abandon()
            self._warn(what, name, "does not match its checkpoint (SHA-256)", "starting it again")
            return None
        return writer

    def close_writer(self, name: str, writer: HashedWriter) -> None:
        found = writer.close()
        if found is not None:
            stat = os.stat(self.path(name))
            self._written[name] = (stat.st_size, stat.st_mtime_ns, found)

    def save_array(self, name: str, array: Any) -> None:
        """`np.save` to file `name`, hashed on the way."""
        import numpy as np

        writer = self.writer(name)
        try:
            np.save(writer, array, allow_pickle=False)
        except BaseException:
            writer.abandon()
            raise
        self.close_writer(name, writer)

    def write_bytes(self, name: str, data: bytes) -> None:
        writer = self.writer(name)
        try:
            writer.write(data)
        except BaseException:
            writer.abandon()
            raise
        self.close_writer(name, writer)

    # -- stages --

    def check(self, stage: str, key: str) -> tuple[Optional[dict], str]:
        """(metadata, "reused") when `stage` was finished with this key and its files verify;
        else (None, why: "absent", "other" (another key) or "damaged"), its manifest removed so
        that nothing the stage rewrites is trusted before it is saved again."""
        if not self.resumable:
            return None, "absent"
        saved, status = self._read_sealed(f"{stage}.json")
        if status == "damaged":
            self._warn(
                stage, f"{stage}.json", "does not match its checksum", f"recomputing the {stage} stage"
            )
        elif status == "older":
            status = "other"
        elif status == "ok":
            if not isinstance(saved, dict) or saved.get("key") != key:
                status = "other"
            else:
                status = "reused" if self._verified(stage, saved) else "damaged"
        if status == "reused":
            self._seal(stage, key, saved["meta"], saved["files"])
            return saved["meta"], status
        self.forget(stage)
        return None, status

    def _verified(self, stage: str, saved: dict) -> bool:
        """Every file of the manifest has its size (all checked first: cheap), then its hash."""
        files = saved.get("files")
        if not isinstance(files, dict):
            return False
        redo = f"recomputing the {stage} stage (and the stages after it, if its content changes)"
        for name, record in files.items():
            path = self.path(name)
            if not os.path.exists(path):
                self._warn(stage, name, "is missing", redo)
                return False
            if os.path.getsize(path) != record.get("size"):
                self._warn(
                    stage, name, f"has {os.path.getsize(path)} bytes, {record.get('size')} recorded", redo
                )
                return False
        for name, record in files.items():
            if file_record(self.path(name)) != record:
                self._warn(stage, name, "does not match its recorded SHA-256", redo)
                return False
        return True

    def _warn(self, stage: str, name: str, problem: str, action: str) -> None:
        warnings.warn(
            f"work dir: the {stage} stage's file {self.path(name)} {problem}; {action}",
            DamagedStageWarning,
            stacklevel=4,
        )

    def load(self, stage: str, key: str) -> Optional[dict]:
        """The saved metadata of `stage` when it was finished with this key, else None."""
        return self.check(stage, key)[0]

    def known(self, stage: str) -> bool:
        """Whether `stage` has a manifest at all (finished with some key)."""
        return self.resumable and os.path.exists(self._manifest(stage))

    def save(self, stage: str, key: str, meta: dict, files: list[str]) -> None:
        """Record `stage` as finished: its `files` (names in the folder, already written) are
        fsynced and their sizes and hashes recorded, then the manifest is written atomically."""
        if not self.resumable:
            return
        records = {name: self._record(name) for name in files}
        crash_point(f"save {stage}: files synced")
        self.write_json(f"{stage}.json", {"key": key, "meta": meta, "files": records})
        self._seal(stage, key, meta, records)
        crash_point(f"save {stage}: manifest written")

    def _record(self, name: str) -> dict:
        """The record of a file written through `writer` (kept from its writing), else read
        back and hashed (and fsynced)."""
        path = self.path(name)
        stat = os.stat(path)
        kept = self._written.get(name)
        if kept is not None and kept[:2] == (stat.st_size, stat.st_mtime_ns):
            return kept[2]
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return file_record(path)

    def _seal(self, stage: str, key: str, meta: Any, records: dict) -> None:
        self._sealed[stage] = (key, key_of("sealed", key, meta, records))

    def sealed_key(self, stage: str, key: str) -> str:
        """`key` chained with the content (files and metadata) `stage` was saved or verified with
        in this run: what the stages after it put in their keys. `key` itself when not saved."""
        found = self._sealed.get(stage)
        return found[1] if found is not None and found[0] == key else key

    def forget(self, stage: str) -> None:
        self.remove(f"{stage}.json")

    def remove(self, name: str) -> None:
        if self.resumable and os.path.exists(self.path(name)):
            os.remove(self.path(name))
            self._sync_folder()

    def write_json(self, name: str, value: Any) -> None:
        """Written with its own checksum to a temporary file, fsynced and renamed, then the folder
        fsynced: a reader sees the old or the new, whole, and the new survives a power cut once
        this returns."""
        target = self.path(name)
        tmp = f"{target}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"sha256": _checksum(value), "body": value}, sort_keys=True))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException as exc:
            if os.path.exists(tmp):
                os.remove(tmp)
            if isinstance(exc, OSError):
                raise naming(exc, target) from exc
            raise
        self._sync_folder()

    def _read_sealed(self, name: str) -> tuple[Any, str]:
        """(value, "ok") of a file `write_json` wrote; (None, "absent") when there is none;
        (None, "damaged") when it does not parse or match its checksum; (None, "older") for a
        manifest of an older gio_rs (no checksum, no hashes)."""
        try:
            with open(self.path(name), encoding="utf-8") as fh:
                found = json.load(fh)
        except FileNotFoundError:
            return None, "absent"
        except (OSError, ValueError):
            return None, "damaged"
        if isinstance(found, dict) and "body" not in found and "key" in found:
            return None, "older"  # written by an older gio_rs, without hashes: not trusted
        if not isinstance(found, dict) or found.get("sha256") != _checksum(found.get("body")):
            return None, "damaged"
        return found["body"], "ok"

    def read_json(self, name: str) -> Optional[Any]:
        """What `write_json` wrote, or None (absent, or not matching its checksum)."""
        return self._read_sealed(name)[0]

    def _sync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        if not self.resumable:
            shutil.rmtree(self.folder, ignore_errors=True)
        if self._lock is not None:
            self._lock.release()
            self._lock = None


__all__ = ["HASH", "DamagedStageWarning", "WorkDir", "key_of"]
