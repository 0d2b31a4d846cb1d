"""One view transaction, buffered: rows are looked up once, changes written in bulk at the end.

Projections apply a batch of events one at a time; writing each change as it happens would cost
a round trip per row. The buffer answers lookups from what it has already read or changed in
this transaction, and ``flush`` writes every change with one statement per table, together with
the new positions, inside the store's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol
from uuid import UUID

from creditledger.application.projections.rows import (
    AccountBalance,
    AccountKey,
    EntryId,
    EntryOrder,
    LedgerEntry,
    PurchaseRow,
    ReadModelName,
    ReceivableRow,
    RevenueKey,
    RevenueRow,
)
from creditledger.infrastructure.projections.layout import Layout


class TableAccess(Protocol):
    """The primitive reads and writes of one store, inside its open transaction."""

    def read_positions(self, names: Sequence[str]) -> dict[str, int]:
        """Read (and lock until the transaction ends) the named positions."""
        ...

    def write_positions(self, positions: Mapping[str, int]) -> None: ...

    def fetch_purchases(self, ids: Sequence[UUID]) -> list[PurchaseRow]: ...

    def write_purchases(self, rows: Sequence[PurchaseRow]) -> None: ...

    def fetch_accounts(self, keys: Sequence[AccountKey]) -> list[AccountBalance]: ...

    def write_accounts(self, rows: Sequence[AccountBalance]) -> None: ...

    def insert_entries(self, entries: Sequence[LedgerEntry]) -> None: ...

    def update_entries(self, entries: Sequence[LedgerEntry]) -> None: ...

    def fetch_entry_before(self, key: AccountKey, order: EntryOrder) -> LedgerEntry | None: ...

    def fetch_entries_after(self, key: AccountKey, order: EntryOrder) -> list[LedgerEntry]: ...

    def fetch_receivables(self, ids: Sequence[UUID]) -> list[ReceivableRow]: ...

    def write_receivables(self, rows: Sequence[ReceivableRow]) -> None: ...

    def fetch_revenue(self, keys: Sequence[RevenueKey]) -> list[RevenueRow]: ...

    def write_revenue(self, rows: Sequence[RevenueRow]) -> None: ...

    def swap_in(self, model: ReadModelName, rebuilt: Layout, live: Layout) -> None:
        """Replace the model's live tables with the rebuilt ones (same transaction)."""
        ...


class BufferedTransaction:
    """A ``ReadModelTransaction`` over a store's ``TableAccess``."""

    def __init__(self, access: TableAccess, names: Sequence[str]) -> None:
        self._access = access
        self._names = list(names)
        self._positions: dict[str, int] | None = None
        self._new_positions: dict[str, int] = {}
        self._purchases: dict[UUID, PurchaseRow | None] = {}
        self._changed_purchases: dict[UUID, PurchaseRow] = {}
        self._accounts: dict[AccountKey, AccountBalance | None] = {}
        self._changed_accounts: dict[AccountKey, AccountBalance] = {}
        self._new_entries: dict[EntryId, LedgerEntry] = {}
        self._new_entries_by_key: defaultdict[AccountKey, list[EntryId]] = defaultdict(list)
        self._changed_entries: dict[EntryId, LedgerEntry] = {}
        self._receivables: dict[UUID, ReceivableRow | None] = {}
        self._changed_receivables: dict[UUID, ReceivableRow] = {}
        self._revenue: dict[RevenueKey, RevenueRow | None] = {}
        self._changed_revenue: dict[RevenueKey, RevenueRow] = {}

    @property
    def access(self) -> TableAccess:
        return self._access

    # -- tracking -------------------------------------------------------------------------

    def positions(self) -> Mapping[str, int]:
        if self._positions is None:
            self._positions = self._access.read_positions(self._names)
        return {**self._positions, **self._new_positions}

    def set_positions(self, positions: Mapping[str, int]) -> None:
        self._new_positions.update(positions)

    # -- purchases ------------------------------------------------------------------------

    def load_purchases(self, purchase_ids: Iterable[UUID]) -> None:
        missing = [pid for pid in purchase_ids if pid not in self._purchases]
        if missing:
            found = {row.purchase_id: row for row in self._access.fetch_purchases(missing)}
            for pid in missing:
                self._purchases[pid] = found.get(pid)

    def purchase(self, purchase_id: UUID) -> PurchaseRow | None:
        try:
            return self._purchases[purchase_id]
        except KeyError:
            self.load_purchases((purchase_id,))
            return self._purchases[purchase_id]

    def put_purchase(self, row: PurchaseRow) -> None:
        self._purchases[row.purchase_id] = row
        self._changed_purchases[row.purchase_id] = row

    # -- ledger ---------------------------------------------------------------------------

    def load_accounts(self, keys: Iterable[AccountKey]) -> None:
        missing = [key for key in keys if key not in self._accounts]
        if missing:
            found = {row.key: row for row in self._access.fetch_accounts(missing)}
            for key in missing:
                self._accounts[key] = found.get(key)

    def account(self, key: AccountKey) -> AccountBalance | None:
        try:
            return self._accounts[key]
        except KeyError:
            self.load_accounts((key,))
            return self._accounts[key]

    def put_account(self, balance: AccountBalance) -> None:
        self._accounts[balance.key] = balance
        self._changed_accounts[balance.key] = balance

    def add_entry(self, entry: LedgerEntry) -> None:
        entry_id = (entry.purchase_id, entry.version, entry.line)
        self._new_entries[entry_id] = entry
        self._new_entries_by_key[
            (entry.namespace, entry.customer_id, entry.currency, entry.account)
        ].append(entry_id)

    def replace_entry(self, entry: LedgerEntry) -> None:
        if entry.id in self._new_entries:
            self._new_entries[entry.id] = entry
        else:
            self._changed_entries[entry.id] = entry

    def _buffered(self, key: AccountKey) -> list[LedgerEntry]:
        return [self._new_entries[entry_id] for entry_id in self._new_entries_by_key.get(key, ())]

    def entry_before(self, key: AccountKey, order: EntryOrder) -> LedgerEntry | None:
        candidates = [entry for entry in self._buffered(key) if entry.order < order]
        stored = self._access.fetch_entry_before(key, order)
        if stored is not None:
            candidates.append(self._changed_entries.get(stored.id, stored))
        return max(candidates, key=lambda entry: entry.order, default=None)

    def entries_after(self, key: AccountKey, order: EntryOrder) -> list[LedgerEntry]:
        later = [entry for entry in self._buffered(key) if entry.order > order]
        later += [
            self._changed_entries.get(stored.id, stored)
            for stored in self._access.fetch_entries_after(key, order)
        ]
        return sorted(later, key=lambda entry: entry.order)

    # -- receivables ----------------------------------------------------------------------

    def load_receivables(self, purchase_ids: Iterable[UUID]) -> None:
        missing = [pid for pid in purchase_ids if pid not in self._receivables]
        if missing:
            found = {row.purchase_id: row for row in self._access.fetch_receivables(missing)}
            for pid in missing:
                self._receivables[pid] = found.get(pid)

    def receivable(self, purchase_id: UUID) -> ReceivableRow | None:
        try:
            return self._receivables[purchase_id]
        except KeyError:
            self.load_receivables((purchase_id,))
            return self._receivables[purchase_id]

    def put_receivable(self, row: ReceivableRow) -> None:
        self._receivables[row.purchase_id] = row
        self._changed_receivables[row.purchase_id] = row

    # -- settled revenue ------------------------------------------------------------------

    def load_revenue(self, keys: Iterable[RevenueKey]) -> None:
        missing = [key for key in keys if key not in self._revenue]
        if missing:
            found = {row.key: row for row in self._access.fetch_revenue(missing)}
            for key in missing:
                self._revenue[key] = found.get(key)

    def revenue(self, key: RevenueKey) -> RevenueRow | None:
        try:
            return self._revenue[key]
        except KeyError:
            self.load_revenue((key,))
            return self._revenue[key]

    def put_revenue(self, row: RevenueRow) -> None:
        self._revenue[row.key] = row
        self._changed_revenue[row.key] = row

    # -- writing --------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every change so far, and the new positions, into the store's transaction."""
        access = self._access
        if self._changed_purchases:
            access.write_purchases(list(self._changed_purchases.values()))
        if self._new_entries:
            access.insert_entries(list(self._new_entries.values()))
        if self._changed_entries:
            access.update_entries(list(self._changed_entries.values()))
        if self._changed_accounts:
            access.write_accounts(list(self._changed_accounts.values()))
        if self._changed_receivables:
            access.write_receivables(list(self._changed_receivables.values()))
        if self._changed_revenue:
            access.write_revenue(list(self._changed_revenue.values()))
        if self._new_positions:
            access.write_positions(self._new_positions)
            self._positions = {**(self._positions or {}), **self._new_positions}
        self._changed_purchases.clear()
        self._new_entries.clear()
        self._new_entries_by_key.clear()
        self._changed_entries.clear()
        self._changed_accounts.clear()
        self._changed_receivables.clear()
        self._changed_revenue.clear()
        self._new_positions = {}
