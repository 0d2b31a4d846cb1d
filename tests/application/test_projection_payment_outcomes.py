"""The read models follow invoice purchases, payment failures and refunds: the purchases list
(filtered by the new statuses), the ledger balances, the receivable and settled revenue rows.

Expected values come from the ledger itself (``get_purchase``) or the domain's postings folded
from the log, never from the views under test."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.ledger import Account
from creditledger.infrastructure.projections.service import ReadModelService
from tests.application.builders import (
    NAMESPACE,
    authorize,
    consume,
    create_invoice,
    external_purchase,
    fail,
    invoice_purchase,
    refund,
    settle,
)
from tests.clock import FixedClock
from tests.readmodels_support import logged_balances, read_models


@pytest.fixture
def views(ledger: CreditLedger) -> Iterator[ReadModelService]:
    with read_models(ledger) as service:
        yield service


def test_purchases_are_listed_and_filtered_by_created_and_payment_failed(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    waiting = ledger.initiate(invoice_purchase()).purchase
    invoiced = ledger.initiate(invoice_purchase(customer_id="cust-2")).purchase
    ledger.create_invoice(create_invoice(invoiced.id))
    failing = ledger.initiate(external_purchase(credit_amount="100")).purchase
    ledger.consume(consume("30"))
    clock.advance(60)
    ledger.fail_payment(fail(failing.id, reason="card declined"))
    refunded = ledger.initiate(external_purchase(credit_amount="100", initial_status="settled"))
    ledger.refund(refund(refunded.purchase.id, "10"))
    views.runner.catch_up()
    read = views.read_models

    every = read.list_purchases(NAMESPACE).items

    assert every == [
        ledger.get_purchase(NAMESPACE, purchase.id)
        for purchase in (waiting, invoiced, failing, refunded.purchase)
    ]
    assert [p.id for p in read.list_purchases(NAMESPACE, status="created").items] == [waiting.id]
    failed = read.list_purchases(NAMESPACE, status="final.payment_failed").items
    assert [p.id for p in failed] == [failing.id]
    failure = failed[0].realizations.payment_failure
    assert failure is not None
    assert (failure.owed, failure.revoked) == (Decimal("30.00"), Decimal("70.00"))
    assert [p.id for p in read.list_purchases(NAMESPACE, status="final").items] == [
        refunded.purchase.id
    ]


def test_ledger_balances_follow_a_failure_and_a_refund(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    failing = ledger.initiate(
        external_purchase(credit_amount="100", initial_status="authorized", priority=1)
    ).purchase
    paid = ledger.initiate(
        external_purchase(credit_amount="100", initial_status="settled", priority=2)
    ).purchase
    ledger.consume(consume("130"))  # 100 of the first, 30 of the second
    clock.advance(60)
    ledger.fail_payment(fail(failing.id))
    ledger.refund(refund(paid.id, "20"))
    views.runner.catch_up()

    found = views.read_models.balances(NAMESPACE, "cust-1")

    shown = {account: found.balance("USD", account) for account in Account}
    assert shown == logged_balances(ledger)
    assert shown == {
        Account.CUSTOMER_FBO: Decimal(50),
        # The failed purchase's 100 consumed credits stay owed.
        Account.CUSTOMER_RECEIVABLE_OPEN: Decimal(-100),
        Account.CUSTOMER_RECEIVABLE_AUTHORIZED: Decimal(0),
        Account.CUSTOMER_ACCRUED: Decimal(130),
        Account.BREAKAGE: Decimal(0),
        # The paid purchase: -100 at authorization, +20 refunded; 50.00 paid, 10.00 returned.
        Account.BROKERAGE_CREDITS: Decimal(-80),
        Account.BROKERAGE_CASH: Decimal("40.00"),
        Account.WASH: Decimal("-40.00"),
    }


def test_the_receivable_rows_say_when_a_payment_failed_and_what_it_leaves_owed(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    waiting = ledger.initiate(invoice_purchase(credit_amount="100")).purchase
    invoiced_at = clock.advance(60)
    ledger.create_invoice(create_invoice(waiting.id))
    ledger.authorize(authorize(waiting.id))
    ledger.consume(consume("30"))
    failed_at = clock.advance(60)
    ledger.fail_payment(fail(waiting.id))
    never_invoiced = ledger.initiate(invoice_purchase(customer_id="cust-2")).purchase
    ledger.fail_payment(fail(never_invoiced.id))
    views.runner.catch_up()

    rows = {row.purchase_id: row for row in views.database.snapshot().receivables}

    # An invoice purchase is owed from its invoice; one never invoiced never owed anything.
    assert set(rows) == {waiting.id}
    row = rows[waiting.id]
    assert (row.opened_at, row.failed_at, row.settled_at) == (invoiced_at, failed_at, None)
    assert row.payment_amount == Decimal("50.00")
    assert row.owed == Decimal("15.00")  # the 30 credits consumed, at 0.5


def test_the_revenue_rows_count_refunds_on_their_own_day(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    purchase = ledger.initiate(external_purchase(credit_amount="100")).purchase
    ledger.settle(settle(purchase.id))
    clock.advance(24 * 3600)
    ledger.refund(refund(purchase.id, "20"))
    ledger.refund(refund(purchase.id, "0.01"))
    views.runner.catch_up()

    rows = sorted(views.database.snapshot().revenue, key=lambda row: row.day)

    assert [(row.amount, row.settlements, row.refunded, row.refunds) for row in rows] == [
        (Decimal("50.00"), 1, Decimal(0), 0),
        (Decimal(0), 0, Decimal("10.01"), 2),
    ]
    assert [row.net for row in rows] == [Decimal("50.00"), Decimal("-10.01")]
