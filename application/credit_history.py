"""A customer's credit history, a page at a time, at a cost that does not grow with the history.

Entries are numbered by the wallet's versions and carry the running balance before and after
them, so a page needs the balance the entries before it add up to. Before, every page read the
wallet's whole history and built an entry for each event (paging through a customer cost its
history squared over the page size: a page of a customer with 10^5 credit events decoded all
10^5). Now a page reads only its own events, by the store's version index, and starts from the
balance the page before it ended at, remembered here. A page that follows no page this process
served (another server's, a restart, an ``after`` the caller chose) adds up the changes before
it once: one read of those events, no entry built, remembered for the pages after it.

Premise: the store is append-only (its triggers refuse ``UPDATE`` and ``DELETE``), so the events
up to a version never change, nor does the balance after them, as of any moment. A balance
remembered here is never stale; it is forgotten only to bound memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from creditledger.application.credit_views import CreditEntry, balance_change, credit_entry
from creditledger.domain.events import WalletEvent
from creditledger.domain.wallet import ZERO

ReadWallet = Callable[[UUID, int, int | None, int], list[WalletEvent]]
"""The wallet's events after a version (``gt``), up to one (``lte``, None: the last), at most
so many (``limit``), in version order."""

CHUNK = 1_000
"""Most events read at once: a page reads no more than it still needs, up to this many a read;
the sum before a page is read a chunk at a time, so memory stays bounded whatever the history's
length."""
BALANCES_KEPT = 8_192

_Key = tuple[UUID, datetime | None, int]


class CreditHistory:
    """Pages of wallets' credit histories, with the balances pages end at remembered."""

    def __init__(self, read: ReadWallet) -> None:
        self._read = read
        self._balances: dict[_Key, Decimal] = {}
        self._lock = threading.Lock()

    def page(
        self, wallet_id: UUID, *, after: int, limit: int | None, as_of: datetime | None
    ) -> list[CreditEntry]:
        """The entries after sequence ``after`` (at most ``limit``); ``as_of``: only the events
        recorded by then."""
        balance = self._balance_after(wallet_id, as_of, after)
        entries: list[CreditEntry] = []
        version = after
        finished = False
        while not finished and (limit is None or len(entries) < limit):
            wanted = CHUNK if limit is None else min(CHUNK, limit - len(entries))
            events = self._read(wallet_id, version, None, wanted)
            finished = len(events) < wanted
            for event in events:
                version = event.originator_version
                if as_of is not None and event.timestamp > as_of:
                    # A wallet's event time never runs backwards (the aggregate stamps an event
                    # no earlier than the one before), so as of a moment is a prefix of its
                    # history: nothing after this one was recorded by then either.
                    finished = True
                    break
                entry = credit_entry(event, balance)
                entries.append(entry)
                balance = entry.balance_after
                if limit is not None and len(entries) == limit:
                    break
        # The next page starts after the last entry, or after the one before it: the HTTP API
        # and the CLI ask for one entry more than they show, to know whether a page follows.
        for entry in entries[-2:]:
            self._remember((wallet_id, as_of, entry.sequence), entry.balance_after)
        return entries

    def _balance_after(self, wallet_id: UUID, as_of: datetime | None, version: int) -> Decimal:
        """What the entries up to ``version`` add up to (in their order, as the pages add)."""
        if version == 0:
            return ZERO
        key = (wallet_id, as_of, version)
        with self._lock:
            known = self._balances.get(key)
        if known is not None:
            return known
        balance = ZERO
        reached = 0
        while reached < version:
            events = self._read(wallet_id, reached, version, CHUNK)
            for event in events:
                reached = event.originator_version
                if as_of is None or event.timestamp <= as_of:
                    balance += balance_change(event)
            if not events:
                break
        self._remember(key, balance)
        return balance

    def _remember(self, key: _Key, balance: Decimal) -> None:
        with self._lock:
            if len(self._balances) >= BALANCES_KEPT:
                self._balances.clear()
            self._balances[key] = balance
