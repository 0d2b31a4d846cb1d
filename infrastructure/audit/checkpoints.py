"""Checkpoints recorded durably in the store itself: (position, chain hash of the log there).

PostgreSQL: the table ``creditledger_audit_checkpoints`` in the ledger's schema. SQLite: the same
table in the ledger's database file. In memory: a list that lives as long as the in-memory store.
A position is recorded at most once: recording it again with another hash is refused, because
the log up to that position must never change.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from weakref import WeakKeyDictionary

from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from creditledger.application.audit.records import Checkpoint
from creditledger.application.ledger import CreditLedger

if TYPE_CHECKING:
    from eventsourcing.postgres import PostgresDatastore
    from eventsourcing.sqlite import SQLiteDatastore

TABLE = "creditledger_audit_checkpoints"

# SQLite statements, spelled out: the table name is a constant of this module.
_SQLITE_CREATE = (
    "CREATE TABLE IF NOT EXISTS creditledger_audit_checkpoints ("
    "position INTEGER PRIMARY KEY, chain_hash TEXT NOT NULL, recorded_at TEXT)"
)
_SQLITE_INSERT = (
    "INSERT INTO creditledger_audit_checkpoints (position, chain_hash, recorded_at) "
    "VALUES (?, ?, ?) ON CONFLICT (position) DO NOTHING"
)
_SQLITE_SELECT_ONE = (
    "SELECT position, chain_hash, recorded_at FROM creditledger_audit_checkpoints "
    "WHERE position = ?"
)
_SQLITE_SELECT_ALL = (
    "SELECT position, chain_hash, recorded_at FROM creditledger_audit_checkpoints ORDER BY position"
)


class CheckpointConflictError(Exception):
    """A checkpoint exists at this position with another chain hash: the log has changed."""


class CheckpointStore(Protocol):
    def record(self, checkpoint: Checkpoint) -> Checkpoint:
        """Store the checkpoint durably; returns the one stored (an earlier identical one)."""
        ...

    def all(self) -> list[Checkpoint]:
        """Every recorded checkpoint, by position."""
        ...


def checkpoint_store(ledger: CreditLedger) -> CheckpointStore:
    """The checkpoint table of the ledger's own store."""
    recorder = ledger.recorder
    if isinstance(recorder, POPOApplicationRecorder):
        return MemoryCheckpoints.of(recorder)
    if isinstance(recorder, SQLiteApplicationRecorder):
        return SQLiteCheckpoints(recorder.datastore)
    # Imported here, after the memory and SQLite cases: psycopg costs ~0.1 s to import, and a
    # command line that never opens PostgreSQL need not load it.
    from eventsourcing.postgres import PostgresApplicationRecorder  # noqa: PLC0415

    if isinstance(recorder, PostgresApplicationRecorder):
        return PostgresCheckpoints(recorder.datastore)
    msg = f"no checkpoint table for a {type(recorder).__name__}"
    raise TypeError(msg)


def _conflict(existing: Checkpoint, wanted: Checkpoint) -> CheckpointConflictError:
    return CheckpointConflictError(
        f"a checkpoint at position {existing.position} already records chain hash "
        f"{existing.chain_hash}, not {wanted.chain_hash}: the log up to it has changed"
    )


class MemoryCheckpoints:
    """Checkpoints of an in-memory store, kept exactly as long as the store."""

    _lists: ClassVar[WeakKeyDictionary[POPOApplicationRecorder, list[Checkpoint]]] = (
        WeakKeyDictionary()
    )

    def __init__(self, checkpoints: list[Checkpoint]) -> None:
        self._checkpoints = checkpoints

    @classmethod
    def of(cls, recorder: POPOApplicationRecorder) -> MemoryCheckpoints:
        return cls(cls._lists.setdefault(recorder, []))

    def record(self, checkpoint: Checkpoint) -> Checkpoint:
        for existing in self._checkpoints:
            if existing.position == checkpoint.position:
                if existing.chain_hash != checkpoint.chain_hash:
                    raise _conflict(existing, checkpoint)
                return existing
        self._checkpoints.append(checkpoint)
        self._checkpoints.sort(key=lambda c: c.position)
        return checkpoint

    def all(self) -> list[Checkpoint]:
        return list(self._checkpoints)


class SQLiteCheckpoints:
    """The checkpoint table in the ledger's SQLite file."""

    def __init__(self, datastore: SQLiteDatastore) -> None:
        self._datastore = datastore

    def record(self, checkpoint: Checkpoint) -> Checkpoint:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(_SQLITE_CREATE)
            cursor.execute(
                _SQLITE_INSERT,
                (checkpoint.position, checkpoint.chain_hash, _iso(checkpoint.recorded_at)),
            )
            cursor.execute(_SQLITE_SELECT_ONE, (checkpoint.position,))
            stored = _checkpoint(cursor.fetchone())
        if stored.chain_hash != checkpoint.chain_hash:
            raise _conflict(stored, checkpoint)
        return stored

    def all(self) -> list[Checkpoint]:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
            )
            if cursor.fetchone() is None:
                return []
            cursor.execute(_SQLITE_SELECT_ALL)
            return [_checkpoint(row) for row in cursor.fetchall()]


class PostgresCheckpoints:
    """The checkpoint table in the ledger's PostgreSQL schema."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        from psycopg import sql  # noqa: PLC0415 - only a PostgreSQL store needs psycopg

        self._sql = sql
        self._datastore = datastore
        self._table = sql.Identifier(datastore.schema, TABLE)

    def record(self, checkpoint: Checkpoint) -> Checkpoint:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self._sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (position bigint PRIMARY KEY, "
                    "chain_hash text NOT NULL, recorded_at timestamptz)"
                ).format(self._table)
            )
            cursor.execute(
                self._sql.SQL(
                    "INSERT INTO {} (position, chain_hash, recorded_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (position) DO NOTHING"
                ).format(self._table),
                (checkpoint.position, checkpoint.chain_hash, checkpoint.recorded_at),
            )
            cursor.execute(
                self._sql.SQL(
                    "SELECT position, chain_hash, recorded_at FROM {} WHERE position = %s"
                ).format(self._table),
                (checkpoint.position,),
            )
            stored = _checkpoint(cursor.fetchone())
        if stored.chain_hash != checkpoint.chain_hash:
            raise _conflict(stored, checkpoint)
        return stored

    def all(self) -> list[Checkpoint]:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name = %s",
                (self._datastore.schema, TABLE),
            )
            if cursor.fetchone() is None:
                return []
            cursor.execute(
                self._sql.SQL(
                    "SELECT position, chain_hash, recorded_at FROM {} ORDER BY position"
                ).format(self._table)
            )
            return [_checkpoint(row) for row in cursor.fetchall()]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _checkpoint(row: Any) -> Checkpoint:
    if row is None:  # pragma: no cover - the row was just inserted or found
        msg = "checkpoint row vanished"
        raise CheckpointConflictError(msg)
    recorded_at = row["recorded_at"]
    if isinstance(recorded_at, str):
        recorded_at = datetime.fromisoformat(recorded_at)
    return Checkpoint(
        position=row["position"], chain_hash=row["chain_hash"], recorded_at=recorded_at
    )
