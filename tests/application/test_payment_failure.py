"""A failed payment: the unconsumed credit is revoked, what was consumed stays owed, and the
purchase rests in ``final.payment_failed``, where every later command is refused."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.purchase_view import PurchaseView
from creditledger.domain.errors import (
    IdempotencyKeyReusedError,
    InsufficientCreditError,
    PaymentAlreadyFailedError,
    PaymentAlreadySettledError,
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
    fail,
    invoice_purchase,
    nothing_written,
    promotional_purchase,
    refund,
    settle,
    void,
)
from tests.clock import FixedClock
from tests.readmodels_support import logged_balances, logged_postings

FBO = Account.CUSTOMER_FBO
OPEN = Account.CUSTOMER_RECEIVABLE_OPEN
AUTHORIZED = Account.CUSTOMER_RECEIVABLE_AUTHORIZED


def _pending(ledger: CreditLedger) -> PurchaseView:
    return ledger.initiate(external_purchase(credit_amount="100")).purchase


def _authorized(ledger: CreditLedger) -> PurchaseView:
    return ledger.initiate(
        external_purchase(credit_amount="100", initial_status="authorized")
    ).purchase


def _invoiced(ledger: CreditLedger) -> PurchaseView:
    purchase = ledger.initiate(invoice_purchase(credit_amount="100")).purchase
    return ledger.create_invoice(create_invoice(purchase.id)).purchase


def _invoice_approved(ledger: CreditLedger) -> PurchaseView:
    return ledger.authorize(authorize(_invoiced(ledger).id)).purchase


STARTS: dict[str, Callable[[CreditLedger], PurchaseView]] = {
    "external-pending": _pending,
    "external-authorized": _authorized,
    "invoice-pending": _invoiced,
    "invoice-authorized": _invoice_approved,
}


@pytest.mark.parametrize("start", STARTS)
def test_a_failure_revokes_the_unconsumed_credit_and_leaves_the_consumed_part_owed(
    ledger: CreditLedger, clock: FixedClock, start: str
) -> None:
    purchase = STARTS[start](ledger)
    ledger.consume(consume("30"))
    failed_at = clock.advance(60)

    failed = ledger.fail_payment(fail(purchase.id, reason="card declined")).purchase

    assert (failed.status, failed.meta_status) == ("final.payment_failed", "final")
    assert (failed.remaining, failed.consumed, failed.revoked) == amounts(0, 30, 70)
    failure = failed.realizations.payment_failure
    assert failure is not None
    assert (failure.revoked, failure.released, failure.owed) == (
        Decimal("70.00"),
        Decimal("0.00"),
        Decimal("30.00"),
    )
    assert (failure.reason, failure.at) == ("card declined", failed_at)
    payment = failed.realizations.external_payment or failed.realizations.invoice_payment
    if "authorized" in start:
        assert payment is not None
        assert payment.status == "failed"
    else:
        assert payment is None
    assert ledger.get_purchase(NAMESPACE, purchase.id) == failed
    # The customer can no longer spend it.
    assert ledger.customer_credits(NAMESPACE, "cust-1", "USD").balance == 0
    with nothing_written(ledger), pytest.raises(InsufficientCreditError):
        ledger.consume(consume("0.01"))
    history = ledger.credit_history(NAMESPACE, "cust-1", "USD")
    assert (history[-1].type, history[-1].amount, history[-1].purchase_id) == (
        "revoked",
        Decimal(70),
        purchase.id,
    )
    assert history[-1].balance_after == 0
    # Ledger: FBO empty, the open receivable is exactly what was consumed, the authorization (if
    # any) is undone through brokerage.
    balances = logged_balances(ledger)
    assert balances[FBO] == 0
    assert balances[OPEN] == -30
    assert balances[Account.CUSTOMER_ACCRUED] == 30
    assert balances[AUTHORIZED] == 0
    assert balances[Account.BROKERAGE_CREDITS] == 0
    assert balances[Account.BROKERAGE_CASH] == 0
    assert balances[Account.WASH] == 0


def test_an_invoice_purchase_failing_before_its_invoice_owes_nothing_and_books_nothing(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(invoice_purchase()).purchase

    failed = ledger.fail_payment(fail(purchase.id, reason="invoice voided")).purchase

    assert failed.status == "final.payment_failed"
    assert failed.realizations.credit_grant is None
    failure = failed.realizations.payment_failure
    assert failure is not None
    assert (failure.revoked, failure.released, failure.owed) == amounts(0, 0, 0)
    assert logged_postings(ledger) == []
    assert ledger.credit_history(NAMESPACE, "cust-1", "USD") == []
    with nothing_written(ledger, failed), pytest.raises(PaymentAlreadyFailedError):
        ledger.create_invoice(create_invoice(purchase.id))


def test_credit_voided_before_the_failure_is_released_not_revoked(
    ledger: CreditLedger,
) -> None:
    purchase = _authorized(ledger)
    ledger.consume(consume("30"))
    ledger.void(void(purchase.id))

    failed = ledger.fail_payment(fail(purchase.id)).purchase

    failure = failed.realizations.payment_failure
    assert failure is not None
    assert (failure.revoked, failure.released, failure.owed) == amounts(0, 70, 30)
    assert (failed.voided, failed.revoked, failed.remaining) == amounts(70, 0, 0)
    balances = logged_balances(ledger)
    assert (balances[OPEN], balances[Account.BREAKAGE], balances[FBO]) == amounts(-30, 0, 0)


def test_a_failure_takes_back_only_its_own_purchases_credit(ledger: CreditLedger) -> None:
    failing = ledger.initiate(external_purchase(credit_amount="100", priority=1)).purchase
    other = ledger.initiate(promotional_purchase(credit_amount="25", priority=2)).purchase
    ledger.consume(consume("110"))  # 100 from the first, 10 from the other

    ledger.fail_payment(fail(failing.id))

    assert ledger.get_purchase(NAMESPACE, other.id).remaining == 15
    assert ledger.customer_credits(NAMESPACE, "cust-1", "USD").balance == 15
    spent = ledger.consume(consume("15")).consumption
    assert [a.purchase_id for a in spent.allocations] == [other.id]


def test_a_settled_payment_cannot_fail(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(external_purchase(initial_status="settled")).purchase

    with nothing_written(ledger, purchase), pytest.raises(PaymentAlreadySettledError):
        ledger.fail_payment(fail(purchase.id))


_LATE: dict[str, Callable[[CreditLedger, UUID], object]] = {
    "authorize": lambda ledger, p: ledger.authorize(authorize(p)),
    "settle": lambda ledger, p: ledger.settle(settle(p)),
    "void": lambda ledger, p: ledger.void(void(p)),
    "fail": lambda ledger, p: ledger.fail_payment(fail(p, reason="again")),
    "refund": lambda ledger, p: ledger.refund(refund(p)),
    "invoice": lambda ledger, p: ledger.create_invoice(create_invoice(p)),
}


@pytest.mark.parametrize("command", _LATE)
def test_every_command_after_a_failure_is_refused_as_already_failed(
    ledger: CreditLedger, command: str
) -> None:
    purchase = ledger.fail_payment(fail(_invoice_approved(ledger).id)).purchase

    with nothing_written(ledger, purchase), pytest.raises(PaymentAlreadyFailedError):
        _LATE[command](ledger, purchase.id)


def test_a_retried_failure_replays_its_answer_and_a_different_one_is_refused(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    purchase = _pending(ledger)
    ledger.consume(consume("30"))
    first = ledger.fail_payment(fail(purchase.id, idempotency_key="f-1")).purchase
    clock.advance(60)

    again = ledger.fail_payment(fail(purchase.id, idempotency_key="f-1"))

    assert again.replayed
    assert again.purchase == first
    assert event_types(ledger, first) == ["Initiated", "PaymentFailed"]
    with nothing_written(ledger, first), pytest.raises(IdempotencyKeyReusedError):
        ledger.fail_payment(fail(purchase.id, reason="fraud", idempotency_key="f-1"))
