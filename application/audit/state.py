"""The ledger's state as plain data, and a row-by-row comparison of two such states.

Offline verification folds an export into a ``LedgerSnapshot``: one ``PurchaseState`` per
purchase (the part of the read model's purchase row that says its terms, status, version and
realizations) and one balance per (namespace, customer, currency, account). Any provider of the
live state (``LiveLedger``) returns the same shape, so ``compare`` can tell where the two differ:
the event store's own state (``creditledger.infrastructure.audit.live``) and the read models'
tables (``creditledger.infrastructure.audit.readmodels``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from creditledger.application.projections.rows import PurchaseState
from creditledger.application.purchase_view import PaymentFailureView, PurchaseView
from creditledger.domain.errors import EventSequenceError
from creditledger.domain.events import PaymentFailed, PurchaseEvent
from creditledger.domain.purchase import CreditPurchase
from creditledger.domain.status import PaymentStatus


class BalanceKey(NamedTuple):
    namespace: str
    customer_id: str
    currency: str
    account: str


def state_of_purchase(purchase: CreditPurchase) -> PurchaseState:
    """From the aggregate, as offline verification folds it."""
    intent = purchase.intent
    if purchase.status is None:
        msg = f"purchase {purchase.id} has no status"
        raise EventSequenceError(msg)
    payment = purchase.payment
    return PurchaseState(
        namespace=intent.namespace,
        purchase_id=purchase.id,
        customer_id=intent.customer_id,
        currency=intent.currency,
        settlement_type=intent.settlement_type,
        credit_amount=intent.credit_amount,
        cost_basis=intent.cost_basis,
        status=purchase.status,
        version=purchase.version,
        credit_grant_transaction_group_id=purchase.granted[0] if purchase.granted else None,
        granted_at=purchase.granted[1] if purchase.granted else None,
        **_payment_fields(payment),
        invoice_id=purchase.invoice.invoice_id if purchase.invoice else None,
        line_id=purchase.invoice.line_id if purchase.invoice else None,
        **_failure_fields(purchase.failure),
        refunded=purchase.refunded,
        refunded_cash=purchase.refunded_cash,
        refunds=len(purchase.refunds),
    )


def state_of_view(view: PurchaseView) -> PurchaseState:
    """From the purchase view the live queries return."""
    realizations = view.realizations
    payment = realizations.external_payment or realizations.invoice_payment
    grant = realizations.credit_grant
    invoice = realizations.invoice
    refunds = realizations.refunds
    return PurchaseState(
        namespace=view.namespace,
        purchase_id=view.id,
        customer_id=view.customer_id,
        currency=view.currency,
        settlement_type=view.settlement.type,
        credit_amount=view.credit_amount,
        cost_basis=view.cost_basis,
        status=view.status,
        version=view.version,
        credit_grant_transaction_group_id=grant.transaction_group_id if grant else None,
        granted_at=grant.granted_at if grant else None,
        **_payment_fields(payment),
        invoice_id=invoice.invoice_id if invoice else None,
        line_id=invoice.line_id if invoice else None,
        **_failure_fields(realizations.payment_failure),
        refunded=refunds.amount if refunds else Decimal(0),
        refunded_cash=refunds.cash_amount if refunds else Decimal(0),
        refunds=refunds.count if refunds else 0,
    )


class _Reference(Protocol):
    @property
    def transaction_group_id(self) -> UUID: ...
    @property
    def at(self) -> datetime: ...


class _Payment(Protocol):
    """The external payment as the aggregate and the purchase view both hold it."""

    @property
    def status(self) -> PaymentStatus: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def authorized(self) -> _Reference: ...
    @property
    def settled(self) -> _Reference | None: ...


def _payment_fields(payment: _Payment | None) -> dict[str, Any]:
    settled = payment.settled if payment else None
    return {
        "payment_status": payment.status if payment else None,
        "authorized_amount": payment.amount if payment else None,
        "authorized_transaction_group_id": (
            payment.authorized.transaction_group_id if payment else None
        ),
        "authorized_at": payment.authorized.at if payment else None,
        "settled_transaction_group_id": settled.transaction_group_id if settled else None,
        "settled_at": settled.at if settled else None,
    }


def _failure_fields(failure: PaymentFailed | PaymentFailureView | None) -> dict[str, Any]:
    if failure is None:
        return {
            "failure_transaction_group_id": None,
            "failed_at": None,
            "failure_reason": None,
            "owed": None,
        }
    return {
        "failure_transaction_group_id": failure.transaction_group_id,
        "failed_at": failure.at,
        "failure_reason": failure.reason,
        "owed": failure.consumed if isinstance(failure, PaymentFailed) else failure.owed,
    }


def state_as_dict(state: PurchaseState) -> dict[str, Any]:
    """The compared fields of a purchase, JSON-ready."""
    return {item.name: _plain(getattr(state, item.name)) for item in fields(PurchaseState)}


INITIATION_FIELDS = frozenset(
    {
        "namespace",
        "customer_id",
        "currency",
        "settlement_type",
        "credit_amount",
        "cost_basis",
        "credit_grant_transaction_group_id",
        "granted_at",
    }
)
"""The fields of a purchase state that its ``Initiated`` event alone decides."""


@dataclass(frozen=True)
class LedgerSnapshot:
    """Every purchase and every balance of a scope, at one log position."""

    purchases: Mapping[UUID, PurchaseState]
    balances: Mapping[BalanceKey, Decimal]
    position: int | None = None
    wallet_postings: bool = True
    """Whether the balances include what credit-wallet events book (consumption, expiry:
    ``creditledger.domain.ledger.wallet_postings``). A live source whose balances do not book
    them yet says False, and the export's balances are compared without them."""
    later_events: Mapping[UUID, tuple[PurchaseEvent, ...]] = field(default_factory=dict)
    """Purchases whose live row already reflects events recorded after the cut (a read model
    keeps no old versions), with those events: the comparison rolls the export's purchase
    forward by them, then compares every field."""


@dataclass(frozen=True)
class AuditScope:
    """What an export covers, so a live provider returns the state of exactly that."""

    last_position: int
    """The cut: the state after every event up to this position, and none after it."""
    namespace: str | None = None
    purchase_ids: frozenset[UUID] | None = None
    """If set, only these purchases (an export that starts after the log's beginning)."""
    balances: bool = True
    """False when the export cannot give whole balances (it starts after the beginning)."""


class LiveLedger(Protocol):
    """A provider of the live state to compare an export with (``verify --against-live``)."""

    def snapshot(self, scope: AuditScope) -> LedgerSnapshot:
        """The live purchases and balances of ``scope``, as of its last position."""
        ...


@dataclass(frozen=True)
class Difference:
    """One row that differs between the export's state and the live state."""

    kind: str
    """``purchase`` or ``balance``."""
    key: str
    detail: str
    position: int | None = None
    """The export's position where the difference shows: for a purchase, its initiation when a
    field the initiation decides differs, else the first event the live side lacks, else its
    latest event; for a balance, the latest event that moved it. None for a row the export does
    not have at all."""
    export: Any = None
    live: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "detail": self.detail,
            "position": self.position,
            "export": _plain(self.export),
            "live": _plain(self.live),
        }


@dataclass
class Positions:
    """Where each purchase's events and each balance's last movement sit in the export."""

    purchases: dict[UUID, list[int]] = field(default_factory=dict)
    balances: dict[BalanceKey, int] = field(default_factory=dict)


def compare(
    export: LedgerSnapshot,
    live: LedgerSnapshot,
    positions: Positions,
    *,
    balances: bool = True,
) -> list[Difference]:
    """Every row that differs, ordered by the export position where it shows (unknown last)."""
    differences = _purchase_differences(export, live, positions)
    if balances:
        differences += _balance_differences(export, live, positions)
    return sorted(differences, key=_order)


def _order(difference: Difference) -> tuple[int, int, int, str]:
    # By position; at one position a purchase before the balances it moves (it explains them).
    position = difference.position
    kind = 0 if difference.kind == "purchase" else 1
    return (0 if position is not None else 1, position or 0, kind, difference.key)


def _purchase_differences(
    export: LedgerSnapshot, live: LedgerSnapshot, positions: Positions
) -> list[Difference]:
    differences = []
    for purchase_id in export.purchases.keys() | live.purchases.keys():
        ours = export.purchases.get(purchase_id)
        theirs = live.purchases.get(purchase_id)
        at = positions.purchases.get(purchase_id, [])
        key = str(purchase_id)
        if ours is None:
            differences.append(
                Difference("purchase", key, "missing from the export", None, None, theirs)
            )
            continue
        if theirs is None:
            differences.append(
                Difference(
                    "purchase", key, "missing from the live state", at[0] if at else None, ours
                )
            )
            continue
        changed = [
            item.name
            for item in fields(PurchaseState)
            if getattr(ours, item.name) != getattr(theirs, item.name)
        ]
        if not changed:
            continue
        # Where the difference shows first: the initiation for what it fixed, the first event
        # the live side lacks, or else the purchase's latest event.
        position = at[-1] if at else None
        if at and any(name in INITIATION_FIELDS for name in changed):
            position = at[0]
        elif theirs.version < len(at):
            position = at[theirs.version]
        differences.append(
            Difference(
                "purchase",
                key,
                "differs in " + ", ".join(changed),
                position,
                {name: getattr(ours, name) for name in changed},
                {name: getattr(theirs, name) for name in changed},
            )
        )
    return differences


def _balance_differences(
    export: LedgerSnapshot, live: LedgerSnapshot, positions: Positions
) -> list[Difference]:
    differences = []
    zero = Decimal(0)
    for balance_key in export.balances.keys() | live.balances.keys():
        ours = export.balances.get(balance_key, zero)
        theirs = live.balances.get(balance_key, zero)
        if ours != theirs:
            differences.append(
                Difference(
                    "balance",
                    "/".join(balance_key),
                    "balance differs",
                    positions.balances.get(balance_key),
                    ours,
                    theirs,
                )
            )
    return differences


def _plain(value: Any) -> Any:
    """JSON-ready: decimals as strings exactly, times in ISO 8601, ids as strings."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value
