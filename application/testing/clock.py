"""A clock that moves only when told to: pass it to ``open_ledger(clock=...)`` in tests.

The ledger reads the time once per command, from whatever clock it was given; a test that owns the
clock knows every timestamp the ledger will record, so "as of" queries have exact answers.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

DEFAULT_START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class ManualClock:
    """Stands still until moved; safe to share between the test and the ledger's threads."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = _aware(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, by: timedelta | float = 1.0) -> datetime:
        """Move forward by ``by`` (a timedelta, or seconds) and return the new time."""
        step = by if isinstance(by, timedelta) else timedelta(seconds=by)
        if step < timedelta(0):
            msg = "advance() moves forward only; use set() to turn the clock back"
            raise ValueError(msg)
        with self._lock:
            self._now += step
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment``, backwards included (to test what a skewed clock does)."""
        aware = _aware(moment)
        with self._lock:
            self._now = aware


def _aware(moment: datetime) -> datetime:
    # The ledger's contract is aware UTC datetimes; a naive one here is a test bug, said early.
    if moment.tzinfo is None or moment.utcoffset() is None:
        msg = "the clock needs a timezone-aware datetime"
        raise ValueError(msg)
    return moment.astimezone(UTC)
