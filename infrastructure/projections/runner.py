"""The projector loop: read events after the tracked positions, apply them, commit, repeat.

Each batch is one view transaction: lock the positions, read up to ``batch_size`` events after
the lowest, apply them to every model still behind, write the new positions, commit. A crash
anywhere loses the whole batch and nothing else; the next run starts from the committed
positions, so every event is applied exactly once.

An event the read-model store refuses (a *poison* event) would fail its batch forever. It never
stops the projector silently: after a failed batch the runner retries one event at a time, so
the failure names the exact position (``failure``, logged, shown by ``/readyz`` and
``/metrics``); the batches before it are applied meanwhile. Fixing the cause lets the next retry
through; otherwise the operator skips the event (``creditledger projections skip POSITION``,
docs/read-models.md) and the read models go on without it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from creditledger.application.projections.projection import PurchaseTerms
from creditledger.application.projections.projector import Projector, projections_for
from creditledger.application.projections.rows import ReadModelName
from creditledger.application.projections.signal import ProjectionSignal
from creditledger.application.projections.source import EventLog
from creditledger.application.projections.store import ReadModelTransaction
from creditledger.infrastructure.projections.buffer import RowCache
from creditledger.infrastructure.projections.collector import collector_paused
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.layout import Layout, live_layout, rebuild_layout

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
"""Events per view transaction of a projector that follows the log while commands run: on
SQLite a batch holds the file's one write lock, which every command waits for."""
OFFLINE_BATCH_SIZE = 5_000
"""Events per view transaction of an operator's job (``projections rebuild``, ``verify``, ``run
--until-caught-up``): a tenth of the commits, index pages written once for many events, rows kept
once per batch; catch-up about 1.25x (CPU) to 1.8x (wall) faster than batches of 500 on SQLite,
1.2x on PostgreSQL (docs/benchmarks.md, session 6). On SQLite a command that arrives meanwhile
waits for the batch (about half a second); ``--batch-size 500`` if that matters."""
BLOCKED_RETRY_SECONDS = 0.002
MAX_ERROR_BACKOFF_SECONDS = 30.0

Progress = Callable[[int, int], None]
"""Called with (position reached, head of the log) after each committed batch."""


@dataclass(frozen=True)
class ProjectionFailure:
    """Why the projector is not moving: the event it cannot apply, and the store's refusal."""

    position: int
    """The first event of the failing batch; exact once the runner retries one at a time."""
    error: str
    exact: bool
    """The failing batch held only this event: it is the one the store refuses."""


class ProjectionStuckError(Exception):
    """Catching up stopped at an event the read-model store refuses (a poison event)."""

    def __init__(self, failure: ProjectionFailure) -> None:
        super().__init__(
            f"the read models are stuck at position {failure.position}: {failure.error}; fix "
            f"the cause, or skip it: creditledger projections skip {failure.position}"
        )
        self.failure = failure


@dataclass(frozen=True)
class BatchResult:
    applied: int
    """Events applied to at least one model, or moved past by all (ignored by each)."""
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
        pause_collector: bool = False,
    ) -> None:
        """``pause_collector``: pause Python's garbage collector during each batch (see
        ``collector``): only for a job that owns its process, never in the service."""
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
        self._ignored_topics = self.projector.ignored_topics
        self.pause_collector = pause_collector
        self.cache = RowCache()
        """Rows of this runner's earlier batches (emptied when another writer commits)."""
        self.last_error: BaseException | None = None
        self.failure: ProjectionFailure | None = None
        """Set while batches fail; cleared once the projector has got past the failing event."""
        self._attempted: tuple[int, int] | None = None
        """The first and last position of the batch being applied."""

    @property
    def names(self) -> list[str]:
        return self.projector.names

    def run_batch(
        self, *, until: Mapping[str, int] | None = None, limit: int | None = None
    ) -> BatchResult:
        """Apply the next batch (of at most ``limit`` events) in its own transaction."""
        paused: AbstractContextManager[None] = (
            collector_paused() if self.pause_collector else nullcontext()
        )
        try:
            with (
                paused,
                self.database.transaction(self.layout, self.names, self.cache) as transaction,
            ):
                result = self.apply_next(transaction, until=until, limit=limit)
        except BaseException:
            self.cache.clear()  # what the failed batch kept was rolled back
            raise
        if result.applied:
            self.signal.committed()
        return result

    def apply_next(
        self,
        transaction: ReadModelTransaction,
        *,
        until: Mapping[str, int] | None = None,
        limit: int | None = None,
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
        notifications = self.log.read(start, limit or self.batch_size, stop=stop)
        usable = self.guard.usable(start, notifications)
        if not usable:
            return BatchResult(0, start, blocked=bool(notifications))
        self._attempted = (usable[0].id, usable[-1].id)
        # Events none of these models uses are moved past without being read back.
        ignored = self._ignored_topics
        batch = [self.log.decode(n) for n in usable if n.topic not in ignored]
        reached = self.projector.apply(
            batch, transaction, positions, until=until, last=usable[-1].id
        )
        transaction.set_positions(reached)
        return BatchResult(len(usable), min(reached.values()))

    def catch_up(
        self,
        *,
        until: Mapping[str, int] | None = None,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Apply batches until nothing is left (or ``until`` is reached); return events applied.

        A batch the store refuses is retried one event at a time, so the events before the
        refused one are applied and ``ProjectionStuckError`` names it exactly.
        """
        applied = 0
        one_at_a_time = False
        while stop is None or not stop.is_set():
            self._attempted = None
            try:
                result = self.run_batch(until=until, limit=1 if one_at_a_time else None)
            except Exception as error:
                attempted = self._attempted
                if attempted is None:
                    raise  # not an event's fault (the store is unreachable, say)
                first, last = attempted
                if first != last:
                    one_at_a_time = True
                    continue
                raise ProjectionStuckError(
                    ProjectionFailure(first, f"{type(error).__name__}: {error}", exact=True)
                ) from error
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
            self._attempted = None
            try:
                if reached is not None and self.log.head() <= reached:
                    # Nothing new: wait without taking the view lock (on SQLite the lock is the
                    # database's one write lock, which commands need).
                    self.database.wait_for_events(self.poll_interval)
                    continue
                # After a failure, one event at a time up to the failing one: the next failure
                # names it exactly, and the events before it are not held back.
                result = self.run_batch(limit=1 if self.failure is not None else None)
            except Exception as error:  # logged, kept for status, retried
                self.last_error = error
                failures += 1
                delay = min(MAX_ERROR_BACKOFF_SECONDS, 0.1 * 2 ** min(failures, 10))
                self._report_failure(error, failures, delay)
                stop.wait(delay)
                continue
            failures = 0
            self.last_error = None
            if self.failure is not None and result.position >= self.failure.position:
                log.info("projection moved past position %d", self.failure.position)
                self.failure = None
            reached = result.position if result.applied == 0 and not result.blocked else None
            if result.blocked:
                stop.wait(BLOCKED_RETRY_SECONDS)
            elif result.applied and progress is not None:
                progress(result.position, self.log.head())

    def _report_failure(self, error: Exception, failures: int, delay: float) -> None:
        attempted = self._attempted
        if attempted is not None:
            first, last = attempted
            self.failure = ProjectionFailure(
                first, f"{type(error).__name__}: {error}", first == last
            )
        failure = self.failure
        where = (
            f"the read models are stuck at position {failure.position}"
            if failure is not None and failure.exact
            else "a projection batch failed"
        )
        log.exception(
            "%s (attempt %d); retrying in %.1fs; if the read-model store keeps refusing this "
            "event, skip it: creditledger projections skip POSITION (docs/read-models.md)",
            where,
            failures,
            delay,
        )

    def skip(self, position: int) -> list[str]:
        """Move every model waiting at ``position`` (having applied everything before it) past
        it, without applying it: the operator's way past an event the store refuses. Returns the
        models moved (none if no model waits there)."""
        with self.database.transaction(self.layout, self.names) as transaction:
            positions = dict(transaction.positions())
            moved = sorted(name for name, at in positions.items() if at == position - 1)
            if moved:
                transaction.set_positions({**positions, **dict.fromkeys(moved, position)})
        if moved:
            log.warning("skipped position %d in the read models %s", position, ", ".join(moved))
        return moved


def catch_up_models(  # the runner's settings, passed through
    log: EventLog,
    database: ViewDatabase,
    models: Sequence[ReadModelName],
    *,
    batch_size: int = OFFLINE_BATCH_SIZE,
    until: Mapping[str, int] | None = None,
    progress: Progress | None = None,
    terms: PurchaseTerms | None = None,
) -> int:
    """Catch ``models`` of ``database`` (their live tables) up with the log, or to ``until``, as
    an operator's job (the collector paused per batch); the events applied (none for no models)."""
    if not models:
        return 0
    runner = ProjectionRunner(
        log,
        database,
        layout=live_layout(tuple(models)),
        batch_size=batch_size,
        terms=terms,
        pause_collector=True,
    )
    return runner.catch_up(until=until, progress=progress)


def fill_rebuild_tables(
    log: EventLog,
    database: ViewDatabase,
    models: Sequence[ReadModelName],
    *,
    batch_size: int = OFFLINE_BATCH_SIZE,
    progress: Progress | None = None,
) -> int:
    """Catch the fresh (``__rebuild``) tables of ``models`` up with the log, as an operator's
    job (the collector paused per batch), without swapping them in; the events applied."""
    runner = ProjectionRunner(
        log, database, layout=rebuild_layout(*models), batch_size=batch_size, pause_collector=True
    )
    return runner.catch_up(progress=progress)


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
