"""Exactly once: a batch commits with its positions or not at all; projectors never double up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from uuid import uuid4

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.projection import ProjectionError
from creditledger.application.projections.source import EventLog
from creditledger.domain.events import PaymentAuthorized
from creditledger.infrastructure.bootstrap import open_read_models, open_view_database
from creditledger.infrastructure.projections.operations import verify
from creditledger.infrastructure.projections.runner import ProjectionRunner
from creditledger.infrastructure.projections.service import ReadModelService
from tests.clock import START, FixedClock
from tests.readmodels_support import (
    authorize,
    initiate,
    logged_events,
    logged_postings,
    read_models,
    settle,
)


@pytest.fixture
def views(ledger: CreditLedger) -> Iterator[ReadModelService]:
    with read_models(ledger) as service:
        yield service


def test_a_batch_that_fails_part_way_leaves_no_row_and_no_position_behind(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    initiate(ledger)
    settle(ledger, initiate(ledger, customer="cust-2"))
    # A corrupt log: a payment of a purchase that was never initiated, after good events.
    orphan = PaymentAuthorized(
        originator_id=uuid4(),
        originator_version=1,
        timestamp=START,
        amount="1.00",
        transaction_group_id=uuid4(),
        at=START,
    )
    ledger.recorder.insert_events([ledger.mapper.to_stored_event(orphan)])
    before = views.database.snapshot()

    with pytest.raises(ProjectionError):
        views.runner.run_batch()

    assert views.database.snapshot() == before
    assert views.read_models.position() == 0


def test_two_projectors_on_one_store_never_apply_an_event_twice(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    for index in range(40):
        purchase = initiate(ledger, customer=f"cust-{index % 4}")
        clock.advance(1)
        if index % 3:
            authorize(ledger, purchase)
    databases = [open_view_database(ledger) for _ in range(2)]
    runners = [ProjectionRunner(EventLog(ledger), database, batch_size=3) for database in databases]
    failures: list[BaseException] = []

    def run(runner: ProjectionRunner) -> None:
        try:
            runner.catch_up()
        except BaseException as error:  # handed to the test thread below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(runner,)) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        report = verify(EventLog(ledger), databases[0])
        assert report.ok, report.as_dict()
        snapshot = databases[0].snapshot()
        assert len(snapshot.entries) == len(logged_postings(ledger))
        assert min(snapshot.positions.values()) == logged_events(ledger)[-1][0]
    finally:
        for database in databases:
            database.close()


def test_a_restarted_projector_carries_on_from_the_committed_position(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    purchase = initiate(ledger)
    views.runner.catch_up()
    authorize(ledger, purchase)
    with read_models(ledger) as restarted:
        assert restarted.runner.catch_up() == 1
        assert restarted.read_models.list_purchases("acme").items[0].status == (
            "active.payment.authorized"
        )
        assert verify(restarted.log, restarted.database).ok


def test_a_projector_thread_that_meets_a_corrupt_event_keeps_the_views_and_reports_the_error(
    ledger: CreditLedger,
) -> None:
    initiate(ledger)
    orphan = PaymentAuthorized(
        originator_id=uuid4(),
        originator_version=1,
        timestamp=START,
        amount="1.00",
        transaction_group_id=uuid4(),
        at=START,
    )
    ledger.recorder.insert_events([ledger.mapper.to_stored_event(orphan)])
    with open_read_models(ledger) as service:
        assert not service.read_models.wait_until(timeout=0.5)
        # After the failed batch the projector retries one event at a time (issue 16, point 1):
        # it applies what comes before the corrupt event and names the corrupt one exactly.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            service.runner.failure is not None and service.runner.failure.exact
        ):
            time.sleep(0.01)
        failure = service.runner.failure
        assert service.projector_running
        assert isinstance(service.runner.last_error, ProjectionError)
        assert failure is not None
        # Positions 1 and 2: the purchase's Initiated and its wallet's GrantAdded.
        assert (failure.position, failure.exact) == (3, True)
        assert service.read_models.position() == 2
