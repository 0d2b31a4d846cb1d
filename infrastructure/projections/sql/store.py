"""What the SQLite and PostgreSQL view stores share: the queries and the batch transaction.

Both speak the same SQL through ``sql/`` (a dialect each); they differ only in how they hand
out a writing and a reading cursor, which each defines as ``_write`` and ``_read``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from creditledger.application.projections.rows import (
    ReadModelName,
)
from creditledger.infrastructure.projections.buffer import BufferedTransaction, RowCache
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.layout import Layout, rebuild_layout
from creditledger.infrastructure.projections.sql.dialect import Cursor, Dialect
from creditledger.infrastructure.projections.sql.queries import SqlReads
from creditledger.infrastructure.projections.sql.schema import SqlSchema
from creditledger.infrastructure.projections.sql.writes import SqlAccess


class SqlViewDatabase(SqlReads, ViewDatabase):
    """A view store in a SQL database (queries: ``SqlReads``); subclasses provide the cursors."""

    dialect: Dialect
    live: Layout

    @abstractmethod
    def _write(self) -> AbstractContextManager[Cursor]:
        """A cursor in the one writing transaction (committed when the block ends)."""

    def drop_rebuild_tables(self, model: ReadModelName) -> None:
        layout = rebuild_layout(model)
        with self._write() as cursor:
            schema = SqlSchema(self.dialect, cursor)
            schema.drop(layout, model)
            schema.forget(layout.tracking[model])

    # -- writing --------------------------------------------------------------------------

    @contextmanager
    def transaction(
        self, layout: Layout, names: Sequence[str], cache: RowCache | None = None
    ) -> Iterator[BufferedTransaction]:
        with self._write() as cursor:
            access = SqlAccess(self.dialect, cursor, layout)
            transaction = BufferedTransaction(access, names, cache)
            yield transaction
            transaction.flush()
