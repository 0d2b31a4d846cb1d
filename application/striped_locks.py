"""A fixed set of locks shared by hash: serializes work on one id within a process, boundedly.

A lock per wallet would grow with the number of customers; a fixed stripe of locks keeps memory
constant, at the price of two wallets that share a stripe waiting for each other now and then.
"""

from __future__ import annotations

import threading
from uuid import UUID

DEFAULT_STRIPES = 1024


class StripedLocks:
    def __init__(self, stripes: int = DEFAULT_STRIPES) -> None:
        self._locks = tuple(threading.Lock() for _ in range(stripes))

    def of(self, key: UUID) -> threading.Lock:
        """The lock that guards ``key`` (hold it with ``with``)."""
        return self._locks[key.int % len(self._locks)]
