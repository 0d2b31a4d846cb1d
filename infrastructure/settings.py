"""One typed settings object, read from ``CREDITLEDGER_*`` environment variables once, at start."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/creditledger.sqlite"
SCHEMES = ("memory", "sqlite", "postgresql", "postgres")


class Settings(BaseSettings):
    """Configuration of one creditledger process."""

    model_config = SettingsConfigDict(env_prefix="CREDITLEDGER_", extra="ignore", frozen=True)

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="memory://, sqlite:///path (created on first use) or postgresql://user@host/db",
    )
    pool_size: int = Field(5, ge=1, le=200, description="PostgreSQL connections kept open")
    max_overflow: int = Field(10, ge=0, le=200, description="extra PostgreSQL connections at peak")
    pool_timeout: int = Field(30, ge=1, description="seconds to wait for a free connection")
    lock_timeout: int = Field(
        0, ge=0, description="PostgreSQL: seconds to wait for the event table lock (0: forever)"
    )
    sqlite_lock_timeout: int = Field(5, ge=0, description="SQLite: seconds to wait for a lock")
    max_attempts: int = Field(
        5, ge=1, le=100, description="tries of a command on version conflicts"
    )

    group_commit: bool | None = Field(
        None,
        description="batch concurrent commands into shared transactions; default: on for SQLite "
        "and PostgreSQL, off in memory (where a commit costs nothing)",
    )
    group_commit_max_batch: int = Field(
        256, ge=1, le=10_000, description="most commands written in one transaction"
    )

    @property
    def uses_group_commit(self) -> bool:
        if self.group_commit is not None:
            return self.group_commit
        return not self.database_url.startswith("memory://")

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in SCHEMES:
            msg = f"database_url must start with one of {', '.join(s + '://' for s in SCHEMES)}"
            raise ValueError(msg)
        return value


def store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for the configured store."""
    url = urlsplit(settings.database_url)
    if url.scheme == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if url.scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
        path = Path(unquote(settings.database_url.removeprefix("sqlite:///")))
        path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(path),
            "SQLITE_LOCK_TIMEOUT": str(settings.sqlite_lock_timeout),
        }
    query = parse_qs(url.query)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(url.path.removeprefix("/")) or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_SCHEMA": query.get("schema", ["public"])[0],
        "POSTGRES_POOL_SIZE": str(settings.pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.max_overflow),
        "POSTGRES_CONNECT_TIMEOUT": str(settings.pool_timeout),
        "POSTGRES_LOCK_TIMEOUT": str(settings.lock_timeout),
        # Never on: the DB-function insert path skips the table lock and lets notification ids
        # become visible out of commit order, so a projection could skip events.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
    }
