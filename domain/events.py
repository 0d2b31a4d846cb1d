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
from creditledger.domain.status import (
    EventType,
    InitialPaymentStatus,
    RevocationCause,
    SettlementType,
    WalletEventType,
)


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
    """The purchase exists: the whole normalized intent, and, unless it is paid by invoice, its
    credits were granted (the grant's ledger reference and time).

    An invoice purchase grants its credits when its invoice is created (``InvoiceCreated``), so
    its ``Initiated`` has no grant reference and no ``granted_at``.
    """

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
    credit_grant_transaction_group_id: UUID | None
    granted_at: datetime | None

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


class InvoiceCreated(PurchaseEventBase):
    """The invoice of an invoice purchase exists (its one line bills the purchase): the credits
    are granted now. Invoice and line ids are immutable once recorded."""

    TOPIC = "creditledger.purchase:InvoiceCreated"
    TYPE = EventType.INVOICE_CREATED

    invoice_id: str
    line_id: str
    credit_grant_transaction_group_id: UUID
    granted_at: datetime


class PaymentFailed(PurchaseEventBase):
    """The payment failed (or was never collected): the purchase rests in ``final.payment_failed``.

    The amounts are the grant's at the failure, so that the postings follow from this event alone:
    ``revoked`` is the unconsumed credit taken back from the customer, ``released`` the credit
    forfeited earlier (expired or voided) that is no longer owed either, ``consumed`` what the
    customer spent and still owes (an open receivable). ``reversed_authorization`` is the
    authorized cash moved back to open credit, or None when the payment was never authorized.
    """

    TOPIC = "creditledger.purchase:PaymentFailed"
    TYPE = EventType.PAYMENT_FAILED

    reason: str
    revoked: Decimal
    released: Decimal
    consumed: Decimal
    reversed_authorization: Decimal | None
    transaction_group_id: UUID
    at: datetime
    external_reference: str | None = None


class PaymentRefunded(PurchaseEventBase):
    """Part (or all) of a settled payment went back to the customer: ``amount`` credits were
    taken back and ``cash_amount`` of money went out. Several refunds may follow one payment."""

    TOPIC = "creditledger.purchase:PaymentRefunded"
    TYPE = EventType.PAYMENT_REFUNDED

    amount: Decimal
    """The credit taken back, from what remained unconsumed."""
    cash_amount: Decimal
    """The money returned: the payment for all credit refunded so far, rounded once, less what
    earlier refunds returned, so that refunding everything returns exactly the payment."""
    reason: str | None = None
    transaction_group_id: UUID
    at: datetime
    external_reference: str | None = None


class PurchaseVoided(PurchaseEventBase):
    """What remained of the grant was forfeited on request; the consumed part stays consumed and
    the payment is untouched (it is still owed, authorized or settled as before)."""

    TOPIC = "creditledger.purchase:PurchaseVoided"
    TYPE = EventType.PURCHASE_VOIDED

    amount: Decimal
    """The credit forfeited: what remained of the grant at ``at``."""
    reason: str | None = None
    transaction_group_id: UUID
    at: datetime


PurchaseEvent: TypeAlias = (
    Initiated
    | PaymentAuthorized
    | PaymentSettled
    | PurchaseVoided
    | InvoiceCreated
    | PaymentFailed
    | PaymentRefunded
)
"""Every purchase event type, closed: code that acts on events matches on it, one case per type,
and ends with ``case _: assert_never(event)``, so a type added here and forgotten there fails
``mypy``. Adding a type means adding it here."""


class WalletEventBase(BaseModel):
    """What every credit-wallet event carries.

    A wallet holds one customer's spendable credit in one currency: every grant's remaining
    amount, so that a consumption decides against all of them inside one consistency boundary.
    Each event names its namespace, customer and currency so that a reader (the feed, a consumer
    on another machine) can route it without the wallet's earlier events.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    TOPIC: ClassVar[str]
    TYPE: ClassVar[WalletEventType]
    class_version: ClassVar[int] = 1

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    namespace: str
    customer_id: str
    currency: str
    idempotency_key: str | None = None
    request_fingerprint: str | None = None


class GrantAdded(WalletEventBase):
    """A purchase's credits became spendable (written with the purchase's granting event)."""

    TOPIC = "creditledger.wallet:GrantAdded"
    TYPE = WalletEventType.GRANT_ADDED

    purchase_id: UUID
    amount: Decimal
    cost_basis: Decimal | None
    priority: int
    expires_at: datetime | None
    feature_filters: tuple[str, ...]
    granted_at: datetime


class Allocation(BaseModel):
    """How much one consumption took from one grant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    purchase_id: UUID
    amount: Decimal


class CreditsConsumed(WalletEventBase):
    """Credit was spent, drawn from the grants in burn-down order (``allocations``, in order)."""

    TOPIC = "creditledger.wallet:CreditsConsumed"
    TYPE = WalletEventType.CREDITS_CONSUMED

    consumption_id: UUID
    amount: Decimal
    feature_key: str | None = None
    usage_reference: str | None = None
    allocations: tuple[Allocation, ...]
    balance_after: Decimal
    """The wallet's spendable total right after this consumption (all grants, any feature)."""
    consumed_at: datetime


class GrantExpired(WalletEventBase):
    """What remained of a grant was forfeited at its expiry (booked to breakage).

    ``effective_at`` is the grant's ``expires_at``: the expiry takes effect then, for every
    query, whenever it was recorded (``timestamp``). No consumption at or after ``effective_at``
    draws from the grant, so ``amount`` is what remained at ``effective_at``.
    """

    TOPIC = "creditledger.wallet:GrantExpired"
    TYPE = WalletEventType.GRANT_EXPIRED

    purchase_id: UUID
    amount: Decimal
    effective_at: datetime


class GrantVoided(WalletEventBase):
    """What remained of a grant was forfeited by a void (the purchase records the void too)."""

    TOPIC = "creditledger.wallet:GrantVoided"
    TYPE = WalletEventType.GRANT_VOIDED

    purchase_id: UUID
    amount: Decimal


class GrantRevoked(WalletEventBase):
    """Credit was taken back from a grant because its payment failed (everything that remained)
    or was refunded (the amount refunded); the purchase records why, with the postings."""

    TOPIC = "creditledger.wallet:GrantRevoked"
    TYPE = WalletEventType.GRANT_REVOKED

    purchase_id: UUID
    amount: Decimal
    cause: RevocationCause


WalletEvent: TypeAlias = GrantAdded | CreditsConsumed | GrantExpired | GrantVoided | GrantRevoked
"""Every wallet event type, closed, like ``PurchaseEvent``."""

LedgerEvent: TypeAlias = PurchaseEvent | WalletEvent
"""Every event the log holds."""

PURCHASE_EVENT_CLASSES: tuple[type[PurchaseEvent], ...] = (
    Initiated,
    PaymentAuthorized,
    PaymentSettled,
    PurchaseVoided,
    InvoiceCreated,
    PaymentFailed,
    PaymentRefunded,
)
WALLET_EVENT_CLASSES: tuple[type[WalletEvent], ...] = (
    GrantAdded,
    CreditsConsumed,
    GrantExpired,
    GrantVoided,
    GrantRevoked,
)

EVENT_CLASSES: dict[str, type[LedgerEvent]] = {
    cls.TOPIC: cls for cls in (*PURCHASE_EVENT_CLASSES, *WALLET_EVENT_CLASSES)
}
"""Every event class by its stored topic."""
