"""An operator's job pauses Python's garbage collector per batch (issue 14, session 6).

The pause is the process's: it must end with the batch, whatever happens in it (a refused
event included), leave a collector disabled by someone else disabled, and count nested and
concurrent pauses. The views a paused runner writes are the ones any runner writes.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import Initiated
from creditledger.infrastructure.projections.collector import collector_paused
from creditledger.infrastructure.projections.operations import verify
from creditledger.infrastructure.projections.runner import ProjectionRunner, ProjectionStuckError
from tests.readmodels_support import authorize, initiate, logged_events, read_models, settle
from tests.stores import refuse_inserts

POISON = "poison-customer"


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_paused_inside_and_enabled_again_after() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still runs
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_a_failing_block_enables_the_collector_again() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError
    assert gc.isenabled()


def test_overlapping_pauses_in_two_threads_enable_it_when_the_last_ends() -> None:
    gc.enable()
    first_in, second_done = threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with collector_paused():
            first_in.set()
            second_done.wait(10)
            seen.append(gc.isenabled())  # the other thread's pause ended first

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(10)
    with collector_paused():
        pass
    second_done.set()
    thread.join(10)
    assert seen == [False]
    assert gc.isenabled()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])  # the memory views refuse nothing
def test_a_paused_runner_writes_the_same_views_and_releases_the_collector_when_refused(
    ledger: CreditLedger, store_url: str
) -> None:
    gc.enable()
    settle(ledger, authorize(ledger, initiate(ledger, customer="cust-1")))
    with read_models(ledger) as views:
        runner = ProjectionRunner(views.log, views.database, batch_size=4, pause_collector=True)
        assert runner.catch_up() == ledger.recorder.max_notification_id()
        assert gc.isenabled()

        lift = refuse_inserts(
            store_url, "readmodel_purchases", "refused by the store", when=("customer_id", POISON)
        )
        poisoned = initiate(ledger, customer=POISON)
        refused_at = next(
            position
            for position, event in logged_events(ledger)
            if isinstance(event, Initiated) and event.originator_id == poisoned.id
        )
        with pytest.raises(ProjectionStuckError) as stuck:
            runner.catch_up()
        assert stuck.value.failure.position == refused_at
        assert gc.isenabled()

        lift()
        settle(ledger, authorize(ledger, initiate(ledger, customer="cust-2")))
        runner.catch_up()
        assert gc.isenabled()
        report = verify(views.log, views.database)
        assert report.ok, report.as_dict()
