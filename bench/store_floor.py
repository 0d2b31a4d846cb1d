"""The read-model store's own share of a catch-up: the same writes, with nothing computed.

``recorded_writes`` records every write statement the projector sends to a SQL view store
(rows already converted to the store's parameters), transaction by transaction, while the
projector catches up. ``replay_writes`` then empties the read models and sends exactly those
statements again, through the same cursors and in the same transactions: the catch-up with the
models' work, the events' decoding and the reads taken away. Its rate is a ceiling no projector
writing these rows can pass on this store, the raw-driver baseline of ``bench.catchup``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from creditledger.application.projections.rows import TABLES
from creditledger.infrastructure.projections.collector import collector_paused
from creditledger.infrastructure.projections.layout import TRACKING_TABLE
from creditledger.infrastructure.projections.sql.store import SqlViewDatabase

WRITES = ("execute", "execute_binary", "executemany", "insert_rows", "staging_table")
"""The cursor methods that change the store (``execute`` only when not a ``SELECT``)."""
ROWS_LAST = ("executemany", "insert_rows")
"""Methods whose last argument is a batch of rows (copied: the caller may reuse its list)."""

Call = tuple[str, tuple[Any, ...]]


class RecordedWrites:
    """The write calls of each committed transaction, in order."""

    def __init__(self) -> None:
        self.transactions: list[list[Call]] = []

    @property
    def rows(self) -> int:
        return sum(
            len(args[-1])
            for calls in self.transactions
            for name, args in calls
            if name in ROWS_LAST
        )


def _recording(cursor: Any, calls: list[Call]) -> None:
    """Make ``cursor`` note its write calls into ``calls``; a call made from inside another
    (``insert_rows`` through ``executemany``) is the outer one's business."""
    depth = [0]

    def wrap(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            if depth[0] == 0 and not (name == "execute" and _is_read(args[0])):
                kept = (*args[:-1], [tuple(row) for row in args[-1]]) if name in ROWS_LAST else args
                calls.append((name, kept))
            depth[0] += 1
            try:
                return method(*args)
            finally:
                depth[0] -= 1

        return call

    for name in WRITES:
        method = getattr(cursor, name, None)
        if method is not None:
            setattr(cursor, name, wrap(name, method))


def _is_read(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"


@contextmanager
def recorded_writes(database: SqlViewDatabase) -> Iterator[RecordedWrites]:
    """While open, every writing transaction of ``database`` is recorded once committed."""
    recorded = RecordedWrites()
    original: Callable[[], AbstractContextManager[Any]] = database._write

    @contextmanager
    def write() -> Iterator[Any]:
        with original() as cursor:
            calls: list[Call] = []
            _recording(cursor, calls)
            yield cursor
        recorded.transactions.append(calls)

    database._write = write  # type: ignore[method-assign]
    try:
        yield recorded
    finally:
        del database._write  # the class's method again


def empty_read_models(database: SqlViewDatabase) -> None:
    """Every read model's rows deleted (the tables and tracked positions stay)."""
    verb = "TRUNCATE" if database.kind == "postgres" else "DELETE FROM"
    with database._write() as cursor:
        for table in TABLES:
            cursor.execute(f"{verb} {database.dialect.qualify(database.live.table(table))}")


def reset_read_models(database: SqlViewDatabase) -> None:
    """Every read model empty and back at position zero, as before its first catch-up."""
    empty_read_models(database)
    with database._write() as cursor:
        tracking = database.dialect.qualify(TRACKING_TABLE)  # our own table's name
        cursor.execute(f"UPDATE {tracking} SET position = 0")  # noqa: S608


def replay_writes(database: SqlViewDatabase, recorded: RecordedWrites) -> float:
    """Empty the read models and send the recorded writes again; the seconds they took."""
    empty_read_models(database)
    with collector_paused():
        started = time.perf_counter()
        for calls in recorded.transactions:
            with database._write() as cursor:
                for name, args in calls:
                    getattr(cursor, name)(*args)
        return time.perf_counter() - started
