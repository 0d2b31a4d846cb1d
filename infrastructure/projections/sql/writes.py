# ruff: noqa: S608
# (S608: statements name only our own tables and columns; every value is a bound parameter.)
"""A view transaction's reads and writes in SQL: ``TableAccess`` over one open cursor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

from creditledger.application.projections.rows import (
    AccountBalance,
    AccountKey,
    EntryOrder,
    LedgerEntry,
    PurchaseRow,
    ReadModelName,
    ReceivableRow,
    RevenueKey,
    RevenueRow,
)
from creditledger.infrastructure.projections.layout import (
    MODEL_TABLES,
    TRACKING_TABLE,
    Layout,
    Table,
)
from creditledger.infrastructure.projections.sql.dialect import Cursor, Dialect
from creditledger.infrastructure.projections.sql.schema import now_text
from creditledger.infrastructure.projections.tables import (
    ACCOUNTS,
    ENTRIES,
    PURCHASES,
    RECEIVABLES,
    REVENUE,
    Kind,
    TableSpec,
)

RowT = TypeVar("RowT")
_CHUNK = 500


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


class SqlAccess:
    """``TableAccess`` over one open SQL transaction (see ``buffer.TableAccess``)."""

    def __init__(self, dialect: Dialect, cursor: Cursor, layout: Layout) -> None:
        self.dialect = dialect
        self.cursor = cursor
        self.layout = layout

    def _t(self, table: Table) -> str:
        return self.dialect.qualify(self.layout.table(table))

    # -- tracking -------------------------------------------------------------------------

    def read_positions(self, names: Sequence[str]) -> dict[str, int]:
        self.cursor.execute(
            f"SELECT name, position FROM {self.dialect.qualify(TRACKING_TABLE)} "
            f"WHERE {self.dialect.any_of('name', len(names))} ORDER BY name"
            f"{self.dialect.lock_suffix}",
            self.dialect.any_params(list(names)),
        )
        found = {str(name): int(position) for name, position in self.cursor.fetchall()}
        missing = [name for name in names if name not in found]
        if missing:
            msg = f"read model tracking rows missing: {missing} (tables not created?)"
            raise LookupError(msg)
        return found

    def write_positions(self, positions: Mapping[str, int]) -> None:
        now = now_text()
        self.cursor.executemany(
            f"UPDATE {self.dialect.qualify(TRACKING_TABLE)} "
            "SET position = ?, updated_at = ? WHERE name = ?",
            [(position, now, name) for name, position in sorted(positions.items())],
        )

    # -- generic rows ---------------------------------------------------------------------

    def _fetch(self, spec: TableSpec[RowT], keys: Sequence[Any]) -> list[RowT]:
        """The rows with these keys (a key is a value, or a tuple for composite keys)."""
        rows: list[RowT] = []
        kinds = [next(c.kind for c in spec.columns if c.name == k) for k in spec.key]
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            if len(spec.key) == 1:
                chunk = [(key,) for key in chunk]
            encoded = [
                [
                    self.dialect.encode(kind, _plain(part))
                    for kind, part in zip(kinds, key, strict=True)
                ]
                for key in chunk
            ]
            condition, params = self.dialect.keys_in(spec.key, kinds, encoded)
            self.cursor.execute(
                f"SELECT {', '.join(spec.names)} FROM {self._t(spec.table)} WHERE {condition}",
                params,
            )
            rows += [self.dialect.row_of(spec, values) for values in self.cursor.fetchall()]
        return rows

    def _upsert(self, spec: TableSpec[Any], rows: Sequence[object]) -> None:
        # The buffer holds one change per key, so no statement touches a row twice.
        self.dialect.upsert(
            self.cursor,
            self._t(spec.table),
            spec,
            [self.dialect.row_params(spec, row) for row in rows],
        )

    # -- purchases, receivables, revenue --------------------------------------------------

    def fetch_purchases(self, ids: Sequence[UUID]) -> list[PurchaseRow]:
        # The key column must be a sequence of single values for single-column keys.
        return self._fetch(PURCHASES, ids)

    def write_purchases(self, rows: Sequence[PurchaseRow]) -> None:
        self._upsert(PURCHASES, rows)

    def fetch_receivables(self, ids: Sequence[UUID]) -> list[ReceivableRow]:
        return self._fetch(RECEIVABLES, ids)

    def write_receivables(self, rows: Sequence[ReceivableRow]) -> None:
        self._upsert(RECEIVABLES, rows)

    def fetch_revenue(self, keys: Sequence[RevenueKey]) -> list[RevenueRow]:
        # Stored key order is (namespace, day, currency).
        return self._fetch(REVENUE, [(ns, day, currency) for ns, currency, day in keys])

    def write_revenue(self, rows: Sequence[RevenueRow]) -> None:
        self._upsert(REVENUE, rows)

    # -- ledger ---------------------------------------------------------------------------

    def fetch_accounts(self, keys: Sequence[AccountKey]) -> list[AccountBalance]:
        return self._fetch(ACCOUNTS, keys)

    def write_accounts(self, rows: Sequence[AccountBalance]) -> None:
        self._upsert(ACCOUNTS, rows)

    def insert_entries(self, entries: Sequence[LedgerEntry]) -> None:
        self.cursor.insert_rows(
            self._t(Table.ENTRIES),
            ENTRIES.names,
            [self.dialect.row_params(ENTRIES, entry) for entry in entries],
        )

    def update_entries(self, entries: Sequence[LedgerEntry]) -> None:
        encode = self.dialect.encode
        self.cursor.executemany(
            f"UPDATE {self._t(Table.ENTRIES)} SET balance_after = ? "
            "WHERE position = ? AND line = ?",
            [
                (encode(Kind.NUMERIC, entry.balance_after), entry.position, entry.line)
                for entry in entries
            ],
        )

    def _account_entries(self, key: AccountKey, order: EntryOrder, *, before: bool) -> str:
        del key, order
        direction, sort = ("<", "DESC") if before else (">", "ASC")
        return (
            f"SELECT {', '.join(ENTRIES.names)} FROM {self._t(Table.ENTRIES)} "
            "WHERE namespace = ? AND customer_id = ? AND currency = ? AND account = ? "
            f"AND (at, position, line) {direction} (?, ?, ?) "
            f"ORDER BY at {sort}, position {sort}, line {sort}"
        )

    def _account_params(self, key: AccountKey, order: EntryOrder) -> list[Any]:
        namespace, customer_id, currency, account = key
        at, position, line = order
        return [
            namespace,
            customer_id,
            currency,
            account.value,
            self.dialect.encode(Kind.TIMESTAMP, at),
            position,
            line,
        ]

    def fetch_entry_before(self, key: AccountKey, order: EntryOrder) -> LedgerEntry | None:
        self.cursor.execute(
            self._account_entries(key, order, before=True) + " LIMIT 1",
            self._account_params(key, order),
        )
        found = self.cursor.fetchone()
        return None if found is None else self.dialect.row_of(ENTRIES, found)

    def fetch_entries_after(self, key: AccountKey, order: EntryOrder) -> list[LedgerEntry]:
        self.cursor.execute(
            self._account_entries(key, order, before=False), self._account_params(key, order)
        )
        return [self.dialect.row_of(ENTRIES, values) for values in self.cursor.fetchall()]

    # -- rebuild --------------------------------------------------------------------------

    def swap_in(self, model: ReadModelName, rebuilt: Layout, live: Layout) -> None:
        dialect, cursor = self.dialect, self.cursor
        for table in MODEL_TABLES[model]:
            cursor.execute(f"DROP TABLE IF EXISTS {dialect.qualify(live.table(table))}")
            cursor.execute(
                f"ALTER TABLE {dialect.qualify(rebuilt.table(table))} RENAME TO {live.table(table)}"
            )
        tracking = dialect.qualify(TRACKING_TABLE)
        cursor.execute(
            f"UPDATE {tracking} SET position = "
            f"(SELECT position FROM {tracking} WHERE name = ?), updated_at = ? WHERE name = ?",
            (rebuilt.tracking[model], now_text(), live.tracking[model]),
        )
        cursor.execute(f"DELETE FROM {tracking} WHERE name = ?", (rebuilt.tracking[model],))
