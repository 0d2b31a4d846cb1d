"""Readiness checks: is the store reachable, and how far behind the log are the read models?

A check runs in a worker thread under a deadline, so a store that hangs makes the probe answer
"not ready" in time instead of hanging with it. At most one check runs at once: while an
abandoned one is still stuck, later probes say so at once rather than piling up threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.to_thread

from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import FieldError
from creditledger.infrastructure.projections.service import ReadModelService

DEFAULT_TIMEOUT_SECONDS = 2.0

T = TypeVar("T")


class _StillRunningError(Exception):
    pass


@dataclass(frozen=True)
class ProjectionState:
    """Where the log ends and where the read models stand in it."""

    head: int
    position: int
    projector_running: bool

    @property
    def lag(self) -> int:
        """Events recorded that some read model has not applied yet."""
        return max(self.head - self.position, 0)


class StoreProbe:
    def __init__(self, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._running = threading.Lock()

    def _exclusive(self, check: Callable[[], T]) -> T:
        if not self._running.acquire(blocking=False):
            raise _StillRunningError
        try:
            return check()
        finally:
            self._running.release()

    async def _ask(self, check: Callable[[], T], field: str) -> T | FieldError:
        """The check's answer, or the problem that kept it from answering in time."""
        with anyio.move_on_after(self.timeout):
            try:
                return await anyio.to_thread.run_sync(
                    self._exclusive, check, abandon_on_cancel=True
                )
            except _StillRunningError:
                return FieldError(field, f"{field}_check_pending", "an earlier check is waiting")
            except Exception as error:  # any failure to read is "not ready", with its reason
                return FieldError(field, f"{field}_unreachable", f"{type(error).__name__}: {error}")
        return FieldError(field, f"{field}_timeout", f"no answer within {self.timeout:g} seconds")

    async def problems(self, ledger: CreditLedger | None) -> list[FieldError]:
        """What is wrong with the store, if anything: empty when a read answered in time."""
        if ledger is None:
            return [FieldError("store", "store_not_open", "the ledger is not open")]
        answer = await self._ask(ledger.head_position, "store")
        return [answer] if isinstance(answer, FieldError) else []

    async def projection(self, views: ReadModelService | None) -> ProjectionState | FieldError:
        """The log's head and the read models' position, or why they could not be read."""
        if views is None:
            return FieldError("projections", "projections_not_open", "the read models are closed")

        def read() -> ProjectionState:
            # The position first: a head read after it can only be later, so the lag is never
            # understated.
            position = views.read_models.position()
            return ProjectionState(
                head=views.read_models.head(),
                position=position,
                projector_running=views.projector_running,
            )

        return await self._ask(read, "projections")
