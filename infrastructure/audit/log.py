"""Reading the event log in bulk, in position order, up to a cut fixed in advance.

One query per batch of notifications, never one per purchase. The cut (the store's last position
when the reader starts) makes the read a consistent prefix even while writers keep appending:
positions are handed out in commit order (PostgreSQL takes a table lock per insert transaction,
SQLite has one writer), so nothing can appear later at or below a position already visible.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from uuid import UUID

from creditledger.application.audit.transcribe import StoredEntry
from creditledger.application.ledger import CreditLedger

DEFAULT_BATCH_SIZE = 5000


def last_position(ledger: CreditLedger) -> int:
    """The store's last position now (0 for an empty store)."""
    return ledger.recorder.max_notification_id() or 0


def read_log(
    ledger: CreditLedger,
    *,
    up_to: int,
    after: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    topics: Sequence[str] = (),
) -> Iterator[list[StoredEntry]]:
    """Batches of stored entries with ``after < position <= up_to``, oldest first."""
    if batch_size < 1:
        msg = "batch_size must be at least 1"
        raise ValueError(msg)
    mapper = ledger.mapper
    cipher, compressor = mapper.cipher, mapper.compressor
    position = after
    while position < up_to:
        notifications = ledger.recorder.select_notifications(
            start=position,
            limit=batch_size,
            stop=up_to,
            topics=topics,
            inclusive_of_start=False,
        )
        if not notifications:
            return
        batch = []
        for notification in notifications:
            originator = notification.originator_id
            state = notification.state
            if cipher is not None:
                state = cipher.decrypt(state)
            if compressor is not None:
                state = compressor.decompress(state)
            batch.append(
                StoredEntry(
                    position=notification.id,
                    purchase_id=originator if isinstance(originator, UUID) else UUID(originator),
                    version=notification.originator_version,
                    topic=notification.topic,
                    state=state,
                )
            )
        yield batch
        position = batch[-1].position
