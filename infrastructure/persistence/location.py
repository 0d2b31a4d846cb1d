"""Where the events live: the database URL, parsed once, refused with the accepted forms.

A malformed URL must never quietly become some other store: ``sqlite://relative.sqlite`` (two
slashes) once made a directory named ``sqlite:`` below the working directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

ACCEPTED_FORMS = (
    "memory://",
    "sqlite:///relative/path.sqlite (three slashes: below the working directory)",
    "sqlite:////absolute/path.sqlite (four slashes)",
    "postgresql://user:password@host:port/database?schema=name (postgres:// also)",
)
SCHEMES = ("memory", "sqlite", "postgresql", "postgres")
DEFAULT_POSTGRES_PORT = 5432


class StoreUrlError(ValueError):
    """The database URL is not one of the accepted forms; the message lists them."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}; accepted forms: {'; '.join(ACCEPTED_FORMS)}")


@dataclass(frozen=True)
class StoreLocation:
    """One store: its kind and what it takes to reach it (never shown with its password)."""

    kind: Literal["memory", "sqlite", "postgresql"]
    path: Path | None = None
    """SQLite: the file, as given (relative paths are below the working directory)."""
    host: str = "127.0.0.1"
    port: int = DEFAULT_POSTGRES_PORT
    database: str = "postgres"
    user: str = "postgres"
    password: str = ""
    schema: str = "public"

    def describe(self) -> str:
        """The store in words for logs and errors: the file's absolute path, or where on which
        server (host, port, database, schema, user); never the password."""
        if self.kind == "memory":
            return "in-memory store (memory://; gone when the process ends)"
        if self.path is not None:
            return f"SQLite file {self.path.absolute()}"
        return (
            f"PostgreSQL at {self.host}:{self.port}, database {self.database!r}, "
            f"schema {self.schema!r}, user {self.user!r}"
        )


def parse_store_url(url: str) -> StoreLocation:
    """The store the URL names, or ``StoreUrlError`` (which never repeats a password)."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in SCHEMES:
        # Only the scheme is named: the rest of a URL may hold a password.
        named = f"scheme {scheme!r}" if separator else "a URL without '://'"
        msg = f"database_url has {named}, which is not a store this service knows"
        raise StoreUrlError(msg)
    if scheme == "memory":
        if rest:
            msg = "database_url memory:// takes nothing after the slashes"
            raise StoreUrlError(msg)
        return StoreLocation("memory")
    if scheme == "sqlite":
        return _sqlite(url, rest)
    return _postgresql(url)


def _sqlite(url: str, rest: str) -> StoreLocation:
    if not rest.startswith("/"):
        # sqlite://name.sqlite: "name.sqlite" would be a host, which SQLite has not.
        msg = f"database_url {url!r} has two slashes after 'sqlite:'; a file needs three"
        raise StoreUrlError(msg)
    # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
    path = unquote(rest.removeprefix("/"))
    if not path or path.endswith("/"):
        msg = f"database_url {url!r} names a directory, not a file"
        raise StoreUrlError(msg)
    return StoreLocation("sqlite", path=Path(path))


def _postgresql(url: str) -> StoreLocation:
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_POSTGRES_PORT
    except ValueError:
        msg = "database_url has a port that is not a number from 0 to 65535"
        raise StoreUrlError(msg) from None
    query = parse_qs(parts.query)
    return StoreLocation(
        "postgresql",
        host=parts.hostname or "127.0.0.1",
        port=port,
        database=unquote(parts.path.removeprefix("/")) or "postgres",
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        schema=query.get("schema", ["public"])[0],
    )
