"""Reading ahead: the next pieces of a pass are read (and decoded) in a thread while the current
one is worked on, so that a pass takes about the longer of the two, not their sum. pyarrow's
readers and the core's kernels release the GIL. The pieces come in the same order, so nothing
but the time changes; `depth` pieces wait at most (memory: `depth` batches)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

_DONE = object()


def prefetch(pieces: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """The items of `pieces`, produced by a thread up to `depth` ahead; an error in it is raised
    here, where the item it would have produced is taken. Closing this generator (or an error in
    the consumer) stops the thread."""
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in pieces:
                if not offer((True, item)):
                    return
            offer((True, _DONE))
        except BaseException as exc:  # handed to the consumer, raised there
            offer((False, exc))
        finally:
            close = getattr(pieces, "close", None)
            if close is not None and stop.is_set():
                close()

    worker = threading.Thread(target=produce, name="gio-rs-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = waiting.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join()
