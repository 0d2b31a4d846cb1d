"""Many purchases initiated at once: a bulk import that group commit turns into few transactions.

Each line of an import is one ``InitiatePurchase`` (or the typed error that kept it from being
one). The lines are initiated by a pool of threads, so that group commit can write many of them
per transaction, and answered in line order, each with its own outcome or its own typed error:
a refused line never stops or fails the others. Every line carries an idempotency key, so an
import that stopped half way (a crash, a lost connection) is simply run again: the lines already
written are replayed, not granted twice.

An import can be asked to stop (``stop``, set by the command line on Ctrl-C): no line is started
after that, the lines running finish, and every line started is still answered. Lines start in
file order, so the answered lines are the file's first ones and none after them was written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice

from creditledger.application.commands import InitiatePurchase
from creditledger.application.ledger import CreditLedger, Outcome
from creditledger.domain.errors import LedgerError

DEFAULT_WORKERS = 32
WINDOW_PER_WORKER = 64
"""Lines read ahead per worker: enough to keep every worker busy, never the whole file."""


@dataclass(frozen=True)
class ImportLine:
    """One line of an import: its number, and the command it asks for or why it cannot."""

    number: int
    command: InitiatePurchase | None = None
    error: LedgerError | None = None


@dataclass(frozen=True)
class LineResult:
    """What became of one line: the purchase it created or replayed, or the error refusing it."""

    number: int
    outcome: Outcome | None = None
    error: LedgerError | None = None

    @property
    def result(self) -> str:
        if self.outcome is None:
            return "refused"
        return "replayed" if self.outcome.replayed else "created"


def import_purchases(
    ledger: CreditLedger,
    lines: Iterable[ImportLine],
    *,
    workers: int = DEFAULT_WORKERS,
    stop: threading.Event | None = None,
) -> Iterator[LineResult]:
    """Initiate each line's purchase, ``workers`` at a time; results in line order, as they come.

    Once ``stop`` is set no further line starts; every line started is still answered.
    """
    if workers < 1:
        msg = "workers must be at least 1"
        raise ValueError(msg)
    stop = stop or threading.Event()
    window = workers * WINDOW_PER_WORKER
    pending = iter(lines)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import") as pool:
        while not stop.is_set() and (chunk := list(islice(pending, window))):
            futures = [pool.submit(_initiate, ledger, line) for line in chunk]
            yield from _answers(futures, stop)


def _answers(futures: list[Future[LineResult]], stop: threading.Event) -> Iterator[LineResult]:
    """The futures' results in order; after ``stop``, those of the lines already started only."""
    for future in futures:
        if stop.is_set():
            # Lines start in order: the ones not started yet are all later than those running.
            for later in futures:
                later.cancel()
        if not future.cancelled():
            yield future.result()


def _initiate(ledger: CreditLedger, line: ImportLine) -> LineResult:
    if line.command is None:
        return LineResult(line.number, error=line.error)
    try:
        return LineResult(line.number, outcome=ledger.initiate(line.command))
    except LedgerError as error:  # this line's alone: the others go on
        return LineResult(line.number, error=error)
