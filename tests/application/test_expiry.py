"""Expiry: at exactly ``expires_at`` what remains of a grant is forfeited, for every query."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import InsufficientCreditError
from tests.application.builders import NAMESPACE, consume, nothing_written, promotional_purchase
from tests.clock import START, FixedClock

EXPIRES = START + timedelta(days=7)


def _expiring(ledger: CreditLedger, amount: str = "10") -> None:
    ledger.initiate(promotional_purchase(credit_amount=amount, expires_at=EXPIRES))


def test_a_grant_is_spendable_until_the_instant_before_it_expires(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    _expiring(ledger)
    clock.set(EXPIRES - timedelta(microseconds=1))

    consumption = ledger.consume(consume("4")).consumption

    assert consumption.balance_after == Decimal("6")


def test_at_exactly_expires_at_nothing_can_be_drawn_and_nothing_is_written(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    _expiring(ledger)
    clock.set(EXPIRES)

    with nothing_written(ledger), pytest.raises(InsufficientCreditError) as refused:
        ledger.consume(consume("1"))

    assert Decimal(refused.value.available) == 0


def test_a_consumption_after_the_expiry_records_the_expiry_first(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    _expiring(ledger, "10")
    ledger.consume(consume("3"))
    ledger.initiate(promotional_purchase(credit_amount="5"))
    clock.set(EXPIRES + timedelta(hours=1))

    ledger.consume(consume("2"))

    history = ledger.credit_history(NAMESPACE, "cust-1", "USD")
    assert [(e.type.value, e.amount, e.balance_after) for e in history] == [
        ("granted", Decimal("10"), Decimal("10")),
        ("consumed", Decimal("3"), Decimal("7")),
        ("granted", Decimal("5"), Decimal("12")),
        ("expired", Decimal("7"), Decimal("5")),
        ("consumed", Decimal("2"), Decimal("3")),
    ]
    expired = history[3]
    assert expired.effective_at == EXPIRES
    assert expired.recorded_at == EXPIRES + timedelta(hours=1)


def test_sweeping_twice_records_each_expiry_once(ledger: CreditLedger, clock: FixedClock) -> None:
    _expiring(ledger)
    clock.set(EXPIRES + timedelta(minutes=5))

    first = ledger.expire_due(NAMESPACE, "cust-1", "USD")
    with nothing_written(ledger):
        second = ledger.expire_due(NAMESPACE, "cust-1", "USD")

    assert [(e.amount, e.effective_at) for e in first] == [(Decimal("10"), EXPIRES)]
    assert second == []


def test_nothing_is_due_before_the_expiry(ledger: CreditLedger, clock: FixedClock) -> None:
    _expiring(ledger)
    clock.set(EXPIRES - timedelta(seconds=1))
    with nothing_written(ledger):
        assert ledger.expire_due(NAMESPACE, "cust-1", "USD") == []


def test_the_purchase_shows_its_expiry_exactly_before_the_event_is_written(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    granted = ledger.initiate(promotional_purchase(credit_amount="10", expires_at=EXPIRES))
    ledger.consume(consume("4"))
    clock.set(EXPIRES + timedelta(days=1))

    purchase = ledger.get_purchase(NAMESPACE, granted.purchase.id)

    assert (purchase.remaining, purchase.consumed, purchase.expired) == (
        Decimal("0"),
        Decimal("4"),
        Decimal("6"),
    )
    assert purchase.realizations.expiry is not None
    assert purchase.realizations.expiry.at == EXPIRES
    assert not purchase.realizations.expiry.recorded

    ledger.expire_due(NAMESPACE, "cust-1", "USD")
    recorded = ledger.get_purchase(NAMESPACE, purchase.id)
    assert recorded.realizations.expiry is not None
    assert recorded.realizations.expiry.recorded
    assert (recorded.remaining, recorded.expired) == (purchase.remaining, purchase.expired)


def test_credits_as_of_any_time_are_exact_around_the_expiry(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    _expiring(ledger)
    clock.set(EXPIRES + timedelta(days=30))  # long after, the expiry still unrecorded

    just_before = ledger.customer_credits(
        NAMESPACE, "cust-1", "USD", as_of=EXPIRES - timedelta(microseconds=1)
    )
    at_expiry = ledger.customer_credits(NAMESPACE, "cust-1", "USD", as_of=EXPIRES)

    assert just_before.balance == Decimal("10")
    assert at_expiry.balance == Decimal("0")
    assert at_expiry.grants == []
    ledger.expire_due(NAMESPACE, "cust-1", "USD")
    assert ledger.customer_credits(NAMESPACE, "cust-1", "USD", as_of=EXPIRES) == at_expiry
