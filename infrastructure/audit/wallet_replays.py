"""Whether each credit wallet's history replays, for ``verify --against-live``'s event-store source.

The live query path (``CreditLedger.get_purchase`` at a version or as of a time, as a process
that holds no wallet yet reads it "now" too) folds the purchase's wallet's history, as it stood
at the moment asked about, through the domain, and refuses the purchase when that fold does (a
consumption or expiry changed in the store so that the wallet's history no longer adds up): the
audit reports such a purchase as missing from the live state. Folding the wallet once per
purchase costs its whole history each time, quadratic in a customer's purchases (about half an
hour at 10^6 events). Here each wallet is folded once, its events read a page at a time, and
what is kept is where its replay first fails: a purchase read as of ``moment`` is refused exactly
when ``get_purchase`` would refuse it, as long as the wallet's events are in time order (they
are as the ledger writes them; a wallet whose are not is left to ``get_purchase``).

Memory: one ``WalletReplay`` per wallet met (they grow with customers, not with the log), and
one fold at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import PersistenceError

from creditledger.application.errors import StoreUnavailableError
from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import LedgerError
from creditledger.domain.events import WalletEvent, WalletEventBase
from creditledger.domain.wallet import CreditWallet, project_wallet

PAGE = 1000
"""Wallet events read at a time."""


@dataclass(frozen=True)
class WalletReplay:
    """How one wallet's history (as the store holds it now) replays."""

    in_time_order: bool
    """Its events' timestamps never go back (the ``moment`` rule below holds)."""
    refusal: LedgerError | None = None
    """What the fold (or the reading) of its events raised, if anything."""
    from_moment: datetime | None = None
    """The timestamp of the event the fold refused (None with a refusal: reading it failed, so
    every moment is refused, as ``get_purchase`` reads every event before choosing)."""

    def refusal_at(self, moment: datetime) -> LedgerError | None:
        """What ``get_purchase`` raises for a purchase of this wallet read as of ``moment``."""
        if self.refusal is None:
            return None
        if self.from_moment is None or self.from_moment <= moment:
            return self.refusal
        return None


def wallet_events(
    ledger: CreditLedger, wallet_id: UUID, *, up_to: int | None = None
) -> Iterator[WalletEvent]:
    """The wallet's events up to version ``up_to`` (None: all of them), oldest first, read
    ``PAGE`` at a time (a hot customer's wallet may hold millions)."""
    after = 0
    while True:
        page = list(ledger.events.get(wallet_id, gt=after, lte=up_to, limit=PAGE))
        yield from page  # type: ignore[misc]  # a wallet's events
        if len(page) < PAGE:
            return
        after = page[-1].originator_version


def replay_wallet(ledger: CreditLedger, wallet_id: UUID) -> WalletReplay:
    """Fold the wallet's events, noting the first refusal (and reading on, so that an unreadable
    later event counts as the live path counts it)."""
    wallet: CreditWallet | None = None
    refused: tuple[LedgerError, datetime] | None = None
    last: datetime | None = None
    in_time_order = True
    try:
        for event in wallet_events(ledger, wallet_id):
            if not isinstance(event, WalletEventBase):  # pragma: no cover - a wallet's own
                continue
            if last is not None and event.timestamp < last:
                in_time_order = False
            last = event.timestamp
            if refused is None:
                try:
                    wallet = project_wallet(wallet, [event])
                except LedgerError as error:
                    refused = (error, event.timestamp)
    except PersistenceError as error:
        # Not the wallet's answer: the next purchase's read tries again.
        raise StoreUnavailableError(f"the store could not be read: {error}") from error
    except LedgerError as error:
        return WalletReplay(in_time_order, error, None)
    if refused is None:
        return WalletReplay(in_time_order)
    return WalletReplay(in_time_order, *refused)
