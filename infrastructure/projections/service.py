"""Opening the read models next to a ledger's events, with the projector running in-process."""

from __future__ import annotations

import weakref
from types import TracebackType

from psycopg.conninfo import make_conninfo

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.signal import ProjectionSignal
from creditledger.application.projections.source import EventLog
from creditledger.application.readmodels import ReadModels
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.memory import MemoryViewDatabase
from creditledger.infrastructure.projections.postgres import PostgresViewDatabase
from creditledger.infrastructure.projections.runner import (
    DEFAULT_BATCH_SIZE,
    ProjectionRunner,
    ProjectorThread,
)
from creditledger.infrastructure.projections.sqlite import SqliteViewDatabase

# The in-memory event store lives in its ledger object, so its views must too: one per ledger.
_memory_views: weakref.WeakKeyDictionary[CreditLedger, MemoryViewDatabase] = (
    weakref.WeakKeyDictionary()
)

POLL_SECONDS = {"memory": 0.02, "sqlite": 0.05, "postgres": 0.5}
"""How long the projector waits for new events before looking again (PostgreSQL is woken by
NOTIFY; the others poll)."""


def open_view_database(ledger: CreditLedger) -> ViewDatabase:
    """The read models stored next to the ledger's events: same database, schema or file."""
    env = ledger.env
    module = env.get("PERSISTENCE_MODULE") or "eventsourcing.popo"
    if module.endswith("popo"):
        views = _memory_views.get(ledger)
        if views is None:
            views = _memory_views[ledger] = MemoryViewDatabase()
        return views
    if module.endswith("sqlite"):
        path = env.get("SQLITE_DBNAME") or ""
        if not path or ":memory:" in path or "mode=memory" in path:
            msg = "read models need a SQLite file, not an in-memory SQLite database"
            raise ValueError(msg)
        return SqliteViewDatabase(path, lock_timeout=float(env.get("SQLITE_LOCK_TIMEOUT") or 5))
    if module.endswith("postgres"):
        recorder = ledger.recorder
        conninfo = make_conninfo(
            dbname=env.get("POSTGRES_DBNAME"),
            host=env.get("POSTGRES_HOST"),
            port=env.get("POSTGRES_PORT") or "5432",
            user=env.get("POSTGRES_USER"),
            password=env.get("POSTGRES_PASSWORD") or None,
            connect_timeout=10,
        )
        return PostgresViewDatabase(
            conninfo,
            schema=env.get("POSTGRES_SCHEMA") or "public",
            events_table=getattr(recorder, "events_table_name", "creditledger_events"),
            channel=getattr(recorder, "channel_name", "creditledger_events"),
        )
    msg = f"no read model store for persistence module {module!r}"
    raise ValueError(msg)


class ReadModelService:
    """The read models of one ledger, and (optionally) the projector thread that feeds them."""

    def __init__(
        self,
        ledger: CreditLedger,
        database: ViewDatabase,
        *,
        run_projector: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval: float | None = None,
    ) -> None:
        self.ledger = ledger
        self.database = database
        self.log = EventLog(ledger)
        self.signal = ProjectionSignal()
        self.runner = ProjectionRunner(
            self.log,
            database,
            batch_size=batch_size,
            poll_interval=poll_interval or POLL_SECONDS[database.kind],
            signal=self.signal,
        )
        self.read_models = ReadModels(
            database,
            clock=ledger.clock,
            head=self.log.head,
            signal=self.signal,
            nudge=database.wake,
        )
        self._thread = ProjectorThread(self.runner) if run_projector else None
        if self._thread is not None:
            self._thread.start()

    @property
    def projector_running(self) -> bool:
        return self._thread is not None and self._thread.alive

    def stop(self) -> None:
        """Stop the projector thread (the views stay readable until ``close``)."""
        if self._thread is not None:
            self._thread.stop()
            self._thread = None

    def close(self) -> None:
        self.stop()
        if not isinstance(self.database, MemoryViewDatabase):
            self.database.close()

    def __enter__(self) -> ReadModelService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


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
