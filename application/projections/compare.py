"""Row-by-row comparison of two read model snapshots, and the ledger's balance check.

``compare_table`` walks two tables' rows in key order side by side (a merge), so ``verify``
compares views of any size holding one row of each side at a time; ``compare`` does the same
over two snapshots held in memory. ``compare_stored_table`` is the same merge over the values
two stores of one form hold, reading a row back only where the stored values differ.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar
from uuid import UUID

from creditledger.application.projections.rows import (
    TABLES,
    LedgerEntry,
    ReadModelName,
    ReadModelSnapshot,
    ViewTable,
)

Row = TypeVar("Row")
Item = TypeVar("Item")
Stored = tuple[Any, ...]
"""One row as its store holds it: the values of its columns, in the table's column order."""


@dataclass(frozen=True)
class Difference:
    """One row (or position) that is not the same in the live view as in the rebuild."""

    model: str
    table: str
    key: str
    live: dict[str, Any] | None
    rebuilt: dict[str, Any] | None

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "table": self.table,
            "key": self.key,
            "live": self.live,
            "rebuilt": self.rebuilt,
        }


def compare(live: ReadModelSnapshot, rebuilt: ReadModelSnapshot) -> list[Difference]:
    """Every difference between the snapshots: positions, then each table's rows (in order)."""
    differences = compare_positions(live.positions, rebuilt.positions)
    for table in TABLES:
        differences += compare_table(
            table,
            sorted(live.rows(table), key=table.key_of),
            sorted(rebuilt.rows(table), key=table.key_of),
        )
    return differences


def compare_positions(live: Mapping[str, int], rebuilt: Mapping[str, int]) -> list[Difference]:
    return [
        Difference(
            "tracking",
            "positions",
            name,
            {"position": live.get(name)},
            {"position": rebuilt.get(name)},
        )
        for name in sorted(set(live) | set(rebuilt))
        if live.get(name) != rebuilt.get(name)
    ]


class OutOfOrderError(ValueError):
    """A side of a comparison did not come in key order (a store sorted its keys otherwise)."""


def compare_table(
    table: ViewTable[Row, Any], live: Iterable[Row], rebuilt: Iterable[Row]
) -> Iterator[Difference]:
    """The differences between two copies of a table, each given in key order (ascending).

    A merge: one row of each side is held at a time, whatever the table's size. A row missing
    on one side, or different, is a difference named by the table's identity of the row; a key
    seen twice on one side is one more difference per side. A side out of key order raises
    ``OutOfOrderError`` rather than report rows as missing that are only misplaced.
    """
    key_of = table.key_of
    return _merge(
        table,
        ((key_of(row), row) for row in live),
        ((key_of(row), row) for row in rebuilt),
        _rows_differ,
        _itself,
        _itself,
    )


@dataclass(frozen=True)
class StoredRows(Generic[Row]):
    """A table's rows as a store holds them, streamed in key order, and how to read them back.

    ``row`` of each stored tuple is the row ``ViewSnapshot.rows`` gives in its place. ``form``
    names the store's encoding, and a store offers stored rows only where equal stored values of
    the same type read back as equal values (SQLite's text, integers, floats, blobs: a row is
    read by pure functions of them), so two stores of one form hold equal rows as equal tuples.
    """

    form: str
    values: Iterator[Stored]
    names: tuple[str, ...]
    """The column of each stored value."""
    row: Callable[[Stored], Row]
    key: Callable[[Stored], Any]
    """``table.key_of`` of ``row``, reading the key's columns only."""
    column: Callable[[str], Callable[[Any], Any]]
    """How a stored value of a column is read back (as ``row`` reads it; None stays None)."""


def compare_stored_table(
    table: ViewTable[Row, Any], live: StoredRows[Row], rebuilt: StoredRows[Row]
) -> Iterator[Difference]:
    """``compare_table`` of the rows the two stores hold, reporting exactly what it reports.

    Keys are read back for every row (their order and duplicates are checked as the rows' are);
    the other columns only where the two stored tuples differ in a value or its type (then the
    rows are compared as ``compare_table`` compares them), and for a row a difference shows.
    Verify compares millions of rows that are nearly all equal (issue 14: reading each back was
    half of the comparison).
    """
    if live.form != rebuilt.form:
        msg = f"stored rows of two forms ({live.form}, {rebuilt.form}) are compared as rows"
        raise ValueError(msg)

    def differ(mine: Stored, theirs: Stored) -> bool:
        # The type check: in Python an integer equals the float of its value, which a column's
        # reader need not read back alike.
        if mine == theirs and list(map(type, mine)) == list(map(type, theirs)):
            return False
        return _rows_differ(live.row(mine), rebuilt.row(theirs))

    return _merge(
        table,
        ((live.key(values), values) for values in live.values),
        ((rebuilt.key(values), values) for values in rebuilt.values),
        differ,
        live.row,
        rebuilt.row,
    )


def _merge(  # noqa: PLR0917 - the merge's sides and how to read each side's items
    table: ViewTable[Row, Any],
    live: Iterable[tuple[Any, Item]],
    rebuilt: Iterable[tuple[Any, Item]],
    differ: Callable[[Item, Item], bool],
    live_row: Callable[[Item], Row],
    rebuilt_row: Callable[[Item], Row],
) -> Iterator[Difference]:
    """``compare_table``'s merge over (key, item) pairs, an item read as a row by its side's
    ``*_row`` (only where a difference shows)."""
    identity = table.identity or table.key_of
    label = table.label or table.snapshot
    duplicated = {"live": False, "rebuilt": False}

    def ordered(items: Iterable[tuple[Any, Item]], side: str) -> Iterator[tuple[Any, Item]]:
        previous: Any = None
        for key, item in items:
            if previous is not None:
                if key == previous:
                    duplicated[side] = True
                    continue
                if key < previous:
                    msg = f"{label}: the {side} rows are not in key order ({key} after {previous})"
                    raise OutOfOrderError(msg)
            previous = key
            yield key, item

    def shown(row: Row) -> tuple[str, dict[str, Any] | None]:
        return _text(identity(row)), _plain(row)

    mine, theirs = ordered(live, "live"), ordered(rebuilt, "rebuilt")
    left, right = next(mine, None), next(theirs, None)
    while left is not None or right is not None:
        if left is not None and (right is None or left[0] < right[0]):
            name, found = shown(live_row(left[1]))
            yield Difference(table.model, label, name, found, None)
            left = next(mine, None)
        elif right is not None and (left is None or right[0] < left[0]):
            name, found = shown(rebuilt_row(right[1]))
            yield Difference(table.model, label, name, None, found)
            right = next(theirs, None)
        elif left is not None and right is not None:
            if differ(left[1], right[1]):
                name, found = shown(live_row(left[1]))
                yield Difference(table.model, label, name, found, _plain(rebuilt_row(right[1])))
            left, right = next(mine, None), next(theirs, None)
    for side, seen in duplicated.items():
        if seen:
            yield Difference(table.model, label, f"duplicate keys ({side})", None, None)


def _rows_differ(mine: object, theirs: object) -> bool:
    return mine != theirs


def _itself(row: Row) -> Row:
    return row


class GroupBalances:
    """Whether every transaction group sums to zero, over entries fed one at a time.

    A group's entries are all booked by one event, so they come together in the ledger's key
    order (position, line); a run of one group's entries is summed and forgotten once it
    balances. A run that does not balance is kept, and added to the group's other such runs
    at the end: a group's sum is the sum of its runs, so the result is the same as summing
    every group at once, in memory that grows with the unbalanced runs only.
    """

    def __init__(self) -> None:
        self._group: UUID | None = None
        self._sum = Decimal(0)
        self._unbalanced: dict[UUID, Decimal] = {}

    def add(self, entry: LedgerEntry) -> None:
        self.add_amount(entry.transaction_group_id, entry.amount)

    def add_amount(self, group: UUID, amount: Decimal) -> None:
        """An entry of ``group`` booking ``amount`` (``add`` without the entry)."""
        if group != self._group:
            self._close_run()
            self._group = group
        self._sum += amount

    def _close_run(self) -> None:
        if self._group is not None and self._sum != 0:
            self._unbalanced[self._group] = (
                self._unbalanced.get(self._group, Decimal(0)) + self._sum
            )
        self._group, self._sum = None, Decimal(0)

    def differences(self) -> list[Difference]:
        self._close_run()
        return [
            Difference(
                ReadModelName.LEDGER, "entries", str(group), {"sum": str(total)}, {"sum": "0"}
            )
            for group, total in sorted(self._unbalanced.items(), key=lambda item: str(item[0]))
            if total != 0
        ]


def unbalanced_groups(entries: Sequence[LedgerEntry]) -> list[Difference]:
    """Transaction groups whose entries do not sum to zero (double entry says there are none)."""
    sums: dict[UUID, Decimal] = {}
    for entry in entries:
        sums[entry.transaction_group_id] = (
            sums.get(entry.transaction_group_id, Decimal(0)) + entry.amount
        )
    return [
        Difference(ReadModelName.LEDGER, "entries", str(group), {"sum": str(total)}, {"sum": "0"})
        for group, total in sorted(sums.items(), key=lambda item: str(item[0]))
        if total != 0
    ]


def _text(value: Hashable) -> str:
    if isinstance(value, tuple):
        return "/".join(str(part) for part in value)
    return str(value)


def _plain(row: object | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {name: _json(value) for name, value in vars(row).items()}


def _json(value: object) -> object:
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_json(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    return str(value)
