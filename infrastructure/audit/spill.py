"""Closed purchases on disk: what keeps offline verification's memory flat however long the log.

A temporary SQLite file (deleted on close) holds each closed purchase's history as one JSON blob,
keyed by purchase id. Writes are buffered and go in one ``executemany`` per batch; the page cache
is capped, so the process holds at most one batch and the cache, whatever the file's size. A
valid log looks each purchase up once (when it begins: its id must not be taken already) and
reads a history back only when a tampered line mentions a closed purchase again.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from creditledger.application.audit.closed import DuplicatePurchaseError, History, RecordedEvent

FLUSH_EVERY = 2000
"""Closed purchases buffered in memory before one write."""
CACHE_KIB = 8 * 1024
"""SQLite's page cache for the file, in KiB (its default is 2 MiB; more spares lookups)."""


class ScratchFileError(Exception):
    """The scratch file cannot be created, written or read (disk full, directory not writable)."""


@contextmanager
def _scratch(directory: str) -> Iterator[None]:
    try:
        yield
    except (sqlite3.Error, OSError) as error:
        msg = f"the scratch file of closed purchases in {directory} failed: {error}"
        raise ScratchFileError(msg) from None


class SqliteClosedPurchases:
    """``ClosedPurchases`` in a temporary SQLite file, removed on ``close()`` or when collected."""

    def __init__(self, directory: str | None = None) -> None:
        self._where = directory or tempfile.gettempdir()
        with _scratch(self._where):
            self._directory = tempfile.TemporaryDirectory(
                prefix="creditledger-verify-", dir=directory
            )
            path = Path(self._directory.name) / "closed.sqlite"
            # Used by its owner's thread only, but closed by whichever thread collects the store
            # when nobody called close() (a finalizer): that thread may differ.
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            # Scratch data for one run, read by this connection only: no journal, no fsync, no
            # lock taken and released per statement; a crash loses only the run.
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            # A rowid table: the histories stay out of the key index, so a lookup reads small
            # pages (WITHOUT ROWID kept them in the index: lookups about seven times slower).
            self._db.execute(
                "CREATE TABLE closed (purchase_id TEXT PRIMARY KEY, history BLOB NOT NULL)"
            )
        self._pending: dict[str, History] = {}
        self._count = 0
        # The store lives as long as the report that reads it back, so also clean up when it is
        # garbage collected without close().
        weakref.finalize(self, _cleanup, self._db, self._directory)

    def close(self) -> None:
        _cleanup(self._db, self._directory)

    def add(self, purchase_id: str, history: History) -> None:
        if purchase_id in self._pending:
            raise DuplicatePurchaseError(_twice(purchase_id))
        self._pending[purchase_id] = history
        self._count += 1
        if len(self._pending) >= FLUSH_EVERY:
            self._flush()

    def take(self, purchase_id: str) -> History | None:
        history = self._pending.pop(purchase_id, None)
        if history is None:
            history = self._read(purchase_id)
            if history is None:
                return None
            with _scratch(self._where):
                self._db.execute("DELETE FROM closed WHERE purchase_id = ?", (purchase_id,))
        self._count -= 1
        return history

    def get(self, purchase_id: str) -> History | None:
        history = self._pending.get(purchase_id)
        return history if history is not None else self._read(purchase_id)

    def __len__(self) -> int:
        return self._count

    def settle(self) -> None:
        self._flush()

    def histories(self) -> Iterator[tuple[str, History]]:
        self._flush()
        with _scratch(self._where):
            # In key order: the primary key's index is read in order, each history looked up
            # by rowid (no sort of the whole table).
            cursor = self._db.execute(
                "SELECT purchase_id, history FROM closed ORDER BY purchase_id"
            )
            while rows := cursor.fetchmany(1000):
                yield from ((purchase_id, _decoded(blob)) for purchase_id, blob in rows)

    def _read(self, purchase_id: str) -> History | None:
        with _scratch(self._where):
            row = self._db.execute(
                "SELECT history FROM closed WHERE purchase_id = ?", (purchase_id,)
            ).fetchone()
        return _decoded(row[0]) if row is not None else None

    def _flush(self) -> None:
        if not self._pending:
            return
        rows = [(purchase_id, _encoded(history)) for purchase_id, history in self._pending.items()]
        self._pending.clear()
        with _scratch(self._where):
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT INTO closed VALUES (?, ?)", rows)
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                msg = (
                    f"one of the {len(rows)} purchases closed last was closed before: "
                    "an id initiated twice"
                )
                raise DuplicatePurchaseError(msg) from None
            self._db.execute("COMMIT")


def _twice(purchase_id: str) -> str:
    return f"purchase {purchase_id} is closed twice: its id was initiated twice"


def _cleanup(db: sqlite3.Connection, directory: tempfile.TemporaryDirectory[str]) -> None:
    db.close()
    directory.cleanup()


def _encoded(history: History) -> bytes:
    items = [list(recorded) for recorded in history]
    try:
        return b"o" + orjson.dumps(items)
    except TypeError:
        # orjson refuses integers beyond 64 bits (a tampered line may hold one); the standard
        # library writes any integer, and the prefix says which reader gets it back exactly.
        return b"j" + json.dumps(items).encode("utf-8")


def _decoded(blob: bytes) -> History:
    items = orjson.loads(blob[1:]) if blob[:1] == b"o" else json.loads(blob[1:])
    return tuple(RecordedEvent(*item) for item in items)
