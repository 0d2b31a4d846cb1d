"""Read models follow credit both ways: consumption, expiry (exact before it is written), void."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.source import EventLog
from creditledger.domain.ledger import Account
from creditledger.infrastructure.projections.operations import verify
from creditledger.infrastructure.projections.service import ReadModelService
from tests.application.builders import (
    NAMESPACE,
    consume,
    external_purchase,
    promotional_purchase,
    void,
)
from tests.clock import START, FixedClock
from tests.readmodels_support import folded_balances, logged_postings, read_models

EXPIRES = START + timedelta(days=7)
FBO, ACCRUED, BREAKAGE = Account.CUSTOMER_FBO, Account.CUSTOMER_ACCRUED, Account.BREAKAGE


@pytest.fixture
def views(ledger: CreditLedger) -> Iterator[ReadModelService]:
    with read_models(ledger) as service:
        yield service


def usd(views: ReadModelService, as_of: object = None) -> dict[Account, Decimal]:
    views.runner.catch_up()
    found = views.read_models.balances(NAMESPACE, "cust-1", as_of=as_of)  # type: ignore[arg-type]
    return {account: found.balance("USD", account) for account in (FBO, ACCRUED, BREAKAGE)}


def test_consumption_moves_credit_from_fbo_to_accrued_and_shows_on_the_purchase(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    first = ledger.initiate(promotional_purchase(credit_amount="10", priority=1)).purchase
    second = ledger.initiate(external_purchase(credit_amount="20", priority=2)).purchase
    ledger.consume(consume("12"))

    assert usd(views) == {FBO: Decimal("18"), ACCRUED: Decimal("12"), BREAKAGE: Decimal(0)}
    listed = {p.id: p for p in views.read_models.list_purchases(NAMESPACE).items}
    assert (listed[first.id].consumed, listed[first.id].remaining) == (Decimal(10), Decimal(0))
    assert (listed[second.id].consumed, listed[second.id].remaining) == (Decimal(2), Decimal(18))
    assert listed[second.id] == ledger.get_purchase(NAMESPACE, second.id)


def test_an_expiry_is_exact_in_balances_before_and_after_it_is_recorded(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    purchase = ledger.initiate(promotional_purchase(credit_amount="10", expires_at=EXPIRES))
    ledger.consume(consume("4"))
    clock.set(EXPIRES + timedelta(days=2))

    before_recorded = usd(views)
    listed_before = views.read_models.list_purchases(NAMESPACE).items[0]
    ledger.expire_due(NAMESPACE, "cust-1", "USD")
    after_recorded = usd(views)

    expected = {FBO: Decimal(0), ACCRUED: Decimal(4), BREAKAGE: Decimal(6)}
    assert before_recorded == after_recorded == expected
    # As of just before the expiry, the credit was still there; at it, it was gone.
    assert usd(views, EXPIRES - timedelta(microseconds=1))[FBO] == Decimal(6)
    assert usd(views, EXPIRES) == expected
    assert listed_before.expired == Decimal(6)
    assert listed_before.realizations.expiry is not None
    assert not listed_before.realizations.expiry.recorded
    listed_after = views.read_models.list_purchases(NAMESPACE).items[0]
    assert listed_after == ledger.get_purchase(NAMESPACE, purchase.purchase.id)
    assert listed_after.realizations.expiry is not None
    assert listed_after.realizations.expiry.recorded


def test_a_void_moves_what_remains_to_breakage(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    purchase = ledger.initiate(external_purchase(credit_amount="10")).purchase
    ledger.consume(consume("3"))
    ledger.void(void(purchase.id, reason="mistake"))

    assert usd(views) == {FBO: Decimal(0), ACCRUED: Decimal(3), BREAKAGE: Decimal(7)}
    [listed] = views.read_models.list_purchases(NAMESPACE).items
    assert listed == ledger.get_purchase(NAMESPACE, purchase.id)
    assert listed.realizations.void is not None
    assert listed.realizations.void.reason == "mistake"


def test_the_read_models_equal_a_fold_of_the_log_and_a_rebuild(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    for amount, priority in (("10", 3), ("5", 1), ("7", 2)):
        ledger.initiate(
            promotional_purchase(credit_amount=amount, priority=priority, expires_at=EXPIRES)
        )
        clock.advance()
    voided = ledger.initiate(external_purchase(credit_amount="8")).purchase
    ledger.consume(consume("6"))
    ledger.void(void(voided.id))
    clock.set(EXPIRES + timedelta(hours=1))
    ledger.expire_due(NAMESPACE, "cust-1", "USD")
    views.runner.catch_up()

    expected = folded_balances(logged_postings(ledger), NAMESPACE, "cust-1")
    assert usd(views) == {
        account: expected.get(("USD", account), Decimal(0)) for account in usd(views)
    }
    report = verify(EventLog(ledger), views.database)
    assert report.ok, report
