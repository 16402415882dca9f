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

For the out-of-core pipeline (`gio_rs.stream`, `gio-rs select --clusters`) the budget is a promise
about the whole process: its peak resident memory stays at or under it. :func:`process_budget` is
that ceiling ("auto": what the process holds now plus what the system can still give it),
:func:`resident_bytes` what the process holds now (interpreter, libraries, a loaded model, ...), and
:func:`refuse` the error a stage raises when it cannot fit, naming the stage, the quantity and the
largest setting that would fit. Quantities that decide results (the K-Means sample) are planned
from the budget less the fixed :data:`RUNTIME_FOOTPRINT`, never from the measured memory, so a
resumed run on another machine chooses the same ones; the measured memory only decides whether to
refuse and how large the pieces read or sorted at a time are.
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
# The fixed model of what a process running gio_rs holds besides the arrays a stage counts: the
# interpreter with NumPy, pyarrow and gio_rs imported (about 70 MiB measured on Linux x86-64, up to
# 110 MiB right after an install, when more library pages are resident), what the allocators keep
# of the readers' freed buffers (about 60 MiB) and LIBRARY_PAGES. Quantities that decide results
# are planned from the budget less this, never from measured memory (see the docstring).
RUNTIME_FOOTPRINT = 152 * MiB
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


def size_text(n: float) -> str:
    """A byte count as errors show it ("547.4 MiB")."""
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
    limit = size_text(budget)
    if memory_budget_setting() == "auto":
        limit = f"the memory available now ({limit})"
    name = source if source.startswith("--") else "memory_budget"
    raise GioError(
        f"{name}: {what} needs about {size_text(needed)} of working memory, more than {limit}"
        f"{'; ' + hint if hint else ''}. Raise the budget with {source} ('off' for no limit)"
        + (f", {ENV} or gio_rs.set_memory_budget()." if source.startswith("--") else ".")
    )


def resident_bytes() -> int:
    """The resident memory of this process now (Linux /proc/self/statm; 0 where unknown)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


# What a stage may still fault in from the shared libraries already loaded, beyond what is
# resident when it is measured. Library pages (code, read-only data) count in RSS once touched, and
# the kernel maps up to 16 pages around each fault when the file is in the page cache, so right
# after an install (files hot) more of them become resident than in an old one. Measured per stage
# after the scan, whose readers touch most of the code the later stages use: at most 3 MiB, in a
# venv installed a minute before and in one installed hours before (docs/scale.md).
LIBRARY_PAGES = 8 * MiB


def library_pages_to_come() -> int:
    """An upper bound of what the shared libraries already loaded can still add to this process's
    resident memory: the part of their readable mappings not resident yet (Linux
    /proc/self/smaps; 0 where unknown). Mappings of data files (a memory-mapped pool) are not
    counted: only files the process also maps executable."""
    mappings: list[tuple[str, str, int, int]] = []
    executable: set[str] = set()
    try:
        with open("/proc/self/smaps") as fh:
            for line in fh:
                head, _, rest = line.partition(" ")
                if not head.endswith(":"):  # a mapping's first line: range perms offset dev inode path
                    fields = rest.split(None, 4)
                    path = fields[4].strip() if len(fields) > 4 else ""
                    mappings.append((path, fields[0], 0, 0))
                    if "x" in fields[0] and path.startswith("/"):
                        executable.add(path)
                elif head in ("Size:", "Rss:") and mappings:
                    path, perms, size, rss = mappings[-1]
                    kib = int(rest.split()[0]) << 10
                    mappings[-1] = (path, perms, kib, rss) if head == "Size:" else (path, perms, size, kib)
    except (OSError, ValueError, IndexError):
        return 0
    return sum(size - rss for path, perms, size, rss in mappings if path in executable and perms[0] == "r")


def library_reserve() -> int:
    """Bytes a stage keeps aside for library pages it may fault in: LIBRARY_PAGES, or the upper
    bound `library_pages_to_come()` when that is smaller."""
    return min(LIBRARY_PAGES, library_pages_to_come())


def process_budget() -> Optional[int]:
    """The peak resident memory the whole process may reach: the budget in force, or with "auto"
    what it holds now plus what the system can still give it; None when there is no limit."""
    setting = memory_budget_setting()
    if setting != "auto":
        return setting  # type: ignore[return-value]
    available = available_bytes()
    return None if available is None else resident_bytes() + available


def planned_bytes(reserved: int = 0) -> Optional[int]:
    """Bytes a stage may plan for when the quantity decides results: the budget less the fixed
    RUNTIME_FOOTPRINT and `reserved`, never measured (with "auto", the budget itself is what
    the machine has now). None when there is no limit; may be negative."""
    budget = process_budget()
    return None if budget is None else budget - RUNTIME_FOOTPRINT - reserved


def headroom_bytes() -> Optional[int]:
    """Bytes the process may still grow by before it reaches the budget (measured now: it decides
    refusals and piece sizes, never results). None when there is no limit; may be negative."""
    budget = process_budget()
    return None if budget is None else budget - resident_bytes()


def option_name(option: str, flag: str) -> str:
    """How the error names a setting: the command-line `flag` when the budget came from a flag
    (e.g. "--kmeans-sample-rows"), else the Python `option`."""
    return flag if _setting is not None and _setting_source.startswith("--") else option


def refuse(stage: str, what: str, needed: int, room: int, fix: str, *, planned: bool = False) -> None:
    """Raise the GioError of a stage that cannot fit: `what` needs `needed` bytes of working memory
    and only `room` are left of the budget besides what the process holds (`planned`: besides the
    fixed RUNTIME_FOOTPRINT, for a quantity that decides results); `fix` is the largest setting
    that would fit (or what else to change)."""
    budget = process_budget() or 0
    source = _setting_source if _setting is not None else ENV
    name = source if source.startswith("--") else "memory_budget"
    held = max(0, budget - room)
    limit = f"the {size_text(budget)} budget"
    if memory_budget_setting() == "auto":
        limit = f"the {size_text(budget)} this process can have now"
    raise GioError(
        f"{name}: the {stage} stage does not fit: {what} needs about {size_text(needed)} of working memory, "
        + (
            f"and the runtime is planned at {size_text(held)}"
            if planned
            else f"and this process already holds {size_text(held)}"
        )
        + f" of {limit} ({size_text(max(0, room))} left); "
        f"{fix}, or raise the budget with {source}."
    )


# ------------------------------------------------------------------ select(method="ratio")

_KNN_QUERY_BLOCK = 64  # the core's k-NN counts: 64 queries' scores against every reference row per thread
_BASE_BYTES = 4 << 20  # small vectors, thread stacks (the core's memory::BASE_BYTES)


def pool_threads() -> int:
    """The worker threads of the core's pool (rayon's rule: RAYON_NUM_THREADS, else the CPUs this
    process may run on)."""
    text = os.environ.get("RAYON_NUM_THREADS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def ratio_bytes(
    rows: int,
    target_rows: int,
    dim: int,
    itemsize: int,
    budget_rows: int,
    *,
    estimator: str,
    mode: str,
    init_rows: int = 0,
) -> int:
    """Bytes `select(method="ratio")` allocates besides its inputs (copies to the working dtype
    not included), an upper bound of its peak (tests/test_memory.py): the pool sample kept
    throughout (S = min(20 000, rows) rows), then the largest of three phases, and the top-B.

    - summary: the moments accumulators (5 folds, d x d float64 each, and a 256-row block), the
      pool's uniforms and their partitioned copy (32 bytes a row in all) and the sample's
      candidates;
    - fit: per part, the k-NN counts of the target and the sample (the core's 32-query distance
      blocks per thread), the logistic problem ((n + S) x d float64) and their scores;
    - keys: every pool row's scores at once, 8 bytes a row per array alive: the k-NN part's row
      ids, sample positions, self indices, norms, counts and score temporaries (10), a linear
      part's raw and calibrated scores (2), the parts' mean (2 P + 2), the key copy the top-B
      takes (2), the Gumbel keys (mode "sample", 3); with init, the parts twice and the
      residual's temporaries (at least 7);
    - top-B: its heap and the sorted copy it returns (64 bytes a selected row)."""
    from .ratio import CV_FOLDS, SAMPLE_ROWS

    parts = ("gaussian", "knn", "logistic") if estimator == "combined" else (estimator,)  # ratio's parts
    fits = 2 if init_rows else 1
    sample = min(SAMPLE_ROWS, rows)
    reference = target_rows + max(sample, init_rows)
    knn_blocks = pool_threads() * _KNN_QUERY_BLOCK * reference * 8
    persistent = sample * (dim * itemsize + 16) + fits * target_rows * dim * itemsize
    summary = 32 * rows + sample * (2 * dim * itemsize + 32) + (CV_FOLDS + 1) * dim * dim * 8
    summary += 7 * 256 * dim * 8
    fit = 0
    if "knn" in parts:
        fit += knn_blocks + reference * (8 * dim + 88)  # the reference packed for the kernel, the scores
    if "logistic" in parts:
        fit += reference * (dim * (8 + 2 * itemsize) + 48) + 4 * (dim + 1) ** 2 * 8
    if "gaussian" in parts:
        fit += 16 * dim * dim * 8 + 16 * reference
    one_part = 80 if "knn" in parts else 16
    if len(parts) == 1 and not init_rows and mode == "top":
        per_row = one_part  # the part's raw score is the key
    else:
        per_row = max(8 * (len(parts) - 1) + one_part, 16 * len(parts) + 16)
        if init_rows:
            per_row = max(per_row + 24, 56)
        if mode == "sample":
            per_row += 24
    keys = rows * max(per_row, 16) + (knn_blocks + reference * 8 * dim if "knn" in parts else 0)
    top = 64 * min(budget_rows, rows)
    return _BASE_BYTES + persistent + max(summary, fit, keys) + top
