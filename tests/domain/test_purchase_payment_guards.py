"""``apply`` refuses invoice, failure and refund events that do not fit the purchase's history.

However the events arrive (recorded, replayed, or forged in a store), no history can settle or
refund a failed payment, refund before settlement, invoice twice, or record a failure or a refund
whose amounts do not add up. A refused event leaves the purchase exactly as it was.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from creditledger.domain.errors import (
    CannotSettleNotAuthorizedPaymentError,
    EventSequenceError,
    InvalidTransitionError,
    LedgerError,
    PaymentAlreadyFailedError,
    PaymentAlreadySettledError,
    PaymentNotSettledError,
    RefundExceedsRemainingError,
)
from creditledger.domain.events import (
    InvoiceCreated,
    PaymentAuthorized,
    PaymentFailed,
    PaymentRefunded,
    PaymentSettled,
    PurchaseEvent,
    PurchaseVoided,
)
from creditledger.domain.purchase import CreditPurchase, GrantOutcome
from creditledger.domain.status import PurchaseStatus, SettlementType
from tests.domain.purchases import AT_NOW, NOW, purchase_in, snapshot

EXTERNAL = SettlementType.EXTERNAL
INVOICE = SettlementType.INVOICE


def _common(purchase: CreditPurchase) -> dict[str, Any]:
    return {
        "originator_id": purchase.id,
        "originator_version": purchase.version + 1,
        "timestamp": NOW,
    }


def failed(purchase: CreditPurchase, **amounts: Any) -> PaymentFailed:
    """The next event of ``purchase``: a failure with these amounts (by default: all revoked)."""
    granted = purchase.intent.credit_amount if purchase.granted else Decimal(0)
    fields: dict[str, Any] = {
        "reason": "declined",
        "revoked": granted,
        "released": Decimal(0),
        "consumed": Decimal(0),
        "reversed_authorization": purchase.payment.amount if purchase.payment else None,
        "transaction_group_id": uuid4(),
        "at": NOW,
        **amounts,
    }
    return PaymentFailed(**_common(purchase), **fields)


def refunded(purchase: CreditPurchase, amount: str, cash: str) -> PaymentRefunded:
    return PaymentRefunded(
        **_common(purchase),
        amount=Decimal(amount),
        cash_amount=Decimal(cash),
        transaction_group_id=uuid4(),
        at=NOW,
    )


def settled(purchase: CreditPurchase) -> PaymentSettled:
    return PaymentSettled(**_common(purchase), transaction_group_id=uuid4(), at=NOW)


def authorized(purchase: CreditPurchase) -> PaymentAuthorized:
    amount = purchase.payment_amount or Decimal(1)
    return PaymentAuthorized(
        **_common(purchase), amount=amount, transaction_group_id=uuid4(), at=NOW
    )


def invoiced(purchase: CreditPurchase) -> InvoiceCreated:
    return InvoiceCreated(
        **_common(purchase),
        invoice_id="inv-2",
        line_id="line-2",
        credit_grant_transaction_group_id=uuid4(),
        granted_at=NOW,
    )


def voided(purchase: CreditPurchase) -> PurchaseVoided:
    return PurchaseVoided(
        **_common(purchase), amount=Decimal(10), transaction_group_id=uuid4(), at=NOW
    )


def refuses(purchase: CreditPurchase, event: PurchaseEvent, error: type[LedgerError]) -> None:
    before = snapshot(purchase)
    with pytest.raises(error):
        purchase.apply(event)
    assert snapshot(purchase) == before


class TestAfterAFailure:
    @pytest.mark.parametrize("settlement", [EXTERNAL, INVOICE])
    def test_a_settlement_after_a_failure_is_refused(self, settlement: SettlementType) -> None:
        purchase = purchase_in(settlement, PurchaseStatus.PAYMENT_AUTHORIZED)
        purchase.apply(failed(purchase))

        refuses(purchase, settled(purchase), PaymentAlreadyFailedError)

    def test_an_authorization_after_a_failure_is_refused(self) -> None:
        purchase = purchase_in(EXTERNAL, PurchaseStatus.PAYMENT_FAILED)

        refuses(purchase, authorized(purchase), PaymentAlreadyFailedError)

    def test_a_second_failure_is_refused(self) -> None:
        purchase = purchase_in(EXTERNAL, PurchaseStatus.PAYMENT_FAILED)

        refuses(purchase, failed(purchase, revoked=Decimal(100)), PaymentAlreadyFailedError)

    def test_a_refund_or_a_void_after_a_failure_is_refused(self) -> None:
        purchase = purchase_in(EXTERNAL, PurchaseStatus.PAYMENT_FAILED)

        refuses(purchase, refunded(purchase, "10", "5.00"), PaymentAlreadyFailedError)
        refuses(purchase, voided(purchase), PaymentAlreadyFailedError)

    def test_an_invoice_after_the_invoice_purchase_failed_is_refused(self) -> None:
        purchase = purchase_in(INVOICE, PurchaseStatus.PAYMENT_FAILED)

        refuses(purchase, invoiced(purchase), PaymentAlreadyFailedError)


class TestFailureAmounts:
    def test_a_failure_after_settlement_is_refused(self) -> None:
        purchase = purchase_in(EXTERNAL, PurchaseStatus.FINAL)

        refuses(purchase, failed(purchase), PaymentAlreadySettledError)

    def test_a_failure_of_promotional_credit_is_refused(self) -> None:
        purchase = purchase_in(SettlementType.PROMOTIONAL, PurchaseStatus.FINAL)

        refuses(purchase, failed(purchase), InvalidTransitionError)

    @pytest.mark.parametrize(
        "amounts",
        [
            # revoked + released + consumed must be exactly the 100 granted
            {"revoked": Decimal(60), "consumed": Decimal(30)},
            {"revoked": Decimal(60), "released": Decimal(10), "consumed": Decimal(31)},
            # no negative part, even when the sum is right
            {"revoked": Decimal(110), "consumed": Decimal(-10)},
            # a pending payment was never authorized: nothing to reverse
            {"reversed_authorization": Decimal("50.00")},
        ],
        ids=["short", "over", "negative", "reverses-a-missing-authorization"],
    )
    def test_a_failure_whose_amounts_do_not_add_up_is_refused(
        self, amounts: dict[str, Decimal]
    ) -> None:
        purchase = purchase_in(EXTERNAL, PurchaseStatus.PAYMENT_PENDING)

        refuses(purchase, failed(purchase, **amounts), EventSequenceError)

    @pytest.mark.parametrize("reversed_authorization", [None, Decimal("49.99")])
    def test_a_failure_must_reverse_exactly_the_authorized_amount(
        self, reversed_authorization: Decimal | None
    ) -> None:
        purchase = purchase_in(EXTERNAL, PurchaseStatus.PAYMENT_AUTHORIZED)

        refuses(
            purchase,
            failed(purchase, reversed_authorization=reversed_authorization),
            EventSequenceError,
        )

    def test_a_failure_before_the_invoice_cannot_take_back_credit_never_granted(self) -> None:
        purchase = purchase_in(INVOICE, PurchaseStatus.CREATED)

        refuses(purchase, failed(purchase, revoked=Decimal(100)), EventSequenceError)

    def test_a_failure_that_adds_up_is_applied(self) -> None:
        purchase = purchase_in(EXTERNAL, PurchaseStatus.PAYMENT_AUTHORIZED)
        event = failed(
            purchase,
            revoked=Decimal(60),
            released=Decimal(10),
            consumed=Decimal(30),
        )

        purchase.apply(event)

        assert purchase.status is PurchaseStatus.PAYMENT_FAILED
        assert purchase.failure == event
        assert purchase.payment is not None
        assert purchase.payment.status == "failed"


class TestRefunds:
    def test_a_refund_before_settlement_is_refused(self) -> None:
        for status in (PurchaseStatus.PAYMENT_PENDING, PurchaseStatus.PAYMENT_AUTHORIZED):
            purchase = purchase_in(EXTERNAL, status)

            refuses(purchase, refunded(purchase, "10", "5.00"), PaymentNotSettledError)

    def test_a_refund_of_an_invoice_not_yet_paid_is_refused(self) -> None:
        purchase = purchase_in(INVOICE, PurchaseStatus.PAYMENT_AUTHORIZED)

        refuses(purchase, refunded(purchase, "10", "5.00"), PaymentNotSettledError)

    @pytest.mark.parametrize("cash", ["4.99", "5.01", "0", "10.00"])
    def test_a_refund_that_returns_the_wrong_cash_is_refused(self, cash: str) -> None:
        purchase = purchase_in(EXTERNAL, PurchaseStatus.FINAL)

        refuses(purchase, refunded(purchase, "10", cash), EventSequenceError)

    def test_refunds_beyond_the_credit_bought_are_refused(self) -> None:
        purchase = purchase_in(EXTERNAL, PurchaseStatus.FINAL)
        purchase.apply(refunded(purchase, "60", "30.00"))

        refuses(purchase, refunded(purchase, "40.01", "20.01"), RefundExceedsRemainingError)
        refuses(purchase, refunded(purchase, "0", "0.00"), RefundExceedsRemainingError)

    def test_a_refund_with_the_right_cash_is_applied(self) -> None:
        purchase = purchase_in(EXTERNAL, PurchaseStatus.FINAL)

        purchase.apply(refunded(purchase, "60", "30.00"))
        purchase.apply(refunded(purchase, "40", "20.00"))

        assert purchase.status is PurchaseStatus.FINAL
        assert (purchase.refunded, purchase.refunded_cash) == (Decimal(100), Decimal(50))


class TestInvoices:
    def test_a_second_invoice_is_refused(self) -> None:
        purchase = purchase_in(INVOICE, PurchaseStatus.PAYMENT_PENDING)

        refuses(purchase, invoiced(purchase), EventSequenceError)

    def test_an_invoice_of_an_external_purchase_is_refused(self) -> None:
        purchase = purchase_in(EXTERNAL, PurchaseStatus.PAYMENT_PENDING)

        refuses(purchase, invoiced(purchase), InvalidTransitionError)

    def test_payment_and_void_before_the_invoice_are_refused(self) -> None:
        purchase = purchase_in(INVOICE, PurchaseStatus.CREATED)

        refuses(purchase, authorized(purchase), InvalidTransitionError)
        refuses(purchase, voided(purchase), InvalidTransitionError)

    def test_a_settlement_before_the_authorization_is_refused(self) -> None:
        purchase = purchase_in(INVOICE, PurchaseStatus.PAYMENT_PENDING)

        refuses(purchase, settled(purchase), CannotSettleNotAuthorizedPaymentError)


@pytest.mark.parametrize("status", [PurchaseStatus.CREATED, PurchaseStatus.PAYMENT_PENDING])
def test_a_failure_command_whose_grant_disagrees_with_the_purchase_is_refused(
    status: PurchaseStatus,
) -> None:
    """The command checks its input too: a grant for a purchase that granted nothing, or none
    for one that did, means the wallet and the purchase disagree."""
    purchase = purchase_in(INVOICE, status)
    before = snapshot(purchase)
    everything = GrantOutcome(consumed=Decimal(0), forfeited=Decimal(0), remaining=Decimal(100))

    with pytest.raises(EventSequenceError):
        purchase.fail_payment(None if purchase.granted else everything, "declined", AT_NOW)

    assert purchase.collect_events() == []
    assert snapshot(purchase) == before
