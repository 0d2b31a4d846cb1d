"""Python's cyclic garbage collector, paused while an operator's job applies a batch.

A catch-up batch allocates a few hundred thousand objects that live until the batch commits
(decoded events, rows, the buffer's dictionaries) next to long-lived ones (the row cache, the
cached purchase terms). The collector's generational thresholds are crossed many times per
batch, and each full collection walks all of them: a quarter of the catch-up's CPU (issue 14,
session 6), for nothing, because none of these objects is in a reference cycle (rows, events
and their values are freed by reference counting). Paused per batch, and collected normally
between batches, whatever cyclic garbage a batch makes (an exception's traceback) is reclaimed
one batch later, so memory stays bounded by a batch.

The collector is one per process: only jobs that own their process pause it (``projections
rebuild``, ``verify``, ``run --until-caught-up``), never the service's projector thread, whose
process also serves requests. Nested and concurrent pauses are counted; the collector is
enabled again when the last one ends, and only if it was enabled when the first began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pauses:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.resume = False


_PAUSES = _Pauses()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic cyclic collection inside the block (the process's collector)."""
    pauses = _PAUSES
    with pauses.lock:
        if pauses.count == 0:
            pauses.resume = gc.isenabled()
            gc.disable()
        pauses.count += 1
    try:
        yield
    finally:
        with pauses.lock:
            pauses.count -= 1
            if pauses.count == 0 and pauses.resume:
                gc.enable()
