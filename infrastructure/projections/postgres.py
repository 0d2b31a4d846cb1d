# ruff: noqa: S608
# (S608: statements name only our own tables and columns; every value is a bound parameter.)
"""Read models in PostgreSQL, in the same database and schema as the events.

The projector locks its tracking rows (``SELECT ... FOR UPDATE``) at the start of each batch, so
two projectors on one database take turns and never apply an event twice; the batch's view
changes and new positions commit in that same transaction. It waits for new events on the
library's LISTEN channel, with a timeout, so a lost NOTIFY only delays it by one poll.

Gap-freedom: a reader that asks for events after its position must never pass over an id whose
transaction has yet to commit. The library's insert path takes ``LOCK TABLE ... IN EXCLUSIVE
MODE`` so ids commit in id order, but that is one code path's promise; ``PostgresGuard`` checks
it instead of trusting it (see there).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import psycopg
from eventsourcing.persistence import Notification
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from creditledger.application.projections.rows import (
    ReadModelName,
)
from creditledger.infrastructure.projections.database import CommitOrderGuard
from creditledger.infrastructure.projections.layout import Layout, rebuild_layout
from creditledger.infrastructure.projections.sql.dialect import (
    Convert,
    Cursor,
    Dialect,
    Params,
    id_text_memo,
    updates_of,
)
from creditledger.infrastructure.projections.sql.schema import SqlSchema
from creditledger.infrastructure.projections.sql.store import SqlViewDatabase
from creditledger.infrastructure.projections.tables import Kind, TableSpec

_TYPES = {
    Kind.UUID: "uuid",
    Kind.TEXT: "text",
    Kind.NUMERIC: "numeric",
    Kind.INTEGER: "bigint",
    Kind.BOOLEAN: "boolean",
    Kind.TIMESTAMP: "timestamptz",
    Kind.DATE: "date",
    Kind.JSON: "jsonb",
}
STREAM_CHUNK = 2_000
_SCHEMA_LOCK = 0x6372_6C65_6467_6572  # "crledger": serialises table creation across processes
_INSERTING_MODES = (
    "RowExclusiveLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class PostgresDialect(Dialect):
    lock_suffix = " FOR UPDATE"

    def __init__(self, schema: str) -> None:
        super().__init__()
        self.schema = schema
        self._id_text = id_text_memo()

    def qualify(self, table: str) -> str:
        return f"{_quote(self.schema)}.{_quote(table)}"

    def column_type(self, kind: Kind) -> str:
        return _TYPES[kind]

    def encoder(self, kind: Kind) -> Convert | None:
        if kind is Kind.UUID:
            return self._id_text
        return Jsonb if kind is Kind.JSON else None

    def row_encoder(self, kind: Kind) -> Convert | None:
        # Rows travel by binary COPY (``PgCursor.insert_rows``), which writes an id's 16 bytes:
        # no text to make (the parameters' memo of id texts is for statements).
        if kind is Kind.UUID:
            return None
        return self.encoder(kind)

    def decoder(self, kind: Kind) -> Convert | None:
        if kind is Kind.TIMESTAMP:
            return _utc
        if kind is Kind.JSON:
            return _json_value
        return None

    def table_exists(self, cursor: Cursor, table: str) -> bool:
        cursor.execute("SELECT to_regclass(?) IS NOT NULL", (self.qualify(table),))
        found = cursor.fetchone()
        return bool(found and found[0])

    def sort_column(self, column: str, kind: Kind) -> str:
        # The database's collation may order text by language rules; "C" orders it by its
        # UTF-8 bytes, as SQLite and Python do. uuid compares as its bytes, as UUID does.
        return f'{column} COLLATE "C"' if kind is Kind.TEXT else column

    def any_of(self, column: str, count: int) -> str:
        del count
        return f"{column} = ANY(?)"

    def any_params(self, values: Sequence[Any]) -> list[Any]:
        return [list(values)]

    def upsert(
        self, cursor: Cursor, table: str, spec: TableSpec[Any], rows: Sequence[Params]
    ) -> None:
        # One COPY of the batch's rows into a temporary table shaped like the view's, then one
        # INSERT ... SELECT ... ON CONFLICT: the rows travel as COPY's stream (dumped in C),
        # where arrays of each column (unnest) were dumped element by element in Python.
        if not rows:
            return
        if not isinstance(cursor, PgCursor):  # pragma: no cover - only used with its cursor
            msg = "the PostgreSQL dialect writes through PgCursor"
            raise TypeError(msg)
        stage = cursor.staging_table(f"stage_{spec.table.name}", table)
        names = ", ".join(spec.names)
        cursor.insert_rows(stage, spec.names, self.column_types(spec), rows)
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} "
            f"ON CONFLICT ({', '.join(spec.key)}) DO UPDATE SET {updates_of(spec)}"
        )

    def keys_in(
        self, columns: Sequence[str], kinds: Sequence[Kind], keys: Sequence[Sequence[Any]]
    ) -> tuple[str, list[Any]]:
        # One array per key column, zipped back into rows by unnest: a fixed statement (so it is
        # prepared once) that the planner joins to the primary key.
        arrays = ", ".join(f"?::{_TYPES[kind]}[]" for kind in kinds)
        condition = f"({', '.join(columns)}) IN (SELECT * FROM unnest({arrays}))"
        return condition, [[key[index] for key in keys] for index in range(len(columns))]


class PgCursor:
    """``sql.dialect.Cursor`` over psycopg: ``?`` placeholders, ``COPY`` for bulk inserts."""

    _translated: ClassVar[dict[str, str]] = {}

    def __init__(self, cursor: psycopg.Cursor[Any], staged: set[str] | None = None) -> None:
        self._cursor = cursor
        self._staged = staged if staged is not None else set()
        self._used: set[str] = set()

    def staging_table(self, name: str, like: str) -> str:
        """An empty temporary table shaped like ``like``: made once per connection (``staged``
        is the connection's; a rolled-back transaction empties it), emptied at every commit."""
        quoted = _quote(name)
        if name not in self._staged:
            self._cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {quoted} "
                f"(LIKE {like} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            self._staged.add(name)
        elif name in self._used:
            self._cursor.execute(f"DELETE FROM {quoted}")  # a second flush, same transaction
        self._used.add(name)
        return quoted

    @classmethod
    def _sql(cls, sql: str) -> str:
        translated = cls._translated.get(sql)
        if translated is None:
            translated = cls._translated[sql] = sql.replace("?", "%s")
        return translated

    def execute(self, sql: str, params: Params = ()) -> None:
        self._cursor.execute(self._sql(sql), list(params))

    def execute_binary(self, sql: str, params: Params) -> None:
        """Execute with parameters sent in binary: no text quoting of every array element."""
        self._cursor.execute(self._sql(sql), list(params), binary=True)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), [list(row) for row in rows])

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._cursor.fetchall())

    def fetchone(self) -> tuple[Any, ...] | None:
        found: tuple[Any, ...] | None = self._cursor.fetchone()
        return found

    def stream(self, sql: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        # A server-side cursor: the rows come STREAM_CHUNK at a time (the transaction is open).
        with self._cursor.connection.cursor(name="creditledger_stream") as named:
            named.itersize = STREAM_CHUNK
            named.execute(self._sql(sql), list(params))
            yield from named

    def insert_rows(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: Sequence[Params]
    ) -> None:
        # Binary: the server reads numbers, ids and times as they are stored instead of parsing
        # their text (a fourth less of its CPU for a ledger entry's row; issue 14, session 12).
        # A binary COPY applies no cast, so each value is dumped as its column's type.
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with self._cursor.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)


@dataclass(frozen=True)
class _Hole:
    through: int
    """The last id read when the hole was seen: every hole up to it settles together."""
    holders: list[str]
    """Transactions that could still insert into the events table when the hole was seen."""


class PostgresGuard(CommitOrderGuard):
    """Applies events only up to the first id that might still commit.

    An id missing between two read ones is either rolled back (a conflict's hole: harmless) or
    held by a transaction that has not committed yet: passing over it would skip that event
    forever. Every transaction that can have drawn an id holds a lock on the events table from
    before it drew one until it ends, so: when a read shows a hole, apply only the events before
    it and note which transactions hold such a lock; once all of them have ended, any id up to
    the last one read is final, and the next read (made after that) sees it if it committed.
    New transactions cannot matter: ids are drawn in increasing order, after the ones read.
    """

    def __init__(self, database: PostgresViewDatabase) -> None:
        self._database = database
        self._settled_through = 0
        self._hole: _Hole | None = None

    def usable(self, after: int, notifications: Sequence[Notification]) -> Sequence[Notification]:
        if self._hole is not None and not self._database.any_running(self._hole.holders):
            self._settled_through = max(self._settled_through, self._hole.through)
            self._hole = None
        expected = after + 1
        for index, notification in enumerate(notifications):
            if notification.id > expected and notification.id - 1 > self._settled_through:
                if self._hole is None:
                    self._hole = _Hole(notifications[-1].id, self._database.insert_lock_holders())
                return notifications[:index]
            expected = notification.id + 1
        return notifications


class PostgresViewDatabase(SqlViewDatabase):
    kind = "postgres"

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str,
        events_table: str,
        channel: str,
        pool_size: int = 4,
    ) -> None:
        super().__init__()
        self.conninfo = conninfo
        self.schema = schema
        self.events_table = events_table
        self.channel = channel
        self.dialect = PostgresDialect(schema)
        self._writer_lock = threading.Lock()
        self._writer: psycopg.Connection[Any] | None = None
        self._staged: set[str] = set()
        """The writer connection's staging tables (``PgCursor.staging_table``)."""
        self._listener: psycopg.Connection[Any] | None = None
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            open=True,
            name="creditledger-readmodels",
        )
        self.ensure_tables(self.live)

    # -- connections ----------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[PgCursor]:
        with self._writer_lock:
            if self._writer is None or self._writer.closed:
                self._writer = psycopg.connect(self.conninfo, autocommit=True)
                self._staged.clear()
            connection = self._writer
            try:
                with connection.transaction(), connection.cursor() as cursor:
                    yield PgCursor(cursor, self._staged)
            except psycopg.OperationalError:
                # The connection may be gone; the next transaction opens a new one.
                connection.close()
                self._writer = None
                raise
            except BaseException:
                # Rolled back: staging tables created in it are gone with it.
                self._staged.clear()
                raise

    @contextmanager
    def _read(self) -> Iterator[PgCursor]:
        with (
            self._pool.connection() as connection,
            connection.transaction(),
            connection.cursor() as cursor,
        ):
            # Several statements, one snapshot: positions and rows agree.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield PgCursor(cursor)

    # -- gap-freedom ----------------------------------------------------------------------

    def guard(self) -> CommitOrderGuard:
        return PostgresGuard(self)

    def insert_lock_holders(self) -> list[str]:
        """Transactions (other than ours) holding a lock that lets them insert events."""
        with self._pool.connection() as connection:
            rows = connection.execute(
                "SELECT DISTINCT virtualtransaction FROM pg_locks "
                "WHERE relation = to_regclass(%s) AND granted AND mode = ANY(%s) "
                "AND pid <> pg_backend_pid()",
                (self.dialect.qualify(self.events_table), list(_INSERTING_MODES)),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def any_running(self, transactions: list[str]) -> bool:
        if not transactions:
            return False
        with self._pool.connection() as connection:
            found = connection.execute(
                "SELECT 1 FROM pg_locks WHERE virtualtransaction = ANY(%s) LIMIT 1",
                (transactions,),
            ).fetchone()
        return found is not None

    # -- waiting --------------------------------------------------------------------------

    def wait_for_events(self, timeout: float) -> None:
        """Wait for the library's NOTIFY on the events channel, or the timeout (a lost NOTIFY
        or a broken LISTEN connection only costs one timeout)."""
        if self._wake.is_set():
            self._wake.clear()
            return
        try:
            if self._listener is None or self._listener.closed:
                self._listener = psycopg.connect(self.conninfo, autocommit=True)
                self._listener.execute(f"LISTEN {_quote(self.channel)}")
            for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error:
            if self._listener is not None:
                self._listener.close()
            self._listener = None
            super().wait_for_events(timeout)

    # -- setup ----------------------------------------------------------------------------

    def ensure_tables(self, layout: Layout) -> None:
        with self._write() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            SqlSchema(self.dialect, cursor).ensure(layout)

    def create_rebuild_tables(self, model: ReadModelName) -> Layout:
        layout = rebuild_layout(model)
        with self._write() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            SqlSchema(self.dialect, cursor).create(layout, model)
        return layout

    def close(self) -> None:
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._pool.close()
