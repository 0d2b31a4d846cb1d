"""Properties of the read models, on every store, for any sequence of commands and projections.

Each example runs a random sequence of purchases, authorizations, settlements, clock moves
(backwards too: another writer's clock) and partial projection batches, then checks that:

- the views equal a rebuild from the log, row by row (``verify``), and hold every purchase as
  the ledger itself shows it;
- every ledger transaction group sums to zero;
- the balance of every account as of any instant T equals the fold of the domain's postings up
  to T (and receivables as of T match the purchases' histories).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from creditledger.application.ledger import CreditLedger
from creditledger.application.purchase_view import PurchaseView
from creditledger.domain.errors import PurchaseStateError, ValidationFailedError
from creditledger.domain.events import Initiated, LedgerEvent, PaymentAuthorized, PaymentSettled
from creditledger.domain.ledger import Account
from creditledger.infrastructure.bootstrap import open_ledger
from creditledger.infrastructure.projections.operations import verify
from creditledger.infrastructure.projections.runner import ProjectionRunner
from creditledger.infrastructure.projections.service import ReadModelService
from tests.clock import FixedClock
from tests.readmodels_support import (
    authorize,
    folded_balances,
    initiate,
    logged_events,
    logged_postings,
    read_models,
    settle,
)
from tests.stores import POSTGRES_URL, postgres_url

EXAMPLES = int(os.environ.get("CREDITLEDGER_PROPERTY_EXAMPLES", "50"))
CUSTOMERS = ("cust-1", "cust-2", "cust-3")


@dataclass(frozen=True)
class Initiate:
    customer: str
    currency: str
    amount: str
    cost_basis: str
    settlement: str
    initial_status: str | None


@dataclass(frozen=True)
class Pay:
    settle: bool
    purchase: int
    """Index into the purchases made so far (modulo their number)."""


@dataclass(frozen=True)
class MoveClock:
    seconds: int


@dataclass(frozen=True)
class Project:
    batch_size: int


Step = Initiate | Pay | MoveClock | Project

STEPS = st.one_of(
    st.builds(
        Initiate,
        customer=st.sampled_from(CUSTOMERS),
        currency=st.sampled_from(("USD", "EUR", "JPY")),
        amount=st.integers(1, 10**7).map(lambda cents: str(Decimal(cents).scaleb(-2))),
        cost_basis=st.sampled_from(("0.5", "0.005", "1.25", "3")),
        settlement=st.sampled_from(("external", "external", "promotional")),
        initial_status=st.sampled_from((None, "created", "authorized", "settled")),
    ),
    st.builds(Pay, settle=st.booleans(), purchase=st.integers(0, 50)),
    # Twice as likely as the others: clocks moving back make entries recorded out of time order.
    st.builds(MoveClock, seconds=st.integers(-7200, 7200)),
    st.builds(MoveClock, seconds=st.integers(-7200, 7200)),
    st.builds(Project, batch_size=st.integers(1, 4)),
)

Store = Callable[[FixedClock], AbstractContextManager[CreditLedger]]


def empty_schema(schema: str) -> None:
    """Delete every row and restart the ids: several times cheaper than TRUNCATE per example."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection, connection.transaction():
        # The events table is append-only: only a superuser skipping its triggers may empty it.
        connection.execute("SET LOCAL session_replication_role = replica")
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            connection.execute(
                sql.SQL("DELETE FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )
        sequences = connection.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = %s", (schema,)
        ).fetchall()
        for (sequence,) in sequences:
            connection.execute(
                sql.SQL("ALTER SEQUENCE {}.{} RESTART").format(
                    sql.Identifier(schema), sql.Identifier(sequence)
                )
            )


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    """Opens a ledger on a fresh, empty store of the backend, once per example."""

    @contextmanager
    def open_one(clock: FixedClock) -> Iterator[CreditLedger]:
        if backend == "memory":
            url = "memory://"
        elif backend == "sqlite":
            url = f"sqlite:///{tmp_path / uuid.uuid4().hex}.sqlite"
        else:
            schema: str = request.getfixturevalue("postgres_session_schema")
            empty_schema(schema)
            url = postgres_url(schema)
        with open_ledger(url, clock=clock) as ledger:
            yield ledger

    return open_one


def run(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock, steps: list[Step]
) -> None:
    purchases: list[PurchaseView] = []
    for step in steps:
        # Refusals (an amount that rounds to nothing to pay, a payment the purchase's state does
        # not allow) record nothing, as they should; the sequence carries on.
        with contextlib.suppress(ValidationFailedError, PurchaseStateError):
            if isinstance(step, Initiate):
                purchases.append(
                    initiate(
                        ledger,
                        customer=step.customer,
                        currency=step.currency,
                        amount=step.amount,
                        cost_basis=step.cost_basis,
                        settlement=step.settlement,
                        initial_status=(
                            step.initial_status if step.settlement == "external" else None
                        ),
                    )
                )
            elif isinstance(step, Pay) and purchases:
                purchase = purchases[step.purchase % len(purchases)]
                (settle if step.settle else authorize)(ledger, purchase)
            elif isinstance(step, MoveClock):
                clock.set(clock.now() + timedelta(seconds=step.seconds))
            elif isinstance(step, Project):
                # A projector with a small batch, part-way through the history.
                ProjectionRunner(views.log, views.database, batch_size=step.batch_size).run_batch()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEPS, max_size=20))
def test_views_equal_the_log_groups_balance_and_balances_as_of_any_time_are_exact(
    store: Store, steps: list[Step]
) -> None:
    clock = FixedClock()
    with store(clock) as ledger, read_models(ledger) as views:
        run(ledger, views, clock, steps)
        views.runner.catch_up()

        report = verify(views.log, views.database)
        assert report.ok, report.as_dict()
        listed = views.read_models.list_purchases("acme", limit=1000).items
        assert listed == [ledger.get_purchase("acme", purchase.id) for purchase in listed]

        snapshot = views.database.snapshot()
        groups: dict[UUID, Decimal] = {}
        for entry in snapshot.entries:
            groups[entry.transaction_group_id] = (
                groups.get(entry.transaction_group_id, Decimal(0)) + entry.amount
            )
        assert all(total == 0 for total in groups.values())

        postings = logged_postings(ledger)
        events = [event for _, event in logged_events(ledger)]
        for instant in instants_to_check(clock, sorted({posting.at for posting in postings})):
            for customer in CUSTOMERS:
                expected = folded_balances(postings, "acme", customer, as_of=instant)
                found = views.read_models.balances("acme", customer, as_of=instant)
                assert {(line.currency, line.account): line.balance for line in found.balances} == {
                    (currency, account): expected.get((currency, account), Decimal(0))
                    for currency in {currency for currency, _ in expected}
                    for account in Account
                }, (customer, instant)
            found_open = views.read_models.receivables("acme", as_of=instant)
            assert {(item.purchase_id, item.stage.value) for item in found_open.items} == (
                receivables_as_of(events, instant)
            )


def instants_to_check(clock: FixedClock, moments: list[datetime]) -> list[datetime]:
    """Before everything, after everything, and some entries' instants exactly and just before
    (where an inclusive "as of" and an off-by-one differ)."""
    step = max(1, len(moments) // 6)
    chosen = moments[::step] + moments[-1:]
    return [
        clock.now() - timedelta(days=1),
        clock.now() + timedelta(days=1),
        *(
            moment + delta
            for moment in chosen
            for delta in (timedelta(0), -timedelta(microseconds=1))
        ),
    ]


def receivables_as_of(events: list[LedgerEvent], instant: datetime) -> set[tuple[UUID, str]]:
    """Payment-backed purchases granted by ``instant`` and not settled by then, with their stage."""
    stages: dict[UUID, str] = {}
    for event in events:
        if event.timestamp > instant:
            continue
        if isinstance(event, Initiated) and event.cost_basis is not None:
            stages[event.originator_id] = "open"
        elif isinstance(event, PaymentAuthorized):
            stages[event.originator_id] = "authorized"
        elif isinstance(event, PaymentSettled):
            stages.pop(event.originator_id, None)
    return set(stages.items())
