"""The stores tests run on: the backends, the PostgreSQL test server's schemas, a sample event."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

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


def truncate_schema(schema: str) -> None:
    """Empty every table of the schema, so each test starts from an empty store."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
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
