"""What every aggregate here is to the eventsourcing library: an id, a version, new events."""

from __future__ import annotations

from typing import Generic, TypeVar
from uuid import UUID

EventT = TypeVar("EventT")


class Aggregate(Generic[EventT]):
    """An id, the version of the last event applied, and the events recorded but not yet saved.

    Subclasses record an event by applying it (which advances ``_version``) and appending it to
    ``_pending``; whoever saves them takes them with ``collect_events``.
    """

    def __init__(self, aggregate_id: UUID) -> None:
        self._id = aggregate_id
        self._version = 0
        self._pending: list[EventT] = []

    @property
    def id(self) -> UUID:
        return self._id

    @property
    def version(self) -> int:
        return self._version

    @property
    def has_pending_events(self) -> bool:
        return bool(self._pending)

    def collect_events(self) -> list[EventT]:
        collected, self._pending = self._pending, []
        return collected
