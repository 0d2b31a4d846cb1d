"""The read models' answers once payments fail or are refunded, on memory, SQLite and PostgreSQL:
receivables of failed payments (owed for what was consumed, closed when nothing was), invoice
purchases owed from their invoice, settled revenue net of refunds booked on their own day, and
balances in their units (a due expiry of a partly refunded grant forfeits only what remains).

Expected amounts follow from the domain's rules (the payment of a credit amount is
``payment_amount``); the event log is folded by the domain where a test compares balances.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from creditledger.application.commands import CreateInvoice, FailPayment, RefundPayment
from creditledger.application.ledger import CreditLedger
from creditledger.application.readmodels import ReceivableStage
from creditledger.domain.ledger import Account
from creditledger.domain.status import Unit
from creditledger.infrastructure.projections.service import ReadModelService
from tests.application.builders import consume, external_purchase
from tests.clock import START, FixedClock
from tests.readmodels_support import (
    authorize,
    folded_balances,
    initiate,
    logged_postings,
    read_models,
    settle,
)


@pytest.fixture
def views(ledger: CreditLedger) -> Iterator[ReadModelService]:
    with read_models(ledger) as service:
        yield service


def _fail(ledger: CreditLedger, purchase_id: object, reason: str = "declined") -> None:
    ledger.fail_payment(FailPayment(namespace="acme", purchase_id=purchase_id, reason=reason))


def test_a_failed_payment_is_owed_for_the_credit_consumed_before_it(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    purchase = initiate(ledger, amount="100", cost_basis="0.5")
    ledger.consume(consume("33.33", feature_key=None))
    authorized_at = clock.advance(60)
    authorize(ledger, purchase)
    failed_at = clock.advance(60)
    _fail(ledger, purchase.id)
    views.runner.catch_up()
    read = views.read_models

    [before] = read.receivables("acme", as_of=failed_at - timedelta(microseconds=1)).items
    assert (before.stage, before.owed, before.authorized_at, before.failed_at) == (
        ReceivableStage.AUTHORIZED,
        Decimal("50.00"),
        authorized_at,
        None,
    )
    for moment in (failed_at, None):
        [after] = read.receivables("acme", as_of=moment).items
        # round(33.33 x 0.5) = 16.67 (half away from zero), what the consumed credit cost.
        assert (after.stage, after.owed, after.payment_amount, after.failed_at) == (
            ReceivableStage.FAILED,
            Decimal("16.67"),
            Decimal("50.00"),
            failed_at,
        )


def test_a_failure_with_nothing_consumed_closes_the_receivable(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    purchase = initiate(ledger)
    failed_at = clock.advance(60)
    _fail(ledger, purchase.id)
    views.runner.catch_up()
    read = views.read_models
    assert [item.stage for item in read.receivables("acme", as_of=START).items] == [
        ReceivableStage.OPEN
    ]
    assert read.receivables("acme", as_of=failed_at).items == []
    assert read.receivables("acme").items == []


def test_an_invoice_purchase_is_owed_from_its_invoice_and_never_if_it_fails_before(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    invoiced = initiate(ledger, settlement="invoice", amount="10", cost_basis="0.5")
    cancelled = initiate(ledger, settlement="invoice", customer="cust-2")
    invoiced_at = clock.advance(60)
    ledger.create_invoice(
        CreateInvoice(namespace="acme", purchase_id=invoiced.id, invoice_id="i", line_id="l")
    )
    _fail(ledger, cancelled.id, "cancelled")
    views.runner.catch_up()
    read = views.read_models
    assert read.receivables("acme", as_of=START + timedelta(seconds=59)).items == []
    [owed] = read.receivables("acme").items
    assert (owed.purchase_id, owed.stage, owed.owed, owed.opened_at) == (
        invoiced.id,
        ReceivableStage.OPEN,
        Decimal("5.00"),
        invoiced_at,
    )


def test_settled_revenue_books_refunds_on_their_own_day_and_says_the_net(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    first = settle(ledger, authorize(ledger, initiate(ledger, amount="100", cost_basis="0.5")))
    initiate(ledger, customer="cust-2", amount="10", cost_basis="1", initial_status="settled")
    clock.advance(24 * 3600)
    ledger.refund(RefundPayment(namespace="acme", purchase_id=first.id, amount="25"))
    ledger.refund(RefundPayment(namespace="acme", purchase_id=first.id, amount="0.03"))
    views.runner.catch_up()
    read = views.read_models
    day = START.date()
    days = read.settled_revenue("acme", day, day + timedelta(days=1)).days
    assert [
        (d.day, d.amount, d.credits, d.settlements, d.refunded, d.refunds, d.net) for d in days
    ] == [
        (day, Decimal("60.00"), Decimal("110.00"), 2, Decimal(0), 0, Decimal("60.00")),
        # 25 credits return 12.50; 25.03 in all return round(12.515) = 12.52, so 0.02 more.
        (
            day + timedelta(days=1),
            Decimal(0),
            Decimal(0),
            0,
            Decimal("12.52"),
            2,
            Decimal("-12.52"),
        ),
    ]
    # A past day's report never changes: the refunds did not touch the settlement's day.
    assert read.settled_revenue("acme", day, day).days == days[:1]


def test_balances_say_each_accounts_unit_and_a_due_expiry_forfeits_only_what_remains(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    purchase = ledger.initiate(
        external_purchase(
            credit_amount="100",
            cost_basis="0.5",
            initial_status="settled",
            expires_at=START + timedelta(hours=1),
        )
    ).purchase
    ledger.consume(consume("30", feature_key=None))
    ledger.refund(RefundPayment(namespace="acme", purchase_id=purchase.id, amount="20"))
    clock.advance(2 * 3600)  # past expires_at; the expiry is due, not recorded
    views.runner.catch_up()
    found = views.read_models.balances("acme", "cust-1")
    assert {line.account: line.unit for line in found.balances} == {
        account: account.unit for account in Account
    }
    assert {line.unit for line in found.balances} == {Unit.CREDITS, Unit.CASH}
    balances = {line.account: line.balance for line in found.balances if line.balance}
    assert balances == {
        Account.CUSTOMER_ACCRUED: Decimal("30.00"),
        Account.BREAKAGE: Decimal("50.00"),  # 100 - 30 consumed - 20 refunded
        Account.BROKERAGE_CREDITS: Decimal("-80.00"),
        Account.BROKERAGE_CASH: Decimal("40.00"),
        Account.WASH: Decimal("-40.00"),
    }
    # Once the expiry is recorded, the ledger books exactly what the balances showed before it.
    ledger.expire_due("acme", "cust-1", "USD")
    views.runner.catch_up()
    recorded = views.read_models.balances("acme", "cust-1")
    assert recorded.balances == found.balances
    folded = folded_balances(logged_postings(ledger), "acme", "cust-1")
    assert {account: amount for (_, account), amount in folded.items() if amount} == balances
