"""The sizes that follow the resident memory: when hashes spill to partition files and how long
the explode's sort runs are. They change speed and memory, never results."""

from __future__ import annotations

import os
import resource

from .. import memory


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def dedup_memory_rows() -> int:
    """Hash records the duplicate finder keeps in memory before it spills to partition files."""
    budget = memory.memory_budget()
    if budget is None:
        return 4 << 20
    room = max(0, budget - rss_bytes())
    return int(max(1 << 14, min(4 << 20, room // 16 // 96)))


def bucket_bytes() -> int:
    """Bytes of picked rows the explode sorts in memory at a time."""
    budget = memory.memory_budget()
    if budget is None:
        return 1 << 30
    return int(max(16 << 20, (budget - rss_bytes()) // 4))
