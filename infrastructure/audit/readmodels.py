"""The live state to compare an export with, from the read models' tables.

The views follow the log asynchronously, so the export's cut and the views' positions differ:

- **Behind the cut**: the views are caught up first, in this process, exactly to the cut
  (``until``), which is safe while a projector runs elsewhere (batches take turns on the views'
  lock and never apply an event twice).
- **Past the cut** (a projector kept going after the export): one snapshot of every row is read in
  one transaction, and made exact at the cut by position, not by time:

  - a balance at the cut is the account row's balance minus the entries recorded after the cut.
    "As of the time of the cut's last event" would not be exact: the log is in commit order, not
    clock order, so an entry stamped before that time can be recorded after the cut (a writer
    whose clock is behind) and one recorded before it can be stamped later;
  - a purchase row that moved on since the cut no longer holds its state at the cut, and no
    view keeps old versions. The row is kept as it is, with the events recorded for it after the
    cut (``LedgerSnapshot.later_events``); the comparison rolls the export's purchase forward by
    those events and compares every field of the row.

Balances hold what the ledger read model books: purchase postings (``postings_for``) and wallet
postings (``wallet_postings``: consumption, expiry), exactly as the export's are taken.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from creditledger.application.audit.state import (
    AuditScope,
    BalanceKey,
    LedgerSnapshot,
    state_of_view,
)
from creditledger.application.projections.purchases import purchase_view
from creditledger.application.projections.rows import (
    PurchaseState,
    ReadModelName,
    ReadModelSnapshot,
)
from creditledger.domain.events import PurchaseEvent
from creditledger.domain.ledger import Account
from creditledger.infrastructure.audit.log import DEFAULT_BATCH_SIZE, read_log
from creditledger.infrastructure.projections.service import ReadModelService


class ViewsBehindError(RuntimeError):
    """The read models could not be brought to the export's cut."""


class ReadModelLiveLedger:
    """``LiveLedger`` over the read models of a ledger (``open_read_models``)."""

    def __init__(self, service: ReadModelService, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self._service = service
        self._batch_size = batch_size
        self.caught_up = 0
        """Events this provider applied to the views itself to reach the cut."""
        self.positions: dict[str, int] = {}
        """The views' positions in the snapshot compared."""

    def snapshot(self, scope: AuditScope) -> LedgerSnapshot:
        cut = scope.last_position
        self._reach(cut)
        views = self._service.database.snapshot()
        self.positions = dict(views.positions)
        purchases_at = views.positions.get(ReadModelName.PURCHASES.value, 0)
        purchases: dict[UUID, PurchaseState] = {}
        moved_on: dict[UUID, int] = {}
        for row in views.purchases:
            if row.created_position > cut or not _in_scope(scope, row.purchase_id, row.namespace):
                continue
            purchases[row.purchase_id] = state_of_view(purchase_view(row))
            if row.position > cut:
                moved_on[row.purchase_id] = row.version
        return LedgerSnapshot(
            purchases,
            _balances_at(views, scope) if scope.balances else {},
            position=cut,
            wallet_postings=True,
            later_events=self._events_after(cut, purchases_at, moved_on),
        )

    def _reach(self, cut: int) -> None:
        read_models = self._service.read_models
        if read_models.position() >= cut:
            return
        runner = self._service.runner
        self.caught_up += runner.catch_up(until=dict.fromkeys(runner.names, cut))
        if read_models.position() < cut:
            msg = (
                f"the read models stand at position {read_models.position()}, behind the "
                f"export's cut {cut}, and could not be caught up"
            )
            raise ViewsBehindError(msg)

    def _events_after(
        self, cut: int, views_at: int, moved_on: dict[UUID, int]
    ) -> dict[UUID, tuple[PurchaseEvent, ...]]:
        """The events each moved-on purchase's row reflects beyond the cut, in order."""
        if not moved_on:
            return {}
        first_after: dict[UUID, int] = {}
        ledger = self._service.ledger
        for batch in read_log(ledger, after=cut, up_to=views_at, batch_size=self._batch_size):
            for entry in batch:
                aggregate_id = UUID(entry.aggregate_id)
                if aggregate_id in moved_on:
                    first_after.setdefault(aggregate_id, entry.version)
        later: dict[UUID, tuple[PurchaseEvent, ...]] = {}
        for purchase_id, version in moved_on.items():
            start = first_after.get(purchase_id)
            if start is None:
                # The row claims events after the cut that the log does not have: compared as
                # it is, it differs from the export (its version says so).
                continue
            later[purchase_id] = tuple(
                event
                for event in ledger.events.get(purchase_id, gt=start - 1, lte=version)
                if isinstance(event, PurchaseEvent)
            )
        return later


def _in_scope(scope: AuditScope, purchase_id: UUID, namespace: str) -> bool:
    if scope.namespace is not None and namespace != scope.namespace:
        return False
    return scope.purchase_ids is None or purchase_id in scope.purchase_ids


def _balances_at(views: ReadModelSnapshot, scope: AuditScope) -> dict[BalanceKey, Decimal]:
    """Each account row's balance, less what entries recorded after the cut added to it."""
    cut = scope.last_position
    later: dict[BalanceKey, Decimal] = {}
    for entry in views.entries:
        if entry.position > cut:
            key = _key(entry.namespace, entry.customer_id, entry.currency, entry.account)
            later[key] = later.get(key, Decimal(0)) + entry.amount
    totals: dict[BalanceKey, Decimal] = {}
    for account in views.accounts:
        if scope.namespace is not None and account.namespace != scope.namespace:
            continue
        key = _key(account.namespace, account.customer_id, account.currency, account.account)
        # An account opened after the cut comes out as zero, which compares equal to absent.
        totals[key] = account.balance - later.get(key, Decimal(0))
    return totals


def _key(namespace: str, customer_id: str, currency: str, account: Account) -> BalanceKey:
    return BalanceKey(namespace, customer_id, currency, account.value)
