"""Read models in memory: for the in-memory event store, and for ``verify``'s rebuild.

Each table is a dictionary of rows by key (an ordered index of it is built the first time a
scan needs one, and kept from then on), every table alike, guarded by one lock. A transaction
holds the lock from its first read to its commit and writes only when it commits, so readers
never see half a batch.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, Generic, TypeVar

from creditledger.application.projections.rows import (
    TABLES,
    Index,
    PurchaseRow,
    ReadModelName,
    ReadModelSnapshot,
    ReceivableRow,
    RevenueRow,
    Tables,
    ViewTable,
)
from creditledger.application.readmodels import Positioned, owed_at
from creditledger.domain.ledger import Account
from creditledger.domain.status import PurchaseStatus
from creditledger.infrastructure.projections.buffer import BufferedTransaction, RowCache
from creditledger.infrastructure.projections.database import ViewDatabase, ViewSnapshot
from creditledger.infrastructure.projections.layout import (
    MODEL_TABLES,
    Layout,
    rebuild_layout,
)

RowT = TypeVar("RowT")
KeyT = TypeVar("KeyT")
Slot = tuple[tuple[Any, ...], Any]
"""An ordered index's entry: the row's values of the columns after the prefix, and its key."""


class MemoryTable(Generic[RowT, KeyT]):
    """One table: its rows by key, and the ordered indexes scans have asked for."""

    def __init__(self, table: ViewTable[RowT, KeyT]) -> None:
        self.key_of: Callable[[RowT], KeyT] = table.key_of
        self.rows: dict[KeyT, RowT] = {}
        self._orders: dict[tuple[Index, int], dict[tuple[Any, ...], list[Slot]]] = {}

    def insert(self, row: RowT) -> None:
        key = self.key_of(row)
        if key in self.rows:
            msg = f"row {key} already exists"
            raise KeyError(msg)
        self.rows[key] = row
        for (index, width), partitions in self._orders.items():
            _add(partitions, index, width, row, key)

    def upsert(self, row: RowT) -> None:
        key = self.key_of(row)
        old = self.rows.get(key)
        self.rows[key] = row
        for (index, width), partitions in self._orders.items():
            values = attrgetter(*index.columns)
            if old is not None:
                if values(old) == values(row):
                    continue
                before = values(old)
                slots = partitions[before[:width]]
                slots.remove((before[width:], key))
            _add(partitions, index, width, row, key)

    def partition(self, index: Index, prefix: tuple[Any, ...]) -> list[Slot]:
        """The rows whose first index columns equal ``prefix``, ordered by the others."""
        width = len(prefix)
        partitions = self._orders.get((index, width))
        if partitions is None:
            partitions = self._orders[(index, width)] = {}
            for key, row in self.rows.items():
                _add(partitions, index, width, row, key)
        return partitions.get(prefix, [])

    def scan(
        self,
        index: Index,
        prefix: tuple[Any, ...],
        *,
        above: tuple[Any, ...] | None = None,
        below: tuple[Any, ...] | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[RowT]:
        slots = self.partition(index, prefix)
        first, last = 0, len(slots)
        if above is not None:
            width = len(above)
            first = bisect.bisect_right(slots, above, key=lambda slot: slot[0][:width])
        if below is not None:
            width = len(below)
            last = bisect.bisect_left(slots, below, key=lambda slot: slot[0][:width])
        found = slots[first:last]
        if descending:
            found.reverse()
        if limit is not None:
            found = found[:limit]
        return [self.rows[key] for _, key in found]


def _add(
    partitions: dict[tuple[Any, ...], list[Slot]], index: Index, width: int, row: Any, key: Any
) -> None:
    values = attrgetter(*index.columns)(row)
    bisect.insort(partitions.setdefault(values[:width], []), (values[width:], key))


class MemoryTables:
    """Every table of the memory store by its name; a rebuild adds ``__rebuild`` ones."""

    def __init__(self) -> None:
        self.families: dict[ViewTable[Any, Any], dict[str, MemoryTable[Any, Any]]] = {
            table: {} for table in TABLES
        }
        self.tracking: dict[str, int] = {}

    def __getattr__(self, snapshot: str) -> dict[str, dict[Any, Any]]:
        """A table's rows by table name, the table named by its snapshot field: for tests
        that edit rows in place (``tables.purchases["readmodel_purchases"]``)."""
        for table, family in self.families.items():
            if table.snapshot == snapshot:
                return {name: stored.rows for name, stored in family.items()}
        raise AttributeError(snapshot)

    def has(self, table: ViewTable[Any, Any], name: str) -> bool:
        return name in self.families[table]

    def create(self, table: ViewTable[Any, Any], name: str) -> None:
        self.families[table][name] = MemoryTable(table)

    def drop(self, table: ViewTable[Any, Any], name: str) -> None:
        self.families[table].pop(name, None)

    def rename(self, table: ViewTable[Any, Any], old: str, new: str) -> None:
        family = self.families[table]
        family[new] = family.pop(old)


class MemoryAccess:
    """``TableAccess`` over the memory tables (the caller holds the lock)."""

    def __init__(self, tables: MemoryTables, layout: Layout) -> None:
        self.tables = tables
        self.layout = layout
        # A model outside the layout gets empty tables of its own (nothing writes them).
        self._tables: dict[ViewTable[Any, Any], MemoryTable[Any, Any]] = {
            table: (
                tables.families[table][layout.table(table)]
                if table.model in layout.models
                else MemoryTable(table)
            )
            for table in TABLES
        }

    def table(self, table: ViewTable[RowT, KeyT]) -> MemoryTable[RowT, KeyT]:
        found: MemoryTable[RowT, KeyT] = self._tables[table]
        return found

    def read_positions(self, names: Sequence[str]) -> dict[str, int]:
        missing = [name for name in names if name not in self.tables.tracking]
        if missing:
            msg = f"read model tracking rows missing: {missing} (tables not created?)"
            raise LookupError(msg)
        return {name: self.tables.tracking[name] for name in names}

    def write_positions(self, positions: Mapping[str, int]) -> None:
        self.tables.tracking.update(positions)

    def tracking_stamp(self) -> Hashable | None:
        return None  # the rows are in memory already: nothing to cache

    def fetch(self, table: ViewTable[RowT, KeyT], keys: Sequence[KeyT]) -> list[RowT]:
        rows = self.table(table).rows
        return [rows[key] for key in keys if key in rows]

    def insert(self, table: ViewTable[RowT, Any], rows: Sequence[RowT]) -> None:
        stored = self.table(table)
        for row in rows:
            stored.insert(row)

    def upsert(self, table: ViewTable[RowT, Any], rows: Sequence[RowT]) -> None:
        stored = self.table(table)
        for row in rows:
            stored.upsert(row)

    def scan(
        self,
        table: ViewTable[RowT, Any],
        index: Index,
        prefix: tuple[Any, ...],
        *,
        above: tuple[Any, ...] | None = None,
        below: tuple[Any, ...] | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[RowT]:
        return self.table(table).scan(
            index, prefix, above=above, below=below, descending=descending, limit=limit
        )

    def swap_in(self, model: ReadModelName, rebuilt: Layout, live: Layout) -> None:
        for table in MODEL_TABLES[model]:
            self.tables.drop(table, live.table(table))
            self.tables.rename(table, rebuilt.table(table), live.table(table))
        self.tables.tracking[live.tracking[model]] = self.tables.tracking.pop(
            rebuilt.tracking[model]
        )


class _MemorySnapshot:
    """``ViewSnapshot`` of the memory store (the caller holds its lock)."""

    def __init__(self, positions: dict[str, int], access: MemoryAccess) -> None:
        self._positions = positions
        self._access = access

    def positions(self) -> dict[str, int]:
        return dict(self._positions)

    def rows(self, table: ViewTable[RowT, Any]) -> Iterator[RowT]:
        return iter(sorted(self._access.table(table).rows.values(), key=table.key_of))

    def rows_above(self, table: ViewTable[RowT, Any], first: Any) -> Iterator[RowT]:
        column = table.key[0]
        return (row for row in self.rows(table) if getattr(row, column) > first)

    def stored(self, table: ViewTable[RowT, Any]) -> None:
        del table  # the rows are held as rows: nothing to spare


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
    def transaction(
        self, layout: Layout, names: Sequence[str], cache: RowCache | None = None
    ) -> Iterator[BufferedTransaction]:
        del cache  # the rows are in memory already
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
                    for row in self._live().table(Tables.PURCHASES).rows.values()
                    if row.namespace == namespace
                    and (customer_id is None or row.customer_id == customer_id)
                    and (status is None or row.status is status)
                    and row.created_position > after
                ),
                key=lambda row: row.created_position,
            )
            return Positioned(self._position(ReadModelName.PURCHASES), rows[:limit])

    def due_expiries(
        self, at: datetime, limit: int, *, namespace: str | None, customer_id: str | None
    ) -> Positioned[PurchaseRow]:
        with self._lock:
            rows = sorted(
                (
                    row
                    for row in self._live().table(Tables.PURCHASES).rows.values()
                    if row.expiry_due
                    and row.expires_at is not None
                    and row.expires_at <= at
                    and (namespace is None or row.namespace == namespace)
                    and (customer_id is None or row.customer_id == customer_id)
                ),
                key=lambda row: (row.expires_at, str(row.purchase_id)),
            )
            return Positioned(self._position(ReadModelName.PURCHASES), rows[:limit])

    def balances(
        self, namespace: str, customer_id: str, as_of: datetime | None
    ) -> Positioned[tuple[str, Account, Decimal]]:
        with self._lock:
            live = self._live()
            accounts, entries = live.table(Tables.ACCOUNTS), live.table(Tables.ENTRIES)
            by_time = Tables.ENTRIES.index("by_account_time")
            found = []
            for key, account in sorted(accounts.rows.items(), key=lambda item: str(item[0])):
                if key[0] != namespace or key[1] != customer_id:
                    continue
                if as_of is None:
                    found.append((key[2], key[3], account.balance))
                    continue
                # The account's last entry at or before the instant: (at, position, line) order.
                slots = entries.partition(by_time, key)
                index = bisect.bisect_right(slots, as_of, key=lambda slot: slot[0][0])
                if index > 0:
                    entry = entries.rows[slots[index - 1][1]]
                    found.append((key[2], key[3], entry.balance_after))
            return Positioned(self._position(ReadModelName.LEDGER), found)

    def receivables(self, namespace: str, as_of: datetime) -> Positioned[ReceivableRow]:
        with self._lock:
            rows = sorted(
                (
                    row
                    for row in self._live().table(Tables.RECEIVABLES).rows.values()
                    if row.namespace == namespace and owed_at(row, as_of)
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
                    for row in self._live().table(Tables.REVENUE).rows.values()
                    if row.namespace == namespace
                    and first <= row.day <= last
                    and (currency is None or row.currency == currency)
                ),
                key=lambda row: (row.day, row.currency),
            )
            return Positioned(self._position(ReadModelName.SETTLED_REVENUE), rows)

    @contextmanager
    def reading(self) -> Iterator[ViewSnapshot]:
        with self._lock:
            yield _MemorySnapshot(
                {model.value: self._position(model) for model in ReadModelName}, self._live()
            )

    def snapshot(self) -> ReadModelSnapshot:
        with self._lock:
            live = self._live()
            return ReadModelSnapshot.of(
                {model.value: self._position(model) for model in ReadModelName},
                {
                    table: sorted(live.table(table).rows.values(), key=table.key_of)
                    for table in TABLES
                },
            )
