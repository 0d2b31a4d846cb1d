"""``verify --against-live``: a verified export compared with a live source, row by row, in
memory that does not grow with the log.

Both sides are read in ascending purchase-id order and merged (a merge join): the export's
purchases come from its fold (``LedgerFold.histories_in_order``: the open ones, sorted, and the
closed ones from the scratch store, one replayed at a time), the live source's from its own
ordered read (``LiveReading.purchases``). One purchase of each side is in hand at a time. What
stays in memory is bounded by other things than the log's length:

- balances, one per (namespace, customer, currency, account) on each side, and the export
  position of each one's last movement: they grow with customers, not with events;
- the differences found (reported sorted by position): they grow with what differs;
- what a live source keeps of the events recorded after the cut (see its provider).

Differences, their order, positions and notes are exactly those of comparing two whole
snapshots (``creditledger.application.audit.state.compare``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from creditledger.application.audit.state import (
    AuditScope,
    BalanceKey,
    Difference,
    balance_difference,
    difference_order,
    purchase_difference,
    state_of_purchase,
)
from creditledger.domain.errors import LedgerError
from creditledger.domain.purchase import project_purchase

if TYPE_CHECKING:
    from creditledger.application.audit.closed import History
    from creditledger.application.audit.verify import VerificationReport
    from creditledger.application.projections.rows import PurchaseState
    from creditledger.domain.events import PurchaseEvent
    from creditledger.domain.purchase import CreditPurchase


@dataclass(frozen=True, slots=True)
class LiveRow:
    """One purchase as a live source has it."""

    state: PurchaseState
    later_events: tuple[PurchaseEvent, ...] | None = None
    """Set when the row already reflects events recorded after the cut (a read model keeps no
    old versions): those events. The export's purchase is rolled forward by them, then every
    field is compared."""


@dataclass(frozen=True, slots=True)
class LivePurchase:
    """A live purchase's id, and how to read it (only done if it is compared: a partial export
    skips the live purchases it does not hold without reading them)."""

    purchase_id: UUID
    read: Callable[[], LiveRow | None]
    """The row; None if the live path could not read it (it then counts as missing)."""


class LiveReading(Protocol):
    """One live source's state at the export's cut, read in purchase-id order."""

    @property
    def wallet_postings(self) -> bool:
        """Whether its balances book what credit-wallet events book (consumption, expiry): if
        not, the export's balances are compared without them."""
        ...

    def purchases(self) -> Iterator[LivePurchase]:
        """Every purchase of the scope initiated at or before the cut, in ascending id order."""
        ...

    def balances(self) -> Mapping[BalanceKey, Decimal]:
        """Every balance of the scope at the cut; asked once ``purchases`` is exhausted."""
        ...


class LiveLedger(Protocol):
    """A provider of the live state to compare an export with (``verify --against-live``)."""

    def reading(self, scope: AuditScope) -> AbstractContextManager[LiveReading]:
        """The live state of ``scope`` as of its cut, open for reading while the block lasts."""
        ...


@dataclass(frozen=True)
class LiveComparison:
    """How the export's state compares with one live source."""

    differences: list[Difference]
    purchases: int
    balances: int
    balances_compared: bool
    notes: list[str]
    source: str = "live"
    """Which live state: ``read_models`` or ``event_store``."""


@dataclass
class _Tally:
    purchases: int = 0
    rolled: int = 0
    later_rows: int = 0
    """Live rows that reflect events after the cut (whether or not rolling forward worked)."""


def compare_with_live(
    report: VerificationReport, live: LiveLedger, *, source: str = "live"
) -> LiveComparison:
    """Compare a verified export's purchases and balances with the live state, row by row."""
    scope = report.scope()
    if scope is None:
        msg = "the export has no header: nothing to compare"
        raise ValueError(msg)
    notes = []
    if not scope.balances:
        notes.append(
            "balances not compared: the export starts after the beginning of the log, so its "
            "balances are partial"
        )
        notes.append(
            "only purchases whose whole history is in the export were compared (the export "
            "starts after the beginning of the log)"
        )
    fold = report.ledger
    tally = _Tally()
    differences: list[Difference] = []
    with live.reading(scope) as reading:
        # Balances as the live source books them: with wallet postings (consumption, expiry)
        # only if it books those.
        wallet_postings = reading.wallet_postings
        if scope.balances and not wallet_postings:
            notes.append(
                "balances compared as purchase events book them: this source does not book "
                "credit-wallet events (consumption, expiry) yet"
            )
        for ours, theirs in _joined(fold.histories_in_order(), reading.purchases()):
            difference = _purchase_difference(ours, theirs, scope, tally)
            if difference is not None:
                differences.append(difference)
        live_balances = reading.balances() if scope.balances else {}
    if tally.later_rows:
        notes.append(
            f"{tally.rolled} purchase(s) changed after the export's cut were compared after "
            "rolling the export's state forward by the live events recorded since"
        )
    export_balances = fold.balances_of(wallet_postings=wallet_postings)
    if scope.balances:
        moved_at = fold.balance_positions()
        for key in export_balances.keys() | live_balances.keys():
            difference = balance_difference(
                key, export_balances.get(key), live_balances.get(key), moved_at.get(key)
            )
            if difference is not None:
                differences.append(difference)
    return LiveComparison(
        differences=sorted(differences, key=difference_order),
        purchases=tally.purchases,
        balances=len(export_balances),
        balances_compared=scope.balances,
        notes=notes,
        source=source,
    )


def compare_with_sources(
    report: VerificationReport, sources: Mapping[str, LiveLedger]
) -> list[LiveComparison]:
    """``compare_with_live`` with each named live source, in the order given."""
    return [compare_with_live(report, live, source=name) for name, live in sources.items()]


_Exported = tuple[UUID, "CreditPurchase", "History"]


def _joined(
    exported: Iterator[tuple[str, CreditPurchase, History]], live: Iterator[LivePurchase]
) -> Iterator[tuple[_Exported | None, LivePurchase | None]]:
    """Both sides' purchases paired by id (None where a side lacks one), in ascending id order:
    each side must come in that order."""
    ours = _next_exported(exported)
    theirs = next(live, None)
    while ours is not None or theirs is not None:
        if theirs is None or (ours is not None and ours[0] < theirs.purchase_id):
            yield ours, None
            ours = _next_exported(exported)
        elif ours is None or theirs.purchase_id < ours[0]:
            yield None, theirs
            theirs = next(live, None)
        else:
            yield ours, theirs
            ours = _next_exported(exported)
            theirs = next(live, None)


def _next_exported(exported: Iterator[tuple[str, CreditPurchase, History]]) -> _Exported | None:
    found = next(exported, None)
    if found is None:
        return None
    purchase_id, purchase, history = found
    return UUID(purchase_id), purchase, history


def _purchase_difference(
    ours: _Exported | None, theirs: LivePurchase | None, scope: AuditScope, tally: _Tally
) -> Difference | None:
    if ours is None:
        if theirs is None or not scope.balances:
            # A partial export compares only the purchases whose whole history it holds.
            return None
        row = theirs.read()
        if row is None:
            return None
        if row.later_events is not None:
            tally.later_rows += 1
        return purchase_difference(theirs.purchase_id, None, row.state, [])
    purchase_id, purchase, history = ours
    tally.purchases += 1
    at = [recorded.position for recorded in history]
    row = theirs.read() if theirs is not None else None
    if row is None:
        return purchase_difference(purchase_id, state_of_purchase(purchase), None, at)
    exported = None
    if row.later_events is not None:
        tally.later_rows += 1
        exported = _rolled_forward(purchase, row.later_events)
        if exported is not None:
            tally.rolled += 1
    if exported is None:
        exported = state_of_purchase(purchase)
    return purchase_difference(purchase_id, exported, row.state, at)


def _rolled_forward(
    purchase: CreditPurchase, events: tuple[PurchaseEvent, ...]
) -> PurchaseState | None:
    """The export's purchase advanced by the events the live row reflects beyond the cut; None
    if there are none or they do not apply (it is then compared at the cut, and differs)."""
    if not events:
        return None
    try:
        # The fold's purchase stays at the cut: other sources still compare with it.
        advanced = project_purchase(copy.deepcopy(purchase), events)
    except LedgerError:
        return None
    return state_of_purchase(advanced) if advanced is not None else None
