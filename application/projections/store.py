"""What the projections need from a store, inside one view transaction.

The projections say what each event does to a view as calls on this interface, one set of
calls for every table (each declared once, as a ``ViewTable`` in ``rows.py``); the
infrastructure implements them over SQLite, PostgreSQL or memory. Everything a projection writes
in one transaction commits together with the new tracked positions, or not at all.

``load`` is a hint: it fetches many rows in one round trip before a batch is applied, so that
the per-event lookups that follow are answered from memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

from creditledger.application.projections.rows import Index, ViewTable

RowT = TypeVar("RowT")
KeyT = TypeVar("KeyT")


class TableStore(Protocol):
    """Rows of the read model tables, by table and key."""

    def load(self, table: ViewTable[Any, KeyT], keys: Iterable[KeyT]) -> None: ...

    def get(self, table: ViewTable[RowT, KeyT], key: KeyT) -> RowT | None: ...

    def put(self, table: ViewTable[RowT, Any], row: RowT) -> None:
        """Store the row: a new one, or a new version of the row with its key."""
        ...

    def insert(self, table: ViewTable[RowT, Any], row: RowT) -> None:
        """Store a row known to be new (no row has its key): appended without a lookup."""
        ...

    def scan(
        self,
        table: ViewTable[RowT, Any],
        index: Index,
        prefix: tuple[Any, ...],
        *,
        above: tuple[Any, ...] | None = None,
        below: tuple[Any, ...] | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[RowT]:
        """Rows whose first index columns equal ``prefix``, in the order of the other columns.

        Only rows whose other columns are strictly above ``above`` and strictly below
        ``below`` (when given); ``descending`` and ``limit`` as in SQL. The index's columns of
        a row must not change once it is stored.
        """
        ...


class ReadModelTransaction(TableStore, Protocol):
    """One view transaction: every read model's rows, and the positions they are tracked at."""

    def positions(self) -> Mapping[str, int]:
        """The tracked positions of this transaction's read models, locked until it ends."""
        ...

    def set_positions(self, positions: Mapping[str, int]) -> None: ...
