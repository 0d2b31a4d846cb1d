"""Stores purchase and wallet events as plain JSON under their explicit topics, and reads them back.

The library's default mapper wraps Decimals and UUIDs in ``{"_type_": ..., "_data_": ...}``
objects and rebuilds events without validation; ours writes the pydantic model's own JSON (what
``SELECT convert_from(state, 'UTF8')::jsonb`` shows in PostgreSQL), and reads it back through
model validation, upcasting old class versions on the way.

Reading parses the stored JSON with orjson where it gives exactly the standard library's value
(``loads_state``): every event the projector, the relay and the repository read passes here.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from pydantic import ValidationError

from creditledger.application.audit.canonical import writes_like_reference
from creditledger.domain.errors import EventSequenceError
from creditledger.domain.events import (
    EVENT_CLASSES,
    LedgerEvent,
    PurchaseEventBase,
    WalletEventBase,
)

_ENVELOPE = frozenset({"originator_id", "originator_version"})


class StoredEventUnreadableError(EventSequenceError, MapperDeserialisationError):
    """A stored event that cannot be read back as its class (unknown topic, bytes that are not
    its JSON, fields that break its schema): the history is corrupt.

    Both the ledger's typed ``event_sequence_broken`` (what a caller of the API, the CLI or the
    audit sees, naming the event and every problem) and the library's mapper error (what the
    library and our own readers expect a mapper to raise). Before, a field that broke the schema
    escaped as the model's ``ValidationError``, which the CLI and HTTP took for a caller's
    ``validation_failed``.
    """


def loads_state(state: bytes) -> Any:
    """``json.loads(state)``, by orjson (several times faster) where it gives the same value.

    orjson's value is kept only if it holds no float: orjson reads a fraction or an exponent
    with its own float parser and an integer beyond 64 bits as a float, where the standard
    library reads the latter exactly. Everything else orjson refuses (NaN and Infinity, lone
    surrogates, bad UTF-8, UTF-16 or -32 text, a byte-order mark, too deep nesting) goes to the
    standard library, which decides: its value or its error. The events we write hold no float
    (amounts are decimal strings), so the fallback is for the odd stored event only.
    """
    try:
        value = orjson.loads(state)
    except orjson.JSONDecodeError:
        return json.loads(state)
    if writes_like_reference(value):
        return value
    return json.loads(state)


class PurchaseEventMapper(Mapper[UUID]):
    """Maps pydantic purchase events to stored events and back (``MAPPER_TOPIC``)."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        if not isinstance(domain_event, PurchaseEventBase | WalletEventBase):
            msg = f"not a ledger event: {type(domain_event).__name__}"
            raise TypeError(msg)
        cls = type(domain_event)
        if cls.class_version > 1:
            data = domain_event.model_dump(mode="json", exclude=set(_ENVELOPE))
            data["class_version"] = cls.class_version
            state = json.dumps(data, separators=(",", ":")).encode()
        else:
            state = domain_event.model_dump_json(exclude=set(_ENVELOPE)).encode()
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=cls.TOPIC,
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> LedgerEvent:
        cls = EVENT_CLASSES.get(stored_event.topic)
        if cls is None:
            msg = f"unknown event topic {stored_event.topic!r}"
            raise StoredEventUnreadableError(msg)
        state = stored_event.state
        try:
            if self.cipher:
                state = self.cipher.decrypt(state)
            if self.compressor:
                state = self.compressor.decompress(state)
            data: dict[str, Any] = loads_state(state)
        except Exception as error:
            msg = (
                f"cannot read stored event {stored_event.topic!r} "
                f"{stored_event.originator_id} v{stored_event.originator_version}: {error}"
            )
            raise StoredEventUnreadableError(msg) from error
        version = data.pop("class_version", 1)
        while version < cls.class_version:
            getattr(cls, f"upcast_v{version}_v{version + 1}")(data)
            version += 1
        data["originator_id"] = stored_event.originator_id
        data["originator_version"] = stored_event.originator_version
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
                for problem in error.errors()
            )
            msg = (
                f"stored event {stored_event.topic!r} {stored_event.originator_id} "
                f"v{stored_event.originator_version} breaks its schema: {problems}"
            )
            raise StoredEventUnreadableError(msg) from None
