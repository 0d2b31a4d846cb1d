"""Where the offline fold keeps purchases that are closed, so its memory does not grow with the log.

A purchase whose status is final accepts no further event: a valid log never mentions it again.
The fold therefore keeps in memory only the purchases still open, and hands each closed one's
history (its exported events, exactly as read) to a ``ClosedPurchases`` store. If a later line
does mention a closed purchase (a tampered or corrupted export), the fold takes the history back
and replays it through the same validated path, so the finding is the very one a fold that kept
everything in memory would report.

``MemoryClosedPurchases`` keeps histories in a dict (small exports, tests); the infrastructure
provides one on disk (``creditledger.infrastructure.audit.spill``) whose memory is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol


class RecordedEvent(NamedTuple):
    """One exported event as the fold read it, before decoding (enough to decode it again)."""

    position: int
    version: int
    type: str
    data: dict[str, Any]


History = tuple[RecordedEvent, ...]


class DuplicatePurchaseError(ValueError):
    """A purchase closed while one with its id is closed already: an id initiated twice."""


class ClosedPurchases(Protocol):
    """Histories of closed purchases, by purchase id as the export writes it."""

    def add(self, purchase_id: str, history: History) -> None:
        """Keep a history; ``DuplicatePurchaseError`` if one is kept under that id already
        (possibly raised by a later ``add``, for a store that writes in batches)."""
        ...

    def settle(self) -> None:
        """Raise ``DuplicatePurchaseError`` now if any ``add`` so far repeated an id."""
        ...

    def take(self, purchase_id: str) -> History | None:
        """Remove and return the purchase's history; None if it is not here."""
        ...

    def get(self, purchase_id: str) -> History | None:
        """The purchase's history, left in place; None if it is not here."""
        ...

    def __len__(self) -> int: ...

    def histories(self) -> Iterator[tuple[str, History]]:
        """Every closed purchase's history, in ascending id order (the ids as the export writes
        them, lowercase hyphenated, so also the order of the ``UUID``s): ``verify
        --against-live`` merges them with the live purchases in that order."""
        ...


class MemoryClosedPurchases:
    """``ClosedPurchases`` in a dict: memory grows with the number of purchases."""

    def __init__(self) -> None:
        self._histories: dict[str, History] = {}

    def add(self, purchase_id: str, history: History) -> None:
        if purchase_id in self._histories:
            msg = f"purchase {purchase_id} is closed twice: its id was initiated twice"
            raise DuplicatePurchaseError(msg)
        self._histories[purchase_id] = history

    def settle(self) -> None:
        """Every ``add`` checks at once."""

    def take(self, purchase_id: str) -> History | None:
        return self._histories.pop(purchase_id, None)

    def get(self, purchase_id: str) -> History | None:
        return self._histories.get(purchase_id)

    def __len__(self) -> int:
        return len(self._histories)

    def histories(self) -> Iterator[tuple[str, History]]:
        yield from sorted(self._histories.items())
