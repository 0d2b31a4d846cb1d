"""The live state to compare an export with, from the read models' tables.

The views follow the log asynchronously, so the export's cut and the views' positions differ:

- **Behind the cut**: the views are caught up first, in this process, exactly to the cut
  (``until``), which is safe while a projector runs elsewhere (batches take turns on the views'
  lock and never apply an event twice).
- **Past the cut** (a projector kept going after the export): the rows are read in one read
  transaction (one snapshot), and made exact at the cut by position, not by time:

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

Memory: the purchases are streamed in id order, one row at a time (``ViewSnapshot.rows``), for
the merge with the export's (``creditledger.application.audit.against_live``). Held whole: the
account rows of the scope (one per namespace, customer, currency and account: they grow with
customers, not with the log), read before the purchases, with only the entries recorded after
the cut (a range of the entries' key) subtracted; and, once a row is met that moved on since the
cut, each aggregate's first version after the cut (one number per aggregate written to after the
cut: it grows with what happened since the export, not with the log).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from uuid import UUID

from creditledger.application.audit.against_live import LivePurchase, LiveReading, LiveRow
from creditledger.application.audit.state import AuditScope, BalanceKey, state_of_view
from creditledger.application.projections.purchases import purchase_view
from creditledger.application.projections.rows import PurchaseRow, ReadModelName, Tables
from creditledger.domain.events import PurchaseEvent
from creditledger.domain.ledger import Account
from creditledger.infrastructure.audit.log import DEFAULT_BATCH_SIZE, read_log
from creditledger.infrastructure.projections.database import ViewSnapshot
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

    @contextmanager
    def reading(self, scope: AuditScope) -> Iterator[LiveReading]:
        cut = scope.last_position
        self._reach(cut)
        with self._service.database.reading() as views:
            self.positions = views.positions()
            # Every statement of the snapshot shares its cursor: the balances are read whole
            # before the purchases are streamed.
            balances = _balances_at(views, scope) if scope.balances else {}
            yield _ViewsAtCut(
                views,
                scope,
                balances,
                _LaterEvents(
                    self._service,
                    cut,
                    self.positions.get(ReadModelName.PURCHASES.value, 0),
                    self._batch_size,
                ),
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


class _ViewsAtCut:
    """``LiveReading`` of one snapshot of the views."""

    wallet_postings = True

    def __init__(
        self,
        views: ViewSnapshot,
        scope: AuditScope,
        balances: dict[BalanceKey, Decimal],
        later: _LaterEvents,
    ) -> None:
        self._views = views
        self._scope = scope
        self._balances = balances
        self._later = later

    def purchases(self) -> Iterator[LivePurchase]:
        cut, namespace = self._scope.last_position, self._scope.namespace
        for row in self._views.rows(Tables.PURCHASES):
            if row.created_position > cut or (namespace is not None and row.namespace != namespace):
                continue
            yield LivePurchase(row.purchase_id, partial(self._row, row))

    def _row(self, row: PurchaseRow) -> LiveRow:
        later = self._later.of(row) if row.position > self._scope.last_position else None
        return LiveRow(state_of_view(purchase_view(row)), later)

    def balances(self) -> Mapping[BalanceKey, Decimal]:
        return self._balances


class _LaterEvents:
    """The events a purchase row reflects beyond the cut, read from the log."""

    def __init__(self, service: ReadModelService, cut: int, views_at: int, batch_size: int) -> None:
        self._service = service
        self._cut = cut
        self._views_at = views_at
        self._batch_size = batch_size
        self._first_after: dict[UUID, int] | None = None

    def of(self, row: PurchaseRow) -> tuple[PurchaseEvent, ...] | None:
        """The row's events after the cut, in order; None if the log has none for it (the row
        then claims events the log does not have: compared as it is, its version differs)."""
        start = self._first_versions_after().get(row.purchase_id)
        if start is None:
            return None
        events = self._service.ledger.events.get(row.purchase_id, gt=start - 1, lte=row.version)
        return tuple(event for event in events if isinstance(event, PurchaseEvent))

    def _first_versions_after(self) -> dict[UUID, int]:
        """Each aggregate's first version recorded after the cut, up to the views' position
        (read once, when the first row that moved on is met)."""
        if self._first_after is None:
            first_after: dict[UUID, int] = {}
            ledger = self._service.ledger
            for batch in read_log(
                ledger, after=self._cut, up_to=self._views_at, batch_size=self._batch_size
            ):
                for entry in batch:
                    first_after.setdefault(UUID(entry.aggregate_id), entry.version)
            self._first_after = first_after
        return self._first_after


def _balances_at(views: ViewSnapshot, scope: AuditScope) -> dict[BalanceKey, Decimal]:
    """Each account row's balance, less what entries recorded after the cut added to it."""
    cut = scope.last_position
    later: dict[BalanceKey, Decimal] = {}
    for entry in views.rows_above(Tables.ENTRIES, cut):
        key = _key(entry.namespace, entry.customer_id, entry.currency, entry.account)
        later[key] = later.get(key, Decimal(0)) + entry.amount
    totals: dict[BalanceKey, Decimal] = {}
    for account in views.rows(Tables.ACCOUNTS):
        if scope.namespace is not None and account.namespace != scope.namespace:
            continue
        key = _key(account.namespace, account.customer_id, account.currency, account.account)
        # An account opened after the cut comes out as zero, which compares equal to absent.
        totals[key] = account.balance - later.get(key, Decimal(0))
    return totals


def _key(namespace: str, customer_id: str, currency: str, account: Account) -> BalanceKey:
    return BalanceKey(namespace, customer_id, currency, account.value)
