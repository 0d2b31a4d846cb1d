"""What the SQLite and PostgreSQL view stores share: every read and the batch transaction.

Both speak the same SQL through ``sql.py`` (a dialect each); they differ only in how they hand
out a writing and a reading cursor, which each defines as ``_write`` and ``_read``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from decimal import Decimal

from creditledger.application.projections.rows import (
    PurchaseRow,
    ReadModelName,
    ReadModelSnapshot,
    ReceivableRow,
    RevenueRow,
)
from creditledger.application.readmodels import Positioned
from creditledger.domain.ledger import Account
from creditledger.domain.status import PurchaseStatus
from creditledger.infrastructure.projections.buffer import BufferedTransaction
from creditledger.infrastructure.projections.database import ViewDatabase
from creditledger.infrastructure.projections.layout import Layout, rebuild_layout
from creditledger.infrastructure.projections.sql import (
    Cursor,
    Dialect,
    SqlAccess,
    SqlQueries,
    SqlSchema,
)


class SqlViewDatabase(ViewDatabase):
    """A view store in a SQL database; subclasses provide the cursors."""

    dialect: Dialect
    live: Layout

    @abstractmethod
    def _write(self) -> AbstractContextManager[Cursor]:
        """A cursor in the one writing transaction (committed when the block ends)."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor in a read-only snapshot transaction."""

    def drop_rebuild_tables(self, model: ReadModelName) -> None:
        layout = rebuild_layout(model)
        with self._write() as cursor:
            schema = SqlSchema(self.dialect, cursor)
            schema.drop(layout, model)
            schema.forget(layout.tracking[model])

    # -- writing --------------------------------------------------------------------------

    @contextmanager
    def transaction(self, layout: Layout, names: Sequence[str]) -> Iterator[BufferedTransaction]:
        with self._write() as cursor:
            transaction = BufferedTransaction(SqlAccess(self.dialect, cursor, layout), names)
            yield transaction
            transaction.flush()

    # -- reading --------------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        with self._read() as cursor:
            return SqlQueries(self.dialect, cursor, self.live).positions()

    def purchases_page(
        self,
        namespace: str,
        *,
        customer_id: str | None,
        status: PurchaseStatus | None,
        after: int,
        limit: int,
    ) -> Positioned[PurchaseRow]:
        with self._read() as cursor:
            return SqlQueries(self.dialect, cursor, self.live).purchases_page(
                namespace, customer_id=customer_id, status=status, after=after, limit=limit
            )

    def balances(
        self, namespace: str, customer_id: str, as_of: datetime | None
    ) -> Positioned[tuple[str, Account, Decimal]]:
        with self._read() as cursor:
            return SqlQueries(self.dialect, cursor, self.live).balances(
                namespace, customer_id, as_of
            )

    def receivables(self, namespace: str, as_of: datetime) -> Positioned[ReceivableRow]:
        with self._read() as cursor:
            return SqlQueries(self.dialect, cursor, self.live).receivables(namespace, as_of)

    def settled_revenue(
        self, namespace: str, first: date, last: date, currency: str | None
    ) -> Positioned[RevenueRow]:
        with self._read() as cursor:
            return SqlQueries(self.dialect, cursor, self.live).settled_revenue(
                namespace, first, last, currency
            )

    def snapshot(self) -> ReadModelSnapshot:
        with self._read() as cursor:
            return SqlQueries(self.dialect, cursor, self.live).snapshot()
