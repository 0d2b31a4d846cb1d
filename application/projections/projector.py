"""Applies a batch of logged events to a set of read models, each from its own position.

The same projector drives the live views, a rebuild into fresh tables, and the in-memory rebuild
that ``verify`` compares the live views with: one definition of what each event does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from creditledger.application.projections.ledger import LedgerProjection
from creditledger.application.projections.projection import (
    LogEntry,
    Projection,
    PurchaseTerms,
    Recorded,
    WalletRecorded,
)
from creditledger.application.projections.purchases import PurchasesProjection
from creditledger.application.projections.receivables import ReceivablesProjection
from creditledger.application.projections.revenue import SettledRevenueProjection
from creditledger.application.projections.rows import ReadModelName
from creditledger.application.projections.store import ReadModelTransaction
from creditledger.domain.events import Initiated

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

    @property
    def ignored_topics(self) -> frozenset[str]:
        """The stored topics of the events every one of these models ignores: the runner need
        not read them back, only move past them."""
        if not self.projections:
            return frozenset()
        ignored = frozenset.intersection(*(p.ignores for p in self.projections))
        return frozenset(cls.TOPIC for cls in ignored)

    def apply(
        self,
        batch: Sequence[LogEntry],
        store: ReadModelTransaction,
        positions: Mapping[str, int],
        *,
        until: Mapping[str, int] | None = None,
        last: int | None = None,
    ) -> dict[str, int]:
        """Apply the batch (in log order); return each model's new position.

        ``until`` stops a model at a position (``verify`` rebuilds exactly up to where the live
        views stand); a model already past an event is not given it again. ``last``: the
        position the batch was read up to (default: its last event's), beyond events every
        model ignores that were left out of it.
        """
        if last is None:
            if not batch:
                return dict(positions)
            last = batch[-1].position
        for recorded in batch:
            if isinstance(recorded, Recorded) and isinstance(recorded.event, Initiated):
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
                projection.prefetch(
                    [r for r in wanted if isinstance(r, Recorded)], self.terms, store
                )
                projection.prefetch_wallet(
                    [r for r in wanted if isinstance(r, WalletRecorded)], self.terms, store
                )
                active.append((projection, name))
        # (An empty batch has no active model, so batch[0] is never asked for.)
        if all(positions[name] < batch[0].position and limits[name] >= last for _, name in active):
            # The usual batch: every model is behind all of it, so each event goes to each model
            # (no per-event position checks).
            takers = [projection for projection, _ in active]
            for recorded in batch:
                self._apply_one(recorded, takers, store)
        else:
            for recorded in batch:
                takers = [
                    projection
                    for projection, name in active
                    if positions[name] < recorded.position <= limits[name]
                ]
                if takers:
                    self._apply_one(recorded, takers, store)
        return {name: max(positions[name], min(last, limits[name])) for name in self.names}

    def _apply_one(
        self, recorded: LogEntry, takers: Sequence[Projection], store: ReadModelTransaction
    ) -> None:
        if isinstance(recorded, WalletRecorded):
            for projection in takers:
                projection.apply_wallet(recorded, self.terms, store)
            return
        terms = self.terms.of(recorded.event)
        for projection in takers:
            projection.apply(recorded, terms, store)
