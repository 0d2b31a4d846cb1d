"""One namespace's events in commit order, read straight from the event log, a page at a time.

Positions are the log's notification ids. They become visible in commit order on every store
(SQLite and memory have one writer at a time; PostgreSQL's insert path takes a table lock, so ids
commit in id order), so "the events after position P" never passes over one that commits later:
a consumer that resumes from the last position it saw gets every event once.

The log holds every namespace's events; a page filters them. So that one request costs a bounded
amount of work whatever the mix of tenants, a page scans at most ``SCAN_FACTOR`` x ``limit``
entries; when it stops early, ``next_after`` is the last position scanned (not the last one
returned), so the consumer resumes after what was already ruled out, without gaps or repeats.

The log holds two kinds of aggregate: credit purchases and credit wallets (one per customer and
currency, holding what is left to spend). Both appear, interleaved in commit order; ``aggregate``
and ``aggregate_id`` say whose stream an item is, and ``version`` is that stream's version. A
wallet event names its namespace itself; a purchase event other than ``Initiated`` is routed by
its purchase's ``Initiated``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from enum import StrEnum
from typing import Any, assert_never, cast
from uuid import UUID

from eventsourcing.persistence import Notification
from pydantic import BaseModel, Field

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.source import EventLog
from creditledger.domain.events import (
    CreditsConsumed,
    GrantAdded,
    GrantExpired,
    GrantRevoked,
    GrantVoided,
    Initiated,
    InvoiceCreated,
    LedgerEvent,
    PaymentAuthorized,
    PaymentFailed,
    PaymentRefunded,
    PaymentSettled,
    PurchaseEvent,
    PurchaseVoided,
    WalletEventBase,
)

SCAN_FACTOR = 10
"""A page reads at most this many log entries per item asked for."""
_MIN_CHUNK = 100
NAMESPACE_CACHE_SIZE = 100_000


class Aggregate(StrEnum):
    """Whose stream an event belongs to."""

    CREDIT_PURCHASE = "credit_purchase"
    CREDIT_WALLET = "credit_wallet"


class FeedItem(BaseModel):
    """One event of the namespace, where it sits in the log."""

    position: int = Field(description="The event's global position in the log (gap-free order).")
    namespace: str
    aggregate: Aggregate = Field(
        description="credit_purchase: a purchase's own event; credit_wallet: an event of the "
        "customer's credit in one currency (GrantAdded, CreditsConsumed, GrantExpired, "
        "GrantVoided, GrantRevoked)."
    )
    aggregate_id: UUID = Field(
        description="The purchase's id, or the wallet's (one per namespace, customer and "
        "currency; data names the customer and currency)."
    )
    purchase_id: UUID | None = Field(
        description="The purchase the event concerns: the purchase itself, or the grant a "
        "wallet event adds, expires, voids or revokes; null for a consumption (its allocations "
        "in data name every purchase drawn from)."
    )
    version: int = Field(
        description="The aggregate's version after this event: the purchase's, or the "
        "wallet's (its credit-history sequence number)."
    )
    type: str = Field(
        description="A purchase's: Initiated, InvoiceCreated, PaymentAuthorized, "
        "PaymentSettled, PurchaseVoided, PaymentFailed, PaymentRefunded. A wallet's: GrantAdded, "
        "CreditsConsumed, GrantExpired, GrantVoided, GrantRevoked (data.cause: payment_failed "
        "or refund)."
    )
    recorded_at: datetime
    data: dict[str, Any] = Field(
        description="The event's stored fields (as in a purchase's history for purchase events)."
    )


class FeedPage(BaseModel):
    """A page of the feed."""

    items: list[FeedItem]
    next_after: int | None = Field(
        description="Pass as after= for the next page. null when the scan reached the end of the "
        "log: nothing more for now (poll again later from the last position you saw)."
    )


class PurchaseNamespaces:
    """Which namespace each purchase belongs to: only its ``Initiated`` event says so.

    Bounded (least recently used out): a purchase that falls out is looked up again in the log.
    """

    def __init__(self, log: EventLog, size: int = NAMESPACE_CACHE_SIZE) -> None:
        self._log = log
        self._size = size
        self._known: OrderedDict[UUID, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, purchase_id: UUID, namespace: str) -> None:
        with self._lock:
            self._known[purchase_id] = namespace
            self._known.move_to_end(purchase_id)
            while len(self._known) > self._size:
                self._known.popitem(last=False)

    def of(self, event: LedgerEvent) -> str | None:
        # A wallet event names its namespace; a purchase event after Initiated does not.
        if isinstance(event, WalletEventBase):
            return event.namespace
        return self._of_purchase(event)

    def _of_purchase(self, event: PurchaseEvent) -> str | None:
        if isinstance(event, Initiated):
            self.remember(event.originator_id, event.namespace)
            return event.namespace
        with self._lock:
            known = self._known.get(event.originator_id)
            if known is not None:
                self._known.move_to_end(event.originator_id)
                return known
        initiated = self._log.initiated(event.originator_id)
        if initiated is None:  # pragma: no cover - every purchase starts with Initiated
            return None
        self.remember(event.originator_id, initiated.namespace)
        return initiated.namespace


class EventFeed:
    """Pages of one namespace's events, from the ledger's log."""

    def __init__(self, ledger: CreditLedger) -> None:
        self._log = EventLog(ledger)
        self._namespaces = PurchaseNamespaces(self._log)

    def page(self, namespace: str, *, after: int, limit: int) -> FeedPage:
        budget = SCAN_FACTOR * limit
        chunk_size = max(limit, _MIN_CHUNK)
        items: list[FeedItem] = []
        scanned = 0
        position = after
        while scanned < budget:
            wanted = min(chunk_size, budget - scanned)
            notifications = self._log.read(position, wanted)
            for notification in notifications:
                scanned += 1
                position = notification.id
                event = self._decode(notification)
                if self._namespaces.of(event) == namespace:
                    items.append(_item(position, namespace, event))
                    if len(items) == limit:
                        return FeedPage(items=items, next_after=position)
            if len(notifications) < wanted:
                # Fewer than asked: this is the end of the log as it stands now.
                return FeedPage(items=items, next_after=None)
        return FeedPage(items=items, next_after=position)

    def _decode(self, notification: Notification) -> LedgerEvent:
        # Every event the log holds, wallet events included (the projections' decoder is typed
        # for the purchase events they apply).
        return cast(LedgerEvent, self._log.ledger.mapper.to_domain_event(notification))


def _item(position: int, namespace: str, event: LedgerEvent) -> FeedItem:
    aggregate = Aggregate.CREDIT_PURCHASE
    purchase_id: UUID | None = event.originator_id
    match event:
        case (
            Initiated()
            | PaymentAuthorized()
            | PaymentSettled()
            | PurchaseVoided()
            | InvoiceCreated()
            | PaymentFailed()
            | PaymentRefunded()
        ):
            pass
        case GrantAdded() | GrantExpired() | GrantVoided() | GrantRevoked():
            aggregate, purchase_id = Aggregate.CREDIT_WALLET, event.purchase_id
        case CreditsConsumed():
            aggregate, purchase_id = Aggregate.CREDIT_WALLET, None
        case _:
            assert_never(event)
    return FeedItem(
        position=position,
        namespace=namespace,
        aggregate=aggregate,
        aggregate_id=event.originator_id,
        purchase_id=purchase_id,
        version=event.originator_version,
        type=event.TYPE.value,
        recorded_at=event.timestamp,
        # The event's own fields, without the envelope (id, version, time) the item carries.
        data=event.model_dump(
            mode="json", exclude={"originator_id", "originator_version", "timestamp"}
        ),
    )
