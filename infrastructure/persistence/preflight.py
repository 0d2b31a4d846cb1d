"""Before the ledger opens its store: can the store be reached, and if not, why exactly?

The library reports an unreachable PostgreSQL only after its pool has waited 30 seconds, as
``couldn't get a connection``, without the cause; an unwritable SQLite directory surfaces as a
long traceback without the path. One direct attempt, with a short timeout, names both the store
and the cause in a few seconds.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from creditledger.application.errors import StoreUnavailableError
from creditledger.domain.errors import FieldError
from creditledger.infrastructure.persistence.location import StoreLocation

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_SECONDS = 5


class StoreOpenError(StoreUnavailableError):
    """The configured store cannot be opened; ``errors`` holds the cause, by code."""

    def __init__(self, store: StoreLocation, cause: str, message: str) -> None:
        super().__init__(f"cannot open the store ({store.describe()}): {message}")
        self.errors = [FieldError("database_url", cause, message)]


@dataclass(frozen=True)
class Preflight:
    """What opening the store will find."""

    new_file: bool = False
    """SQLite: the file did not exist, so the ledger starts with an empty store."""


def check_store(store: StoreLocation) -> Preflight:
    """Raise ``StoreOpenError`` naming the store and the cause if it cannot be opened."""
    if store.kind == "postgresql":
        _check_postgresql(store)
        return Preflight()
    if store.path is not None:
        return _check_sqlite(store, store.path.absolute())
    return Preflight()


def _check_sqlite(store: StoreLocation, path: Path) -> Preflight:
    directory = path.parent
    blocker = next((p for p in (directory, *directory.parents) if p.exists()), directory)
    if not blocker.is_dir():
        msg = f"{blocker} is a file, so the directory {directory} cannot be made"
        raise StoreOpenError(store, "sqlite_directory_not_created", msg)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        msg = f"the directory {directory} cannot be created ({error.strerror})"
        raise StoreOpenError(store, "sqlite_directory_not_created", msg) from None
    if path.is_dir():
        msg = f"{path} is a directory, not a database file"
        raise StoreOpenError(store, "sqlite_path_is_a_directory", msg)
    # SQLite writes its journal (WAL) files next to the database: the directory must be writable.
    if not os.access(directory, os.W_OK | os.X_OK):
        msg = f"the directory {directory} is not writable (SQLite keeps its journal there)"
        raise StoreOpenError(store, "sqlite_directory_read_only", msg)
    existed = path.exists()
    if existed and not os.access(path, os.R_OK | os.W_OK):
        msg = f"the file {path} is not readable and writable"
        raise StoreOpenError(store, "sqlite_file_read_only", msg)
    try:
        with closing(sqlite3.connect(path, timeout=CONNECT_TIMEOUT_SECONDS)) as connection:
            connection.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as error:
        raise StoreOpenError(store, "sqlite_unreadable", f"SQLite: {error}") from None
    return Preflight(new_file=not existed)


def _check_postgresql(store: StoreLocation) -> None:
    # Imported here: psycopg costs ~0.1 s to import, and a SQLite or memory store never needs it.
    import psycopg  # noqa: PLC0415

    try:
        with psycopg.connect(
            host=store.host,
            port=store.port,
            dbname=store.database,
            user=store.user,
            password=store.password,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        ) as connection:
            found = connection.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (store.schema,)
            ).fetchone()
    except psycopg.Error as error:
        raise StoreOpenError(store, _cause_of(error), _first_words(error)) from None
    if found is None:
        msg = (
            f"schema {store.schema!r} does not exist; create it (CREATE SCHEMA "
            f'"{store.schema}") or leave ?schema= out to use public'
        )
        raise StoreOpenError(store, "schema_not_found", msg)


def _cause_of(error: psycopg.Error) -> str:
    text = str(error)
    if "does not exist" in text and "database" in text:
        return "database_not_found"
    if "authentication" in text or "password" in text:
        return "authentication_failed"
    if "resolve host" in text or "translate host name" in text:
        return "unknown_host"
    if "refused" in text:
        return "connection_refused"
    if "timeout" in text:
        return "connection_timeout"
    return "store_unreachable"


def _first_words(error: psycopg.Error) -> str:
    """libpq's message on one line, without its repeated 'connection failed' preamble."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = " ".join(lines) or type(error).__name__
    return text.replace("FATAL:  ", "")
