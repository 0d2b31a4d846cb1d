"""Readiness checks: is the store reachable (and, once the read models land, how far behind are
the projections)?

A check runs in a worker thread under a deadline, so a store that hangs makes the probe answer
"not ready" in time instead of hanging with it. At most one store check runs at once: while an
abandoned one is still stuck, later probes say so at once rather than piling up threads.
"""

from __future__ import annotations

import threading

import anyio
import anyio.to_thread

from application.ledger import CreditLedger
from domain.errors import FieldError

DEFAULT_TIMEOUT_SECONDS = 2.0


class _StillRunningError(Exception):
    pass


class StoreProbe:
    def __init__(self, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._running = threading.Lock()

    def _read_position(self, ledger: CreditLedger) -> int | None:
        if not self._running.acquire(blocking=False):
            raise _StillRunningError
        try:
            return ledger.recorder.max_notification_id()
        finally:
            self._running.release()

    async def problems(self, ledger: CreditLedger | None) -> list[FieldError]:
        """What is wrong with the store, if anything: empty when a read answered in time."""
        if ledger is None:
            return [FieldError("store", "store_not_open", "the ledger is not open")]
        with anyio.move_on_after(self.timeout):
            try:
                await anyio.to_thread.run_sync(self._read_position, ledger, abandon_on_cancel=True)
            except _StillRunningError:
                return [
                    FieldError("store", "store_check_pending", "an earlier check is still waiting")
                ]
            except Exception as error:  # any failure to read is "not ready", with its reason
                reason = f"{type(error).__name__}: {error}"
                return [FieldError("store", "store_unreachable", reason)]
            return []
        return [FieldError("store", "store_timeout", f"no answer within {self.timeout:g} seconds")]
