"""Group commit: many callers' new events written by one writer, in one transaction per batch.

Callers decide their commands in their own threads (load, check, record events) and hand the new
events to the committer, which blocks them until their events are durable. A single writer thread
takes everything that queued up while the previous batch was being written and writes it as one
transaction: under load, one commit (and on PostgreSQL one table lock and one fsync) serves many
commands; a lone caller pays only a thread hand-off, because the writer never waits for company.

Guarantees, per caller:
- acknowledged only after the transaction holding its events committed;
- two submissions for one purchase in one batch: the first (in arrival order) is written, the later
  one is told to retry (``RetryDecision``), so it decides again on top of the first, in order;
- a conflict with another process (a version already taken) is isolated: the batch is re-written
  one submission per transaction, so only the conflicting submission gets the store's
  ``IntegrityError`` (and its caller reloads and decides again);
- any other store error is isolated the same way: the batch is re-written one submission per
  transaction, so only the submissions the store refuses fail (with the store's error), and the
  writer keeps serving later batches.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.persistence import Recording

from domain.events import PurchaseEvent

DEFAULT_MAX_BATCH = 256


class RetryDecisionError(Exception):
    """The submission's versions were taken by an earlier write: reload and decide again."""


class CommitterClosedError(RuntimeError):
    """The ledger is shutting down and accepts no more writes."""


@dataclass
class _Submission:
    events: Sequence[PurchaseEvent]
    done: Future[int | None] = field(default_factory=Future)


class GroupCommitter:
    """Batches concurrent submissions of new events into shared transactions."""

    def __init__(
        self,
        write: Callable[[Sequence[PurchaseEvent]], Sequence[Recording[UUID]]],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        name: str = "creditledger-group-commit",
    ) -> None:
        if max_batch < 1:
            msg = "max_batch must be at least 1"
            raise ValueError(msg)
        self._write = write
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.batches = 0
        self.submissions = 0

    def submit(self, events: Sequence[PurchaseEvent]) -> int | None:
        """Write the events durably, with whatever else is waiting; block until done.

        Returns the log position (notification id) of the last of the events.
        """
        submission = _Submission(events)
        with self._lock:
            if self._closed.is_set():
                raise CommitterClosedError("the ledger is closed")
            self._queue.put(submission)
        return submission.done.result()

    def close(self) -> None:
        """Write what is queued, then stop the writer. Later submissions are refused."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            self._queue.put(None)
        self._thread.join()

    # -- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Submission]) -> None:
        self.batches += 1
        self.submissions += len(batch)
        accepted: list[_Submission] = []
        deferred: list[_Submission] = []
        taken: set[tuple[object, int]] = set()
        for submission in batch:
            slots = {(e.originator_id, e.originator_version) for e in submission.events}
            if slots & taken:
                # An earlier submission in this batch writes these versions: the later one must
                # decide again on top of it (arrival order), once this batch is done.
                deferred.append(submission)
                continue
            taken |= slots
            accepted.append(submission)
        try:
            recordings = self._write(
                [event for submission in accepted for event in submission.events]
            )
        except Exception as error:  # every caller of the batch must hear of it
            if len(accepted) > 1:
                # One submission spoiled the transaction for all (a version another process
                # took, or a write the database refused): isolate it, one transaction each,
                # so that its neighbours still commit and only it fails.
                self._commit_one_by_one(accepted)
            else:
                accepted[0].done.set_exception(error)
        else:
            positions = _last_positions(recordings)
            for submission in accepted:
                last = submission.events[-1]
                submission.done.set_result(
                    positions.get((last.originator_id, last.originator_version))
                )
        for submission in deferred:
            submission.done.set_exception(RetryDecisionError())

    def _commit_one_by_one(self, submissions: list[_Submission]) -> None:
        for submission in submissions:
            try:
                recordings = self._write(submission.events)
            except Exception as error:  # reported to that caller alone
                submission.done.set_exception(error)
            else:
                submission.done.set_result(last_position(recordings))


def last_position(recordings: Sequence[Recording[UUID]]) -> int | None:
    """The log position of the last recording (None if the store reported none)."""
    return recordings[-1].notification.id if recordings else None


def _last_positions(recordings: Sequence[Recording[UUID]]) -> dict[tuple[UUID | str, int], int]:
    return {
        (r.notification.originator_id, r.notification.originator_version): r.notification.id
        for r in recordings
    }
