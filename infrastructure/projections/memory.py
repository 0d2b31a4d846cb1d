"""Read models in memory: for the in-memory event store, and for ``verify``'s rebuild.

Tables are dictionaries (and, for ledger entries, per-account lists kept in time order) guarded
by one lock. A transaction holds the lock from its first read to its commit and writes only when
it commits, so readers never see half a batch.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from creditledger.application.projections.rows import (
    AccountBalance,
    AccountKey,
    EntryId,
    EntryOrder,
    LedgerEntry,
    PurchaseRow,
    ReadModelName,
    ReadModelSnapshot,
    ReceivableRow,
    RevenueKey,
    RevenueRow,
)
from creditledger.application.readmodels import Positioned
from creditledger.domain.ledger import Account
from creditledger.domain.status import PurchaseStatus
from creditledger.infrastructure.projections.buffer import BufferedTransaction
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.layout import (
    MODEL_TABLES,
    Layout,
    Table,
    rebuild_layout,
)


@dataclass
class EntriesTable:
    by_id: dict[EntryId, LedgerEntry] = field(default_factory=dict)
    by_account: dict[AccountKey, list[tuple[EntryOrder, EntryId]]] = field(default_factory=dict)

    def add(self, entry: LedgerEntry) -> None:
        if entry.id in self.by_id:
            msg = f"ledger entry {entry.id} already exists"
            raise KeyError(msg)
        self.by_id[entry.id] = entry
        bisect.insort(self.by_account.setdefault(entry.key, []), (entry.order, entry.id))

    def before(self, key: AccountKey, order: EntryOrder) -> LedgerEntry | None:
        """The account's last entry ordered strictly before ``order``."""
        slots = self.by_account.get(key, [])
        index = bisect.bisect_left(slots, order, key=lambda slot: slot[0])
        return self.by_id[slots[index - 1][1]] if index > 0 else None

    def at_or_before(self, key: AccountKey, moment: datetime) -> LedgerEntry | None:
        slots = self.by_account.get(key, [])
        index = bisect.bisect_right(slots, moment, key=lambda slot: slot[0][0])
        return self.by_id[slots[index - 1][1]] if index > 0 else None

    def after(self, key: AccountKey, order: EntryOrder) -> list[LedgerEntry]:
        slots = self.by_account.get(key, [])
        index = bisect.bisect_right(slots, order, key=lambda slot: slot[0])
        return [self.by_id[entry_id] for _, entry_id in slots[index:]]


@dataclass
class MemoryTables:
    """Every table of the memory store by its name; a rebuild adds ``__rebuild`` ones."""

    purchases: dict[str, dict[UUID, PurchaseRow]] = field(default_factory=dict)
    entries: dict[str, EntriesTable] = field(default_factory=dict)
    accounts: dict[str, dict[AccountKey, AccountBalance]] = field(default_factory=dict)
    receivables: dict[str, dict[UUID, ReceivableRow]] = field(default_factory=dict)
    revenue: dict[str, dict[RevenueKey, RevenueRow]] = field(default_factory=dict)
    tracking: dict[str, int] = field(default_factory=dict)

    def has(self, table: Table, name: str) -> bool:
        return name in self._family(table)

    def create(self, table: Table, name: str) -> None:
        family = self._family(table)
        family[name] = EntriesTable() if table is Table.ENTRIES else {}

    def drop(self, table: Table, name: str) -> None:
        self._family(table).pop(name, None)

    def rename(self, table: Table, old: str, new: str) -> None:
        family = self._family(table)
        family[new] = family.pop(old)

    def _family(self, table: Table) -> dict[str, object]:
        families: dict[Table, dict[str, object]] = {
            Table.PURCHASES: self.purchases,  # type: ignore[dict-item]
            Table.ENTRIES: self.entries,  # type: ignore[dict-item]
            Table.ACCOUNTS: self.accounts,  # type: ignore[dict-item]
            Table.RECEIVABLES: self.receivables,  # type: ignore[dict-item]
            Table.REVENUE: self.revenue,  # type: ignore[dict-item]
        }
        return families[table]


class MemoryAccess:
    """``TableAccess`` over the memory tables (the caller holds the lock)."""

    def __init__(self, tables: MemoryTables, layout: Layout) -> None:
        self.tables = tables
        self.layout = layout
        names = layout.tables
        self.purchases = (
            tables.purchases[names[Table.PURCHASES]]
            if ReadModelName.PURCHASES in layout.models
            else {}
        )
        self.entries = (
            tables.entries[names[Table.ENTRIES]]
            if ReadModelName.LEDGER in layout.models
            else EntriesTable()
        )
        self.accounts = (
            tables.accounts[names[Table.ACCOUNTS]] if ReadModelName.LEDGER in layout.models else {}
        )
        self.receivables = (
            tables.receivables[names[Table.RECEIVABLES]]
            if ReadModelName.RECEIVABLES in layout.models
            else {}
        )
        self.revenue = (
            tables.revenue[names[Table.REVENUE]]
            if ReadModelName.SETTLED_REVENUE in layout.models
            else {}
        )

    def read_positions(self, names: Sequence[str]) -> dict[str, int]:
        missing = [name for name in names if name not in self.tables.tracking]
        if missing:
            msg = f"read model tracking rows missing: {missing} (tables not created?)"
            raise LookupError(msg)
        return {name: self.tables.tracking[name] for name in names}

    def write_positions(self, positions: Mapping[str, int]) -> None:
        self.tables.tracking.update(positions)

    def fetch_purchases(self, ids: Sequence[UUID]) -> list[PurchaseRow]:
        return [self.purchases[pid] for pid in ids if pid in self.purchases]

    def write_purchases(self, rows: Sequence[PurchaseRow]) -> None:
        for row in rows:
            self.purchases[row.purchase_id] = row

    def fetch_accounts(self, keys: Sequence[AccountKey]) -> list[AccountBalance]:
        return [self.accounts[key] for key in keys if key in self.accounts]

    def write_accounts(self, rows: Sequence[AccountBalance]) -> None:
        for row in rows:
            self.accounts[row.key] = row

    def insert_entries(self, entries: Sequence[LedgerEntry]) -> None:
        for entry in entries:
            self.entries.add(entry)

    def update_entries(self, entries: Sequence[LedgerEntry]) -> None:
        for entry in entries:
            self.entries.by_id[entry.id] = entry

    def fetch_entry_before(self, key: AccountKey, order: EntryOrder) -> LedgerEntry | None:
        return self.entries.before(key, order)

    def fetch_entries_after(self, key: AccountKey, order: EntryOrder) -> list[LedgerEntry]:
        return self.entries.after(key, order)

    def fetch_receivables(self, ids: Sequence[UUID]) -> list[ReceivableRow]:
        return [self.receivables[pid] for pid in ids if pid in self.receivables]

    def write_receivables(self, rows: Sequence[ReceivableRow]) -> None:
        for row in rows:
            self.receivables[row.purchase_id] = row

    def fetch_revenue(self, keys: Sequence[RevenueKey]) -> list[RevenueRow]:
        return [self.revenue[key] for key in keys if key in self.revenue]

    def write_revenue(self, rows: Sequence[RevenueRow]) -> None:
        for row in rows:
            self.revenue[row.key] = row

    def swap_in(self, model: ReadModelName, rebuilt: Layout, live: Layout) -> None:
        for table in MODEL_TABLES[model]:
            self.tables.drop(table, live.table(table))
            self.tables.rename(table, rebuilt.table(table), live.table(table))
        self.tables.tracking[live.tracking[model]] = self.tables.tracking.pop(
            rebuilt.tracking[model]
        )


class MemoryViewDatabase(ViewDatabase):
    kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._tables = MemoryTables()
        self.ensure_tables(self.live)

    def ensure_tables(self, layout: Layout) -> None:
        with self._lock:
            for model in layout.models:
                tables = MODEL_TABLES[model]
                if all(self._tables.has(table, layout.table(table)) for table in tables):
                    self._tables.tracking.setdefault(layout.tracking[model], 0)
                    continue
                for table in tables:
                    self._tables.create(table, layout.table(table))
                self._tables.tracking[layout.tracking[model]] = 0

    def create_rebuild_tables(self, model: ReadModelName) -> Layout:
        layout = rebuild_layout(model)
        with self._lock:
            for table in MODEL_TABLES[model]:
                self._tables.create(table, layout.table(table))
            self._tables.tracking[layout.tracking[model]] = 0
        return layout

    def drop_rebuild_tables(self, model: ReadModelName) -> None:
        layout = rebuild_layout(model)
        with self._lock:
            for table in MODEL_TABLES[model]:
                self._tables.drop(table, layout.table(table))
            self._tables.tracking.pop(layout.tracking[model], None)

    @contextmanager
    def transaction(self, layout: Layout, names: Sequence[str]) -> Iterator[BufferedTransaction]:
        with self._lock:
            transaction = BufferedTransaction(MemoryAccess(self._tables, layout), names)
            yield transaction
            transaction.flush()

    # -- reading --------------------------------------------------------------------------

    def _live(self) -> MemoryAccess:
        return MemoryAccess(self._tables, self.live)

    def positions(self) -> dict[str, int]:
        with self._lock:
            return dict(self._tables.tracking)

    def _position(self, model: ReadModelName) -> int:
        return self._tables.tracking.get(self.live.tracking[model], 0)

    def purchases_page(
        self,
        namespace: str,
        *,
        customer_id: str | None,
        status: PurchaseStatus | None,
        after: int,
        limit: int,
    ) -> Positioned[PurchaseRow]:
        with self._lock:
            rows = sorted(
                (
                    row
                    for row in self._live().purchases.values()
                    if row.namespace == namespace
                    and (customer_id is None or row.customer_id == customer_id)
                    and (status is None or row.status is status)
                    and row.created_position > after
                ),
                key=lambda row: row.created_position,
            )
            return Positioned(self._position(ReadModelName.PURCHASES), rows[:limit])

    def balances(
        self, namespace: str, customer_id: str, as_of: datetime | None
    ) -> Positioned[tuple[str, Account, Decimal]]:
        with self._lock:
            live = self._live()
            found = []
            for key, account in sorted(live.accounts.items(), key=lambda item: str(item[0])):
                if key[0] != namespace or key[1] != customer_id:
                    continue
                if as_of is None:
                    found.append((key[2], key[3], account.balance))
                    continue
                entry = live.entries.at_or_before(key, as_of)
                if entry is not None:
                    found.append((key[2], key[3], entry.balance_after))
            return Positioned(self._position(ReadModelName.LEDGER), found)

    def receivables(self, namespace: str, as_of: datetime) -> Positioned[ReceivableRow]:
        with self._lock:
            rows = sorted(
                (
                    row
                    for row in self._live().receivables.values()
                    if row.namespace == namespace
                    and row.opened_at <= as_of
                    and (row.settled_at is None or row.settled_at > as_of)
                ),
                key=lambda row: (row.opened_at, str(row.purchase_id)),
            )
            return Positioned(self._position(ReadModelName.RECEIVABLES), rows)

    def settled_revenue(
        self, namespace: str, first: date, last: date, currency: str | None
    ) -> Positioned[RevenueRow]:
        with self._lock:
            rows = sorted(
                (
                    row
                    for row in self._live().revenue.values()
                    if row.namespace == namespace
                    and first <= row.day <= last
                    and (currency is None or row.currency == currency)
                ),
                key=lambda row: (row.day, row.currency),
            )
            return Positioned(self._position(ReadModelName.SETTLED_REVENUE), rows)

    def snapshot(self) -> ReadModelSnapshot:
        with self._lock:
            live = self._live()
            return ReadModelSnapshot(
                positions={model.value: self._position(model) for model in ReadModelName},
                purchases=sorted(live.purchases.values(), key=lambda row: str(row.purchase_id)),
                entries=sorted(
                    live.entries.by_id.values(),
                    key=lambda row: (str(row.purchase_id), row.version, row.line),
                ),
                accounts=sorted(live.accounts.values(), key=lambda row: str(row.key)),
                receivables=sorted(live.receivables.values(), key=lambda row: str(row.purchase_id)),
                revenue=sorted(live.revenue.values(), key=lambda row: str(row.key)),
            )
