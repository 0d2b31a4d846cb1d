"""Reading the event log in bulk, in position order, up to a cut fixed in advance.

One query per batch of notifications, never one per purchase. The cut (the store's last position
when the reader starts) makes the read a consistent prefix even while writers keep appending:
positions are handed out in commit order (PostgreSQL takes a table lock per insert transaction,
SQLite has one writer), so nothing can appear later at or below a position already visible.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from uuid import UUID

from creditledger.application.audit.canonical import parse_json
from creditledger.application.audit.transcribe import NamespaceLookup, StoredEntry
from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import Initiated

DEFAULT_BATCH_SIZE = 5000


def last_position(ledger: CreditLedger) -> int:
    """The store's last position now (0 for an empty store)."""
    return ledger.recorder.max_notification_id() or 0


def namespace_lookup(ledger: CreditLedger) -> NamespaceLookup:
    """Looks a purchase's namespace up in its stored first event, as the transcriber reads it."""

    def lookup(purchase_id: UUID) -> str | None:
        stored = ledger.recorder.select_events(purchase_id, lte=1)
        if not stored or stored[0].originator_version != 1 or stored[0].topic != Initiated.TOPIC:
            return None
        try:
            data = parse_json(_plain_state(ledger, stored[0].state))
        except ValueError:
            return None
        namespace = data.get("namespace") if isinstance(data, dict) else None
        return namespace if isinstance(namespace, str) else None

    return lookup


def _plain_state(ledger: CreditLedger, state: bytes) -> bytes:
    """A stored state decrypted and decompressed, if the store does either."""
    mapper = ledger.mapper
    if mapper.cipher is not None:
        state = mapper.cipher.decrypt(state)
    if mapper.compressor is not None:
        state = mapper.compressor.decompress(state)
    return state


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
            batch.append(
                StoredEntry(
                    position=notification.id,
                    aggregate_id=originator if isinstance(originator, UUID) else UUID(originator),
                    version=notification.originator_version,
                    topic=notification.topic,
                    state=_plain_state(ledger, notification.state),
                )
            )
        yield batch
        position = batch[-1].position
