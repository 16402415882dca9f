"""Where `gio_rs.stream` keeps the state of a run: its spill files (labels, hashes, embedded text)
and, with a work dir, the finished stages so that a rerun after a crash or Ctrl-C reuses them.

Each stage (scan, target, kmeans, labels, selection) writes its files, then a manifest
`<stage>.json` holding a key: a SHA-256 of everything the stage depends on (the inputs'
paths, sizes and modification times, and the options that shape it, chained with the keys
of the stages before it). A rerun reuses a stage only when its manifest is there with the same
key and every file it lists exists; a stage interrupted before its manifest was written runs
again. Without a work dir the files go to a temporary folder removed at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Optional

from .._core import GioError

MANIFEST_VERSION = 1


def key_of(*parts: Any) -> str:
    """A stable hash of JSON-able parts (numbers, strings, lists, dicts)."""
    text = json.dumps([MANIFEST_VERSION, *parts], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class WorkDir:
    """A folder for a run's state. `path=None`: a temporary folder under `scratch_parent` (or the
    system's), removed by `close()`; otherwise `path` itself, kept."""

    def __init__(self, path: Optional[str], *, scratch_parent: Optional[str] = None) -> None:
        self.resumable = path is not None
        if path is None:
            self.folder = tempfile.mkdtemp(prefix=".gio-rs-work-", dir=scratch_parent)
        else:
            self.folder = os.path.abspath(os.fspath(path))
            if os.path.exists(self.folder) and not os.path.isdir(self.folder):
                raise GioError(f"work_dir: {path} exists and is not a folder")
            try:
                os.makedirs(self.folder, exist_ok=True)
            except OSError as exc:
                raise GioError(f"work_dir: cannot create {path} ({exc.strerror or exc})") from exc

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def _manifest(self, stage: str) -> str:
        return self.path(f"{stage}.json")

    def load(self, stage: str, key: str) -> Optional[dict]:
        """The saved metadata of `stage` when it was finished with this key, else None."""
        if not self.resumable:
            return None
        try:
            with open(self._manifest(stage), encoding="utf-8") as fh:
                saved = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("key") != key:
            return None
        if not all(os.path.exists(self.path(name)) for name in saved.get("files", [])):
            return None
        return saved.get("meta", {})

    def known(self, stage: str) -> bool:
        """Whether `stage` has a manifest at all (finished with some key)."""
        return self.resumable and os.path.exists(self._manifest(stage))

    def save(self, stage: str, key: str, meta: dict, files: list[str]) -> None:
        """Record `stage` as finished (its `files`, already written, are names in the folder)."""
        self.write_json(f"{stage}.json", {"key": key, "meta": meta, "files": files})

    def forget(self, stage: str) -> None:
        if os.path.exists(self._manifest(stage)):
            os.remove(self._manifest(stage))

    def write_json(self, name: str, value: Any) -> None:
        """Written to a temporary file and renamed: a reader sees the old or the new, whole."""
        target = self.path(name)
        tmp = f"{target}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(value, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def read_json(self, name: str) -> Optional[Any]:
        try:
            with open(self.path(name), encoding="utf-8") as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if not self.resumable:
            shutil.rmtree(self.folder, ignore_errors=True)
