"""The shape every read model's projection has, and what it is handed for each event."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar
from uuid import UUID

from creditledger.application.projections.rows import ReadModelName
from creditledger.application.projections.store import ReadModelTransaction
from creditledger.domain.errors import LedgerError
from creditledger.domain.events import Initiated, LedgerEvent, PurchaseEvent, WalletEvent


class ProjectionError(LedgerError):
    """An event does not fit the view it is applied to: a duplicate, a gap or a corrupt log.

    Tracking makes this impossible in normal operation; raising it (and rolling the batch back)
    is what keeps a broken invariant from being written into a view.
    """

    code = "projection_failed"
    title = "Projection failed"


@dataclass(frozen=True)
class Recorded:
    """A purchase event and its position in the log (the notification id)."""

    position: int
    event: PurchaseEvent


@dataclass(frozen=True)
class WalletRecorded:
    """A wallet event (credit granted, spent, expired, voided) and its position in the log."""

    position: int
    event: WalletEvent


LogEntry = Recorded | WalletRecorded
"""What the projector is handed for each position of the log."""


TERMS_CACHED = 10_000
"""Initiated events a ``PurchaseTerms`` keeps (about 3 KB each): a constant of the projector's
memory (issue 14), enough for payments that follow their purchase by thousands of purchases."""


class PurchaseTerms:
    """Each purchase's initiation facts, looked up by id, with a bounded cache.

    Payment events do not repeat what was bought; the ledger and revenue views need it. The
    facts never change once recorded, so a cached copy is never stale, and a projection that is
    rebuilt alone does not depend on any other view being up to date.
    """

    def __init__(
        self, load: Callable[[UUID], Initiated | None], *, capacity: int = TERMS_CACHED
    ) -> None:
        self._load = load
        self._capacity = capacity
        self._cache: OrderedDict[UUID, Initiated] = OrderedDict()

    def remember(self, initiated: Initiated) -> None:
        self._cache[initiated.originator_id] = initiated
        self._cache.move_to_end(initiated.originator_id)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)

    def of(self, event: PurchaseEvent) -> Initiated:
        if isinstance(event, Initiated):
            return event
        return self.of_purchase(event.originator_id)

    def of_purchase(self, purchase_id: UUID) -> Initiated:
        """The purchase's terms, without its event at hand (the relay reads no payload)."""
        found = self._cache.get(purchase_id)
        if found is None:
            found = self._load(purchase_id)
            if found is None:
                raise ProjectionError(f"purchase {purchase_id} has no Initiated event in the log")
            self.remember(found)
        return found


class Projection(ABC):
    """What one read model does with each event, as calls on the store it is handed."""

    name: ClassVar[ReadModelName]
    ignores: ClassVar[frozenset[type[LedgerEvent]]] = frozenset()
    """Event classes this model never changes anything for. A runner whose models all ignore
    one does not read its events back at all (``Projector.ignored_topics``): every purchase's
    ``GrantAdded`` is one (a fifth of ``bench.verify``'s log, 29% of ``bench.catchup``'s),
    whose facts the purchase's own ``Initiated`` carries."""

    def prefetch(
        self, batch: Sequence[Recorded], terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        """Load, in bulk, the rows the batch will look up (an optimisation only)."""
        del batch, terms, store

    def prefetch_wallet(
        self, batch: Sequence[WalletRecorded], terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        """Load, in bulk, the rows the batch's wallet events will look up (an optimisation)."""
        del batch, terms, store

    @abstractmethod
    def apply(self, recorded: Recorded, terms: Initiated, store: ReadModelTransaction) -> None:
        """Apply one purchase event, whose purchase was initiated with ``terms``."""

    @abstractmethod
    def apply_wallet(
        self, recorded: WalletRecorded, terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        """Apply one wallet event; ``terms`` gives the terms of the purchases it concerns."""
