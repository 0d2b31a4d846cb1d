"""Gap-freedom on PostgreSQL: no event is ever skipped, whenever its transaction commits.

Notification ids are drawn from a sequence before commit, so ids can become visible out of order
unless every writer takes the library's table lock. These tests write the log the way a writer
that skips the lock would (raw inserts in open transactions), and with real concurrent writer
processes, and check that the views still hold every event exactly once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import PurchaseEvent, PurchaseEventBase
from creditledger.infrastructure.bootstrap import open_read_models
from creditledger.infrastructure.projections.operations import verify
from creditledger.infrastructure.projections.service import ReadModelService
from tests.readmodels_support import logged_events, logged_postings, read_models
from tests.stores import POSTGRES_URL, initiated_event

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def views(ledger: CreditLedger) -> Iterator[ReadModelService]:
    with read_models(ledger) as service:
        yield service


Insert = Callable[[psycopg.Connection[tuple[object, ...]], PurchaseEvent], None]


@pytest.fixture
def insert_without_lock(ledger: CreditLedger) -> Insert:
    """Insert an event the way a writer that skips the library's table lock would."""
    table = '"{}"."{}"'.format(ledger.env["POSTGRES_SCHEMA"], ledger.recorder.events_table_name)  # type: ignore[attr-defined]

    def insert(connection: psycopg.Connection[tuple[object, ...]], event: PurchaseEvent) -> None:
        stored = ledger.mapper.to_stored_event(event)
        connection.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "  # noqa: S608
            "VALUES (%s, %s, %s, %s)",
            (stored.originator_id, stored.originator_version, stored.topic, stored.state),
        )

    return insert


def test_an_event_committed_after_a_later_one_is_applied_not_skipped(
    views: ReadModelService, insert_without_lock: Insert
) -> None:
    early, late = initiated_event("cust-1"), initiated_event("cust-2")
    with (
        psycopg.connect(POSTGRES_URL) as slow,
        psycopg.connect(POSTGRES_URL, autocommit=True) as fast,
    ):
        insert_without_lock(slow, early)  # draws id 1, not committed yet
        insert_without_lock(fast, late)  # draws id 2, committed
        first = views.runner.run_batch()
        assert first.blocked
        assert first.applied == 0
        assert views.read_models.position() == 0
        slow.commit()
    views.runner.catch_up()
    assert {row.customer_id for row in views.read_models.list_purchases("acme").items} == {
        "cust-1",
        "cust-2",
    }
    assert views.read_models.position() == 2
    assert verify(views.log, views.database).ok


def test_a_rolled_back_id_is_passed_once_its_transaction_has_ended(
    views: ReadModelService, insert_without_lock: Insert
) -> None:
    with (
        psycopg.connect(POSTGRES_URL) as failing,
        psycopg.connect(POSTGRES_URL, autocommit=True) as fine,
    ):
        insert_without_lock(failing, initiated_event("cust-1"))
        insert_without_lock(fine, initiated_event("cust-2"))
        assert views.runner.run_batch().blocked
        failing.rollback()
    views.runner.catch_up()
    assert [row.customer_id for row in views.read_models.list_purchases("acme").items] == ["cust-2"]
    assert views.read_models.position() == 2


def test_events_before_a_pending_id_are_applied_while_it_is_pending(
    views: ReadModelService, insert_without_lock: Insert
) -> None:
    with (
        psycopg.connect(POSTGRES_URL) as slow,
        psycopg.connect(POSTGRES_URL, autocommit=True) as fast,
    ):
        insert_without_lock(fast, initiated_event("cust-1"))  # id 1
        insert_without_lock(slow, initiated_event("cust-2"))  # id 2, pending
        insert_without_lock(fast, initiated_event("cust-3"))  # id 3
        result = views.runner.run_batch()
        assert (result.applied, result.position) == (1, 1)
        slow.commit()
    views.runner.catch_up()
    assert views.read_models.position() == 3


@pytest.mark.slow
def test_four_writer_processes_and_a_running_projector_leave_views_equal_to_a_rebuild(
    ledger: CreditLedger, store_url: str
) -> None:
    with open_read_models(ledger, batch_size=50) as service:
        writers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.infrastructure.projection_writer",
                    store_url,
                    str(seed),
                    "60",
                ],
                cwd=ROOT,
            )
            for seed in range(4)
        ]
        for writer in writers:
            assert writer.wait(timeout=120) == 0
        assert service.read_models.wait_until(timeout=60)
        service.stop()
        report = verify(service.log, service.database)
        assert report.ok, report.as_dict()
        events = logged_events(ledger)
        snapshot = service.database.snapshot()
        # No missing and no duplicate row: one per purchase, one per posting of the log.
        purchases = {e.originator_id for _, e in events if isinstance(e, PurchaseEventBase)}
        assert len(snapshot.purchases) == len(purchases)
        assert len(snapshot.entries) == len(logged_postings(ledger))
        assert min(snapshot.positions.values()) == events[-1][0]
