"""A consumer's own database (SQLite or PostgreSQL) and the position row the kit keeps in it.

Statements are written once with ``?`` placeholders; the PostgreSQL side turns them into
psycopg's ``%s``. Each consumer has one row, written in the same transaction as its effects.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

Row = tuple[Any, ...]


class SqlTransaction(Protocol):
    def execute(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement; its rows (empty for statements that return none)."""
        ...


class ConsumerDatabase(ABC):
    """One connection to the consumer's database, one transaction at a time."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[SqlTransaction]:
        """A transaction committed when the block ends normally, rolled back otherwise."""

    @abstractmethod
    def close(self) -> None: ...

    def ensure_checkpoint_table(self) -> None:
        with self.transaction() as transaction:
            transaction.execute(
                "CREATE TABLE IF NOT EXISTS creditledger_consumer_positions ("
                "consumer TEXT PRIMARY KEY, stream_sequence BIGINT NOT NULL, "
                "log_position BIGINT NOT NULL)"
            )

    def checkpoint(
        self, transaction: SqlTransaction, consumer: str, *, lock: bool = False
    ) -> tuple[int, int]:
        """(stream sequence, log position) applied so far; ``lock`` holds it to the commit."""
        statement = (
            "SELECT stream_sequence, log_position FROM creditledger_consumer_positions "
            "WHERE consumer = ?"
        )
        rows = transaction.execute(statement + self.lock_clause(lock), (consumer,))
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)

    def save_checkpoint(
        self, transaction: SqlTransaction, consumer: str, sequence: int, position: int
    ) -> None:
        transaction.execute(
            "INSERT INTO creditledger_consumer_positions (consumer, stream_sequence, log_position) "
            "VALUES (?, ?, ?) ON CONFLICT (consumer) DO UPDATE SET "
            "stream_sequence = excluded.stream_sequence, log_position = excluded.log_position",
            (consumer, sequence, position),
        )

    def lock_clause(self, lock: bool) -> str:
        del lock
        return ""

    def __enter__(self) -> ConsumerDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SqliteTransaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        return self._connection.execute(statement, params).fetchall()


class SqliteConsumerDatabase(ConsumerDatabase):
    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        # BEGIN IMMEDIATE: the write lock from the start, so two consumers of one file take
        # turns instead of failing at their first write.
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteTransaction(self._connection)
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def close(self) -> None:
        self._connection.close()


class _PostgresTransaction:
    def __init__(self, cursor: psycopg.Cursor[Row]) -> None:
        self._cursor = cursor

    def execute(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        self._cursor.execute(sql.SQL(statement.replace("?", "%s")), params)
        return self._cursor.fetchall() if self._cursor.description else []


class PostgresConsumerDatabase(ConsumerDatabase):
    def __init__(self, conninfo: str, *, schema: str | None = None) -> None:
        self._connection = psycopg.connect(conninfo, autocommit=True)
        if schema is not None:
            self._connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
            self._connection.execute(
                sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))
            )

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        with self._connection.transaction(), self._connection.cursor() as cursor:
            yield _PostgresTransaction(cursor)

    def lock_clause(self, lock: bool) -> str:
        # Two copies of one consumer take turns on its row instead of both applying a batch.
        return " FOR UPDATE" if lock else ""

    def close(self) -> None:
        self._connection.close()


def open_consumer_database(url: str) -> ConsumerDatabase:
    """``sqlite:///path`` or ``postgresql://user@host/db[?schema=name]``."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return SqliteConsumerDatabase(url.removeprefix("sqlite:///"))
    if parts.scheme in ("postgresql", "postgres"):
        query = parse_qs(parts.query)
        schema = query.pop("schema", [None])[0]
        conninfo = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        return PostgresConsumerDatabase(conninfo, schema=schema)
    msg = "the consumer's database must be sqlite:///path or postgresql://..."
    raise ValueError(msg)
