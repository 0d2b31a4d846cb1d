"""The expiry sweep: records the expiries that are due in wallets nobody is deciding on.

A wallet records every due expiry itself before it decides anything (a consumption, a void), so
queries are exact at any time whether or not the sweep ran. The sweep is what makes the books show
breakage on time for idle customers: it asks the read models which wallets hold a grant whose
``expires_at`` has passed with credit left and no expiry recorded, and has each of them record its
due expiries. It is idempotent by construction: a wallet with nothing due records nothing, and two
sweeps at once collide on the wallet's version, the loser finding nothing left to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from creditledger.application.ledger import CreditLedger

DEFAULT_SWEEP_BATCH = 500


@dataclass(frozen=True)
class DueWallet:
    """A wallet with at least one expiry due and not recorded yet."""

    namespace: str
    customer_id: str
    currency: str
    due_since: datetime
    """The earliest ``expires_at`` among its grants whose expiry is not recorded yet."""


DueWallets = Callable[[datetime, int], Sequence[DueWallet]]
"""The read models' answer to "which wallets have an expiry due at this time" (oldest first)."""


@dataclass(frozen=True)
class SweepReport:
    """What one pass did, and how far behind the books were when it started."""

    wallets: int
    expiries: int
    lag_seconds: float
    """Now minus the oldest due expiry not yet recorded (0 when none is due)."""


class ExpirySweep:
    """Records due expiries, wallet by wallet, through the ledger's own command."""

    def __init__(
        self, ledger: CreditLedger, due_wallets: DueWallets, *, batch: int = DEFAULT_SWEEP_BATCH
    ) -> None:
        self.ledger = ledger
        self._due_wallets = due_wallets
        self.batch = batch

    def lag_seconds(self, now: datetime | None = None) -> float:
        """How long the oldest due expiry has waited to be recorded (0 when none waits)."""
        moment = now or self.ledger.clock.now()
        due = self._due_wallets(moment, 1)
        return max((moment - due[0].due_since).total_seconds(), 0.0) if due else 0.0

    def run_once(self) -> SweepReport:
        """One pass over the wallets due now (at most one batch of them)."""
        now = self.ledger.clock.now()
        due = self._due_wallets(now, self.batch)
        lag = max((now - due[0].due_since).total_seconds(), 0.0) if due else 0.0
        expiries = 0
        for wallet in due:
            expiries += len(
                self.ledger.expire_due(wallet.namespace, wallet.customer_id, wallet.currency, now)
            )
        return SweepReport(wallets=len(due), expiries=expiries, lag_seconds=lag)
