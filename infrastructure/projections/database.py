"""A store of read models: transactions for the projector, queries for readers.

Three stores share this shape: PostgreSQL and SQLite keep the views next to the events (same
database and schema, same file), and memory keeps them in Python structures for the in-memory
event store. Each view transaction commits the views' changes and their new tracked positions
together, so an event is applied exactly once, whatever crashes in between.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, TypeVar

from eventsourcing.persistence import Notification

from creditledger.application.projections.compare import StoredRows
from creditledger.application.projections.rows import ReadModelName, ViewTable
from creditledger.application.readmodels import ReadModelQueries
from creditledger.infrastructure.projections.buffer import BufferedTransaction, RowCache
from creditledger.infrastructure.projections.layout import Layout, live_layout

RowT = TypeVar("RowT")


class ViewSnapshot(Protocol):
    """The live views at one instant, read a table at a time, a row at a time."""

    def positions(self) -> dict[str, int]:
        """The live models' tracked positions."""
        ...

    def rows(self, table: ViewTable[RowT, Any]) -> Iterator[RowT]:
        """The table's rows in ascending key order (as Python orders the keys), streamed."""
        ...

    def rows_above(self, table: ViewTable[RowT, Any], first: Any) -> Iterator[RowT]:
        """``rows``, only those whose first key column is greater than ``first`` (a range of
        the key: the ledger entries recorded after a position, without reading the others)."""
        ...

    def stored(self, table: ViewTable[RowT, Any]) -> StoredRows[RowT] | None:
        """``rows`` as the store holds them, read back only where needed (None: a store that
        offers none; see ``StoredRows``)."""
        ...


class CommitOrderGuard:
    """Says how much of a freshly read run of events may be applied now.

    The default trusts the store: notification ids become visible in id order (SQLite and
    memory have one writer at a time), so nothing below a visible id can appear later.
    """

    def usable(self, after: int, notifications: Sequence[Notification]) -> Sequence[Notification]:
        del after
        return notifications


class ViewDatabase(ReadModelQueries, ABC):
    """The read models of one store: its queries (``ReadModelQueries``), tables and transactions."""

    kind: str

    def __init__(self) -> None:
        self._wake = threading.Event()
        self.live = live_layout()

    # -- setup ----------------------------------------------------------------------------

    @abstractmethod
    def ensure_tables(self, layout: Layout) -> None:
        """Create whatever is missing; a model missing a table starts again from position 0."""

    @abstractmethod
    def create_rebuild_tables(self, model: ReadModelName) -> Layout:
        """Fresh, empty tables for a rebuild of ``model`` (left-overs of an earlier one dropped)."""

    @abstractmethod
    def drop_rebuild_tables(self, model: ReadModelName) -> None: ...

    # -- reading --------------------------------------------------------------------------

    @abstractmethod
    def reading(self) -> AbstractContextManager[ViewSnapshot]:
        """One consistent snapshot of the live views, for streaming every row (``verify``)."""

    # -- writing --------------------------------------------------------------------------

    @abstractmethod
    def transaction(
        self, layout: Layout, names: Sequence[str], cache: RowCache | None = None
    ) -> AbstractContextManager[BufferedTransaction]:
        """One view transaction with ``names``' positions locked; flushed and committed on exit.

        ``cache``: the caller's rows from its earlier transactions, used while still valid.
        """

    def guard(self) -> CommitOrderGuard:
        """A guard for one reader of the log (it may keep state between reads)."""
        return CommitOrderGuard()

    def wait_for_events(self, timeout: float) -> None:
        """Sleep until new events may have been recorded, or ``timeout`` passes."""
        if self._wake.wait(timeout):
            self._wake.clear()

    def wake(self) -> None:
        """Make a waiting projector look at the log now (read-your-writes in one process)."""
        self._wake.set()

    def close(self) -> None:
        """Release connections; the database is unusable afterwards."""

    def __enter__(self) -> ViewDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def flushed(transaction: BufferedTransaction) -> Iterator[BufferedTransaction]:
    """Yield the buffered transaction and flush it if the block ends normally."""
    yield transaction
    transaction.flush()
