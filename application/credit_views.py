"""What credit commands and queries return: consumptions, spendable grants, credit history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import assert_never
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from creditledger.domain.events import (
    CreditsConsumed,
    GrantAdded,
    GrantExpired,
    GrantRevoked,
    GrantVoided,
    WalletEvent,
)
from creditledger.domain.status import RevocationCause
from creditledger.domain.wallet import ZERO, Grant


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class AllocationView(_View):
    purchase_id: UUID
    amount: Decimal


class ConsumptionView(_View):
    """One consumption: how much, from which grants (in burn-down order), and what was left."""

    id: UUID
    namespace: str
    customer_id: str
    currency: str
    amount: Decimal
    feature: str | None
    reference: str | None
    allocations: list[AllocationView]
    balance_after: Decimal
    consumed_at: datetime
    sequence: int
    """The consumption's number in the customer's credit history for this currency."""

    @classmethod
    def of(cls, event: CreditsConsumed) -> ConsumptionView:
        return cls.model_validate(
            {
                "id": event.consumption_id,
                "namespace": event.namespace,
                "customer_id": event.customer_id,
                "currency": event.currency,
                "amount": event.amount,
                "feature": event.feature_key,
                "reference": event.usage_reference,
                "allocations": [
                    {"purchase_id": a.purchase_id, "amount": a.amount} for a in event.allocations
                ],
                "balance_after": event.balance_after,
                "consumed_at": event.consumed_at,
                "sequence": event.originator_version,
            }
        )


class GrantView(_View):
    """A grant as consumptions see it: what remains, and the terms that order the burn-down."""

    purchase_id: UUID
    amount: Decimal
    remaining: Decimal
    consumed: Decimal
    priority: int
    expires_at: datetime | None
    feature_filters: list[str]
    granted_at: datetime

    @classmethod
    def of(cls, grant: Grant) -> GrantView:
        return cls(
            purchase_id=grant.purchase_id,
            amount=grant.amount,
            remaining=grant.remaining,
            consumed=grant.consumed,
            priority=grant.priority,
            expires_at=grant.expires_at,
            feature_filters=list(grant.feature_filters),
            granted_at=grant.granted_at,
        )


class CreditsView(_View):
    """A customer's spendable credit in one currency at one time."""

    namespace: str
    customer_id: str
    currency: str
    as_of: datetime
    balance: Decimal
    grants: list[GrantView]


class CreditEntryType(StrEnum):
    GRANTED = "granted"
    CONSUMED = "consumed"
    EXPIRED = "expired"
    VOIDED = "voided"
    REVOKED = "revoked"
    """Taken back because the purchase's payment failed."""
    REFUNDED = "refunded"
    """Taken back by a refund of the purchase's payment."""


class CreditEntry(_View):
    """One change to a customer's credit in one currency, in the order it was recorded."""

    sequence: int
    type: CreditEntryType
    amount: Decimal
    balance_before: Decimal
    balance_after: Decimal
    purchase_id: UUID | None
    """The grant it concerns; None for a consumption (see ``allocations``)."""
    consumption_id: UUID | None
    allocations: list[AllocationView]
    effective_at: datetime
    recorded_at: datetime


def credit_entries(events: list[WalletEvent]) -> list[CreditEntry]:
    """The wallet's history as typed entries, each with the balance before and after it."""
    entries: list[CreditEntry] = []
    balance = ZERO
    for event in events:
        entry = credit_entry(event, balance)
        entries.append(entry)
        balance = entry.balance_after
    return entries


def credit_entry(event: WalletEvent, balance_before: Decimal) -> CreditEntry:
    """The entry of one wallet event, from the balance the entries before it add up to."""
    change, entry = _entry_of(event)
    return CreditEntry.model_validate(
        {**entry, "balance_before": balance_before, "balance_after": balance_before + change}
    )


def balance_change(event: WalletEvent) -> Decimal:
    """What the event adds to the customer's credit (a grant) or takes from it (the rest):
    ``credit_entry``'s ``balance_after - balance_before``, without building the entry."""
    return event.amount if isinstance(event, GrantAdded) else -event.amount


def _entry_of(event: WalletEvent) -> tuple[Decimal, dict[str, object]]:
    base: dict[str, object] = {
        "sequence": event.originator_version,
        "recorded_at": event.timestamp,
        "effective_at": event.timestamp,
        "purchase_id": None,
        "consumption_id": None,
        "allocations": [],
    }
    match event:
        case GrantAdded():
            return event.amount, {
                **base,
                "type": CreditEntryType.GRANTED,
                "amount": event.amount,
                "purchase_id": event.purchase_id,
                "effective_at": event.granted_at,
            }
        case CreditsConsumed():
            return -event.amount, {
                **base,
                "type": CreditEntryType.CONSUMED,
                "amount": event.amount,
                "consumption_id": event.consumption_id,
                "allocations": [
                    {"purchase_id": a.purchase_id, "amount": a.amount} for a in event.allocations
                ],
                "effective_at": event.consumed_at,
            }
        case GrantExpired():
            return -event.amount, {
                **base,
                "type": CreditEntryType.EXPIRED,
                "amount": event.amount,
                "purchase_id": event.purchase_id,
                "effective_at": event.effective_at,
            }
        case GrantVoided():
            return -event.amount, {
                **base,
                "type": CreditEntryType.VOIDED,
                "amount": event.amount,
                "purchase_id": event.purchase_id,
            }
        case GrantRevoked():
            return -event.amount, {
                **base,
                "type": _REVOCATION_ENTRIES[event.cause],
                "amount": event.amount,
                "purchase_id": event.purchase_id,
            }
        case _:
            assert_never(event)


_REVOCATION_ENTRIES = {
    RevocationCause.PAYMENT_FAILED: CreditEntryType.REVOKED,
    RevocationCause.REFUND: CreditEntryType.REFUNDED,
}
