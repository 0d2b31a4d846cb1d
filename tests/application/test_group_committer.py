"""The group committer on its own: who writes, what shares a transaction, and what nobody waits on.

The write function here is a plain list append, so that the tests can see every transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from uuid import UUID

import pytest
from eventsourcing.persistence import Notification, Recording

from creditledger.application.group_commit import (
    CommitterClosedError,
    GroupCommitter,
    RetryDecisionError,
    Submission,
)
from creditledger.domain.events import LedgerEvent
from creditledger.domain.purchase import CommandContext, project_purchase
from tests.clock import START
from tests.stores import initiated_event


def new_events() -> list[LedgerEvent]:
    """The one event of a new purchase (a new id each: submissions never share versions)."""
    return [initiated_event()]


class Log:
    """An append-only list of transactions; ``gate`` can hold the writer inside one."""

    def __init__(self) -> None:
        self.transactions: list[list[LedgerEvent]] = []
        self.writers: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.inside = threading.Event()

    def write(self, events: Sequence[LedgerEvent]) -> list[Recording[UUID]]:
        self.inside.set()
        self.gate.wait()
        self.writers.append(threading.get_ident())
        self.transactions.append(list(events))
        start = sum(len(t) for t in self.transactions[:-1])
        return [
            Recording(
                event,
                Notification(
                    id=start + n + 1,
                    originator_id=event.originator_id,
                    originator_version=event.originator_version,
                    topic="t",
                    state=b"",
                ),
            )
            for n, event in enumerate(events)
        ]


def test_a_lone_caller_writes_its_own_events_in_its_own_thread() -> None:
    log = Log()
    committer = GroupCommitter(log.write)
    assert committer.submit(new_events()) == 1
    assert committer.submit(new_events()) == 2
    assert log.writers == [threading.get_ident()] * 2


def test_callers_arriving_during_a_write_share_the_next_transaction_in_arrival_order() -> None:
    log = Log()
    committer = GroupCommitter(log.write)
    log.gate.clear()
    first = new_events()
    positions: dict[int, int | None] = {}
    leader = threading.Thread(target=lambda: positions.setdefault(0, committer.submit(first)))
    leader.start()
    log.inside.wait()  # the first caller is writing, alone
    later = [new_events() for _ in range(5)]
    followers = []
    for index, events in enumerate(later, start=1):
        thread = threading.Thread(
            target=lambda i=index, e=events: positions.setdefault(i, committer.submit(e))
        )
        thread.start()
        followers.append(thread)
        _wait_until_queued(committer, index)  # so that the arrival order is known
    log.gate.set()
    for thread in [leader, *followers]:
        thread.join()
    assert log.transactions == [first, [e for events in later for e in events]]
    assert positions == {i: i + 1 for i in range(6)}


def _wait_until_queued(committer: GroupCommitter, count: int) -> None:
    deadline = time.monotonic() + 10
    while committer.queued < count:
        if time.monotonic() > deadline:
            pytest.fail(f"{count} submissions never queued up ({committer.queued} did)")
        time.sleep(0.001)


def _queue_in_order(
    committer: GroupCommitter, submissions: list[list[LedgerEvent]]
) -> tuple[list[threading.Thread], list[object]]:
    """One caller per submission, each queued before the next starts; each one's position or
    RetryDecisionError lands in the returned list (at its index) once its thread is joined."""
    outcomes: list[object] = [None] * len(submissions)

    def submit(index: int) -> None:
        try:
            outcomes[index] = committer.submit(submissions[index])
        except RetryDecisionError as error:
            outcomes[index] = error

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(submissions))]
    for queued, thread in enumerate(threads, start=1):
        thread.start()
        _wait_until_queued(committer, queued)
    return threads, outcomes


def test_close_writes_what_is_queued_then_refuses_new_work() -> None:
    log = Log()
    committer = GroupCommitter(log.write)
    log.gate.clear()
    writers = [threading.Thread(target=committer.submit, args=(new_events(),)) for _ in range(3)]
    writers[0].start()
    log.inside.wait()
    for thread in writers[1:]:
        thread.start()
    _wait_until_queued(committer, 2)
    closer = threading.Thread(target=committer.close)
    closer.start()
    log.gate.set()
    closer.join()
    assert sum(len(t) for t in log.transactions) == 3
    with pytest.raises(CommitterClosedError):
        committer.submit(new_events())
    for thread in writers:
        thread.join()


def test_a_leader_interrupted_mid_write_strands_nobody() -> None:
    log = Log()
    interrupted = threading.Event()

    def write(events: Sequence[LedgerEvent]) -> list[Recording[UUID]]:
        if not interrupted.is_set():
            interrupted.set()
            log.inside.set()
            log.gate.wait()
            raise KeyboardInterrupt  # not an Exception: only the leader's own caller sees it
        return log.write(events)

    committer = GroupCommitter(write)
    log.gate.clear()
    outcomes: list[object] = []

    def lead() -> None:
        try:
            committer.submit(new_events())
        except KeyboardInterrupt as error:
            outcomes.append(error)

    leader = threading.Thread(target=lead)
    leader.start()
    log.inside.wait()
    follower = threading.Thread(target=lambda: outcomes.append(committer.submit(new_events())))
    follower.start()
    _wait_until_queued(committer, 1)
    log.gate.set()
    leader.join()
    follower.join()
    # The caller queued behind the interrupted write takes the lead and writes its events.
    assert [type(o).__name__ for o in outcomes] == ["KeyboardInterrupt", "int"]
    assert committer.submit(new_events()) == 2


def test_a_second_submission_for_the_same_versions_in_one_batch_is_told_to_decide_again() -> None:
    log = Log()
    committer = GroupCommitter(log.write)
    log.gate.clear()
    blocker = threading.Thread(target=committer.submit, args=(new_events(),))
    blocker.start()
    log.inside.wait()
    events = new_events()
    threads, outcomes = _queue_in_order(committer, [events, events])
    log.gate.set()
    for thread in [blocker, *threads]:
        thread.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["RetryDecisionError", "int"]
    assert log.transactions[1] == events


def test_with_a_wait_the_writer_holds_the_batch_open_until_it_fills() -> None:
    log = Log()
    # The longest wait allowed: here the batch closes because it is full, long before that.
    committer = GroupCommitter(log.write, max_batch=2, max_wait=1.0)
    first, second = new_events(), new_events()
    leader = threading.Thread(target=committer.submit, args=(first,))
    leader.start()
    _wait_until_queued(committer, 1)  # the leader is waiting for company, nothing written
    assert log.transactions == []
    committer.submit(second)
    leader.join()
    assert log.transactions == [[*first, *second]]


def test_with_a_wait_a_lone_caller_is_written_when_the_wait_runs_out() -> None:
    log = Log()
    committer = GroupCommitter(log.write, max_wait=0.01)
    events = new_events()
    assert committer.submit(events) == 1
    assert log.transactions == [events]


@pytest.mark.parametrize("max_wait", [-0.001, 1.5])
def test_a_wait_outside_0_to_1_second_is_refused(max_wait: float) -> None:
    with pytest.raises(ValueError, match="max_wait"):
        GroupCommitter(Log().write, max_wait=max_wait)


def test_a_batch_refused_for_taken_versions_is_written_again_without_them_in_one_go() -> None:
    log = Log()
    stored_elsewhere: set[object] = set()  # purchases another process already wrote

    def write(events: Sequence[LedgerEvent]) -> list[Recording[UUID]]:
        if any(e.originator_id in stored_elsewhere for e in events):
            raise RuntimeError("duplicate key")  # the whole transaction is refused
        return log.write(events)

    committer = GroupCommitter(
        write, taken=lambda events: events[0].originator_id in stored_elsewhere
    )
    log.gate.clear()
    leader = threading.Thread(target=committer.submit, args=(new_events(),))
    leader.start()
    log.inside.wait()
    followers = [new_events() for _ in range(4)]
    stored_elsewhere.add(followers[1][0].originator_id)
    threads, outcomes = _queue_in_order(committer, followers)
    log.gate.set()
    for thread in [leader, *threads]:
        thread.join()

    # Its caller decides again (and finds the stored purchase); its neighbours share one
    # transaction, not one each.
    assert isinstance(outcomes[1], RetryDecisionError)
    assert log.transactions[1:] == [[*followers[0], *followers[2], *followers[3]]]
    assert [outcomes[i] for i in (0, 2, 3)] == [2, 3, 4]


def _purchase_run() -> list[list[LedgerEvent]]:
    """A purchase's three events, one submission each: versions 1, 2, 3 of one aggregate."""
    first = initiated_event()
    purchase = project_purchase(None, [first])
    assert purchase is not None
    runs: list[list[LedgerEvent]] = [[first]]
    for step in (purchase.authorize_payment, purchase.settle_payment):
        step(CommandContext(at=START))
        runs.append(list(purchase.collect_events()))
    return runs


def _complete_all(
    committer: GroupCommitter, submissions: list[Submission]
) -> tuple[list[threading.Thread], list[object]]:
    outcomes: list[object] = [None] * len(submissions)

    def complete(index: int) -> None:
        try:
            outcomes[index] = committer.complete(submissions[index])
        except Exception as error:
            outcomes[index] = error

    threads = [threading.Thread(target=complete, args=(i,)) for i in range(len(submissions))]
    for thread in threads:
        thread.start()
    return threads, outcomes


def test_decisions_queued_on_top_of_each_other_share_one_transaction_in_order() -> None:
    log = Log()
    committer = GroupCommitter(log.write)
    log.gate.clear()
    blocker = threading.Thread(target=committer.submit, args=(new_events(),))
    blocker.start()
    log.inside.wait()
    first, second, third = _purchase_run()
    a = committer.enqueue(first)
    b = committer.enqueue(second, after=a)
    c = committer.enqueue(third, after=b)
    threads, outcomes = _complete_all(committer, [a, b, c])
    log.gate.set()
    for thread in [blocker, *threads]:
        thread.join()
    assert log.transactions[1] == [*first, *second, *third]
    assert outcomes == [2, 3, 4]


class PoisonedLog(Log):
    """Refuses any transaction holding one given event, as a database constraint would."""

    def __init__(self, poison: LedgerEvent) -> None:
        super().__init__()
        self.poison = poison

    def write(self, events: Sequence[LedgerEvent]) -> list[Recording[UUID]]:
        if self.poison in events:
            self.inside.set()
            self.gate.wait()
            msg = "refused"
            raise RuntimeError(msg)
        return super().write(events)


@pytest.mark.parametrize("together", [True, False], ids=["same batch", "next batch"])
def test_a_failed_submission_fails_every_one_decided_on_it_and_leaves_no_gap(
    together: bool,
) -> None:
    first, second, third = _purchase_run()
    log = PoisonedLog(first[0])
    committer = GroupCommitter(log.write)
    log.gate.clear()
    if together:
        blocker = threading.Thread(target=committer.submit, args=(new_events(),))
        blocker.start()
        log.inside.wait()
    a = committer.enqueue(first)
    if not together:
        # The first decision is being written (and refused) when the next ones queue.
        lead_threads, lead_outcomes = _complete_all(committer, [a])
        log.inside.wait()
    b = committer.enqueue(second, after=a)
    neighbour = committer.enqueue(new_events())
    c = committer.enqueue(third, after=b)
    queued = [b, neighbour, c] if not together else [a, b, neighbour, c]
    threads, outcomes = _complete_all(committer, queued)
    log.gate.set()
    for thread in [*threads, *(lead_threads if not together else [blocker])]:
        thread.join()
    if not together:
        outcomes = lead_outcomes + outcomes
    assert [type(o).__name__ for o in outcomes] == [
        "RuntimeError",
        "RetryDecisionError",
        "int",
        "RetryDecisionError",
    ]
    written = {(e.originator_id, e.originator_version) for t in log.transactions for e in t}
    run = {(e.originator_id, e.originator_version) for e in [*first, *second, *third]}
    assert not written & run
    assert (neighbour.events[0].originator_id, 1) in written


def test_a_written_submission_lets_go_of_the_one_it_was_decided_on() -> None:
    # A hot wallet's run never ends while consumptions keep coming: each link must be let go.
    committer = GroupCommitter(Log().write)
    first, second, _ = _purchase_run()
    a = committer.enqueue(first)
    committer.complete(a)
    b = committer.enqueue(second, after=a)
    assert b.after is a
    committer.complete(b)
    assert b.after is None
