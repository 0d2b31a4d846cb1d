"""Replaying exported events through the domain, in log order, in one pass.

Every event is read back exactly as the live path reads it (the event class for its name, upcast
from its stored class version, validated by the model), applied with
``creditledger.domain.purchase.project_purchase`` (the live repository's projector), and booked with
``creditledger.domain.ledger.postings_for``, ``balances`` and ``unbalanced_groups``.

Memory: only open purchases stay in memory. A purchase whose status becomes final goes, with its
history, to a ``ClosedPurchases`` store (``creditledger.application.audit.closed``), and comes back
only if a later line mentions it. So the fold holds the open purchases, one balance per
(namespace, customer, currency, account), and nothing that grows with the log's length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from creditledger.application.audit.closed import (
    ClosedPurchases,
    History,
    MemoryClosedPurchases,
    RecordedEvent,
)
from creditledger.application.audit.findings import fail, reason_of
from creditledger.application.audit.state import (
    BalanceKey,
    LedgerSnapshot,
    Positions,
    state_of_purchase,
)
from creditledger.domain.errors import LedgerError
from creditledger.domain.events import PURCHASE_EVENT_CLASSES, PurchaseEvent
from creditledger.domain.ledger import Account, balances, postings_for, unbalanced_groups
from creditledger.domain.purchase import CreditPurchase, project_purchase
from creditledger.domain.status import PurchaseStatus

EVENT_CLASS_OF_TYPE: dict[str, type[PurchaseEvent]] = {
    cls.TYPE.value: cls for cls in PURCHASE_EVENT_CLASSES
}


def decode_event(
    cls: type[PurchaseEvent], purchase_id: UUID | str, version: int, data: dict[str, Any]
) -> PurchaseEvent:
    """The domain event from its stored JSON data, as the store's mapper reads it.

    Consumes ``data`` (upcasting works in place), so pass a dict nobody needs afterwards.
    """
    stored_version = data.pop("class_version", 1)
    while stored_version < cls.class_version:
        getattr(cls, f"upcast_v{stored_version}_v{stored_version + 1}")(data)
        stored_version += 1
    data["originator_id"] = purchase_id
    data["originator_version"] = version
    return cls.model_validate(data)


def replay_history(purchase_id: str, history: History) -> CreditPurchase:
    """The purchase a history (already verified once) folds into."""
    purchase: CreditPurchase | None = None
    for recorded in history:
        cls = EVENT_CLASS_OF_TYPE[recorded.type]
        event = decode_event(cls, purchase_id, recorded.version, dict(recorded.data))
        purchase = project_purchase(purchase, (event,))
    if purchase is None:  # pragma: no cover - a closed purchase has at least one event
        msg = f"purchase {purchase_id} has an empty history"
        raise ValueError(msg)
    return purchase


@dataclass(slots=True)
class _OpenPurchase:
    purchase: CreditPurchase
    history: list[RecordedEvent]


_DomainBalanceKey = tuple[str, str, str, Account]


class LedgerFold:
    """The purchases and balances that a run of exported events adds up to.

    Purchases are keyed by their id exactly as the export writes it (lowercase, hyphenated: a
    purchase's first line must spell it so), which spares parsing a UUID per line.
    """

    def __init__(
        self, *, partial_history_allowed: bool, closed: ClosedPurchases | None = None
    ) -> None:
        # An export that starts after the beginning of the log meets purchases in the middle of
        # their history: those are set aside. In a whole-log export that is a gap: an error.
        self.partial_history_allowed = partial_history_allowed
        self.partial: set[str] = set()
        self.partial_events = 0
        self._open: dict[str, _OpenPurchase] = {}
        self._closed: ClosedPurchases = closed if closed is not None else MemoryClosedPurchases()
        self._closed_statuses: Counter[str] = Counter()
        self._balances: dict[_DomainBalanceKey, Decimal] = {}
        self._balance_positions: dict[_DomainBalanceKey, int] = {}

    def apply(
        self,
        position: int,
        purchase_id: str,
        version: int,
        cls: type[PurchaseEvent],
        data: dict[str, Any],
    ) -> None:
        """Replay one event; raises ``VerificationFailedError`` naming ``position``."""
        if purchase_id in self.partial:
            self.partial_events += 1
            return
        entry = self._open.get(purchase_id) or self._reopened(purchase_id)
        purchase = entry.purchase if entry is not None else None
        if purchase is None and version > 1 and self.partial_history_allowed:
            self.partial.add(purchase_id)
            self.partial_events += 1
            return
        recorded = RecordedEvent(position, version, cls.TYPE.value, data)
        try:
            event = decode_event(cls, purchase_id, version, dict(data))
        except (ValidationError, TypeError, ValueError, AttributeError) as error:
            raise fail(
                "invalid_event_data",
                f"{cls.TYPE.value} v{version} of purchase {purchase_id} does not read back as "
                f"the domain event: {reason_of(error)}",
                position,
            ) from None
        if purchase is None and str(event.originator_id) != purchase_id:
            raise fail(
                "malformed_line",
                f"purchase id {purchase_id!r} is not written as lowercase hyphenated hex",
                position,
            )
        try:
            purchase = project_purchase(purchase, (event,))
            if purchase is None:  # pragma: no cover - one event always makes a purchase
                raise fail("invalid_event_data", "no purchase", position)
            postings = postings_for(purchase.intent, event)
        except LedgerError as error:
            raise fail(
                error.code,
                f"{cls.TYPE.value} v{version} of purchase {purchase_id} cannot be replayed: "
                f"{error.detail}",
                position,
            ) from None
        except ValueError as error:
            # Facts the event model lets through but the domain cannot compute with (an unknown
            # currency has no minor unit): found by the fast-path property test.
            raise fail(
                "invalid_event_data",
                f"{cls.TYPE.value} v{version} of purchase {purchase_id} cannot be replayed: "
                f"{error}",
                position,
            ) from None
        unbalanced = unbalanced_groups(postings)
        if unbalanced:
            group, total = next(iter(unbalanced.items()))
            raise fail(
                "unbalanced_transaction_group",
                f"transaction group {group} sums to {total}, not zero",
                position,
            )
        totals, moved = self._balances, self._balance_positions
        for key, amount in balances(postings).items():
            totals[key] = totals[key] + amount if key in totals else amount
            moved[key] = position
        if entry is None:
            entry = self._open[purchase_id] = _OpenPurchase(purchase, [recorded])
        else:
            entry.history.append(recorded)
        if purchase.status is PurchaseStatus.FINAL:
            # Final accepts no further event: out of memory until a line mentions it again.
            del self._open[purchase_id]
            self._closed.add(purchase_id, tuple(entry.history))
            self._closed_statuses[purchase.status.value] += 1

    def _reopened(self, purchase_id: str) -> _OpenPurchase | None:
        """A closed purchase a line mentions again, back in memory (None if it is not closed)."""
        history = self._closed.take(purchase_id)
        if history is None:
            return None
        purchase = replay_history(purchase_id, history)
        if purchase.status is not None:
            self._closed_statuses[purchase.status.value] -= 1
        entry = self._open[purchase_id] = _OpenPurchase(purchase, list(history))
        return entry

    def namespace_of(self, purchase_id: str) -> str | None:
        entry = self._open.get(purchase_id) or self._reopened(purchase_id)
        return entry.purchase.intent.namespace if entry is not None else None

    def purchase(self, purchase_id: str) -> CreditPurchase | None:
        """The purchase as folded so far (a closed one is replayed from its history)."""
        entry = self._open.get(purchase_id)
        if entry is not None:
            return entry.purchase
        history = self._closed.get(purchase_id)
        return replay_history(purchase_id, history) if history is not None else None

    def _histories(self) -> Iterator[tuple[CreditPurchase, History]]:
        for entry in self._open.values():
            yield entry.purchase, tuple(entry.history)
        for purchase_id, history in self._closed.histories():
            yield replay_history(purchase_id, history), history

    def purchase_ids(self) -> Iterator[UUID]:
        """Every purchase folded (whole histories only)."""
        for purchase, _ in self._histories():
            yield purchase.id

    @property
    def purchase_count(self) -> int:
        return len(self._open) + len(self._closed)

    @property
    def balances(self) -> dict[BalanceKey, Decimal]:
        """Every balance, per (namespace, customer, currency, account)."""
        return {_balance_key(key): amount for key, amount in self._balances.items()}

    def positions(self) -> Positions:
        """Where each purchase's events and each balance's last movement are in the export."""
        return Positions(
            purchases={
                purchase.id: [recorded.position for recorded in history]
                for purchase, history in self._histories()
            },
            balances={_balance_key(key): at for key, at in self._balance_positions.items()},
        )

    def snapshot(self, position: int | None) -> LedgerSnapshot:
        """The purchases (whole histories only) and balances, as plain rows."""
        return LedgerSnapshot(
            purchases={
                purchase.id: state_of_purchase(purchase) for purchase, _ in self._histories()
            },
            balances=self.balances,
            position=position,
        )

    def statuses(self) -> dict[str, int]:
        counts = self._closed_statuses + Counter(
            entry.purchase.status.value for entry in self._open.values() if entry.purchase.status
        )
        return dict(sorted(counts.items()))

    def totals(self) -> dict[tuple[str, str], Decimal]:
        """Balances summed per (currency, account): each currency's accounts sum to zero."""
        sums: dict[tuple[str, str], Decimal] = {}
        for (_, _, currency, account), amount in self._balances.items():
            total_key = (currency, account.value)
            sums[total_key] = sums.get(total_key, Decimal(0)) + amount
        return dict(sorted(sums.items()))


def _balance_key(key: _DomainBalanceKey) -> BalanceKey:
    namespace, customer, currency, account = key
    return BalanceKey(namespace, customer, currency, account.value)
