"""The facts a credit purchase records, as frozen pydantic models.

Each event is stored as plain JSON under an explicit topic that does not depend on the Python
module or class name, so classes can move and be renamed without breaking stored history.
``class_version`` is stored when above 1, and ``upcast_vN_vN+1`` static methods on the class
bring old stored data up to date when it is read.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar, TypeAlias
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from creditledger.domain.intent import PurchaseIntent
from creditledger.domain.status import EventType, InitialPaymentStatus, SettlementType


class PurchaseEventBase(BaseModel):
    """What every purchase event carries: whose, which version, when it was recorded, and why.

    ``idempotency_key`` and ``request_fingerprint`` belong to the command that produced the
    event; all events of one command carry the same pair, so the purchase itself remembers,
    durably and forever, which keys it has seen.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    TOPIC: ClassVar[str]
    TYPE: ClassVar[EventType]
    class_version: ClassVar[int] = 1

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    idempotency_key: str | None = None
    request_fingerprint: str | None = None


class Initiated(PurchaseEventBase):
    """Credits were granted: the whole normalized intent and the grant's ledger reference."""

    TOPIC = "creditledger.purchase:Initiated"
    TYPE = EventType.INITIATED

    namespace: str
    customer_id: str
    currency: str
    credit_amount: Decimal
    cost_basis: Decimal | None
    settlement_type: SettlementType
    initial_payment_status: InitialPaymentStatus | None
    priority: int
    expires_at: datetime | None
    feature_filters: tuple[str, ...]
    name: str | None
    metadata: dict[str, str]
    credit_grant_transaction_group_id: UUID
    granted_at: datetime

    @property
    def intent(self) -> PurchaseIntent:
        return PurchaseIntent(
            namespace=self.namespace,
            customer_id=self.customer_id,
            currency=self.currency,
            credit_amount=self.credit_amount,
            cost_basis=self.cost_basis,
            settlement_type=self.settlement_type,
            initial_payment_status=self.initial_payment_status,
            priority=self.priority,
            expires_at=self.expires_at,
            feature_filters=self.feature_filters,
            name=self.name,
            metadata=self.metadata,
        )


class PaymentAuthorized(PurchaseEventBase):
    """The external payment was authorized for ``amount`` (credit amount x cost basis, rounded)."""

    TOPIC = "creditledger.purchase:PaymentAuthorized"
    TYPE = EventType.PAYMENT_AUTHORIZED

    amount: Decimal
    transaction_group_id: UUID
    at: datetime
    external_reference: str | None = None


class PaymentSettled(PurchaseEventBase):
    """The authorized external payment settled."""

    TOPIC = "creditledger.purchase:PaymentSettled"
    TYPE = EventType.PAYMENT_SETTLED

    transaction_group_id: UUID
    at: datetime
    external_reference: str | None = None


PurchaseEvent: TypeAlias = Initiated | PaymentAuthorized | PaymentSettled
"""Every purchase event type, closed: code that acts on events matches on it, one case per type,
and ends with ``case _: assert_never(event)``, so a type added here and forgotten there fails
``mypy``. Adding a type means adding it here."""

EVENT_CLASSES: dict[str, type[PurchaseEvent]] = {
    cls.TOPIC: cls for cls in (Initiated, PaymentAuthorized, PaymentSettled)
}
"""Every purchase event class by its stored topic."""
