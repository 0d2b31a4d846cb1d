# ruff: noqa: S608
# (S608: statements name only our own tables and columns; every value is a bound parameter.)
"""The read model tables in SQL, for SQLite and PostgreSQL alike; a dialect says what differs.

The statements are written once with ``?`` placeholders; a dialect spells placeholders, column
types and values its own way (PostgreSQL: ``NUMERIC``, ``timestamptz``, ``uuid``, ``jsonb``;
SQLite: exact decimal ``TEXT``, fixed-width UTC ISO timestamps that sort as they compare).
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from operator import attrgetter
from typing import Any, Protocol, TypeVar
from uuid import UUID

from creditledger.application.projections.rows import (
    AccountBalance,
    AccountKey,
    EntryOrder,
    LedgerEntry,
    PurchaseRow,
    ReadModelName,
    ReadModelSnapshot,
    ReceivableRow,
    RevenueKey,
    RevenueRow,
)
from creditledger.application.readmodels import Positioned, ReadModelQueries
from creditledger.domain.ledger import Account
from creditledger.domain.status import PurchaseStatus
from creditledger.infrastructure.projections.layout import (
    MODEL_TABLES,
    TRACKING_TABLE,
    Layout,
    Table,
)
from creditledger.infrastructure.projections.tables import (
    ACCOUNTS,
    ENTRIES,
    PURCHASES,
    RECEIVABLES,
    REVENUE,
    SPECS,
    Kind,
    TableSpec,
)

RowT = TypeVar("RowT")
Params = Sequence[Any]
_CHUNK = 500


class Cursor(Protocol):
    """The little of a DB-API cursor the views use (adapted per driver)."""

    def execute(self, sql: str, params: Params = ()) -> None: ...

    def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Params]) -> None:
        """Insert many new rows (PostgreSQL: ``COPY``)."""
        ...


Convert = Callable[[Any], Any]


class Dialect(ABC):
    """How one SQL store spells names, types and values."""

    lock_suffix = ""
    """Appended to the tracking read: PostgreSQL locks the rows, SQLite's BEGIN IMMEDIATE has."""

    def __init__(self) -> None:
        self._plans: dict[
            Table, tuple[Callable[[Any], tuple[Any, ...]], list[tuple[int, Convert]]]
        ] = {}
        self._readers: dict[Table, list[tuple[int, Convert]]] = {}

    @abstractmethod
    def qualify(self, table: str) -> str:
        """The table's name as statements refer to it."""

    @abstractmethod
    def column_type(self, kind: Kind) -> str: ...

    @abstractmethod
    def encoder(self, kind: Kind) -> Convert | None:
        """How a value of this kind is written (None: as it is)."""

    @abstractmethod
    def decoder(self, kind: Kind) -> Convert | None:
        """How a stored value of this kind is read back (None: as it is)."""

    @abstractmethod
    def table_exists(self, cursor: Cursor, table: str) -> bool: ...

    def encode(self, kind: Kind, value: Any) -> Any:
        convert = self.encoder(kind)
        return value if convert is None or value is None else convert(value)

    def decode(self, kind: Kind, value: Any) -> Any:
        convert = self.decoder(kind)
        return value if convert is None or value is None else convert(value)

    def any_of(self, column: str, count: int) -> str:
        return f"{column} IN ({', '.join('?' * count)})"

    def keys_in(
        self, columns: Sequence[str], kinds: Sequence[Kind], keys: Sequence[Sequence[Any]]
    ) -> tuple[str, list[Any]]:
        """A condition matching rows whose key columns equal one of ``keys`` (encoded).

        Spelled as ORed equalities, which SQLite answers with one primary-key probe each (a
        row-value ``IN (VALUES ...)`` would scan the table).
        """
        del kinds
        one = "(" + " AND ".join(f"{column} = ?" for column in columns) + ")"
        return " OR ".join([one] * len(keys)), [part for key in keys for part in key]

    def any_params(self, values: Sequence[Any]) -> list[Any]:
        return list(values)

    def upsert(
        self, cursor: Cursor, table: str, spec: TableSpec[Any], rows: Sequence[Params]
    ) -> None:
        """Insert the rows, or update the ones whose key exists (one statement per row)."""
        names = spec.names
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT ({', '.join(spec.key)}) DO UPDATE SET {updates_of(spec)}",
            rows,
        )

    # -- rows: converters worked out once per table, applied per value --------------------

    def row_params(self, spec: TableSpec[Any], row: object) -> list[Any]:
        plan = self._plans.get(spec.table)
        if plan is None:
            conversions = []
            for index, column in enumerate(spec.columns):
                convert = self.encoder(column.kind)
                if (
                    column.shape is not None
                    and isinstance(column.shape, type)
                    and issubclass(column.shape, Enum)
                ):
                    convert = _enum_value
                if convert is not None:
                    conversions.append((index, convert))
            plan = self._plans[spec.table] = (attrgetter(*spec.names), conversions)
        getter, conversions = plan
        values = list(getter(row))
        for index, convert in conversions:
            value = values[index]
            if value is not None:
                values[index] = convert(value)
        return values

    def row_of(self, spec: TableSpec[RowT], stored: Sequence[Any]) -> RowT:
        conversions = self._readers.get(spec.table)
        if conversions is None:
            conversions = []
            for index, column in enumerate(spec.columns):
                convert = self.decoder(column.kind)
                if convert is not None and column.shape is not None:
                    convert = _then(convert, column.shape)
                elif column.shape is not None:
                    convert = column.shape
                if convert is not None:
                    conversions.append((index, convert))
            self._readers[spec.table] = conversions
        values = list(stored)
        for index, convert in conversions:
            value = values[index]
            if value is not None:
                values[index] = convert(value)
        return spec.row_type(*values)


def updates_of(spec: TableSpec[Any]) -> str:
    return ", ".join(f"{name} = excluded.{name}" for name in spec.names if name not in spec.key)


def _enum_value(value: Enum) -> Any:
    # Every enum stored is a StrEnum: str() of it is its value, without the descriptor lookup.
    return str(value)


def _then(first: Convert, second: Convert) -> Convert:
    return lambda value: second(first(value))


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def create_table_statements(dialect: Dialect, spec: TableSpec[Any], name: str) -> list[str]:
    columns = ", ".join(
        f"{column.name} {dialect.column_type(column.kind)}"
        + ("" if column.nullable else " NOT NULL")
        for column in spec.columns
    )
    statements = [
        f"CREATE TABLE {dialect.qualify(name)} ({columns}, PRIMARY KEY ({', '.join(spec.key)}))"
    ]
    # Index names must be unique in the schema, and a rebuilt table keeps its indexes when it is
    # renamed over the live one: each generation of a table gets its own token.
    token = secrets.token_hex(4)
    statements += [
        f"CREATE INDEX ix_{spec.table.value}_{token}_{index.purpose} "
        f"ON {dialect.qualify(name)} ({', '.join(index.columns)})"
        for index in spec.indexes
    ]
    return statements


TRACKING_STATEMENT = (
    "CREATE TABLE IF NOT EXISTS {table} (name TEXT NOT NULL PRIMARY KEY, "
    "position BIGINT NOT NULL, updated_at TEXT NOT NULL)"
)


class SqlSchema:
    """Creates, drops and checks the read model tables of one layout."""

    def __init__(self, dialect: Dialect, cursor: Cursor) -> None:
        self.dialect = dialect
        self.cursor = cursor

    def ensure(self, layout: Layout) -> None:
        """Create what is missing; a model with any table missing starts again from zero."""
        dialect, cursor = self.dialect, self.cursor
        # Looked up first: a complete schema then needs no DDL, nor the right to run any.
        if not dialect.table_exists(cursor, TRACKING_TABLE):
            cursor.execute(TRACKING_STATEMENT.format(table=dialect.qualify(TRACKING_TABLE)))
        for model in layout.models:
            tables = MODEL_TABLES[model]
            present = [dialect.table_exists(cursor, layout.table(table)) for table in tables]
            if all(present):
                self._track(layout.tracking[model], reset=False)
                continue
            self.create(layout, model)

    def create(self, layout: Layout, model: ReadModelName) -> None:
        """(Re)create the model's tables empty, tracked from position zero."""
        self.drop(layout, model)
        for table in MODEL_TABLES[model]:
            for statement in create_table_statements(
                self.dialect, SPECS[table], layout.table(table)
            ):
                self.cursor.execute(statement)
        self._track(layout.tracking[model], reset=True)

    def drop(self, layout: Layout, model: ReadModelName) -> None:
        for table in MODEL_TABLES[model]:
            self.cursor.execute(f"DROP TABLE IF EXISTS {self.dialect.qualify(layout.table(table))}")

    def forget(self, tracking_name: str) -> None:
        self.cursor.execute(
            f"DELETE FROM {self.dialect.qualify(TRACKING_TABLE)} WHERE name = ?", (tracking_name,)
        )

    def _track(self, name: str, *, reset: bool) -> None:
        table = self.dialect.qualify(TRACKING_TABLE)
        now = _now_text()
        if reset:
            self.forget(name)
        self.cursor.execute(
            f"INSERT INTO {table} (name, position, updated_at) VALUES (?, 0, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (name, now),
        )


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


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
        now = _now_text()
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
            (rebuilt.tracking[model], _now_text(), live.tracking[model]),
        )
        cursor.execute(f"DELETE FROM {tracking} WHERE name = ?", (rebuilt.tracking[model],))


class SqlReads(ReadModelQueries):
    """``ReadModelQueries`` in SQL: each query in one read transaction (a consistent snapshot).

    Mixed into the SQL view store, which provides the dialect, the live layout and ``_read``.
    """

    dialect: Dialect
    live: Layout

    @abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor in a read-only snapshot transaction."""

    def _t(self, table: Table) -> str:
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
        self, cursor: Cursor, spec: TableSpec[RowT], where: str, params: Params, tail: str
    ) -> list[RowT]:
        cursor.execute(
            f"SELECT {', '.join(spec.names)} FROM {self._t(spec.table)} {where} {tail}", params
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
            rows = self._rows(cursor, PURCHASES, where, params, "ORDER BY created_position LIMIT ?")
        return Positioned(position, rows)

    def balances(
        self, namespace: str, customer_id: str, as_of: datetime | None
    ) -> Positioned[tuple[str, Account, Decimal]]:
        accounts, entries = self._t(Table.ACCOUNTS), self._t(Table.ENTRIES)
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
                RECEIVABLES,
                "WHERE namespace = ? AND opened_at <= ? AND (settled_at IS NULL OR settled_at > ?)",
                (namespace, moment, moment),
                "ORDER BY opened_at, purchase_id",
            )
        return Positioned(position, rows)

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
            rows = self._rows(cursor, REVENUE, where, params, "ORDER BY day, currency")
        return Positioned(position, rows)

    def snapshot(self) -> ReadModelSnapshot:
        live = {name.value for name in ReadModelName}
        with self._read() as cursor:
            positions = self._positions(cursor)
            return ReadModelSnapshot(
                positions={name: position for name, position in positions.items() if name in live},
                purchases=self._rows(cursor, PURCHASES, "", (), "ORDER BY purchase_id"),
                entries=self._rows(cursor, ENTRIES, "", (), "ORDER BY position, line"),
                accounts=self._rows(
                    cursor, ACCOUNTS, "", (), "ORDER BY namespace, customer_id, currency, account"
                ),
                receivables=self._rows(cursor, RECEIVABLES, "", (), "ORDER BY purchase_id"),
                revenue=self._rows(cursor, REVENUE, "", (), "ORDER BY namespace, day, currency"),
            )
