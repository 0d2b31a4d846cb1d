"""The database drivers alone: the most any library could get out of the same rows.

The rows are the bare library's own stored events (its mapper's output for new purchases), written
by psycopg or sqlite3 into a table with the library's columns and keys. Each caller has its
own connection, opened and warmed up before the clock starts, and commits every ``per_txn``
rows: 1 (a command's single-event save) or 10 (``executemany``). What the driver skips and the
library does not: the table lock, NOTIFY and returned notification ids on PostgreSQL, and
per-row ``lastrowid`` on SQLite. (SQLite callers do take turns to write, as the library's do.)
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from bench.baselines import BareLedger, BarePurchase
from bench.stores import POSTGRES_URL, Store
from bench.timing import Timing, check_event_count, time_callers

Row = tuple[Any, ...]
Insert = Callable[[Sequence[Row]], None]
"""Writes some rows in one transaction, on one caller's connection."""

SQLITE_TABLE = (
    "CREATE TABLE IF NOT EXISTS stored_events ("
    "originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
    "PRIMARY KEY (originator_id, originator_version))"
)
SQLITE_INSERT = "INSERT INTO stored_events VALUES (?,?,?,?)"
SQLITE_LOCK_TIMEOUT = 5


def stored_rows(count: int) -> list[Row]:
    """``count`` stored events of new purchases, exactly as the bare library maps them."""
    with BareLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"}) as app:
        rows: list[Row] = []
        for index in range(count):
            purchase = BarePurchase(f"customer-{index}", "USD", Decimal("100.12"), Decimal("0.5"))
            for stored in map(app.mapper.to_stored_event, purchase.collect_events()):
                rows.append(
                    (stored.originator_id, stored.originator_version, stored.topic, stored.state)
                )
        return rows


@contextmanager
def postgres_inserts(
    store: Store, callers: int
) -> Iterator[tuple[list[Insert], Callable[[], int]]]:
    """One insert function per caller, each on its own connection; and a row counter."""
    schema = sql.Identifier(store.postgres_schema or "public")
    table = sql.SQL("{}.raw_events").format(schema)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(
            sql.SQL(
                "CREATE TABLE {} (originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                "topic text, state bytea, notification_id bigserial, "
                "PRIMARY KEY (originator_id, originator_version))"
            ).format(table)
        )
        admin.execute(
            sql.SQL(
                "CREATE UNIQUE INDEX raw_events_notification_id ON {} (notification_id)"
            ).format(table)
        )
        statement = sql.SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s)"
        ).format(table)

        def inserter(connection: psycopg.Connection[Any]) -> Insert:
            def insert(rows: Sequence[Row]) -> None:
                with connection.transaction(), connection.cursor() as cursor:
                    if len(rows) == 1:
                        cursor.execute(statement, rows[0], prepare=True)
                    else:
                        cursor.executemany(statement, rows)

            return insert

        with ExitStack() as stack:
            connections = [
                stack.enter_context(psycopg.connect(POSTGRES_URL, autocommit=True))
                for _ in range(callers)
            ]

            def count() -> int:
                row = admin.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
                return int(row[0]) if row else 0

            yield [inserter(connection) for connection in connections], count


@contextmanager
def sqlite_inserts(store: Store, callers: int) -> Iterator[tuple[list[Insert], Callable[[], int]]]:
    """One insert function per caller, each on its own connection (WAL, as the library sets)."""
    path = str(store.sqlite_path)

    def connect() -> sqlite3.Connection:
        # Autocommit mode with explicit BEGIN/COMMIT, as the library's SQLite datastore does.
        return sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=SQLITE_LOCK_TIMEOUT
        )

    with ExitStack() as stack:
        admin = connect()
        stack.callback(admin.close)
        admin.execute("PRAGMA journal_mode=WAL")
        admin.execute(SQLITE_TABLE)
        connections = [connect() for _ in range(callers)]
        for connection in connections:
            stack.callback(connection.close)

        # SQLite has one writer at a time. Left to its busy handler, writers that find the
        # database locked sleep for up to 100 ms each; taking turns in the process, as the
        # library's datastore does with its writer lock, is what any sane caller would do.
        writer = threading.Lock()

        def inserter(connection: sqlite3.Connection) -> Insert:
            def insert(rows: Sequence[Row]) -> None:
                params = [(row[0].hex, row[1], row[2], row[3]) for row in rows]
                with writer:
                    connection.execute("BEGIN")
                    try:
                        if len(params) == 1:
                            connection.execute(SQLITE_INSERT, params[0])
                        else:
                            connection.executemany(SQLITE_INSERT, params)
                    except BaseException:
                        connection.execute("ROLLBACK")
                        raise
                    connection.execute("COMMIT")

            return insert

        def count() -> int:
            row = admin.execute("SELECT count(*) FROM stored_events").fetchone()
            return int(row[0]) if row else 0

        yield [inserter(connection) for connection in connections], count


def raw_inserts(store: Store, rows: int, callers: int, per_txn: int, warmup: int) -> Timing:
    """``rows`` rows written by ``callers`` connections, ``per_txn`` rows per transaction.

    ``warmup`` untimed transactions go first, shared out among the connections (at least two
    each: one to open it, one to run the prepared statement).
    """
    warmup = max(2, warmup // callers)
    payload = stored_rows(rows + warmup * per_txn * callers)
    batches = [payload[start : start + per_txn] for start in range(0, len(payload), per_txn)]
    opener = postgres_inserts if store.backend == "postgres" else sqlite_inserts
    with opener(store, callers) as (inserts, count):
        # Each caller warms its own connection (and prepares its statement) before timing.
        for caller, insert in enumerate(inserts):
            for batch in batches[caller * warmup : (caller + 1) * warmup]:
                insert(batch)
        timed = batches[callers * warmup :]
        local = threading.local()
        free = list(inserts)
        claim = threading.Lock()

        def write(index: int) -> None:
            insert: Insert | None = getattr(local, "insert", None)
            if insert is None:
                with claim:
                    insert = local.insert = free.pop()
            insert(timed[index])

        seconds = time_callers(write, range(len(timed)), callers)
        check_event_count(count(), len(payload), f"raw {store.backend} inserts")
    return Timing(len(timed), len(timed) * per_txn, seconds)
