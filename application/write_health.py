"""Whether the store takes writes: the last write failure, if no write has succeeded since.

Readiness asks this: a store that still answers reads but refuses every write (a full disk, a
read-only failover) must take the server out of rotation, not keep it answering 503 to clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

RECENT_SECONDS = 60.0
"""A failure older than this, with no write since to say otherwise, no longer counts: readiness
comes back, so that traffic (and the next write) can find out whether the store has recovered."""


@dataclass(frozen=True)
class WriteFailure:
    detail: str
    at: float
    """When, on the health's clock (monotonic seconds)."""


class WriteHealth:
    """Kept by the ledger: each write's outcome, each as cheap as one assignment."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, recent: float = RECENT_SECONDS
    ) -> None:
        self._clock = clock
        self._recent = recent
        self._failure: WriteFailure | None = None

    def succeeded(self) -> None:
        self._failure = None

    def failed(self, detail: str) -> None:
        self._failure = WriteFailure(detail, self._clock())

    def failing(self) -> WriteFailure | None:
        """The last write failure, if it is recent and no write succeeded after it."""
        failure = self._failure
        if failure is None or self._clock() - failure.at > self._recent:
            return None
        return failure
