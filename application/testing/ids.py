"""Ids that follow from the example alone: pass them to ``open_ledger(ids=...)`` in tests.

A purchase or consumption without an idempotency key gets a new id, and ids break burn-down ties
(grants of equal priority and expiry, granted at the same instant). With random ids the same
Hypothesis choices could spend a different grant on each run, so the history, and every draw that
depends on it, would differ when Hypothesis replays an example: it reports that as flaky data
generation, and a hunt for a bug becomes a matter of luck. These ids depend only on how many were
asked for before, and are spread over the id space, so ties still break either way.
"""

from __future__ import annotations

import hashlib
import threading
from uuid import UUID


class CountingIds:
    """The n-th call returns the same version-4 UUID in every run; safe to share with threads."""

    def __init__(self, salt: str = "creditledger-test-ids") -> None:
        self._salt = salt.encode()
        self._count = 0
        self._lock = threading.Lock()
        self.issued: set[UUID] = set()
        """Every id returned so far: the machine checks that the ledger uses these."""

    def __call__(self) -> UUID:
        with self._lock:
            self._count += 1
            digest = hashlib.sha256(self._salt + self._count.to_bytes(8, "big")).digest()
            new = UUID(bytes=digest[:16], version=4)
            self.issued.add(new)
        return new
