"""The read models of one ledger, with the projector running in-process (opened by
``creditledger.infrastructure.bootstrap.open_read_models``)."""

from __future__ import annotations

from types import TracebackType

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.signal import ProjectionSignal
from creditledger.application.projections.source import EventLog
from creditledger.application.readmodels import ReadModels
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.memory import MemoryViewDatabase
from creditledger.infrastructure.projections.runner import (
    DEFAULT_BATCH_SIZE,
    ProjectionRunner,
    ProjectorThread,
)

POLL_SECONDS = {"memory": 0.02, "sqlite": 0.05, "postgres": 0.5}
"""How long the projector waits for new events before looking again (PostgreSQL is woken by
NOTIFY; the others poll)."""


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
