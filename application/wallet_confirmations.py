"""When each wallet this process holds was last known to match the store.

A wallet written or read by this process matches the store at that moment; a command's answer may
trust a copy that fresh without asking the store whether another process wrote since. Bounded,
least recently confirmed out: a forgotten wallet is simply asked about again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from uuid import UUID


class WalletConfirmations:
    def __init__(self, capacity: int) -> None:
        self._capacity = max(capacity, 1)
        self._confirmed: OrderedDict[UUID, float] = OrderedDict()
        self._lock = threading.Lock()

    def confirm(self, wallet_id: UUID) -> None:
        """The wallet this process holds matches the store as of now."""
        with self._lock:
            self._confirmed[wallet_id] = time.monotonic()
            self._confirmed.move_to_end(wallet_id)
            while len(self._confirmed) > self._capacity:
                self._confirmed.popitem(last=False)

    def age(self, wallet_id: UUID) -> float | None:
        """Seconds since the wallet was last confirmed (None: not known here)."""
        with self._lock:
            confirmed = self._confirmed.get(wallet_id)
        return None if confirmed is None else time.monotonic() - confirmed
