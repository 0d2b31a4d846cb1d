"""Applies a batch of logged events to a set of read models, each from its own position.

The same projector drives the live views, a rebuild into fresh tables, and the in-memory rebuild
that ``verify`` compares the live views with: one definition of what each event does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from creditledger.application.projections.ledger import LedgerProjection
from creditledger.application.projections.projection import Projection, PurchaseTerms, Recorded
from creditledger.application.projections.purchases import PurchasesProjection
from creditledger.application.projections.receivables import ReceivablesProjection
from creditledger.application.projections.revenue import SettledRevenueProjection
from creditledger.application.projections.rows import ReadModelName
from creditledger.application.projections.store import ReadModelTransaction
from creditledger.domain.events import Initiated, PurchaseEventBase

WALLET_EVENTS_PROJECTED: Final = False
"""Whether the read models apply credit-wallet events (consumption, expiry, a grant's void) yet.
Until they do, the projector passes over them, and ``audit verify --against-live`` compares the
read models' balances with the export's purchase postings only
(``creditledger.infrastructure.audit.readmodels``); set it once the ledger read model books
``wallet_postings``, and the audit compares every posting."""

PROJECTIONS: dict[ReadModelName, type[Projection]] = {
    ReadModelName.PURCHASES: PurchasesProjection,
    ReadModelName.LEDGER: LedgerProjection,
    ReadModelName.RECEIVABLES: ReceivablesProjection,
    ReadModelName.SETTLED_REVENUE: SettledRevenueProjection,
}


def projections_for(names: Sequence[ReadModelName] | None = None) -> list[Projection]:
    return [PROJECTIONS[name]() for name in (names or list(ReadModelName))]


class Projector:
    """Applies events to read models; each model takes only events after its own position."""

    def __init__(
        self,
        projections: Sequence[Projection],
        terms: PurchaseTerms,
        *,
        tracking_names: Mapping[ReadModelName, str] | None = None,
    ) -> None:
        self.projections = list(projections)
        self.terms = terms
        # A rebuild tracks its fresh tables under another name until they are swapped in.
        self.tracking_names = {
            projection.name: (tracking_names or {}).get(projection.name, projection.name.value)
            for projection in self.projections
        }

    @property
    def names(self) -> list[str]:
        return [self.tracking_names[projection.name] for projection in self.projections]

    def apply(
        self,
        batch: Sequence[Recorded],
        store: ReadModelTransaction,
        positions: Mapping[str, int],
        *,
        until: Mapping[str, int] | None = None,
    ) -> dict[str, int]:
        """Apply the batch (in log order); return each model's new position.

        ``until`` stops a model at a position (``verify`` rebuilds exactly up to where the live
        views stand); a model already past an event is not given it again.
        """
        if not batch:
            return dict(positions)
        last = batch[-1].position
        # Wallet events are passed over (their positions tracked) until the read models learn
        # them.  TODO(issue 12): consumption, expiry and void in the read models.
        if not WALLET_EVENTS_PROJECTED:
            batch = [r for r in batch if isinstance(r.event, PurchaseEventBase)]
        for recorded in batch:
            if isinstance(recorded.event, Initiated):
                self.terms.remember(recorded.event)
        limits = {name: (until or {}).get(name, last) for name in self.names}
        active = []
        for projection in self.projections:
            name = self.tracking_names[projection.name]
            wanted = [
                recorded
                for recorded in batch
                if positions[name] < recorded.position <= limits[name]
            ]
            if wanted:
                projection.prefetch(wanted, self.terms, store)
                active.append((projection, name))
        for recorded in batch:
            takers = [
                projection
                for projection, name in active
                if positions[name] < recorded.position <= limits[name]
            ]
            if takers:
                terms = self.terms.of(recorded.event)
                for projection in takers:
                    projection.apply(recorded, terms, store)
        return {name: max(positions[name], min(last, limits[name])) for name in self.names}
