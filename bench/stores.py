"""Fresh, empty stores for one measurement, and the same store as each side of a row sees it.

Every measured run gets a store nobody has written to: a new SQLite file in a temporary
directory, or a new PostgreSQL schema (created before the run, dropped with everything in it
after). creditledger reaches a store through its database URL; the bare library through the
eventsourcing environment that creditledger's own settings derive from that URL, so both sides
run with the same persistence module, pool sizes, timeouts and insert path.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import open_ledger
from creditledger.infrastructure.settings import Settings, store_env

Backend = Literal["memory", "sqlite", "postgres"]
BACKENDS: tuple[Backend, ...] = ("memory", "sqlite", "postgres")

POSTGRES_URL = os.environ.get(
    "CREDITLEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
"""The server and database the PostgreSQL runs use; each run gets its own schema in it."""

SCHEMA_PREFIX = "creditledger_bench"


@dataclass(frozen=True)
class Store:
    """One empty store of one backend, as a database URL."""

    backend: Backend
    url: str
    postgres_schema: str | None = None
    sqlite_path: Path | None = None

    def settings(self, pool_size: int = 5, *, group_commit: bool | None = None) -> Settings:
        # At least as many pooled connections as callers, so that a caller never waits for
        # a connection rather than for the database. ``group_commit`` None leaves the setting
        # to the service's default (or a CREDITLEDGER_GROUP_COMMIT variable).
        chosen = Settings(database_url=self.url, pool_size=max(5, pool_size))
        if group_commit is None:
            return chosen
        return chosen.model_copy(update={"group_commit": group_commit})

    def open_ledger(self, pool_size: int = 5, *, group_commit: bool | None = None) -> CreditLedger:
        """creditledger on this store; the caller closes it."""
        return open_ledger(settings=self.settings(pool_size, group_commit=group_commit))

    def library_env(self, pool_size: int = 5) -> dict[str, str]:
        """The eventsourcing environment of this store, as creditledger derives it, minus ours.

        The same database, pool size, timeouts and ``POSTGRES_ENABLE_DB_FUNCTIONS`` ("n": the
        library's DB-function path skips the table lock, and creditledger never uses it), but
        none of creditledger's own parts: no ``MAPPER_TOPIC`` (the bare library keeps its
        default mapper and JSON transcoder) and no ``APPLICATION_RECORDER_TOPIC`` (it keeps its
        own PostgreSQL insert path, a pipelined transaction per save).
        """
        env = store_env(self.settings(pool_size))
        env.pop("APPLICATION_RECORDER_TOPIC", None)
        return env


def ledger_configuration() -> str:
    """creditledger's settings that shape its write path, as the benchmark runs them.

    They are the service's defaults unless ``CREDITLEDGER_*`` variables say otherwise.
    """
    on_disk = Settings(database_url="sqlite:///unused.sqlite")
    in_memory = Settings(database_url="memory://")

    def on(flag: bool) -> str:
        return "on" if flag else "off"

    return (
        f"group commit: {on(on_disk.uses_group_commit)} for SQLite and PostgreSQL "
        f"(batches <= {on_disk.group_commit_max_batch}), {on(in_memory.uses_group_commit)} "
        f"in memory; purchase cache: {on_disk.cache_size:,} purchases"
    )


def postgres_problem() -> str | None:
    """None when the benchmark's PostgreSQL server answers, else why it does not."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return f"PostgreSQL at {POSTGRES_URL} is unreachable: {error}".strip()
    return None


def postgres_connect() -> psycopg.Connection[tuple[object, ...]]:
    """A plain autocommit connection to the benchmark database (for DDL, COPY, facts)."""
    return psycopg.connect(POSTGRES_URL, autocommit=True)


def schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}schema={schema}"


@contextmanager
def fresh_store(backend: Backend) -> Iterator[Store]:
    """An empty store, removed with everything in it when the block ends."""
    if backend == "memory":
        # Each application object owns its in-memory store: it is fresh by construction.
        yield Store(backend, "memory://")
    elif backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="creditledger-bench-") as directory:
            path = Path(directory) / "store.sqlite"
            yield Store(backend, f"sqlite:///{path}", sqlite_path=path)
    else:
        schema = f"{SCHEMA_PREFIX}_{uuid.uuid4().hex[:12]}"
        with postgres_connect() as connection:
            connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            yield Store(backend, schema_url(schema), postgres_schema=schema)
        finally:
            with postgres_connect() as connection:
                connection.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
