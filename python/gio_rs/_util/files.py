"""Outputs written whole or not at all: a temporary file beside the output, renamed when done."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Callable

from .._core import GioError


def check_writable(path: Any, *, overwrite: bool) -> None:
    """Refuse an existing output unless `overwrite`, and a missing parent directory: checked
    before any long work starts."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise GioError(f"{path}: already exists (pass --overwrite / overwrite=True to replace it)")
    if os.path.isdir(path):
        raise GioError(f"{path}: is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise GioError(f"{path}: the directory {parent} does not exist")


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Any, write: Callable[[str], Any], *, overwrite: bool) -> None:
    """Run `write(tmp)` on a temporary file beside `path`, then rename it to `path`."""
    path = os.fspath(path)
    check_writable(path, overwrite=overwrite)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=directory)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes it private; the output should not be
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
