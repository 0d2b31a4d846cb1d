"""Voiding: what remains of a grant is forfeited now; consumed credit and the payment stay."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import (
    CreditGrantExpiredError,
    InsufficientCreditError,
    NothingToVoidError,
)
from tests.application.builders import (
    NAMESPACE,
    authorize,
    consume,
    external_purchase,
    nothing_written,
    promotional_purchase,
    settle,
    void,
)
from tests.clock import START, FixedClock


def test_a_void_forfeits_the_remaining_credit_and_leaves_the_payment_alone(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    purchase = ledger.initiate(external_purchase(credit_amount="100")).purchase
    ledger.consume(consume("30"))
    clock.advance(60)

    voided = ledger.void(void(purchase.id, reason="granted by mistake")).purchase

    assert (voided.remaining, voided.consumed, voided.voided) == (
        Decimal("0"),
        Decimal("30"),
        Decimal("70"),
    )
    assert voided.status == "active.payment.pending"
    assert voided.version == 2
    assert voided.realizations.void is not None
    assert voided.realizations.void.amount == Decimal("70")
    assert voided.realizations.void.reason == "granted by mistake"
    assert voided.realizations.void.at == START + timedelta(seconds=60)
    # The payment is still owed and can still be authorized and settled.
    settled = ledger.settle(settle(purchase.id)).purchase
    assert settled.status == "final"
    assert settled.voided == Decimal("70")


def test_voided_credit_cannot_be_spent(ledger: CreditLedger) -> None:
    voided = ledger.initiate(promotional_purchase(credit_amount="10", priority=1)).purchase
    ledger.initiate(promotional_purchase(credit_amount="5", priority=2))
    ledger.void(void(voided.id))

    with nothing_written(ledger), pytest.raises(InsufficientCreditError) as refused:
        ledger.consume(consume("6"))

    assert Decimal(refused.value.available) == 5


def test_a_second_void_is_refused(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(promotional_purchase(credit_amount="10")).purchase
    ledger.void(void(purchase.id))

    with nothing_written(ledger, purchase), pytest.raises(NothingToVoidError):
        ledger.void(void(purchase.id))


def test_a_fully_consumed_grant_has_nothing_to_void(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(promotional_purchase(credit_amount="10")).purchase
    ledger.consume(consume("10"))

    with nothing_written(ledger, purchase), pytest.raises(NothingToVoidError):
        ledger.void(void(purchase.id))


def test_an_expired_grant_cannot_be_voided_even_before_its_expiry_is_recorded(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    expires = START + timedelta(days=1)
    purchase = ledger.initiate(
        promotional_purchase(credit_amount="10", expires_at=expires)
    ).purchase
    clock.set(expires)

    with nothing_written(ledger, purchase), pytest.raises(CreditGrantExpiredError):
        ledger.void(void(purchase.id))


def test_a_retry_with_the_same_key_returns_the_first_answer(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    purchase = ledger.initiate(external_purchase(credit_amount="10")).purchase
    first = ledger.void(void(purchase.id, idempotency_key="void-1"))
    clock.advance()
    ledger.authorize(authorize(purchase.id))

    retry = ledger.void(void(purchase.id, idempotency_key="void-1"))

    assert retry.replayed
    assert retry.purchase == first.purchase


def test_a_void_is_in_the_purchase_history_and_as_of_queries(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    purchase = ledger.initiate(promotional_purchase(credit_amount="10")).purchase
    clock.advance(60)
    ledger.void(void(purchase.id))

    history = ledger.purchase_history(NAMESPACE, purchase.id)
    before = ledger.get_purchase(NAMESPACE, purchase.id, as_of=START + timedelta(seconds=30))
    by_version = ledger.get_purchase(NAMESPACE, purchase.id, version=1)

    assert [(e.type, e.status_after) for e in history] == [
        ("Initiated", "final"),
        ("PurchaseVoided", "final"),
    ]
    assert (before.remaining, before.voided) == (Decimal("10"), Decimal("0"))
    assert by_version.remaining == Decimal("10")
