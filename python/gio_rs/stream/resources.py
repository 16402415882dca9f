"""What each stage may use of the memory budget (`gio_rs.memory`: the whole process's peak
resident memory stays at or under it), and the sizes that follow from it.

Two kinds of room, for two kinds of quantity:

- `planned_stage_bytes(reserved)`: for quantities that decide results (the K-Means sample size,
  anything a resumed run must choose again the same way). The budget less the fixed
  `memory.RUNTIME_FOOTPRINT` and `reserved`: depends on the budget only, never on the machine.
- `stage_bytes()`: for whether a stage fits at all and how large its pieces are (the duplicate
  finder's in-memory hashes, the explode's sort runs, batches). The budget less what the process
  holds now (measured, after giving back what earlier passes freed and after importing the
  readers, so that their libraries' resident pages are measured, not modelled) and less what the
  loaded libraries may still fault in during the stage (`memory.library_reserve`). Changes speed
  and memory, never results.

A stage checks `stage_bytes()` against what it needs before it starts (`require_stage`) and
refuses with the stage, the quantity and the largest setting that fits.
"""

from __future__ import annotations

import ctypes
import importlib.util
import resource
import sys
from typing import Any, Callable, Optional

from .. import memory
from .._util.optional import pyarrow

# What a reader holds while it delivers one piece, in multiples of the piece's vectors: the
# decoded Arrow columns, the NumPy copy in the working dtype, the duplicate hashes' temporaries.
_READER_PIECES = 5
_READER_BUFFER = 8 << 20  # parquet pages are streamed through a buffer of this size (io.batches)


def rss_bytes() -> int:
    return memory.resident_bytes()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def release_freed_memory() -> None:
    """Gives back to the system what earlier passes freed but the allocators kept (pyarrow's
    memory pool, glibc's heap), so that the resident memory measured next is what is in use."""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass


def reader_bytes(batch_rows: int, dim: int, itemsize: int) -> int:
    """What reading the pool a piece at a time holds besides the pieces a stage keeps."""
    return _READER_PIECES * batch_rows * dim * max(itemsize, 4) + _READER_BUFFER


# The scan is the first pass: it grows the process by what the readers and the allocators keep
# besides the piece (measured on 3 parquet shards of 100 000 x 32 and 8 of 500 000 x 64 float32,
# pyarrow imported before: at most 72 MiB whatever the piece, the library pages the readers fault
# in included) and by about 13 times the piece's vectors (the decoded columns, the NumPy copy, the
# duplicate hashes' temporaries). The duplicate finder keeps hashes in memory up to an eighth of
# the scan's room (`dedup_memory_rows`), so the read must fit in the other seven eighths. Later
# passes find most of it already held, and measured.
_FIRST_READ_FIXED = 80 << 20
_FIRST_READ_PIECES = 13
_DEDUP_SHARE = 8  # the duplicate finder's hashes: 1/_DEDUP_SHARE of the scan's room


def first_read_bytes(batch_rows: int, dim: int) -> int:
    """What the scan, the first pass over the pool, needs of its room while it reads: its readers'
    growth, and the duplicate finder's share of the room beside it."""
    reads = _FIRST_READ_FIXED + _FIRST_READ_PIECES * batch_rows * max(dim, 1) * 4
    return reads * _DEDUP_SHARE // (_DEDUP_SHARE - 1)


def largest_batch(room: int, dim: int) -> int:
    """The most rows per piece whose first read fits `room` bytes less 1% (what the process holds
    moves a little between runs), rounded down to a multiple of 1024 (0: none)."""
    reads = 0.99 * room * (_DEDUP_SHARE - 1) / _DEDUP_SHARE
    rows = (reads - _FIRST_READ_FIXED) // (_FIRST_READ_PIECES * max(dim, 1) * 4)
    return max(0, int(rows) // 1024 * 1024)


def load_readers() -> None:
    """Imports pyarrow when it is installed: the pipeline reads and writes files through it, and
    its import makes 30 to 60 MiB of its libraries resident (more right after an install, when
    the files are in the page cache), which the stage checks then measure instead of model."""
    if "pyarrow.parquet" not in sys.modules and importlib.util.find_spec("pyarrow") is not None:
        pyarrow()


def stage_bytes() -> Optional[int]:
    """Bytes the stage about to start may still allocate: the budget less what the process holds
    now (measured, after `release_freed_memory` and `load_readers`) and less
    `memory.library_reserve()`, the library pages the stage may still fault in. None without a
    budget; may be negative. Decides whether the stage fits and how large its pieces are, never
    results."""
    load_readers()
    release_freed_memory()
    room = memory.headroom_bytes()
    return None if room is None else room - memory.library_reserve()


def planned_stage_bytes(reserved: int = 0) -> Optional[int]:
    """Bytes a stage may plan for when the quantity decides results: the budget less the fixed
    `memory.RUNTIME_FOOTPRINT` and `reserved` (never measured). None without a budget."""
    return memory.planned_bytes(reserved)


def require_stage(stage: str, what: str, needed: int, fix: str) -> Optional[int]:
    """Refuses (GioError naming `stage`, `what` and `fix`, the largest setting that fits) when
    `needed` bytes more than the process holds now exceed the budget; else the room left."""
    room = stage_bytes()
    if room is not None and needed > room:
        memory.refuse(stage, what, needed, room, fix)
    return room


def dedup_memory_rows(room: Optional[int]) -> int:
    """Hash records the duplicate finder keeps in memory before it spills to partition files
    (24 bytes each, about 4 times that while they are sorted), from the scan's room."""
    if room is None:
        return 4 << 20
    return int(max(1 << 14, min(4 << 20, room // _DEDUP_SHARE // 96)))


_MIN_PIECE_ROWS = 1024
_MIN_BUCKET_BYTES = 16 << 20
WRITER_BYTES = 16 << 20  # an output's writer: its buffers and a row group being compressed


def fit_pieces(ctx: Any, stage: str, dim: int, itemsize: int, copies: int, kept: int, extra: int = 0) -> int:
    """Before a pass over a pool of vector files or arrays: reads it in smaller pieces than
    `batch_rows` when a piece's reader (`copies` of its vectors' decoding, 2 with every column)
    and the smallest sort run (`kept` bytes to sort, at most `_MIN_BUCKET_BYTES`) would not fit
    the room left besides `extra` bytes (an output's writer), and refuses when even
    `_MIN_PIECE_ROWS` would not. Returns the reader's bytes (with `extra`).
    Pieces change speed, never what a pass finds (text, embedded in pieces, and one-shot
    iterators keep theirs)."""
    rows = int(getattr(ctx.pool, "batch_rows", ctx.batch_rows))
    per_row = copies * _READER_PIECES * dim * max(itemsize, 4)
    least = min(_MIN_BUCKET_BYTES, kept) + extra
    room = stage_bytes()
    if room is None or _READER_BUFFER + rows * per_row + least <= room:
        return _READER_BUFFER + rows * per_row + extra
    adjustable = not (ctx.one_shot or getattr(ctx.pool, "is_text", False)) and hasattr(ctx.pool, "batch_rows")
    fitting = (room - least - _READER_BUFFER) // per_row
    if not adjustable or fitting < _MIN_PIECE_ROWS:
        memory.refuse(
            stage,
            f"reading the pool {rows} rows at a time and sorting the picked rows",
            _READER_BUFFER + rows * per_row + least,
            room,
            "nothing smaller fits",
        )
    ctx.pool.batch_rows = int(min(rows, fitting))
    return _READER_BUFFER + ctx.pool.batch_rows * per_row + extra


# Rows per piece while the K-Means sample fills: the reader's transient grows with the piece
# (13 times its vectors on the first read) and is then on top of the sample.
SAMPLE_PIECE_ROWS = 8192


def limit_pieces(ctx: Any, rows: int) -> Callable[[], None]:
    """Reads a pool of vector files or arrays in pieces of at most `rows` rows until the returned
    function is called (text, embedded in pieces, and one-shot iterators keep theirs); pieces
    never change results."""
    before = getattr(ctx.pool, "batch_rows", None)
    if before is None or ctx.one_shot or getattr(ctx.pool, "is_text", False):
        return lambda: None
    ctx.pool.batch_rows = int(min(before, rows))

    def restore() -> None:
        ctx.pool.batch_rows = before

    return restore


def bucket_bytes(reader: int = 0) -> int:
    """Bytes of picked rows the explode sorts in memory at a time: a quarter of the room left
    besides what the process holds and the `reader` bytes the pass reads through."""
    room = stage_bytes()
    if room is None:
        return 1 << 30
    return int(max(_MIN_BUCKET_BYTES, (room - reader) // 4))
