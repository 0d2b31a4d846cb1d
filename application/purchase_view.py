"""What queries and commands return: the purchase shaped as the HTTP contract says, its history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from creditledger.domain.events import Initiated, PurchaseEvent
from creditledger.domain.purchase import CreditPurchase, LedgerReference
from creditledger.domain.rules import STATUS_AFTER
from creditledger.domain.status import (
    InitialPaymentStatus,
    MetaStatus,
    PaymentStatus,
    PurchaseStatus,
    SettlementType,
)


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


class RealizationsView(_View):
    credit_grant: CreditGrantView
    external_payment: ExternalPaymentView | None


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
    realizations: RealizationsView
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, purchase: CreditPurchase) -> PurchaseView:
        intent = purchase.intent
        status = purchase.status
        if status is None:
            msg = "a purchase view needs an initiated purchase"
            raise ValueError(msg)
        payment = purchase.payment
        external_payment = None
        if payment is not None:
            external_payment = {
                "status": payment.status,
                "amount": payment.amount,
                "authorized": _reference(payment.authorized),
                "settled": _reference(payment.settled),
            }
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
                "realizations": {
                    "credit_grant": {
                        "transaction_group_id": intent.credit_grant_transaction_group_id,
                        "granted_at": intent.granted_at,
                    },
                    "external_payment": external_payment,
                },
                "version": purchase.version,
                "created_at": purchase.created_at,
                "updated_at": purchase.updated_at,
            }
        )


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
    return [
        HistoryEntry(
            version=event.originator_version,
            type=event.TYPE.value,
            recorded_at=event.timestamp,
            data=event_data(event),
            status_after=STATUS_AFTER[(settlement, event.TYPE)],
        )
        for event in events
    ]
