"""Refunds: part or all of a settled payment goes back, credit is taken back from what remains
unconsumed, and the purchase stays ``final``. Refunding everything returns exactly the payment."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.purchase_view import PurchaseView
from creditledger.domain.errors import (
    IdempotencyKeyReusedError,
    InsufficientCreditError,
    InvalidTransitionError,
    NothingToRefundError,
    PaymentNotSettledError,
    RefundExceedsRemainingError,
    ValidationFailedError,
)
from creditledger.domain.ledger import Account
from tests.application.builders import (
    NAMESPACE,
    amounts,
    authorize,
    consume,
    create_invoice,
    event_types,
    external_purchase,
    invoice_purchase,
    nothing_written,
    promotional_purchase,
    refund,
    settle,
)
from tests.clock import START, FixedClock
from tests.readmodels_support import logged_balances


def _settled(ledger: CreditLedger, **fields: Any) -> PurchaseView:
    command = external_purchase(credit_amount="100", initial_status="settled", **fields)
    return ledger.initiate(command).purchase


def test_a_partial_refund_then_the_rest_returns_the_payment_for_the_unconsumed_credit(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    purchase = _settled(ledger)  # 100 credits, 50.00 paid
    ledger.consume(consume("30"))
    first_at = clock.advance(60)

    first = ledger.refund(refund(purchase.id, "20", reason="partial")).purchase

    assert first.status == "final"
    assert (first.refunded, first.remaining, first.consumed) == amounts(20, 50, 30)
    refunds = first.realizations.refunds
    assert refunds is not None
    assert (refunds.count, refunds.amount, refunds.cash_amount) == (
        1,
        Decimal("20.00"),
        Decimal("10.00"),
    )
    assert refunds.last_at == first_at
    assert ledger.customer_credits(NAMESPACE, "cust-1", "USD").balance == 50
    clock.advance(60)

    rest = ledger.refund(refund(purchase.id)).purchase  # no amount: all that remains

    assert (rest.refunded, rest.remaining, rest.revoked) == amounts(70, 0, 0)
    refunds = rest.realizations.refunds
    assert refunds is not None
    assert (refunds.count, refunds.amount, refunds.cash_amount) == (
        2,
        Decimal("70.00"),
        Decimal("35.00"),
    )
    assert ledger.get_purchase(NAMESPACE, purchase.id) == rest
    assert event_types(ledger, rest) == [
        "Initiated",
        "PaymentAuthorized",
        "PaymentSettled",
        "PaymentRefunded",
        "PaymentRefunded",
    ]
    # The credit is gone: nothing to spend, nothing more to refund.
    with nothing_written(ledger), pytest.raises(InsufficientCreditError):
        ledger.consume(consume("0.01"))
    with nothing_written(ledger, rest), pytest.raises(NothingToRefundError):
        ledger.refund(refund(purchase.id))
    history = ledger.credit_history(NAMESPACE, "cust-1", "USD")
    assert [(entry.type, entry.amount) for entry in history[-2:]] == [
        ("refunded", Decimal(20)),
        ("refunded", Decimal(50)),
    ]
    assert history[-1].balance_after == 0
    # Wash: 50.00 came in, 35.00 went back out; the 15.00 kept pays for the 30 credits consumed.
    balances = logged_balances(ledger)
    assert balances[Account.WASH] == Decimal("-15.00")
    assert balances[Account.CUSTOMER_FBO] == 0
    assert balances[Account.CUSTOMER_ACCRUED] == 30
    assert balances[Account.BROKERAGE_CREDITS] == -30
    assert balances[Account.BROKERAGE_CASH] == Decimal("15.00")


def test_refunds_of_a_half_dollar_in_thirds_return_exactly_the_half_dollar(
    ledger: CreditLedger,
) -> None:
    purchase = _settled(ledger, cost_basis="0.005")  # 100 credits, 0.50 paid

    for amount in ("33.33", "33.33", "33.34"):
        ledger.refund(refund(purchase.id, amount))

    cash = [
        entry.data["cash_amount"]
        for entry in ledger.purchase_history(NAMESPACE, purchase.id)
        if entry.type == "PaymentRefunded"
    ]
    assert [Decimal(amount) for amount in cash] == [
        Decimal("0.17"),
        Decimal("0.16"),
        Decimal("0.17"),
    ]
    refunds = ledger.get_purchase(NAMESPACE, purchase.id).realizations.refunds
    assert refunds is not None
    assert refunds.cash_amount == Decimal("0.50")


def test_a_refund_above_what_remains_is_refused_with_what_remains(ledger: CreditLedger) -> None:
    purchase = _settled(ledger)
    ledger.consume(consume("30"))
    ledger.refund(refund(purchase.id, "20"))

    with nothing_written(ledger, purchase), pytest.raises(RefundExceedsRemainingError) as refused:
        ledger.refund(refund(purchase.id, "50.01"))

    assert refused.value.code == "refund_exceeds_remaining"
    assert Decimal(refused.value.remaining) == 50


@pytest.mark.parametrize("initial_status", [None, "authorized"])
def test_a_payment_not_yet_settled_cannot_be_refunded(
    ledger: CreditLedger, initial_status: str | None
) -> None:
    command = external_purchase(initial_status=initial_status)
    purchase = ledger.initiate(command).purchase

    with nothing_written(ledger, purchase), pytest.raises(PaymentNotSettledError):
        ledger.refund(refund(purchase.id, "1"))


def test_promotional_credit_has_no_payment_to_refund(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(promotional_purchase()).purchase

    with nothing_written(ledger, purchase), pytest.raises(InvalidTransitionError):
        ledger.refund(refund(purchase.id))


@pytest.mark.parametrize("amount", ["0", "-5", "0.001", "lots", 1.5])
def test_a_refund_amount_that_is_not_a_positive_amount_is_refused(
    ledger: CreditLedger, amount: object
) -> None:
    purchase = _settled(ledger)

    with nothing_written(ledger, purchase), pytest.raises(ValidationFailedError):
        ledger.refund(refund(purchase.id, amount))


def test_expired_credit_cannot_be_refunded(ledger: CreditLedger, clock: FixedClock) -> None:
    purchase = _settled(ledger, expires_at=START + timedelta(days=1))
    clock.advance(2 * 24 * 3600)

    with nothing_written(ledger, purchase), pytest.raises(NothingToRefundError):
        ledger.refund(refund(purchase.id))


def test_a_paid_invoice_can_be_refunded(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(invoice_purchase(credit_amount="100")).purchase
    ledger.create_invoice(create_invoice(purchase.id))
    ledger.authorize(authorize(purchase.id))
    ledger.settle(settle(purchase.id))

    refunded = ledger.refund(refund(purchase.id, "40")).purchase

    assert (refunded.status, refunded.remaining) == ("final", Decimal(60))
    refunds = refunded.realizations.refunds
    assert refunds is not None
    assert refunds.cash_amount == Decimal("20.00")


def test_a_retried_refund_replays_its_answer_and_a_different_one_is_refused(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    purchase = _settled(ledger)
    first = ledger.refund(refund(purchase.id, "10", idempotency_key="r-1")).purchase
    clock.advance(60)

    again = ledger.refund(refund(purchase.id, "10", idempotency_key="r-1"))

    assert again.replayed
    assert again.purchase == first
    with nothing_written(ledger, first), pytest.raises(IdempotencyKeyReusedError):
        ledger.refund(refund(purchase.id, "11", idempotency_key="r-1"))
    # The same amount under a new key is a second refund.
    second = ledger.refund(refund(purchase.id, "10", idempotency_key="r-2")).purchase
    assert (second.refunded, second.remaining) == amounts(20, 80)
