# ruff: noqa: S608
# (S608: statements name only our own tables and columns; every value is a bound parameter.)
"""Read models in the event store's SQLite file.

The views share the file with the events (WAL mode): readers never block the writer, and one
``BEGIN IMMEDIATE`` transaction covers a batch's view changes and its tracked positions. SQLite
cannot notify a reader, so the projector polls; ``wake`` cuts the wait short in one process.

Amounts are kept as exact decimal text and times as fixed-width UTC ISO text (which sorts as it
compares), never as floats: SQLite's NUMERIC affinity would turn 100.12 into a binary double.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from creditledger.application.projections.rows import (
    ReadModelName,
)
from creditledger.infrastructure.projections.layout import Layout, rebuild_layout
from creditledger.infrastructure.projections.sql.dialect import (
    Convert,
    Cursor,
    Dialect,
    Params,
    id_text_memo,
)
from creditledger.infrastructure.projections.sql.schema import SqlSchema
from creditledger.infrastructure.projections.sql.store import SqlViewDatabase
from creditledger.infrastructure.projections.tables import Kind

_TYPES = {
    Kind.UUID: "TEXT",
    Kind.TEXT: "TEXT",
    Kind.NUMERIC: "TEXT",
    Kind.INTEGER: "INTEGER",
    Kind.BOOLEAN: "INTEGER",
    Kind.TIMESTAMP: "TEXT",
    Kind.DATE: "TEXT",
    Kind.JSON: "TEXT",
}


def _timestamp_text(value: datetime) -> str:
    # Fixed width, always UTC: the text sorts exactly as the instants compare.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _date_text(value: date) -> str:
    return value.isoformat()


_MEMO_SIZE = 1 << 14
STREAM_CHUNK = 2_000


def _memo(convert: Convert) -> Convert:
    """``convert`` with its latest answers remembered (at most ``_MEMO_SIZE``).

    A batch writes the same ids and times many times over (a purchase's row carries its times
    and ids each time it changes; a ledger entry repeats its purchase's), and ``str(UUID)``
    and a timestamp's text cost a microsecond or two each: the catch-up's largest conversions.
    Equal values give equal text (equal instants in any zone give the same UTC text).
    """
    remembered: dict[Any, Any] = {}

    def memoized(value: Any) -> Any:
        found = remembered.get(value)
        if found is None:
            if len(remembered) >= _MEMO_SIZE:
                remembered.clear()
            found = remembered[value] = convert(value)
        return found

    return memoized


_ENCODERS: dict[Kind, Convert] = {
    Kind.UUID: id_text_memo(),
    Kind.NUMERIC: str,
    Kind.TIMESTAMP: _memo(_timestamp_text),
    Kind.DATE: _date_text,
    Kind.JSON: _json_text,
}
_DECODERS: dict[Kind, Convert] = {
    Kind.UUID: _memo(UUID),
    Kind.NUMERIC: Decimal,
    Kind.TIMESTAMP: datetime.fromisoformat,
    Kind.DATE: date.fromisoformat,
    Kind.JSON: json.loads,
    Kind.BOOLEAN: bool,  # SQLite keeps 0 and 1
}


class SqliteDialect(Dialect):
    stored_form = "sqlite"

    def qualify(self, table: str) -> str:
        return f'"{table}"'

    def column_type(self, kind: Kind) -> str:
        return _TYPES[kind]

    def encoder(self, kind: Kind) -> Convert | None:
        return _ENCODERS.get(kind)

    def decoder(self, kind: Kind) -> Convert | None:
        return _DECODERS.get(kind)

    def table_exists(self, cursor: Cursor, table: str) -> bool:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        return cursor.fetchone() is not None


class SqliteCursor:
    """``sql.dialect.Cursor`` over a sqlite3 cursor."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Params = ()) -> None:
        self._cursor.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._cursor.executemany(sql, [tuple(row) for row in rows])

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._cursor.fetchall())

    def fetchone(self) -> tuple[Any, ...] | None:
        found: tuple[Any, ...] | None = self._cursor.fetchone()
        return found

    def stream(self, sql: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        self._cursor.execute(sql, tuple(params))
        while rows := self._cursor.fetchmany(STREAM_CHUNK):
            yield from rows

    def insert_rows(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: Sequence[Params]
    ) -> None:
        del types  # SQLite binds each value by its Python type
        self.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            rows,
        )


class SqliteViewDatabase(SqlViewDatabase):
    kind = "sqlite"

    def __init__(self, path: str, *, lock_timeout: float = 5.0, cache_mib: int = 64) -> None:
        super().__init__()
        self.path = path
        self.lock_timeout = lock_timeout
        self.cache_mib = cache_mib
        self.dialect = SqliteDialect()
        self._writer_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._closed = False
        self.ensure_tables(self.live)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path,
            timeout=self.lock_timeout,
            isolation_level=None,  # we say BEGIN and COMMIT ourselves
            check_same_thread=False,  # used by one thread at a time, handed over by the pool
        )
        connection.execute("PRAGMA journal_mode=WAL")
        self._all.append(connection)
        return connection

    @contextmanager
    def _write(self) -> Iterator[SqliteCursor]:
        with self._writer_lock:
            if self._closed:
                msg = "view database is closed"
                raise RuntimeError(msg)
            if self._writer is None:
                self._writer = self._connect()
                # Views are derived and commit with their positions: losing the last commits
                # on power loss only means re-projecting them, never a wrong view. NORMAL keeps
                # WAL commits atomic without an fsync each.
                self._writer.execute("PRAGMA synchronous=NORMAL")
                # A batch touches index pages all over the views: keep 64 MiB of them cached
                # (a bounded part of the writer's memory; verify's scratch file keeps less).
                self._writer.execute(f"PRAGMA cache_size=-{int(self.cache_mib) * 1024}")
            connection = self._writer
            # IMMEDIATE takes the write lock now, before the positions are read: two projectors
            # on one file take turns instead of both applying the same events.
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteCursor(connection.cursor())
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    @contextmanager
    def _read(self) -> Iterator[SqliteCursor]:
        try:
            connection = self._readers.get_nowait()
        except queue.Empty:
            connection = self._connect()
        try:
            connection.execute("BEGIN")  # one snapshot for every statement of the query
            try:
                yield SqliteCursor(connection.cursor())
            finally:
                connection.rollback()
        finally:
            self._readers.put(connection)

    # -- setup ----------------------------------------------------------------------------

    def ensure_tables(self, layout: Layout) -> None:
        with self._write() as cursor:
            SqlSchema(self.dialect, cursor).ensure(layout)

    def create_rebuild_tables(self, model: ReadModelName) -> Layout:
        layout = rebuild_layout(model)
        with self._write() as cursor:
            SqlSchema(self.dialect, cursor).create(layout, model)
        return layout

    def close(self) -> None:
        with self._writer_lock:
            self._closed = True
            for connection in self._all:
                connection.close()
            self._all.clear()
            self._writer = None
