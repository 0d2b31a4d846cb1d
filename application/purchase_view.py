"""What queries and commands return: the purchase shaped as the HTTP contract says, its history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from creditledger.domain.events import Initiated, PurchaseEvent
from creditledger.domain.money import round_money
from creditledger.domain.purchase import CreditPurchase, LedgerReference
from creditledger.domain.rules import status_after
from creditledger.domain.status import (
    InitialPaymentStatus,
    MetaStatus,
    PaymentStatus,
    PurchaseStatus,
    SettlementType,
)
from creditledger.domain.wallet import ZERO, Grant


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class SettlementView(_View):
    type: SettlementType
    initial_status: InitialPaymentStatus | None


class CreditGrantView(_View):
    transaction_group_id: UUID
    granted_at: datetime


class LedgerReferenceView(_View):
    transaction_group_id: UUID
    at: datetime
    external_reference: str | None = None


class ExternalPaymentView(_View):
    status: PaymentStatus
    amount: Decimal
    authorized: LedgerReferenceView
    settled: LedgerReferenceView | None


class InvoiceView(_View):
    invoice_id: str
    line_id: str
    created_at: datetime


class PaymentFailureView(_View):
    transaction_group_id: UUID
    at: datetime
    reason: str
    revoked: Decimal
    """The unconsumed credit taken back."""
    released: Decimal
    """Credit forfeited earlier (expired, voided) that is no longer owed either."""
    owed: Decimal
    """What the customer consumed and still owes: the open receivable the failure leaves."""
    external_reference: str | None = None


class RefundsView(_View):
    """Every refund of the payment so far, summed (each one is in the purchase's history and
    the ledger, with its own transaction group)."""

    count: int
    amount: Decimal
    """Credit taken back."""
    cash_amount: Decimal
    """Money returned: at most the payment, exactly the payment once every credit is refunded."""
    last_transaction_group_id: UUID
    last_at: datetime


class VoidView(_View):
    transaction_group_id: UUID
    at: datetime
    amount: Decimal
    reason: str | None


class ExpiryView(_View):
    at: datetime
    """When the expiry took effect: the grant's ``expires_at``."""
    amount: Decimal
    recorded: bool
    """False while the expiry is due but its event is not written yet (the amounts are exact)."""


class RealizationsView(_View):
    credit_grant: CreditGrantView | None
    """None while an invoice purchase waits for its invoice."""
    external_payment: ExternalPaymentView | None
    invoice: InvoiceView | None = None
    invoice_payment: ExternalPaymentView | None = None
    """An invoice purchase's payment (same shape as ``external_payment``)."""
    void: VoidView | None = None
    expiry: ExpiryView | None = None
    payment_failure: PaymentFailureView | None = None
    refunds: RefundsView | None = None


class PurchaseView(_View):
    """A credit purchase as callers see it (``http-api.md``, "Purchase body")."""

    id: UUID
    namespace: str
    customer_id: str
    currency: str
    credit_amount: Decimal
    cost_basis: Decimal | None
    payment_amount: Decimal | None
    settlement: SettlementView
    priority: int
    expires_at: datetime | None
    feature_filters: list[str]
    name: str | None
    metadata: dict[str, str]
    status: PurchaseStatus
    meta_status: MetaStatus
    remaining: Decimal
    """Credit left to spend: what was granted (nothing while an invoice purchase waits for its
    invoice) - consumed - expired - voided - revoked - refunded."""
    consumed: Decimal
    expired: Decimal
    voided: Decimal
    revoked: Decimal
    """Taken back because the payment failed."""
    refunded: Decimal
    """Taken back by refunds (the money returned is in ``realizations.refunds``)."""
    realizations: RealizationsView
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, purchase: CreditPurchase, grant: Grant | None = None) -> PurchaseView:
        """The purchase, with its credit amounts as its wallet's ``grant`` says (without one:
        nothing consumed or expired, only its own void)."""
        intent = purchase.intent
        status = purchase.status
        if status is None:
            msg = "a purchase view needs an initiated purchase"
            raise ValueError(msg)
        failure = purchase.failure
        granted = purchase.granted
        voided_amount = purchase.voided.amount if purchase.voided is not None else ZERO
        refunded = purchase.refunded
        # What the purchase records (void, failure, refunds) is read at its version, like the
        # void: the wallet's state at the same instant may already hold a later command's part.
        revoked = failure.revoked if failure is not None else ZERO
        if granted is None:
            grant = None  # nothing granted at this version, whatever the wallet holds by then
        if grant is not None:
            consumed, expired = grant.consumed, grant.expired
        else:
            # Without its wallet's grant: nothing consumed or expired, only its own records.
            consumed = failure.consumed if failure is not None else ZERO
            expired = ZERO
        granted_amount = intent.credit_amount if granted is not None else ZERO
        remaining = granted_amount - consumed - expired - voided_amount - revoked - refunded

        def money(amount: Decimal) -> Decimal:
            return round_money(amount, intent.currency)

        # One nested validation call (done in pydantic-core) is the cheapest way to build the
        # view: the hot path builds one per command.
        return cls.model_validate(
            {
                "id": purchase.id,
                "namespace": intent.namespace,
                "customer_id": intent.customer_id,
                "currency": intent.currency,
                "credit_amount": intent.credit_amount,
                "cost_basis": intent.cost_basis,
                "payment_amount": purchase.payment_amount,
                "settlement": {
                    "type": intent.settlement_type,
                    "initial_status": intent.initial_payment_status,
                },
                "priority": intent.priority,
                "expires_at": intent.expires_at,
                "feature_filters": list(intent.feature_filters),
                "name": intent.name,
                "metadata": dict(intent.metadata),
                "status": status,
                "meta_status": status.meta,
                # In the currency's minor units, like every amount of the body ("0.00", not "0").
                "remaining": money(remaining),
                "consumed": money(consumed),
                "expired": money(expired),
                "voided": money(voided_amount),
                "revoked": money(revoked),
                "refunded": money(refunded),
                "realizations": _realizations(purchase, grant, money),
                "version": purchase.version,
                "created_at": purchase.created_at,
                "updated_at": purchase.updated_at,
            }
        )


def _realizations(
    purchase: CreditPurchase, grant: Grant | None, money: Callable[[Decimal], Decimal]
) -> dict[str, object]:
    """What each step realized (``RealizationsView``), as data for one validation call."""
    payment = purchase.payment
    payment_view = None
    if payment is not None:
        payment_view = {
            "status": payment.status,
            "amount": payment.amount,
            "authorized": _reference(payment.authorized),
            "settled": _reference(payment.settled),
        }
    by_invoice = purchase.intent.settlement_type is SettlementType.INVOICE
    granted, invoice, voided, failure = (
        purchase.granted,
        purchase.invoice,
        purchase.voided,
        purchase.failure,
    )
    refunds = None
    if purchase.refunds:
        last = purchase.refunds[-1]
        refunds = {
            "count": len(purchase.refunds),
            "amount": money(purchase.refunded),
            "cash_amount": money(purchase.refunded_cash),
            "last_transaction_group_id": last.transaction_group_id,
            "last_at": last.at,
        }
    return {
        "credit_grant": (
            {"transaction_group_id": granted[0], "granted_at": granted[1]}
            if granted is not None
            else None
        ),
        "external_payment": None if by_invoice else payment_view,
        "invoice": (
            {
                "invoice_id": invoice.invoice_id,
                "line_id": invoice.line_id,
                "created_at": invoice.created_at,
            }
            if invoice is not None
            else None
        ),
        "invoice_payment": payment_view if by_invoice else None,
        "void": (
            {
                "transaction_group_id": voided.transaction_group_id,
                "at": voided.at,
                "amount": voided.amount,
                "reason": voided.reason,
            }
            if voided is not None
            else None
        ),
        "expiry": (
            {"at": grant.expired_at, "amount": grant.expired, "recorded": grant.expiry_recorded}
            if grant is not None and grant.expired_at is not None
            else None
        ),
        "payment_failure": (
            {
                "transaction_group_id": failure.transaction_group_id,
                "at": failure.at,
                "reason": failure.reason,
                "revoked": money(failure.revoked),
                "released": money(failure.released),
                "owed": money(failure.consumed),
                "external_reference": failure.external_reference,
            }
            if failure is not None
            else None
        ),
        "refunds": refunds,
    }


def _reference(reference: LedgerReference | None) -> dict[str, object] | None:
    if reference is None:
        return None
    return {
        "transaction_group_id": reference.transaction_group_id,
        "at": reference.at,
        "external_reference": reference.external_reference,
    }


class HistoryEntry(_View):
    """One event of a purchase's history, with the status it left the purchase in."""

    version: int
    type: str
    recorded_at: datetime
    data: dict[str, Any]
    status_after: PurchaseStatus


def event_data(event: PurchaseEvent) -> dict[str, Any]:
    """An event's own fields as JSON-ready data (without the envelope: id, version, time)."""
    return event.model_dump(
        mode="json", exclude={"originator_id", "originator_version", "timestamp"}
    )


def history_of(events: list[PurchaseEvent]) -> list[HistoryEntry]:
    if not events or not isinstance(events[0], Initiated):
        return []
    settlement = events[0].settlement_type
    entries = []
    status: PurchaseStatus | None = None
    for event in events:
        status = status_after(settlement, event.TYPE, status)
        if status is None:  # pragma: no cover - a history starts with its Initiated event
            return []
        entries.append(
            HistoryEntry(
                version=event.originator_version,
                type=event.TYPE.value,
                recorded_at=event.timestamp,
                data=event_data(event),
                status_after=status,
            )
        )
    return entries
