# ruff: noqa: S608
# (S608: statements name only our own tables and columns; every value is a bound parameter.)
"""The read queries in SQL (``ReadModelQueries``), each in one read transaction."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from creditledger.application.projections.compare import StoredRows
from creditledger.application.projections.rows import (
    TABLES,
    PurchaseRow,
    ReadModelName,
    ReadModelSnapshot,
    ReceivableRow,
    RevenueRow,
    Tables,
    ViewTable,
)
from creditledger.application.readmodels import Positioned, ReadModelQueries, owed_at
from creditledger.domain.ledger import Account
from creditledger.domain.status import PurchaseStatus
from creditledger.infrastructure.projections.database import ViewSnapshot
from creditledger.infrastructure.projections.layout import TRACKING_TABLE, Layout
from creditledger.infrastructure.projections.sql.dialect import Cursor, Dialect, Params
from creditledger.infrastructure.projections.tables import Kind, TableSpec, spec_of

RowT = TypeVar("RowT")


class SqlReads(ReadModelQueries):
    """``ReadModelQueries`` in SQL: each query in one read transaction (a consistent snapshot).

    Mixed into the SQL view store, which provides the dialect, the live layout and ``_read``.
    """

    dialect: Dialect
    live: Layout

    @abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor in a read-only snapshot transaction."""

    def _t(self, table: ViewTable[Any, Any]) -> str:
        return self.dialect.qualify(self.live.table(table))

    def positions(self) -> dict[str, int]:
        with self._read() as cursor:
            return self._positions(cursor)

    def _positions(self, cursor: Cursor) -> dict[str, int]:
        cursor.execute(
            f"SELECT name, position FROM {self.dialect.qualify(TRACKING_TABLE)} ORDER BY name"
        )
        return {str(name): int(position) for name, position in cursor.fetchall()}

    def _position(self, cursor: Cursor, model: ReadModelName) -> int:
        cursor.execute(
            f"SELECT position FROM {self.dialect.qualify(TRACKING_TABLE)} WHERE name = ?",
            (self.live.tracking[model],),
        )
        found = cursor.fetchone()
        return 0 if found is None else int(found[0])

    def _rows(
        self, cursor: Cursor, table: ViewTable[RowT, Any], where: str, params: Params, tail: str
    ) -> list[RowT]:
        spec = spec_of(table)
        cursor.execute(
            f"SELECT {', '.join(spec.names)} FROM {self._t(table)} {where} {tail}", params
        )
        return [self.dialect.row_of(spec, values) for values in cursor.fetchall()]

    def purchases_page(
        self,
        namespace: str,
        *,
        customer_id: str | None,
        status: PurchaseStatus | None,
        after: int,
        limit: int,
    ) -> Positioned[PurchaseRow]:
        where = "WHERE namespace = ?"
        params: list[Any] = [namespace]
        if customer_id is not None:
            where += " AND customer_id = ?"
            params.append(customer_id)
        if status is not None:
            where += " AND status = ?"
            params.append(status.value)
        where += " AND created_position > ?"
        params += [after, limit]
        with self._read() as cursor:
            position = self._position(cursor, ReadModelName.PURCHASES)
            rows = self._rows(
                cursor, Tables.PURCHASES, where, params, "ORDER BY created_position LIMIT ?"
            )
        return Positioned(position, rows)

    def due_expiries(
        self, at: datetime, limit: int, *, namespace: str | None, customer_id: str | None
    ) -> Positioned[PurchaseRow]:
        where = "WHERE expiry_due = ? AND expires_at <= ?"
        params: list[Any] = [self.dialect.encode(Kind.BOOLEAN, True)]
        params.append(self.dialect.encode(Kind.TIMESTAMP, at))
        if namespace is not None:
            where += " AND namespace = ?"
            params.append(namespace)
        if customer_id is not None:
            where += " AND customer_id = ?"
            params.append(customer_id)
        params.append(limit)
        with self._read() as cursor:
            position = self._position(cursor, ReadModelName.PURCHASES)
            rows = self._rows(
                cursor, Tables.PURCHASES, where, params, "ORDER BY expires_at, purchase_id LIMIT ?"
            )
        return Positioned(position, rows)

    def balances(
        self, namespace: str, customer_id: str, as_of: datetime | None
    ) -> Positioned[tuple[str, Account, Decimal]]:
        accounts, entries = self._t(Tables.ACCOUNTS), self._t(Tables.ENTRIES)
        with self._read() as cursor:
            position = self._position(cursor, ReadModelName.LEDGER)
            if as_of is None:
                cursor.execute(
                    f"SELECT currency, account, balance FROM {accounts} "
                    "WHERE namespace = ? AND customer_id = ? ORDER BY currency, account",
                    (namespace, customer_id),
                )
            else:
                # One probe of the (account, time) index per account: the running balance of
                # the account's last entry at or before the instant.
                cursor.execute(
                    f"SELECT a.currency, a.account, (SELECT e.balance_after FROM {entries} e "
                    "WHERE e.namespace = a.namespace AND e.customer_id = a.customer_id "
                    "AND e.currency = a.currency AND e.account = a.account AND e.at <= ? "
                    "ORDER BY e.at DESC, e.position DESC, e.line DESC LIMIT 1) "
                    f"FROM {accounts} a WHERE a.namespace = ? AND a.customer_id = ? "
                    "ORDER BY a.currency, a.account",
                    (self.dialect.encode(Kind.TIMESTAMP, as_of), namespace, customer_id),
                )
            found = cursor.fetchall()
        rows = [
            (str(currency), Account(account), self.dialect.decode(Kind.NUMERIC, balance))
            for currency, account, balance in found
            if balance is not None
        ]
        return Positioned(position, rows)

    def receivables(self, namespace: str, as_of: datetime) -> Positioned[ReceivableRow]:
        moment = self.dialect.encode(Kind.TIMESTAMP, as_of)
        with self._read() as cursor:
            position = self._position(cursor, ReadModelName.RECEIVABLES)
            rows = self._rows(
                cursor,
                Tables.RECEIVABLES,
                "WHERE namespace = ? AND opened_at <= ? AND (settled_at IS NULL OR settled_at > ?)",
                (namespace, moment, moment),
                "ORDER BY opened_at, purchase_id",
            )
        # A failure closes a receivable when nothing was consumed (owed 0): decided here, as
        # every store decides it, since SQLite keeps decimals as text.
        return Positioned(position, [row for row in rows if owed_at(row, as_of)])

    def settled_revenue(
        self, namespace: str, first: date, last: date, currency: str | None
    ) -> Positioned[RevenueRow]:
        where = "WHERE namespace = ? AND day >= ? AND day <= ?"
        params: list[Any] = [
            namespace,
            self.dialect.encode(Kind.DATE, first),
            self.dialect.encode(Kind.DATE, last),
        ]
        if currency is not None:
            where += " AND currency = ?"
            params.append(currency)
        with self._read() as cursor:
            position = self._position(cursor, ReadModelName.SETTLED_REVENUE)
            rows = self._rows(cursor, Tables.REVENUE, where, params, "ORDER BY day, currency")
        return Positioned(position, rows)

    def snapshot(self) -> ReadModelSnapshot:
        live = {name.value for name in ReadModelName}
        with self._read() as cursor:
            positions = self._positions(cursor)
            return ReadModelSnapshot.of(
                {name: position for name, position in positions.items() if name in live},
                {
                    table: self._rows(cursor, table, "", (), f"ORDER BY {', '.join(table.key)}")
                    for table in TABLES
                },
            )

    @contextmanager
    def reading(self) -> Iterator[ViewSnapshot]:
        with self._read() as cursor:
            yield SqlSnapshot(self, cursor)


class SqlSnapshot:
    """``ViewSnapshot`` in one read transaction: each table streamed in key order."""

    def __init__(self, reads: SqlReads, cursor: Cursor) -> None:
        self._reads = reads
        self._cursor = cursor

    def positions(self) -> dict[str, int]:
        live = {name.value for name in ReadModelName}
        positions = self._reads._positions(self._cursor)
        return {name: position for name, position in positions.items() if name in live}

    def rows(self, table: ViewTable[RowT, Any]) -> Iterator[RowT]:
        return self._streamed(table, "", ())

    def rows_above(self, table: ViewTable[RowT, Any], first: Any) -> Iterator[RowT]:
        spec = spec_of(table)
        column = table.key[0]
        return self._streamed(
            table, f"WHERE {column} > ?", (self._reads.dialect.encode(spec.kind(column), first),)
        )

    def stored(self, table: ViewTable[RowT, Any]) -> StoredRows[RowT] | None:
        dialect, spec = self._reads.dialect, spec_of(table)
        if dialect.stored_form is None:
            return None
        return StoredRows(
            form=dialect.stored_form,
            values=self._stream(spec, "", ()),
            names=tuple(spec.names),
            row=partial(dialect.row_of, spec),
            key=dialect.key_reader(spec),
            column=partial(dialect.column_reader, spec),
        )

    def _streamed(self, table: ViewTable[RowT, Any], where: str, params: Params) -> Iterator[RowT]:
        dialect, spec = self._reads.dialect, spec_of(table)
        for values in self._stream(spec, where, params):
            yield dialect.row_of(spec, values)

    def _stream(
        self, spec: TableSpec[Any], where: str, params: Params
    ) -> Iterator[tuple[Any, ...]]:
        """The table's stored rows in key order, as the driver returns them."""
        dialect, table = self._reads.dialect, spec.table
        order = ", ".join(dialect.sort_column(name, spec.kind(name)) for name in table.key)
        return self._cursor.stream(
            f"SELECT {', '.join(spec.names)} FROM {self._reads._t(table)} {where} ORDER BY {order}",
            params,
        )
