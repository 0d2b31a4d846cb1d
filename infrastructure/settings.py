"""One typed settings object, read from ``CREDITLEDGER_*`` environment variables once, at start."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from creditledger.infrastructure.persistence.location import (
    StoreLocation,
    StoreUrlError,
    parse_store_url,
)

DEFAULT_DATABASE_URL = "sqlite:///./var/creditledger.sqlite"
DEFAULT_MAX_REQUEST_BODY_BYTES = 256 * 1024

_TOKEN = re.compile(r"[\x21-\x7e]{1,512}")
"""Printable ASCII without spaces: what an ``Authorization: Bearer`` header carries unchanged."""
_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class ProjectorMode(StrEnum):
    """Who feeds the read models of a serving process."""

    INPROCESS = "inprocess"
    """A projector thread in the server itself (the default)."""
    EXTERNAL = "external"
    """Another process runs ``creditledger projections run``; the server only reads."""


class Settings(BaseSettings):
    """Configuration of one creditledger process."""

    # Errors never show the inputs: a token or a database password must not reach a log.
    model_config = SettingsConfigDict(
        env_prefix="CREDITLEDGER_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

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
    api_keys: SecretStr | None = Field(
        None,
        description="HTTP bearer tokens per namespace: 'acme=tok1,globex=tok2' (a namespace may "
        "have several; a token may be given as sha256:<64 hex digits> of itself). With neither "
        "this nor admin_token the HTTP API runs open, for local development only.",
    )
    admin_token: SecretStr | None = Field(
        None, description="HTTP bearer token that may read (never write) every namespace"
    )
    max_request_body_bytes: int = Field(
        DEFAULT_MAX_REQUEST_BODY_BYTES,
        ge=1024,
        le=16 * 1024 * 1024,
        description="HTTP: larger request bodies are refused with 413",
    )

    cache_size: int = Field(
        10_000,
        ge=0,
        description="purchases kept in memory to decide the next command without a read (0: off)",
    )
    group_commit: bool | None = Field(
        None,
        description="batch concurrent commands into shared transactions; default: on for SQLite "
        "and PostgreSQL, off in memory (where a commit costs nothing)",
    )
    group_commit_max_batch: int = Field(
        256, ge=1, le=10_000, description="most commands written in one transaction"
    )
    group_commit_max_wait_ms: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="how long a batch's writer waits for more commands before writing (it "
        "stops early when the batch is full); 0: never, a lone caller pays nothing",
    )

    projector: ProjectorMode = Field(
        ProjectorMode.INPROCESS,
        description="HTTP: inprocess runs the projector in the server; external means another "
        "process runs 'creditledger projections run' and the server only reads the views",
    )
    max_projection_lag: int = Field(
        10_000,
        ge=0,
        description="HTTP: /readyz reports not ready when the read models are more than this "
        "many events behind the log",
    )
    read_your_writes_timeout: float = Field(
        5.0,
        gt=0,
        le=60,
        description="HTTP: seconds a read with min_position waits for the read models before 503",
    )

    nats_url: str = Field(
        "nats://127.0.0.1:4222",
        description="NATS JetStream server of the relay and the consumers (docs/scale-out.md)",
    )
    relay_stream: str = Field(
        "CREDITLEDGER",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="the ledger's JetStream stream (one per ledger store)",
    )
    relay_subject_prefix: str = Field(
        "creditledger",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="subjects are PREFIX.<namespace>.<event type>",
    )
    relay_duplicate_window: float = Field(
        120.0,
        gt=0,
        le=86_400,
        description="seconds JetStream remembers message ids (set when the relay creates the "
        "stream); longer than the relay's worst restart",
    )
    relay_replicas: int = Field(
        1, ge=1, le=5, description="stream replicas when the relay creates it (3 in production)"
    )
    relay_in_server: bool = Field(
        False,
        description="HTTP: run the relay in the server's process (default: 'creditledger relay' "
        "runs it on its own); /readyz and /metrics report its lag",
    )
    relay_watch: bool = Field(
        False,
        description="HTTP: report the lag of a relay running in another process in /readyz and "
        "/metrics, read from the stream's last message (implied by relay_in_server)",
    )
    max_relay_lag: int | None = Field(
        None,
        ge=0,
        description="HTTP, with relay_in_server or relay_watch: /readyz reports not ready when "
        "the stream is more than this many events behind the log; default: the lag is only "
        "reported (a broker outage must not take the ledger's API out of service)",
    )

    expiry_sweep: bool = Field(
        True,
        description="HTTP: record due credit expiries in the server's process (each expiry "
        "takes effect at expires_at for every query either way; the sweep books the breakage for "
        "customers who do nothing); 'creditledger expiry run' sweeps on its own",
    )
    expiry_sweep_interval: float = Field(
        1.0, gt=0, le=3_600, description="seconds between two passes of the expiry sweep"
    )
    max_expiry_lag: float | None = Field(
        None,
        ge=0,
        description="HTTP, with expiry_sweep: /readyz reports not ready when a due expiry has "
        "waited more than this many seconds to be recorded; default: the lag is only reported",
    )

    @property
    def uses_group_commit(self) -> bool:
        if self.group_commit is not None:
            return self.group_commit
        return not self.database_url.startswith("memory://")

    @field_validator("database_url")
    @classmethod
    def _well_formed_url(cls, value: str) -> str:
        try:
            parse_store_url(value)
        except StoreUrlError as error:
            raise ValueError(str(error)) from None
        return value

    @property
    def store(self) -> StoreLocation:
        """The store the database URL names (validated when the settings were read)."""
        return parse_store_url(self.database_url)

    @field_validator("api_keys")
    @classmethod
    def _well_formed_keys(cls, value: SecretStr | None) -> SecretStr | None:
        # Validated after SecretStr wraps the text, so an error never echoes a token.
        if value is not None:
            parse_api_keys(value.get_secret_value())
        return value

    @field_validator("admin_token")
    @classmethod
    def _well_formed_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _TOKEN.fullmatch(value.get_secret_value()):
            msg = "admin_token must be 1 to 512 printable ASCII characters without spaces"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _admin_token_is_not_a_namespace_token(self) -> Settings:
        if self.admin_token is None or self.api_keys is None:
            return self
        admin = self.admin_token.get_secret_value()
        if any(token == admin for _, token in self.namespace_tokens()):
            msg = "admin_token must differ from every namespace token in api_keys"
            raise ValueError(msg)
        return self

    def namespace_tokens(self) -> list[tuple[str, str]]:
        """The configured (namespace, token) pairs; a namespace may appear more than once."""
        if self.api_keys is None:
            return []
        return parse_api_keys(self.api_keys.get_secret_value())


def parse_api_keys(text: str) -> list[tuple[str, str]]:
    """Read ``namespace=token`` pairs separated by commas; refuse anything else, naming no token."""
    pairs: list[tuple[str, str]] = []
    for position, entry in enumerate(text.split(","), start=1):
        namespace, separator, token = entry.strip().partition("=")
        if not separator or not _NAMESPACE.fullmatch(namespace) or not _TOKEN.fullmatch(token):
            msg = (
                f"api_keys entry {position} must be NAMESPACE=TOKEN (a namespace of letters, "
                "digits, '.', '_' or '-'; a token of printable ASCII without spaces or commas)"
            )
            raise ValueError(msg)
        pairs.append((namespace, token))
    return pairs


def store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for the configured store."""
    store = settings.store
    if store.kind == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if store.path is not None:
        store.path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(store.path),
            "SQLITE_LOCK_TIMEOUT": str(settings.sqlite_lock_timeout),
            "APPLICATION_RECORDER_TOPIC": (
                "creditledger.infrastructure.persistence.sqlite:AppendOnlySQLiteRecorder"
            ),
        }
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": store.database,
        "POSTGRES_HOST": store.host,
        "POSTGRES_PORT": str(store.port),
        "POSTGRES_USER": store.user,
        "POSTGRES_PASSWORD": store.password,
        "POSTGRES_SCHEMA": store.schema,
        "POSTGRES_POOL_SIZE": str(settings.pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.max_overflow),
        "POSTGRES_CONNECT_TIMEOUT": str(settings.pool_timeout),
        "POSTGRES_LOCK_TIMEOUT": str(settings.lock_timeout),
        # Never on: the DB-function insert path skips the table lock and lets notification ids
        # become visible out of commit order, so a projection could skip events.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "APPLICATION_RECORDER_TOPIC": (
            "creditledger.infrastructure.persistence.postgres:AppendFunctionRecorder"
        ),
    }
