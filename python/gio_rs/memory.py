"""Memory budget: a run whose working set would exceed the budget fails at once with a GioError
(naming the sizes) instead of being killed by the operating system's out-of-memory killer hours in.

The working set is what gio_rs allocates for a call on top of the arrays you pass in: copies made
to reach a C-contiguous float32/float64 array, the core's buffers and the results. The estimates
below are upper bounds of the measured peak (tests/test_memory.py checks them on this machine):

- ``select`` (method="gradient"): 4 MiB + 16·N + n·(64 + 320·T) + 16·d·(|D| + min(max_iter, N))
  + n·d·(b + 4) — N pool rows, n target rows, d columns, T worker threads, b bytes per value (4 for
  float32, 8 for float64): the target is packed once for the SIMD kernels. The pool itself is only
  read.
- ``select(method="greedy")``: the above + 8·N·n (the pool × target log-distance table).
- ``KMeans.fit`` on N rows, K clusters: 4 MiB + N·(4·d·c + 56) + S·(d·b + 16·t + 16)
  + 36·K·d + min(32·8·K·d, max(64 MiB, 8·K·d)), where b is 4 (float32) or 8 (float64) bytes,
  c = 2 for float64 input (a float32 copy feeds the SIMD kernels) else 1, t = 2 + ⌊ln K⌋ and S the
  k-means++ sample: init_sample_size, by default max(N / t, 4·K, 1024) rows, at most N.
- ``KMeans.predict``/``score``: 4 MiB + 32·N + 40·K·d; ``transform`` adds its N × K float64
  result, 8·N·K, and works on a float64 copy of X when X is not float64.
- ``quantize``/``select(n_clusters=K)``: the larger of the two K-Means fits, then a select over
  centroids.
- Any of them: plus one copy of an input that is not already C-contiguous in the working dtype
  (Fortran order, strided views, float16, integers).

The budget comes from, in order: :func:`set_memory_budget`, the ``GIO_RS_MEMORY_BUDGET``
environment variable (``"8GiB"``, ``"500MB"``, a byte count, ``"auto"`` or ``"off"``), else
``"auto"``: the memory the system reports available at the time of the call (MemAvailable, and
the cgroup limit less its usage when a container sets one).
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


def _threads() -> int:
    configured = os.environ.get("RAYON_NUM_THREADS", "")
    return int(configured) if configured.isdigit() and int(configured) > 0 else (os.cpu_count() or 1)


def copy_bytes(arr: Optional[np.ndarray], dtype: np.dtype) -> int:
    """Bytes of the copy `cast(arr, dtype)` makes (0 when it passes the array through)."""
    if arr is None:
        return 0
    ok = arr.dtype == dtype and arr.flags.c_contiguous and arr.flags.aligned
    return 0 if ok else int(np.prod(arr.shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def select_bytes(
    n_train: int,
    n_target: int,
    dim: int,
    *,
    n_start: int,
    max_iter: int,
    greedy: bool = False,
    itemsize: int = 8,
) -> int:
    """Working set of the selection loop (module docstring), without input copies."""
    total = 4 * MiB + 16 * n_train + n_target * (64 + 320 * _threads())
    # The target packed in panels of 8 rows (its own dtype) and, while the X-to-X term is
    # computed, a float32 copy for the candidate search (16-row panels).
    total += (n_target + 8) * dim * itemsize + (n_target + 16) * dim * 4
    total += 16 * dim * (n_start + min(max_iter, n_train) + 1)  # the selection never outgrows the pool
    if greedy:
        total += 8 * n_train * n_target
    return total


def kmeans_bytes(n_rows: int, dim: int, n_clusters: int, itemsize: int, sample_size: int = 0) -> int:
    """Working set of KMeans.fit (module docstring), without input copies."""
    k = max(1, n_clusters)
    trials = 2 + int(math.log(k))
    if sample_size <= 0:
        sample_size = max(n_rows // trials, 4 * k, 1024)
    sample = min(n_rows, max(sample_size, k))
    part = 8 * k * dim
    partials = min(32 * part, max(64 * MiB, part))
    per_row = 4 * dim * (2 if itemsize == 8 else 1) + 56
    return 4 * MiB + n_rows * per_row + sample * (dim * itemsize + 16 * trials + 16) + 36 * k * dim + partials


def assign_bytes(n_rows: int, dim: int, n_clusters: int, *, transform: bool = False) -> int:
    """Working set of KMeans.predict/score (and transform's N × K result)."""
    return 4 * MiB + 32 * n_rows + 40 * n_clusters * dim + (8 * n_rows * n_clusters if transform else 0)


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
