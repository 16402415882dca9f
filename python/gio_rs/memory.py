"""Memory budget: a run whose working set would exceed the budget fails at once with a GioError
(naming the sizes) instead of being killed by the operating system's out-of-memory killer hours in.

The working set is what gio_rs allocates for a call on top of the arrays you pass in: copies made
to reach a C-contiguous float32/float64 array, the core's buffers and the results. The core
estimates its own buffers next to the allocations they describe, with the thread count of its
pool (``gio_rs._core.select_bytes``, ``kmeans_bytes``, ``assign_bytes``; docs/guarantees.md lists the
formulas); each entry point adds the copies and results it makes itself. tests/test_memory.py
checks that the estimates bound the measured peak:

- ``select``: the selection loop (method="greedy" adds its N × n float64 distance table).
- ``KMeans.fit``: the fit; ``predict``/``score``: the assignment; ``transform`` adds its N × K
  float64 result.
- ``quantize``/``select(n_clusters=K)``: the larger of the two K-Means fits, then a select over
  centroids.
- Any of them: plus one copy of an input that is not already C-contiguous in the working dtype
  (Fortran order, strided views, float16, integers).

This module is the budget policy. The budget comes from, in order: :func:`set_memory_budget`, the
``GIO_RS_MEMORY_BUDGET`` environment variable (``"8GiB"``, ``"500MB"``, a byte count, ``"auto"`` or
``"off"``), else ``"auto"``: the memory the system reports available at the time of the call
(MemAvailable, and the cgroup limit less its usage when a container sets one).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from typing import Any, Optional, Union

import numpy as np

from ._core import GioError

MiB = 1 << 20
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
}
ENV = "GIO_RS_MEMORY_BUDGET"
_setting: Optional[Union[int, str]] = None  # None: follow the environment variable
_setting_source = "gio_rs.set_memory_budget()"  # named in the error when _setting is used


def parse_budget(name: str, value: Any) -> Union[int, str, None]:
    """A budget as bytes, "auto" or None (no limit); `name` is used in the error message."""
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a byte count, a size like '8GiB', 'auto' or 'off', got {value!r}")
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("off", "none", "unlimited"):
            return None
        if text == "auto":
            return "auto"
        match = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)", text)
        if match is None or match.group(2) not in _UNITS:
            raise GioError(f"{name}: cannot read {value!r} as a size; use e.g. '8GiB', '500MB' or 'off'")
        value = float(match.group(1)) * _UNITS[match.group(2)]
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise GioError(f"{name}: must be a positive size, got {value!r}")
    return int(number)


def set_memory_budget(budget: Any) -> Union[int, str, None]:
    """Set the process-wide budget: bytes, a size string ("8GiB"), "auto" or None/"off" for no
    limit. Returns the previous setting. Overrides the GIO_RS_MEMORY_BUDGET variable."""
    global _setting
    previous = memory_budget_setting()
    parsed = parse_budget("budget", budget)
    _setting = "off" if parsed is None else parsed
    return previous


@contextlib.contextmanager
def temporary_budget(budget: Any, source: str) -> Iterator[None]:
    """`set_memory_budget(budget)` inside a with-block, naming `source` (e.g. a command-line flag)
    in errors; the setting before it comes back after."""
    global _setting, _setting_source
    saved = _setting, _setting_source
    set_memory_budget(budget)
    _setting_source = source
    try:
        yield
    finally:
        _setting, _setting_source = saved


def memory_budget_setting() -> Union[int, str, None]:
    """The budget in force before resolving "auto": bytes, "auto" or None (no limit)."""
    if _setting is not None:
        return None if _setting == "off" else _setting
    return parse_budget(ENV, os.environ.get(ENV, "auto"))


def memory_budget() -> Optional[int]:
    """The budget in bytes for a call made now, or None when there is no limit."""
    setting = memory_budget_setting()
    return available_bytes() if setting == "auto" else setting


def _read_int(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes() -> Optional[int]:
    """Memory the system can give this process now, or None when it cannot be told."""
    found: list[int] = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    for folder, limit_name, usage_name, cache_key in (
        ("/sys/fs/cgroup", "memory.max", "memory.current", "inactive_file"),  # cgroup v2
        ("/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
    ):
        limit, usage = _read_int(f"{folder}/{limit_name}"), _read_int(f"{folder}/{usage_name}")
        if limit is not None and usage is not None and limit < 1 << 60:
            # The container's usage counts page cache the kernel would reclaim before failing.
            reclaimable = _cgroup_stat(f"{folder}/memory.stat", cache_key)
            found.append(max(0, limit - usage + min(reclaimable, usage)))
    return min(found) if found else None


def _cgroup_stat(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key and value.strip().isdigit():
                    return int(value)
    except OSError:
        pass
    return 0


def _size(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def require(what: str, needed: int, hint: str = "") -> None:
    """Raise GioError when `needed` bytes exceed the budget in force."""
    budget = memory_budget()
    if budget is None or needed <= budget:
        return
    source = _setting_source if _setting is not None else ENV
    limit = _size(budget)
    if memory_budget_setting() == "auto":
        limit = f"the memory available now ({limit})"
    name = source if source.startswith("--") else "memory_budget"
    raise GioError(
        f"{name}: {what} needs about {_size(needed)} of working memory, more than {limit}"
        f"{'; ' + hint if hint else ''}. Raise the budget with {source} ('off' for no limit)"
        + (f", {ENV} or gio_rs.set_memory_budget()." if source.startswith("--") else ".")
    )
