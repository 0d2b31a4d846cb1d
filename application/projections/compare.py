"""Row-by-row comparison of two read model snapshots, and the ledger's balance check."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
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
    differences = [
        Difference(
            "tracking",
            "positions",
            name,
            {"position": live.positions.get(name)},
            {"position": rebuilt.positions.get(name)},
        )
        for name in sorted(set(live.positions) | set(rebuilt.positions))
        if live.positions.get(name) != rebuilt.positions.get(name)
    ]
    for table in TABLES:
        differences += _rows(
            table.model,
            table.label or table.snapshot,
            live.rows(table),
            rebuilt.rows(table),
            table.identity or table.key_of,
        )
    return differences


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


def _rows(
    model: str,
    table: str,
    live: Sequence[Row],
    rebuilt: Sequence[Row],
    key: Callable[[Row], Hashable],
) -> list[Difference]:
    live_rows = {key(row): row for row in live}
    rebuilt_rows = {key(row): row for row in rebuilt}
    differences = []
    for row_key in sorted(set(live_rows) | set(rebuilt_rows), key=str):
        mine, theirs = live_rows.get(row_key), rebuilt_rows.get(row_key)
        if mine != theirs:
            differences.append(
                Difference(model, table, _text(row_key), _plain(mine), _plain(theirs))
            )
    # A duplicated key in the live view is a difference too, even if one copy is right.
    for rows, side in ((live, "live"), (rebuilt, "rebuilt")):
        if len({key(row) for row in rows}) != len(rows):
            differences.append(Difference(model, table, f"duplicate keys ({side})", None, None))
    return differences


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
