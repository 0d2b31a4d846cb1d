"""The ledger's state as plain data, and a row-by-row comparison of two such states.

Offline verification folds an export into one ``PurchaseState`` per purchase (the part of the
read model's purchase row that says its terms, status, version and realizations) and one balance
per (namespace, customer, currency, account). The live sources give the same shapes
(``creditledger.application.audit.against_live``), so one purchase or balance at a time can be
told apart (``purchase_difference``, ``balance_difference``); ``compare`` does it for two whole
``LedgerSnapshot``s.
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
from creditledger.domain.events import PaymentFailed
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


@dataclass(frozen=True)
class AuditScope:
    """What an export covers, so a live provider returns the state of exactly that."""

    last_position: int
    """The cut: the state after every event up to this position, and none after it."""
    namespace: str | None = None
    balances: bool = True
    """False when the export starts after the beginning of the log: it cannot give whole
    balances, and only the purchases whose whole history it holds are compared."""


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
    differences = []
    for purchase_id in export.purchases.keys() | live.purchases.keys():
        difference = purchase_difference(
            purchase_id,
            export.purchases.get(purchase_id),
            live.purchases.get(purchase_id),
            positions.purchases.get(purchase_id, []),
        )
        if difference is not None:
            differences.append(difference)
    if balances:
        for balance_key in export.balances.keys() | live.balances.keys():
            difference = balance_difference(
                balance_key,
                export.balances.get(balance_key),
                live.balances.get(balance_key),
                positions.balances.get(balance_key),
            )
            if difference is not None:
                differences.append(difference)
    return sorted(differences, key=difference_order)


def difference_order(difference: Difference) -> tuple[int, int, int, str]:
    """The order differences are reported in: by position; at one position a purchase before
    the balances it moves (it explains them); unknown positions last."""
    position = difference.position
    kind = 0 if difference.kind == "purchase" else 1
    return (0 if position is not None else 1, position or 0, kind, difference.key)


def purchase_difference(
    purchase_id: UUID, ours: PurchaseState | None, theirs: PurchaseState | None, at: list[int]
) -> Difference | None:
    """How the export's purchase (``ours``, its events at positions ``at``) differs from the
    live one (``theirs``); None if they agree. A side that lacks the purchase gives None."""
    key = str(purchase_id)
    if ours is None:
        if theirs is None:
            return None
        return Difference("purchase", key, "missing from the export", None, None, theirs)
    if theirs is None:
        return Difference(
            "purchase", key, "missing from the live state", at[0] if at else None, ours
        )
    changed = [
        item.name
        for item in fields(PurchaseState)
        if getattr(ours, item.name) != getattr(theirs, item.name)
    ]
    if not changed:
        return None
    # Where the difference shows first: the initiation for what it fixed, the first event
    # the live side lacks, or else the purchase's latest event.
    position = at[-1] if at else None
    if at and any(name in INITIATION_FIELDS for name in changed):
        position = at[0]
    elif theirs.version < len(at):
        position = at[theirs.version]
    return Difference(
        "purchase",
        key,
        "differs in " + ", ".join(changed),
        position,
        {name: getattr(ours, name) for name in changed},
        {name: getattr(theirs, name) for name in changed},
    )


def balance_difference(
    balance_key: BalanceKey, ours: Decimal | None, theirs: Decimal | None, position: int | None
) -> Difference | None:
    """How the export's balance differs from the live one (a missing one counts as zero);
    ``position``: the export's last event that moved it."""
    zero = Decimal(0)
    ours = zero if ours is None else ours
    theirs = zero if theirs is None else theirs
    if ours == theirs:
        return None
    return Difference("balance", "/".join(balance_key), "balance differs", position, ours, theirs)


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
