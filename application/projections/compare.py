"""Row-by-row comparison of two read model snapshots, and the ledger's balance check.

``compare_table`` walks two tables' rows in key order side by side (a merge), so ``verify``
compares views of any size holding one row of each side at a time; ``compare`` does the same
over two snapshots held in memory.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from creditledger.application.projections.rows import (
    TABLES,
    LedgerEntry,
    ReadModelName,
    ReadModelSnapshot,
    ViewTable,
)

Row = TypeVar("Row")


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
    identity = table.identity or key_of
    label = table.label or table.snapshot
    duplicated = {"live": False, "rebuilt": False}

    def ordered(rows: Iterable[Row], side: str) -> Iterator[tuple[Any, Row]]:
        previous: Any = None
        for row in rows:
            key = key_of(row)
            if previous is not None:
                if key == previous:
                    duplicated[side] = True
                    continue
                if key < previous:
                    msg = f"{label}: the {side} rows are not in key order ({key} after {previous})"
                    raise OutOfOrderError(msg)
            previous = key
            yield key, row

    mine, theirs = ordered(live, "live"), ordered(rebuilt, "rebuilt")
    left, right = next(mine, None), next(theirs, None)
    while left is not None or right is not None:
        if left is not None and (right is None or left[0] < right[0]):
            yield Difference(table.model, label, _text(identity(left[1])), _plain(left[1]), None)
            left = next(mine, None)
        elif right is not None and (left is None or right[0] < left[0]):
            yield Difference(table.model, label, _text(identity(right[1])), None, _plain(right[1]))
            right = next(theirs, None)
        elif left is not None and right is not None:
            if left[1] != right[1]:
                yield Difference(
                    table.model,
                    label,
                    _text(identity(left[1])),
                    _plain(left[1]),
                    _plain(right[1]),
                )
            left, right = next(mine, None), next(theirs, None)
    for side, seen in duplicated.items():
        if seen:
            yield Difference(table.model, label, f"duplicate keys ({side})", None, None)


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
        if entry.transaction_group_id != self._group:
            self._close_run()
            self._group = entry.transaction_group_id
        self._sum += entry.amount

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
