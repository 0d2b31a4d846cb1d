"""The projector loop: read events after the tracked positions, apply them, commit, repeat.

Each batch is one view transaction: lock the positions, read up to ``batch_size`` events after
the lowest, apply them to every model still behind, write the new positions, commit. A crash
anywhere loses the whole batch and nothing else; the next run starts from the committed
positions, so every event is applied exactly once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from creditledger.application.projections.projection import PurchaseTerms
from creditledger.application.projections.projector import Projector, projections_for
from creditledger.application.projections.signal import ProjectionSignal
from creditledger.application.projections.source import EventLog
from creditledger.application.projections.store import ReadModelTransaction
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.layout import Layout

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
BLOCKED_RETRY_SECONDS = 0.002
MAX_ERROR_BACKOFF_SECONDS = 30.0

Progress = Callable[[int, int], None]
"""Called with (position reached, head of the log) after each committed batch."""


@dataclass(frozen=True)
class BatchResult:
    applied: int
    """Events applied to at least one model."""
    position: int
    """The lowest position of the runner's models after the batch."""
    blocked: bool = False
    """The batch stopped short of an id that may still commit (PostgreSQL); retry shortly."""


class ProjectionRunner:
    """Projects a ledger's log into one store's read models (all of them, or a rebuild's one)."""

    def __init__(
        self,
        log: EventLog,
        database: ViewDatabase,
        *,
        layout: Layout | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval: float = 0.05,
        signal: ProjectionSignal | None = None,
        terms: PurchaseTerms | None = None,
    ) -> None:
        if batch_size < 1:
            msg = "batch_size must be at least 1"
            raise ValueError(msg)
        self.log = log
        self.database = database
        self.layout = layout or database.live
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.signal = signal or ProjectionSignal()
        self.projector = Projector(
            projections_for(list(self.layout.models)),
            terms or PurchaseTerms(log.initiated),
            tracking_names=self.layout.tracking,
        )
        self.guard = database.guard()
        self.last_error: BaseException | None = None

    @property
    def names(self) -> list[str]:
        return self.projector.names

    def run_batch(self, *, until: Mapping[str, int] | None = None) -> BatchResult:
        """Apply the next batch in its own transaction."""
        with self.database.transaction(self.layout, self.names) as transaction:
            result = self.apply_next(transaction, until=until)
        if result.applied:
            self.signal.committed()
        return result

    def apply_next(
        self, transaction: ReadModelTransaction, *, until: Mapping[str, int] | None = None
    ) -> BatchResult:
        """Apply the next batch inside ``transaction`` (which the caller commits)."""
        positions = dict(transaction.positions())
        behind = [
            positions[name]
            for name in self.names
            if until is None or positions[name] < until.get(name, 0)
        ]
        if not behind:
            return BatchResult(0, min(positions[name] for name in self.names))
        start = min(behind)
        stop = max(until.values()) if until else None
        notifications = self.log.read(start, self.batch_size, stop=stop)
        usable = self.guard.usable(start, notifications)
        if not usable:
            return BatchResult(0, start, blocked=bool(notifications))
        batch = [self.log.decode(notification) for notification in usable]
        reached = self.projector.apply(batch, transaction, positions, until=until)
        transaction.set_positions(reached)
        return BatchResult(len(batch), min(reached.values()))

    def catch_up(
        self,
        *,
        until: Mapping[str, int] | None = None,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Apply batches until nothing is left (or ``until`` is reached); return events applied."""
        applied = 0
        while stop is None or not stop.is_set():
            result = self.run_batch(until=until)
            if result.blocked:
                time.sleep(BLOCKED_RETRY_SECONDS)
                continue
            if result.applied == 0:
                break
            applied += result.applied
            if progress is not None:
                progress(result.position, self.log.head())
        return applied

    def run_forever(self, stop: threading.Event, *, progress: Progress | None = None) -> None:
        """Follow the log until ``stop`` is set; store errors are retried with back-off."""
        failures = 0
        reached: int | None = None
        while not stop.is_set():
            try:
                if reached is not None and self.log.head() <= reached:
                    # Nothing new: wait without taking the view lock (on SQLite the lock is the
                    # database's one write lock, which commands need).
                    self.database.wait_for_events(self.poll_interval)
                    continue
                result = self.run_batch()
            except Exception as error:  # logged, kept for status, retried
                self.last_error = error
                failures += 1
                delay = min(MAX_ERROR_BACKOFF_SECONDS, 0.1 * 2 ** min(failures, 10))
                log.exception(
                    "projection batch failed (attempt %d); retrying in %.1fs", failures, delay
                )
                stop.wait(delay)
                continue
            failures = 0
            self.last_error = None
            reached = result.position if result.applied == 0 and not result.blocked else None
            if result.blocked:
                stop.wait(BLOCKED_RETRY_SECONDS)
            elif result.applied and progress is not None:
                progress(result.position, self.log.head())


class ProjectorThread:
    """Runs a projector in a background thread of this process (the service's default)."""

    def __init__(self, runner: ProjectionRunner) -> None:
        self.runner = runner
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=runner.run_forever,
            args=(self._stop,),
            name="creditledger-projector",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.runner.database.wake()
        if self._thread.is_alive():
            self._thread.join(timeout)
