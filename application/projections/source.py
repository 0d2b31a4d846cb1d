"""The ledger's event log as the projections read it: in commit order, in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast
from uuid import UUID

from eventsourcing.persistence import Notification

from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.projection import LogEntry, Recorded, WalletRecorded
from creditledger.domain.events import Initiated, LedgerEvent, WalletEventBase


class EventLog:
    """Reads a ledger's notification log: positions are notification ids."""

    def __init__(self, ledger: CreditLedger) -> None:
        self.ledger = ledger

    def head(self) -> int:
        """The position of the last event recorded so far (0 for an empty log)."""
        return self.ledger.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int, *, stop: int | None = None) -> Sequence[Notification]:
        """Up to ``limit`` notifications after ``after`` (and not after ``stop``), in order."""
        return self.ledger.recorder.select_notifications(
            start=after, limit=limit, stop=stop, inclusive_of_start=False
        )

    def decode(self, notification: Notification) -> LogEntry:
        event = cast(LedgerEvent, self.ledger.mapper.to_domain_event(notification))
        if isinstance(event, WalletEventBase):
            return WalletRecorded(position=notification.id, event=event)
        return Recorded(position=notification.id, event=event)

    def initiated(self, purchase_id: UUID) -> Initiated | None:
        """The purchase's first event, which carries what was bought."""
        for event in self.ledger.events.get(purchase_id, lte=1):
            return event if isinstance(event, Initiated) else None
        return None
