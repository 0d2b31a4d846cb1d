"""From the store's rows to export event objects, and the chain over them.

The store keeps, per event, its position (notification id), aggregate id, version, topic and JSON
state. An export line adds what a reader needs to replay without the store: the event's name, its
recording time, whose it is (a purchase's line names its ``purchase_id``, a credit wallet's its
``wallet_id``) and its namespace. Only a purchase's ``Initiated`` event holds the purchase's
namespace, so the transcriber remembers it for the purchase's later events; every wallet event
holds its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from creditledger.application.audit.canonical import (
    NotCanonicalError,
    canonical_bytes_of_parsed,
    parse_json,
)
from creditledger.application.audit.chain import GENESIS_HASH, next_hash
from creditledger.application.audit.records import Aggregate, event_object
from creditledger.domain.events import EVENT_CLASSES, WALLET_EVENT_CLASSES, Initiated

TYPE_OF_TOPIC: dict[str, str] = {topic: cls.TYPE.value for topic, cls in EVENT_CLASSES.items()}
"""Event names by stored topic; a topic not listed is exported as it is stored."""

WALLET_TOPICS = frozenset(cls.TOPIC for cls in WALLET_EVENT_CLASSES)


class StoredEntry(NamedTuple):
    """One event as the store holds it, at its position in the log.

    A named tuple rather than a frozen dataclass: a reader makes one per stored event, and a
    tuple is built in a third of the time (a frozen dataclass sets each field through
    ``object.__setattr__``)."""

    position: int
    aggregate_id: str
    """The purchase's or the credit wallet's id (the store's originator id), lowercase
    hyphenated, as the export writes it."""
    version: int
    topic: str
    state: bytes
    """The event's JSON, already decrypted and decompressed if the store does either."""


class UnreadableEventError(Exception):
    """A stored event's state is not a canonical JSON object: it cannot be exported."""

    def __init__(self, position: int, reason: str) -> None:
        self.position = position
        super().__init__(f"stored event at position {position} is unreadable: {reason}")


NamespaceLookup = Callable[[str], "str | None"]
"""The namespace a purchase's stored ``Initiated`` event (version 1) names, or None."""

REMEMBERED_NAMESPACES = 100_000
"""Purchases whose namespace the transcriber keeps at most, when it can look the others up."""


class Transcriber:
    """Turns stored entries into export event objects, in log order.

    With ``lookup``, it remembers the namespaces of the latest ``REMEMBERED_NAMESPACES`` purchases
    only, and asks ``lookup`` for an older purchase's: memory stays flat however long the log.
    Without, it remembers every purchase's.
    """

    def __init__(self, lookup: NamespaceLookup | None = None) -> None:
        self._namespaces: dict[str, str] = {}
        self._lookup = lookup

    def event_object(self, entry: StoredEntry) -> dict[str, Any]:
        try:
            data = parse_json(entry.state)
        except (NotCanonicalError, ValueError) as error:
            raise UnreadableEventError(entry.position, str(error)) from None
        if not isinstance(data, dict):
            raise UnreadableEventError(entry.position, "the state is not a JSON object")
        namespace: str | None
        aggregate = Aggregate.PURCHASE
        if entry.topic in WALLET_TOPICS:
            aggregate = Aggregate.WALLET
            found = data.get("namespace")
            namespace = found if isinstance(found, str) else None
        elif entry.topic == Initiated.TOPIC:
            found = data.get("namespace")
            namespace = found if isinstance(found, str) else None
            if namespace is not None and entry.version == 1:
                self._remember(entry.aggregate_id, namespace)
        else:
            namespace = self._namespace_of(entry.aggregate_id)
        timestamp = data.get("timestamp")
        return event_object(
            position=entry.position,
            aggregate=aggregate,
            aggregate_id=entry.aggregate_id,
            version=entry.version,
            type_=TYPE_OF_TOPIC.get(entry.topic, entry.topic),
            namespace=namespace,
            recorded_at=timestamp if isinstance(timestamp, str) else None,
            data=data,
        )

    def _remember(self, purchase_id: str, namespace: str) -> None:
        namespaces = self._namespaces
        namespaces[purchase_id] = namespace
        if self._lookup is not None and len(namespaces) > REMEMBERED_NAMESPACES:
            # Oldest first (dicts keep insertion order): the purchases least likely to move again.
            del namespaces[next(iter(namespaces))]

    def _namespace_of(self, purchase_id: str) -> str | None:
        namespace = self._namespaces.get(purchase_id)
        if namespace is None and self._lookup is not None:
            # Its Initiated event precedes it in the log (version 1 commits first), so the store
            # has it: the same answer as if it had been remembered.
            namespace = self._lookup(purchase_id)
        return namespace


class LogChain:
    """The chain hash of the whole log, advanced one stored entry at a time."""

    def __init__(self, lookup: NamespaceLookup | None = None) -> None:
        self.transcriber = Transcriber(lookup)
        self.chain_hash = GENESIS_HASH
        self.position = 0
        self.event_count = 0

    def add(self, entry: StoredEntry) -> dict[str, Any]:
        """Advance over ``entry``; returns its event object (with the purchase's namespace)."""
        event = self.transcriber.event_object(entry)
        self.chain_hash = next_hash(self.chain_hash, canonical_bytes_of_parsed(event))
        self.position = entry.position
        self.event_count += 1
        return event
