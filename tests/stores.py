"""The stores tests run on: the backends, the PostgreSQL test server's schemas, a sample event."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from creditledger.domain.events import PurchaseEvent
from creditledger.domain.intent import normalize_intent
from creditledger.domain.purchase import CommandContext, CreditPurchase
from tests.clock import START

POSTGRES_URL = os.environ.get(
    "CREDITLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("memory", "sqlite", "postgres")


def postgres_required() -> bool:
    """In CI the PostgreSQL tests must run: an unreachable server fails them instead of skipping."""
    return bool(os.environ.get("CI")) or bool(os.environ.get("CREDITLEDGER_REQUIRE_POSTGRES"))


def postgres_reachable() -> str | None:
    """None when the test server answers, else the reason it does not."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return f"PostgreSQL at {POSTGRES_URL} is unreachable: {error}".strip()
    return None


@contextmanager
def postgres_schema(prefix: str = "creditledger_test") -> Iterator[str]:
    """A fresh schema, dropped with everything in it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def postgres_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}schema={schema}"


@contextmanager
def bypassing_triggers() -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A superuser's connection whose writes skip ordinary triggers (replication mode): how a
    test empties, or an attacker with superuser rights rewrites, the append-only events table."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute("SET session_replication_role = replica")
        yield connection


@contextmanager
def sqlite_bypassing_triggers(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the SQLite store whose events table has lost its append-only triggers:
    what someone with the file can do (the ledger makes them again when it next opens)."""
    with closing(sqlite3.connect(path)) as connection, connection:
        for (trigger,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'stored_events'"
        ).fetchall():
            connection.execute(f'DROP TRIGGER "{trigger}"')
        yield connection


def refuse_inserts(
    store_url: str, table: str, message: str, *, when: tuple[str, str] | None = None
) -> Callable[[], None]:
    """A database-side refusal of new rows of ``table`` (only those whose column ``when[0]``
    equals ``when[1]``, or all): a real refusal by the store, as a full disk or a value the store
    cannot hold would be. Returns how to lift it."""
    if store_url.startswith("sqlite"):
        path = Path(store_url.removeprefix("sqlite:///"))
        condition = "" if when is None else f"WHEN NEW.{when[0]} = '{when[1]}' "
        with closing(sqlite3.connect(path)) as database:
            database.execute(
                f"CREATE TRIGGER refuse_inserts BEFORE INSERT ON {table} {condition}"
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )

        def lift_sqlite() -> None:
            with closing(sqlite3.connect(path)) as database:
                database.execute("DROP TRIGGER refuse_inserts")

        return lift_sqlite
    schema = store_url.rsplit("schema=", 1)[-1]
    function = sql.Identifier(schema, "refuse_inserts")
    test = (
        sql.SQL("TRUE")
        if when is None
        else sql.SQL("NEW.{} = {}").format(sql.Identifier(when[0]), sql.Literal(when[1]))
    )
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(
            sql.SQL(
                "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF {} THEN RAISE EXCEPTION {}; END IF; RETURN NEW; END $$"
            ).format(function, test, sql.Literal(message))
        )
        connection.execute(
            sql.SQL(
                "CREATE TRIGGER refuse_inserts BEFORE INSERT ON {} "
                "FOR EACH ROW EXECUTE FUNCTION {}()"
            ).format(sql.Identifier(schema, table), function)
        )

    def lift_postgres() -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP FUNCTION {}() CASCADE").format(function))

    return lift_postgres


def truncate_schema(schema: str) -> None:
    """Empty every table of the schema, so each test starts from an empty store."""
    with bypassing_triggers() as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        if rows:
            tables = ", ".join(f'"{schema}"."{row[0]}"' for row in rows)
            connection.execute(f"TRUNCATE {tables} RESTART IDENTITY")


def initiated_event(customer: str = "cust-1") -> PurchaseEvent:
    """The Initiated event of a new external purchase (10 USD at 0.5), as the aggregate makes it."""
    intent = normalize_intent(
        now=START,
        namespace="acme",
        customer_id=customer,
        currency="USD",
        credit_amount="10",
        settlement_type="external",
        cost_basis="0.5",
    )
    purchase = CreditPurchase.initiate(uuid.uuid4(), intent, CommandContext(at=START))
    return purchase.collect_events()[0]
