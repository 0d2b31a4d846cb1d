"""Requests the tests send to the ledger, built in ledger language, and a check that nothing moved.

Every builder returns a real command model with sensible defaults (100.123 USD of credit at 0.5
for an external purchase), so a test spells out only what it is about.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from uuid import UUID

from creditledger.application.commands import (
    AuthorizePayment,
    ConsumeCredits,
    CreateInvoice,
    FailPayment,
    InitiatePurchase,
    RefundPayment,
    SettlementInput,
    SettlePayment,
    VoidPurchase,
)
from creditledger.application.ledger import CreditLedger
from creditledger.application.purchase_view import HistoryEntry, PurchaseView

NAMESPACE = "acme"


def external_purchase(
    *,
    credit_amount: object = "100.123",
    cost_basis: object = "0.5",
    currency: str = "USD",
    initial_status: str | None = None,
    settlement_currency: str | None = None,
    namespace: str = NAMESPACE,
    idempotency_key: str | None = None,
    **fields: Any,
) -> InitiatePurchase:
    """An externally paid purchase; ``fields`` overrides any other field of the request."""
    return InitiatePurchase.model_validate(
        {
            "namespace": namespace,
            "customer_id": "cust-1",
            "currency": currency,
            "credit_amount": credit_amount,
            "cost_basis": cost_basis,
            "settlement": SettlementInput(
                type="external", initial_status=initial_status, currency=settlement_currency
            ),
            "idempotency_key": idempotency_key,
            **fields,
        }
    )


def promotional_purchase(
    *,
    credit_amount: object = "25",
    namespace: str = NAMESPACE,
    idempotency_key: str | None = None,
    **fields: Any,
) -> InitiatePurchase:
    """Free credit: no cost basis, no payment."""
    return InitiatePurchase.model_validate(
        {
            "namespace": namespace,
            "customer_id": "cust-1",
            "currency": "USD",
            "credit_amount": credit_amount,
            "settlement": SettlementInput(type="promotional"),
            "idempotency_key": idempotency_key,
            **fields,
        }
    )


def invoice_purchase(
    *,
    credit_amount: object = "100",
    cost_basis: object = "0.5",
    currency: str = "USD",
    namespace: str = NAMESPACE,
    idempotency_key: str | None = None,
    **fields: Any,
) -> InitiatePurchase:
    """A purchase paid by invoice: nothing is granted until its invoice exists (``created``)."""
    return InitiatePurchase.model_validate(
        {
            "namespace": namespace,
            "customer_id": "cust-1",
            "currency": currency,
            "credit_amount": credit_amount,
            "cost_basis": cost_basis,
            "settlement": SettlementInput(type="invoice"),
            "idempotency_key": idempotency_key,
            **fields,
        }
    )


def authorize(
    purchase_id: UUID,
    *,
    namespace: str = NAMESPACE,
    idempotency_key: str | None = None,
    external_reference: str | None = None,
    expected_version: int | None = None,
) -> AuthorizePayment:
    return AuthorizePayment(
        namespace=namespace,
        purchase_id=purchase_id,
        idempotency_key=idempotency_key,
        external_reference=external_reference,
        expected_version=expected_version,
    )


def settle(
    purchase_id: UUID,
    *,
    namespace: str = NAMESPACE,
    idempotency_key: str | None = None,
    external_reference: str | None = None,
    expected_version: int | None = None,
) -> SettlePayment:
    return SettlePayment(
        namespace=namespace,
        purchase_id=purchase_id,
        idempotency_key=idempotency_key,
        external_reference=external_reference,
        expected_version=expected_version,
    )


def consume(
    amount: object,
    *,
    customer_id: str = "cust-1",
    currency: str = "USD",
    namespace: str = NAMESPACE,
    idempotency_key: str | None = None,
    **fields: Any,
) -> ConsumeCredits:
    """A consumption of ``amount`` of the default customer's USD credit."""
    return ConsumeCredits.model_validate(
        {
            "namespace": namespace,
            "customer_id": customer_id,
            "currency": currency,
            "amount": amount,
            "idempotency_key": idempotency_key,
            **fields,
        }
    )


def void(
    purchase_id: UUID,
    *,
    namespace: str = NAMESPACE,
    idempotency_key: str | None = None,
    **fields: Any,
) -> VoidPurchase:
    return VoidPurchase.model_validate(
        {
            "namespace": namespace,
            "purchase_id": purchase_id,
            "idempotency_key": idempotency_key,
            **fields,
        }
    )


def create_invoice(
    purchase_id: UUID,
    *,
    invoice_id: str = "inv-1",
    line_id: str = "line-1",
    namespace: str = NAMESPACE,
    idempotency_key: str | None = None,
    **fields: Any,
) -> CreateInvoice:
    """The invoice billing an invoice purchase was created: its credits are granted."""
    return CreateInvoice.model_validate(
        {
            "namespace": namespace,
            "purchase_id": purchase_id,
            "invoice_id": invoice_id,
            "line_id": line_id,
            "idempotency_key": idempotency_key,
            **fields,
        }
    )


def fail(
    purchase_id: UUID,
    *,
    reason: str = "card declined",
    namespace: str = NAMESPACE,
    idempotency_key: str | None = None,
    **fields: Any,
) -> FailPayment:
    """The purchase's payment failed: its unconsumed credit is taken back."""
    return FailPayment.model_validate(
        {
            "namespace": namespace,
            "purchase_id": purchase_id,
            "reason": reason,
            "idempotency_key": idempotency_key,
            **fields,
        }
    )


def refund(
    purchase_id: UUID,
    amount: object = None,
    *,
    namespace: str = NAMESPACE,
    idempotency_key: str | None = None,
    **fields: Any,
) -> RefundPayment:
    """A refund of ``amount`` credits of a settled payment (everything unconsumed when None)."""
    return RefundPayment.model_validate(
        {
            "namespace": namespace,
            "purchase_id": purchase_id,
            "amount": amount,
            "idempotency_key": idempotency_key,
            **fields,
        }
    )


def amounts(*values: int | str) -> tuple[Decimal, ...]:
    """Amounts to compare a tuple of a view's amounts with, in one line."""
    return tuple(Decimal(value) for value in values)


def event_types(ledger: CreditLedger, purchase: PurchaseView) -> list[str]:
    return [entry.type for entry in ledger.purchase_history(purchase.namespace, purchase.id)]


@contextmanager
def nothing_written(ledger: CreditLedger, purchase: PurchaseView | None = None) -> Iterator[None]:
    """Asserts that the block leaves the store's log and the purchase's history as they were.

    Use it around a command that must be rejected: the rejection itself is asserted inside.
    """
    log_before = ledger.recorder.max_notification_id()
    state_before = _state(ledger, purchase)
    yield
    assert ledger.recorder.max_notification_id() == log_before
    assert _state(ledger, purchase) == state_before


def _state(
    ledger: CreditLedger, purchase: PurchaseView | None
) -> tuple[PurchaseView, list[HistoryEntry]] | None:
    if purchase is None:
        return None
    return (
        ledger.get_purchase(purchase.namespace, purchase.id),
        ledger.purchase_history(purchase.namespace, purchase.id),
    )
