"""The example consumer: the settled-revenue report, kept from the stream in its own database.

It applies the very projection the ledger's own settled-revenue read model uses
(``SettledRevenueProjection``), over tables of its own database, so at the same log position
the two hold the same rows. Payment events do not say what was bought; the report keeps each
purchase's ``Initiated`` event (as stored) to look it up, as the ledger's views read it from the
log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar, cast
from uuid import UUID

from creditledger.application.projections.projection import PurchaseTerms, Recorded
from creditledger.application.projections.revenue import SettledRevenueProjection
from creditledger.application.projections.rows import Index, RevenueRow, Tables, ViewTable
from creditledger.domain.events import Initiated, PurchaseEventBase
from creditledger.infrastructure.relay.checkpoint import ConsumerDatabase, SqlTransaction
from creditledger.infrastructure.relay.kit import Delivered

CONSUMER_NAME = "settled-revenue-report"

RowT = TypeVar("RowT")
KeyT = TypeVar("KeyT")
RevenueTableKey = tuple[str, date, str]
"""(namespace, day, currency): a revenue row's key in the read model's table."""

_TABLES = (
    "CREATE TABLE IF NOT EXISTS report_purchases ("
    "purchase_id TEXT PRIMARY KEY, topic TEXT NOT NULL, payload TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS report_settled_revenue ("
    "namespace TEXT NOT NULL, currency TEXT NOT NULL, day TEXT NOT NULL, "
    "amount TEXT NOT NULL, credits TEXT NOT NULL, settlements BIGINT NOT NULL, "
    "refunded TEXT NOT NULL, refunds BIGINT NOT NULL, "
    "PRIMARY KEY (namespace, currency, day))",
)


class _RevenueRows:
    """The report's revenue rows inside one transaction: read once, written at the end.

    The projection's ``TableStore``, for the one table it uses (``Tables.REVENUE``).
    """

    def __init__(self, transaction: SqlTransaction) -> None:
        self._transaction = transaction
        self._rows: dict[RevenueTableKey, RevenueRow | None] = {}
        self._changed: dict[RevenueTableKey, RevenueRow] = {}

    def _revenue(self, table: ViewTable[Any, Any]) -> ViewTable[RevenueRow, RevenueTableKey]:
        if table is not Tables.REVENUE:
            msg = f"the report keeps only settled revenue, not {table.name}"
            raise LookupError(msg)
        return Tables.REVENUE

    def load(self, table: ViewTable[Any, KeyT], keys: Iterable[KeyT]) -> None:
        for key in keys:
            self.get(table, key)

    def get(self, table: ViewTable[RowT, KeyT], key: KeyT) -> RowT | None:
        self._revenue(table)
        namespace, day, currency = cast(RevenueTableKey, key)
        if (namespace, day, currency) not in self._rows:
            found = self._transaction.execute(
                "SELECT amount, credits, settlements, refunded, refunds "
                "FROM report_settled_revenue "
                "WHERE namespace = ? AND currency = ? AND day = ?",
                (namespace, currency, day.isoformat()),
            )
            self._rows[(namespace, day, currency)] = (
                RevenueRow(
                    namespace,
                    currency,
                    day,
                    Decimal(found[0][0]),
                    Decimal(found[0][1]),
                    int(found[0][2]),
                    Decimal(found[0][3]),
                    int(found[0][4]),
                )
                if found
                else None
            )
        return cast(RowT | None, self._rows[(namespace, day, currency)])

    def put(self, table: ViewTable[RowT, Any], row: RowT) -> None:
        revenue = cast(RevenueRow, row)
        key = self._revenue(table).key_of(revenue)
        self._rows[key] = revenue
        self._changed[key] = revenue

    def insert(self, table: ViewTable[RowT, Any], row: RowT) -> None:
        self.put(table, row)

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
        del table, index, prefix, above, below, descending, limit
        msg = "the report's revenue table is not scanned"
        raise NotImplementedError(msg)

    def flush(self) -> None:
        for row in self._changed.values():
            self._transaction.execute(
                "INSERT INTO report_settled_revenue "
                "(namespace, currency, day, amount, credits, settlements, refunded, refunds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (namespace, currency, day) DO UPDATE SET "
                "amount = excluded.amount, credits = excluded.credits, "
                "settlements = excluded.settlements, refunded = excluded.refunded, "
                "refunds = excluded.refunds",
                (
                    row.namespace,
                    row.currency,
                    row.day.isoformat(),
                    str(row.amount),
                    str(row.credits),
                    row.settlements,
                    str(row.refunded),
                    row.refunds,
                ),
            )


class SettledRevenueReport:
    """``apply`` is the kit's batch function; ``rows`` reads the report."""

    def __init__(self, database: ConsumerDatabase) -> None:
        self.database = database
        self.projection = SettledRevenueProjection()
        self._transaction: SqlTransaction | None = None
        self.terms = PurchaseTerms(self._initiated)
        with database.transaction() as transaction:
            for statement in _TABLES:
                transaction.execute(statement)

    def _initiated(self, purchase_id: UUID) -> Initiated | None:
        if self._transaction is None:  # pragma: no cover - only called while applying
            return None
        found = self._transaction.execute(
            "SELECT topic, payload FROM report_purchases WHERE purchase_id = ?", (str(purchase_id),)
        )
        if not found:
            return None
        stored = Delivered(0, 0, "", purchase_id, 1, "", found[0][0], found[0][1].encode())
        event = stored.event()
        return event if isinstance(event, Initiated) else None

    def apply(self, transaction: SqlTransaction, batch: Sequence[Delivered]) -> None:
        self._transaction = transaction
        try:
            # Settled revenue is booked by purchase events alone; wallet events (credit spent,
            # expired, voided) pass through the report untouched.
            recorded = []
            for item in batch:
                event = item.event()
                if not isinstance(event, PurchaseEventBase):
                    continue
                recorded.append(Recorded(item.position, event))
                if isinstance(event, Initiated):
                    self.terms.remember(event)
                    transaction.execute(
                        "INSERT INTO report_purchases (purchase_id, topic, payload) "
                        "VALUES (?, ?, ?)",
                        (str(event.originator_id), item.topic, item.payload.decode()),
                    )
            rows = _RevenueRows(transaction)
            self.projection.prefetch(recorded, self.terms, rows)
            for one in recorded:
                self.projection.apply(one, self.terms.of(one.event), rows)
            rows.flush()
        finally:
            self._transaction = None

    def rows(self) -> list[RevenueRow]:
        with self.database.transaction() as transaction:
            found = transaction.execute(
                "SELECT namespace, currency, day, amount, credits, settlements, refunded, refunds "
                "FROM report_settled_revenue ORDER BY namespace, currency, day"
            )
        return [
            RevenueRow(
                row[0],
                row[1],
                date.fromisoformat(row[2]),
                Decimal(row[3]),
                Decimal(row[4]),
                row[5],
                Decimal(row[6]),
                row[7],
            )
            for row in found
        ]
