"""Runs the expiry sweep over and over, in a thread of the server or of ``creditledger expiry``.

Each pass asks the read models which wallets have an expiry due and has each record it (see
``application/expiry_sweep.py``). A failing pass (the store away, say) is remembered and retried
at the next tick: the sweep never stops for an error, and /readyz says what went wrong.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime

from creditledger.application.expiry_sweep import (
    DEFAULT_SWEEP_BATCH,
    DueWallet,
    ExpirySweep,
    SweepReport,
)
from creditledger.application.ledger import CreditLedger
from creditledger.application.readmodels import ReadModelQueries
from creditledger.domain.errors import LedgerError

logger = logging.getLogger(__name__)

DEFAULT_SWEEP_INTERVAL = 1.0


class ExpirySweepSource:
    """Wallets with expiries due, from the read model's due grants (oldest first)."""

    def __init__(self, queries: ReadModelQueries) -> None:
        self._queries = queries

    def __call__(self, at: datetime, limit: int) -> Sequence[DueWallet]:
        # Read grants until ``limit`` wallets are named (a wallet may hold several due grants).
        rows = self._queries.due_expiries(at, limit * 4, namespace=None, customer_id=None).rows
        wallets: dict[tuple[str, str, str], DueWallet] = {}
        for row in rows:
            key = (row.namespace, row.customer_id, row.currency)
            if key not in wallets and row.expires_at is not None:
                wallets[key] = DueWallet(*key, due_since=row.expires_at)
            if len(wallets) == limit:
                break
        return list(wallets.values())


class SweepThread:
    """Sweeps every ``interval`` seconds until stopped; remembers the last pass and error."""

    def __init__(
        self,
        ledger: CreditLedger,
        queries: ReadModelQueries,
        *,
        interval: float = DEFAULT_SWEEP_INTERVAL,
        batch: int = DEFAULT_SWEEP_BATCH,
    ) -> None:
        self.sweep = ExpirySweep(ledger, ExpirySweepSource(queries), batch=batch)
        self.interval = interval
        self.last: SweepReport | None = None
        self.last_error: str | None = None
        self.recorded = 0
        """Expiries this thread recorded since it started."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="creditledger-expiry", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_pass(self) -> SweepReport | None:
        """One pass now (None if it failed: ``last_error`` says why)."""
        try:
            report = self.sweep.run_once()
        except (LedgerError, OSError) as error:
            self.last_error = f"{type(error).__name__}: {error}"
            logger.warning("expiry sweep failed; retrying: %s", self.last_error)
            return None
        self.last, self.last_error = report, None
        self.recorded += report.expiries
        return report

    def _run(self) -> None:
        while not self._stop.is_set():
            report = self.run_pass()
            # A full batch means more is due: go on at once rather than after the interval.
            if report is None or report.wallets < self.sweep.batch:
                self._stop.wait(self.interval)
