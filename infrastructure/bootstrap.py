"""The composition root: settings in, a ready CreditLedger and its read models out.

Everything the service, the CLI, the tests and users open is built here, from one ``Settings``:
the ledger over its event store, and the read models stored next to those events (same
PostgreSQL schema, same SQLite file, in process for ``memory://``). Nothing happens at import.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from uuid import UUID, uuid4

from eventsourcing.persistence import InternalError

from creditledger.application.clock import Clock
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.memory import MemoryViewDatabase
from creditledger.infrastructure.projections.runner import DEFAULT_BATCH_SIZE
from creditledger.infrastructure.projections.service import ReadModelService
from creditledger.infrastructure.projections.sqlite import SqliteViewDatabase
from creditledger.infrastructure.settings import Settings, store_env

MAPPER_TOPIC = "creditledger.infrastructure.persistence.mapper:PurchaseEventMapper"
STARTUP_ATTEMPTS = 3

# What each ledger opened here was built from, so that its read models are built from the same
# settings (and never re-derived from the library's environment). The in-memory event store
# lives in its ledger object, so its views do too: one view database per ledger.
_settings_of: weakref.WeakKeyDictionary[CreditLedger, Settings] = weakref.WeakKeyDictionary()
_memory_views: weakref.WeakKeyDictionary[CreditLedger, MemoryViewDatabase] = (
    weakref.WeakKeyDictionary()
)


def ledger_env(settings: Settings) -> dict[str, str]:
    """Everything the eventsourcing library needs to know, from our one settings object."""
    return {**store_env(settings), "MAPPER_TOPIC": MAPPER_TOPIC}


def open_ledger(
    database_url: str | None = None,
    *,
    settings: Settings | None = None,
    clock: Clock | None = None,
    ids: Callable[[], UUID] = uuid4,
) -> CreditLedger:
    """Open the ledger on the configured store (``CREDITLEDGER_DATABASE_URL`` by default).

    Close it when done (or use it as a context manager): it owns a connection pool. ``clock``
    and ``ids`` (new purchase and consumption ids where no idempotency key derives one) are for
    tests that replay: the property kit's machine passes its own.
    """
    if settings is None:
        settings = Settings() if database_url is None else Settings(database_url=database_url)
    elif database_url is not None:
        settings = settings.model_copy(update={"database_url": database_url})
    ledger = _construct(settings, clock, ids)
    _settings_of[ledger] = settings
    return ledger


def _construct(settings: Settings, clock: Clock | None, ids: Callable[[], UUID]) -> CreditLedger:
    attempt = 1
    while True:
        try:
            return CreditLedger(
                ledger_env(settings),
                clock=clock,
                max_attempts=settings.max_attempts,
                group_commit=settings.uses_group_commit,
                max_batch=settings.group_commit_max_batch,
                max_wait=settings.group_commit_max_wait_ms / 1000,
                cache_size=settings.cache_size,
                ids=ids,
            )
        except InternalError as error:
            # Processes starting together on PostgreSQL run the library's idempotent DDL at
            # once, and CREATE OR REPLACE FUNCTION then fails with "tuple concurrently
            # updated" in one of them. Running it again succeeds.
            if "concurrently" not in str(error) or attempt == STARTUP_ATTEMPTS:
                raise
            attempt += 1


def settings_of(ledger: CreditLedger) -> Settings | None:
    """The settings ``open_ledger`` built ``ledger`` from (None for a ledger built otherwise):
    what a job needs to open a second ledger on the same store, in another process."""
    return _settings_of.get(ledger)


def open_view_database(ledger: CreditLedger) -> ViewDatabase:
    """The read models' store next to the ledger's events, from the ledger's own settings."""
    settings = settings_of(ledger)
    if settings is None:
        msg = "open the ledger with open_ledger: its read models are built from its settings"
        raise ValueError(msg)
    env = store_env(settings)
    module = env["PERSISTENCE_MODULE"]
    if module.endswith("popo"):
        views = _memory_views.get(ledger)
        if views is None:
            views = _memory_views[ledger] = MemoryViewDatabase()
        return views
    if module.endswith("sqlite"):
        path = env["SQLITE_DBNAME"]
        if ":memory:" in path or "mode=memory" in path:
            msg = "read models need a SQLite file, not an in-memory SQLite database"
            raise ValueError(msg)
        return SqliteViewDatabase(path, lock_timeout=float(settings.sqlite_lock_timeout))
    # Imported here: psycopg costs ~0.1 s to import, and a SQLite or memory store never needs it.
    from psycopg.conninfo import make_conninfo  # noqa: PLC0415

    from creditledger.infrastructure.projections.postgres import (  # noqa: PLC0415
        PostgresViewDatabase,
    )

    recorder = ledger.recorder
    conninfo = make_conninfo(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
        connect_timeout=10,
    )
    return PostgresViewDatabase(
        conninfo,
        schema=env["POSTGRES_SCHEMA"],
        # The library names the events table and its NOTIFY channel after the application.
        events_table=getattr(recorder, "events_table_name", "creditledger_events"),
        channel=getattr(recorder, "channel_name", "creditledger_events"),
    )


def open_read_models(
    ledger: CreditLedger,
    *,
    run_projector: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    poll_interval: float | None = None,
) -> ReadModelService:
    """Open the ledger's read models; by default also start the in-process projector.

    Use it as a context manager (or call ``close``) before closing the ledger. With
    ``run_projector=False`` the views are fed by another process (``creditledger projections
    run``) and only read here.
    """
    return ReadModelService(
        ledger,
        open_view_database(ledger),
        run_projector=run_projector,
        batch_size=batch_size,
        poll_interval=poll_interval,
    )
