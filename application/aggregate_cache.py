"""A cache of aggregates (purchases, wallets) this process committed, to decide without a read.

It is only a hint. An entry is put back only after its events committed, so it can lag the
store (another process wrote since) but never lead it; a decision made on a lagging entry
writes a version someone already holds, the store's primary key refuses it, and the command
reloads from the store and decides again. Entries are checked *out* while a command works on
them, so two threads never share one mutable aggregate.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, Protocol, TypeVar
from uuid import UUID


class _Aggregate(Protocol):
    @property
    def id(self) -> UUID: ...

    @property
    def version(self) -> int: ...


_A = TypeVar("_A", bound=_Aggregate)


class AggregateCache(Generic[_A]):
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[UUID, _A] = OrderedDict()
        self._lock = threading.Lock()

    def checkout(self, purchase_id: UUID) -> _A | None:
        """Take the purchase out of the cache (None if absent): the caller owns it now."""
        if self._capacity == 0:
            return None
        with self._lock:
            return self._entries.pop(purchase_id, None)

    def checkin(self, purchase: _A) -> None:
        """Put back a purchase whose every event is committed."""
        if self._capacity == 0:
            return
        with self._lock:
            current = self._entries.get(purchase.id)
            # A newer copy checked in by another thread wins; never go back in time.
            if current is not None and current.version >= purchase.version:
                return
            self._entries[purchase.id] = purchase
            self._entries.move_to_end(purchase.id)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
