"""The composition root: settings in, a ready CreditLedger out. Nothing happens at import."""

from __future__ import annotations

from eventsourcing.persistence import InternalError

from creditledger.application.clock import Clock
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.settings import Settings, store_env

MAPPER_TOPIC = "creditledger.infrastructure.persistence.mapper:PurchaseEventMapper"
STARTUP_ATTEMPTS = 3


def ledger_env(settings: Settings) -> dict[str, str]:
    """Everything the eventsourcing library needs to know, from our one settings object."""
    return {**store_env(settings), "MAPPER_TOPIC": MAPPER_TOPIC}


def open_ledger(
    database_url: str | None = None,
    *,
    settings: Settings | None = None,
    clock: Clock | None = None,
) -> CreditLedger:
    """Open the ledger on the configured store (``CREDITLEDGER_DATABASE_URL`` by default).

    Close it when done (or use it as a context manager): it owns a connection pool.
    """
    if settings is None:
        settings = Settings() if database_url is None else Settings(database_url=database_url)
    elif database_url is not None:
        settings = settings.model_copy(update={"database_url": database_url})
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
            )
        except InternalError as error:
            # Processes starting together on PostgreSQL run the library's idempotent DDL at
            # once, and CREATE OR REPLACE FUNCTION then fails with "tuple concurrently
            # updated" in one of them. Running it again succeeds.
            if "concurrently" not in str(error) or attempt == STARTUP_ATTEMPTS:
                raise
            attempt += 1
