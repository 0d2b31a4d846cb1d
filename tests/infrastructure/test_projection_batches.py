"""Batches across transactions (issue 14): what a runner keeps between them is never stale.

Batches are written set-wise (one statement per table; on PostgreSQL a ``COPY`` into a staging
table kept by the writer's connection, then one ``INSERT ... SELECT``). A refusal in the middle
of that rolls the whole batch back, staging included: the same runner, on the same connection,
applies the batches before the refused event, and once the refusal is lifted every later event
exactly once, the views then equal to a rebuild from the log.

A runner keeps the rows of its earlier batches (``RowCache``); another projector committing in
between, or a rebuild swapping the tables in, makes it read them again.
"""

from __future__ import annotations

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.rows import ReadModelName, Tables
from creditledger.application.projections.source import EventLog
from creditledger.domain.events import Initiated
from creditledger.infrastructure.bootstrap import open_view_database
from creditledger.infrastructure.projections.operations import rebuild, verify
from creditledger.infrastructure.projections.runner import ProjectionRunner, ProjectionStuckError
from tests.readmodels_support import (
    authorize,
    initiate,
    logged_events,
    logged_postings,
    read_models,
    settle,
)
from tests.stores import refuse_inserts

POISON = "poison-customer"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])  # the memory views refuse nothing
def test_a_refused_batch_leaves_nothing_and_the_same_runner_applies_it_once_when_lifted(
    ledger: CreditLedger, store_url: str
) -> None:
    # Customers whose ids sort differently by language rules than by code point.
    first = initiate(ledger, customer="cust-B")
    settle(ledger, authorize(ledger, first))
    second = initiate(ledger, customer="cust-a")
    with read_models(ledger) as views:
        runner = ProjectionRunner(views.log, views.database, batch_size=3)
        assert runner.catch_up() == ledger.recorder.max_notification_id()

        lift = refuse_inserts(
            store_url, "readmodel_purchases", "refused by the store", when=("customer_id", POISON)
        )
        authorize(ledger, second)  # an update of a stored row, in the same batch as the refusal
        poisoned = initiate(ledger, customer=POISON)
        settle(ledger, authorize(ledger, initiate(ledger, customer="Cust-b")))
        refused_at = next(
            position
            for position, event in logged_events(ledger)
            if isinstance(event, Initiated) and event.originator_id == poisoned.id
        )
        with pytest.raises(ProjectionStuckError) as stuck:
            runner.catch_up()
        assert stuck.value.failure.position == refused_at
        assert set(views.database.positions().values()) == {refused_at - 1}

        lift()
        head = ledger.recorder.max_notification_id() or 0
        assert runner.catch_up() == head - (refused_at - 1)
        report = verify(views.log, views.database)
        assert report.ok, report.as_dict()
        snapshot = views.database.snapshot()
        assert len(snapshot.rows(Tables.ENTRIES)) == len(logged_postings(ledger))
        assert {row.customer_id for row in snapshot.purchases} == {
            "cust-B",
            "cust-a",
            POISON,
            "Cust-b",
        }


def test_two_runners_taking_turns_one_event_each_see_each_others_rows(
    ledger: CreditLedger,
) -> None:
    # Each runner applies one event of the same purchases in turn: a runner that trusted the
    # rows it kept from its own last batch would build on a version the other one replaced.
    for customer in ("cust-1", "cust-2"):
        settle(ledger, authorize(ledger, initiate(ledger, customer=customer)))
    head = ledger.recorder.max_notification_id() or 0
    databases = [open_view_database(ledger) for _ in range(2)]
    try:
        runners = [ProjectionRunner(EventLog(ledger), database) for database in databases]
        turn = 0
        while runners[turn % 2].run_batch(limit=1).applied:
            turn += 1
        assert turn == head
        report = verify(EventLog(ledger), databases[0])
        assert report.ok, report.as_dict()
    finally:
        for database in databases:
            database.close()


def test_a_runner_reads_again_the_rows_a_rebuild_swapped_in(ledger: CreditLedger) -> None:
    purchase = initiate(ledger)
    with read_models(ledger) as views:
        runner = ProjectionRunner(views.log, views.database)
        runner.catch_up()
        rebuild(views.log, views.database, ReadModelName.PURCHASES)
        authorize(ledger, purchase)
        assert runner.catch_up() == 1
        report = verify(views.log, views.database)
        assert report.ok, report.as_dict()
