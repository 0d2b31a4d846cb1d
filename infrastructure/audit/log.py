"""Reading the event log in bulk, in position order, up to a cut fixed in advance.

One query per batch, never one per purchase: on SQLite and PostgreSQL straight into plain rows
(no ``Notification`` and no ``UUID`` per event: the export writes the id as text anyway). The cut
(the store's last position when the reader starts) makes the read a consistent prefix even while
writers keep appending: positions are handed out in commit order (PostgreSQL takes a table lock
per insert transaction, SQLite has one writer), so nothing can appear later at or below a position
already visible.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from creditledger.application.audit.canonical import parse_json
from creditledger.application.audit.transcribe import NamespaceLookup, StoredEntry
from creditledger.application.ledger import CreditLedger
from creditledger.domain.events import Initiated
from creditledger.infrastructure.persistence.sqlite import AppendOnlySQLiteRecorder

if TYPE_CHECKING:
    from creditledger.infrastructure.persistence.postgres import AppendFunctionRecorder

DEFAULT_BATCH_SIZE = 5000


def append_function_recorder(recorder: ApplicationRecorder) -> AppendFunctionRecorder | None:
    """``recorder`` if it is the PostgreSQL store's ``AppendFunctionRecorder``, else None.

    The memory and SQLite stores' recorders are answered without importing it: its module loads
    psycopg, ~0.1 s at the start of every command, and only a PostgreSQL store needs that.
    """
    if isinstance(recorder, POPOApplicationRecorder | SQLiteApplicationRecorder):
        return None
    from creditledger.infrastructure.persistence.postgres import (  # noqa: PLC0415
        AppendFunctionRecorder,
    )

    return recorder if isinstance(recorder, AppendFunctionRecorder) else None


def last_position(ledger: CreditLedger) -> int:
    """The store's last position now (0 for an empty store)."""
    return ledger.recorder.max_notification_id() or 0


def namespace_lookup(ledger: CreditLedger) -> NamespaceLookup:
    """Looks a purchase's namespace up in its stored first event, as the transcriber reads it."""

    def lookup(purchase_id: str) -> str | None:
        stored = ledger.recorder.select_events(UUID(purchase_id), lte=1)
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
    select = _rows_of(ledger)
    mapper = ledger.mapper
    plain = mapper.cipher is not None or mapper.compressor is not None
    # A purchase's few events sit close together in the log and a wallet's recur: most ids were
    # just seen, and a hit costs a tenth of hyphenating again.
    hyphenated = lru_cache(maxsize=ID_CACHE_SIZE)(_hyphenated)
    position = after
    while position < up_to:
        rows = select(position, up_to, batch_size, topics)
        if not rows:
            return
        batch = [
            StoredEntry(
                position=row_position,
                aggregate_id=hyphenated(originator),
                version=version,
                topic=topic,
                state=_plain_state(ledger, state) if plain else state,
            )
            for row_position, originator, version, topic, state in rows
        ]
        yield batch
        position = batch[-1].position


_Rows = Callable[[int, int, int, Sequence[str]], Sequence[tuple[int, UUID | str, int, str, bytes]]]

ID_CACHE_SIZE = 8192
"""Ids whose hyphenated form a reader keeps (a bounded cache: memory does not grow with the log)."""

_HEX = re.compile(r"[0-9a-f]{32}")
_HYPHENATED = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _hyphenated(originator: UUID | str) -> str:
    """The id as the export writes it: lowercase hyphenated hex. SQLite stores a UUID as 32
    lowercase hex digits, PostgreSQL's text is already hyphenated; anything else is read as a
    UUID (``ValueError`` if it is not one)."""
    if isinstance(originator, str):
        if _HEX.fullmatch(originator):
            # What str(UUID(originator)) gives, without building the UUID.
            o = originator
            return f"{o[:8]}-{o[8:12]}-{o[12:16]}-{o[16:20]}-{o[20:]}"
        if _HYPHENATED.fullmatch(originator):
            return originator
    return str(originator if isinstance(originator, UUID) else UUID(originator))


def _rows_of(ledger: CreditLedger) -> _Rows:
    """One query per batch: the SQL recorders' plain rows, or the library's notifications."""
    recorder = ledger.recorder
    if isinstance(recorder, AppendOnlySQLiteRecorder):
        return recorder.select_log_rows
    if (postgres := append_function_recorder(recorder)) is not None:
        return postgres.select_log_rows

    def notifications(
        after: int, up_to: int, limit: int, topics: Sequence[str]
    ) -> list[tuple[int, UUID | str, int, str, bytes]]:
        return [
            (n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in recorder.select_notifications(
                start=after, limit=limit, stop=up_to, topics=topics, inclusive_of_start=False
            )
        ]

    return notifications
