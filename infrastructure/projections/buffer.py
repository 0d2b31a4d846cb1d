"""One view transaction, buffered: rows are looked up once, changes written in bulk at the end.

Projections apply a batch of events one at a time; writing each change as it happens would cost
a round trip per row. The buffer answers lookups from what it has already read or changed in
this transaction, and ``flush`` writes every change with one statement per table (new rows,
then changed ones), together with the new positions, inside the store's transaction. Every
table is handled alike, by its declaration (``ViewTable``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any, Generic, Protocol, TypeVar

from creditledger.application.projections.rows import (
    TABLES,
    Index,
    ReadModelName,
    ViewTable,
)
from creditledger.infrastructure.projections.layout import Layout

RowT = TypeVar("RowT")
KeyT = TypeVar("KeyT")


class TableAccess(Protocol):
    """The primitive reads and writes of one store, inside its open transaction."""

    def read_positions(self, names: Sequence[str]) -> dict[str, int]:
        """Read (and lock until the transaction ends) the named positions."""
        ...

    def write_positions(self, positions: Mapping[str, int]) -> None: ...

    def tracking_stamp(self) -> Hashable | None:
        """What the tracking rows read (and written) in this transaction say, in a value that
        changes whenever anyone commits a change to them (None: rows are not cached)."""
        ...

    def fetch(self, table: ViewTable[RowT, KeyT], keys: Sequence[KeyT]) -> list[RowT]:
        """The stored rows with these keys (keys not found are left out)."""
        ...

    def insert(self, table: ViewTable[RowT, Any], rows: Sequence[RowT]) -> None:
        """Add rows whose keys are not stored yet."""
        ...

    def upsert(self, table: ViewTable[RowT, Any], rows: Sequence[RowT]) -> None:
        """Add the rows, or replace the stored ones with their keys (one row per key)."""
        ...

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
        """``store.TableStore.scan`` over the stored rows."""
        ...

    def swap_in(self, model: ReadModelName, rebuilt: Layout, live: Layout) -> None:
        """Replace the model's live tables with the rebuilt ones (same transaction)."""
        ...


def in_range(
    values: tuple[Any, ...],
    prefix: tuple[Any, ...],
    above: tuple[Any, ...] | None,
    below: tuple[Any, ...] | None,
) -> bool:
    """Whether a row's index values fall in a scan: equal prefix, the rest within the bounds.

    A bound shorter than the rest is compared with as many of its leading columns (as SQL's
    row values compare).
    """
    if values[: len(prefix)] != prefix:
        return False
    rest = values[len(prefix) :]
    if above is not None and not rest[: len(above)] > above:
        return False
    return below is None or rest[: len(below)] < below


class _Rows(Generic[RowT, KeyT]):
    """What a transaction has read and changed of one table."""

    __slots__ = ("changed", "key_of", "new", "rows")

    def __init__(self, table: ViewTable[RowT, KeyT]) -> None:
        self.key_of: Callable[[RowT], KeyT] = table.key_of
        self.rows: dict[KeyT, RowT | None] = {}
        self.new: dict[KeyT, RowT] = {}
        self.changed: dict[KeyT, RowT] = {}


CACHED_ROWS = 5_000
"""Rows a ``RowCache`` keeps per table (a purchase row is about 2.5 KB)."""


class RowCache:
    """Rows committed by (or read under the lock of) one projector, kept across its batches.

    The next batch of a projector usually updates rows an earlier one wrote (a purchase
    authorized after its initiation); reading them back is a query and a conversion per row
    (issue 14: a seventh of the catch-up). The cache is only trusted while nobody else has
    committed: each transaction compares the tracking rows' stamp (positions and the time they
    were written) with the one this projector left, and empties the cache when they differ
    (another projector, a rebuild's swap, a skip). A failed batch empties it too (the runner).
    Only tables looked up by key are kept, at most ``CACHED_ROWS`` rows each, oldest out first.
    """

    def __init__(self, capacity: int = CACHED_ROWS) -> None:
        self.capacity = capacity
        self.stamp: Hashable | None = None
        self.tables: dict[ViewTable[Any, Any], dict[Any, Any]] = {}

    def clear(self) -> None:
        self.stamp = None
        self.tables.clear()

    def keep(self, table: ViewTable[Any, Any], rows: Mapping[Any, Any]) -> None:
        kept = self.tables.setdefault(table, {})
        for key, row in rows.items():
            if row is None:
                continue
            kept.pop(key, None)  # to the newest end
            kept[key] = row
        excess = len(kept) - self.capacity
        if excess > 0:
            for key in list(kept)[:excess]:
                del kept[key]


class BufferedTransaction:
    """A ``ReadModelTransaction`` over a store's ``TableAccess``, with an optional ``RowCache``."""

    def __init__(
        self, access: TableAccess, names: Sequence[str], cache: RowCache | None = None
    ) -> None:
        self._access = access
        self._names = list(names)
        self._positions: dict[str, int] | None = None
        self._new_positions: dict[str, int] = {}
        self._tables: dict[ViewTable[Any, Any], _Rows[Any, Any]] = {}
        self._cache = cache
        self._looked_up: set[ViewTable[Any, Any]] = set()

    @property
    def access(self) -> TableAccess:
        return self._access

    # -- tracking -------------------------------------------------------------------------

    def positions(self) -> Mapping[str, int]:
        if self._positions is None:
            self._positions = self._access.read_positions(self._names)
            cache = self._cache
            if cache is not None:
                stamp = self._access.tracking_stamp()
                if stamp is None or stamp != cache.stamp:
                    cache.clear()  # someone else committed since: nothing cached is trusted
        return {**self._positions, **self._new_positions}

    def set_positions(self, positions: Mapping[str, int]) -> None:
        self._new_positions.update(positions)

    # -- rows -----------------------------------------------------------------------------

    def _of(self, table: ViewTable[RowT, KeyT]) -> _Rows[RowT, KeyT]:
        try:
            return self._tables[table]
        except KeyError:
            buffered: _Rows[RowT, KeyT] = _Rows(table)
            self._tables[table] = buffered
            return buffered

    def load(self, table: ViewTable[Any, KeyT], keys: Iterable[KeyT]) -> None:
        buffered = self._of(table)
        known = buffered.rows
        missing = [key for key in keys if key not in known]
        cache = self._cache
        if cache is not None and self._positions is not None:
            self._looked_up.add(table)
            cached = cache.tables.get(table)
            if cached and missing:
                still = []
                for key in missing:
                    row = cached.get(key)
                    if row is None:
                        still.append(key)
                    else:
                        known[key] = row
                missing = still
        if missing:
            key_of = buffered.key_of
            found = {key_of(row): row for row in self._access.fetch(table, missing)}
            for key in missing:
                known[key] = found.get(key)

    def get(self, table: ViewTable[RowT, KeyT], key: KeyT) -> RowT | None:
        known = self._of(table).rows
        try:
            return known[key]
        except KeyError:
            self.load(table, (key,))
            return known[key]

    def put(self, table: ViewTable[RowT, Any], row: RowT) -> None:
        buffered = self._of(table)
        key = buffered.key_of(row)
        buffered.rows[key] = row
        if key in buffered.new:
            buffered.new[key] = row
        else:
            buffered.changed[key] = row

    def insert(self, table: ViewTable[RowT, Any], row: RowT) -> None:
        buffered = self._of(table)
        key = buffered.key_of(row)
        buffered.rows[key] = row
        buffered.new[key] = row

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
        buffered = self._of(table)
        key_of = buffered.key_of
        found: dict[Any, RowT] = {}
        for stored in self._access.scan(
            table, index, prefix, above=above, below=below, descending=descending, limit=limit
        ):
            key = key_of(stored)
            found[key] = buffered.changed.get(key, stored)
        # Rows not stored yet; a stored row's index columns never change (see TableStore).
        values: Callable[[RowT], tuple[Any, ...]] = attrgetter(*index.columns)
        for key, row in buffered.new.items():
            if in_range(values(row), prefix, above, below):
                found[key] = row
        rows = sorted(found.values(), key=values, reverse=descending)
        return rows if limit is None else rows[:limit]

    # -- writing --------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every change so far, and the new positions, into the store's transaction."""
        access = self._access
        for table in TABLES:
            buffered = self._tables.get(table)
            if buffered is None:
                continue
            if buffered.new:
                access.insert(table, list(buffered.new.values()))
                buffered.new.clear()
            if buffered.changed:
                access.upsert(table, list(buffered.changed.values()))
                buffered.changed.clear()
        if self._new_positions:
            access.write_positions(self._new_positions)
            self._positions = {**(self._positions or {}), **self._new_positions}
        self._new_positions = {}
        cache = self._cache
        if cache is not None and self._positions is not None:
            # Kept as committed if the commit succeeds; the runner empties the cache if not.
            for table in self._looked_up:
                buffered = self._tables.get(table)
                if buffered is not None:
                    cache.keep(table, buffered.rows)
            cache.stamp = access.tracking_stamp()
