"""The read model tables, described once for every SQL store: columns, keys and indexes.

Column names are the row fields' names, so a row is written and read back without a mapping.
Each store says how a kind of value is kept (``sql.Dialect``): amounts are exact, never floats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any, Generic, TypeVar

from creditledger.application.projections.rows import (
    AccountBalance,
    LedgerEntry,
    PurchaseRow,
    ReceivableRow,
    RevenueRow,
)
from creditledger.domain.ledger import Account
from creditledger.domain.status import (
    InitialPaymentStatus,
    MetaStatus,
    PaymentStatus,
    PurchaseStatus,
    SettlementType,
)
from creditledger.infrastructure.projections.layout import Table

RowT = TypeVar("RowT")


class Kind(Enum):
    UUID = auto()
    TEXT = auto()
    NUMERIC = auto()
    INTEGER = auto()
    TIMESTAMP = auto()
    DATE = auto()
    JSON = auto()


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = False
    shape: Callable[[Any], Any] | None = None
    """Turns the stored value back into the row's type (an enum, a tuple)."""


@dataclass(frozen=True)
class Index:
    purpose: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class TableSpec(Generic[RowT]):
    table: Table
    row_type: Callable[..., RowT]
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    indexes: tuple[Index, ...] = ()

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]


def _c(
    name: str, kind: Kind, *, null: bool = False, shape: Callable[[Any], Any] | None = None
) -> Column:
    return Column(name, kind, null, shape)


U, S, N, INT, TS, D, J = (
    Kind.UUID,
    Kind.TEXT,
    Kind.NUMERIC,
    Kind.INTEGER,
    Kind.TIMESTAMP,
    Kind.DATE,
    Kind.JSON,
)

PURCHASES: TableSpec[PurchaseRow] = TableSpec(
    Table.PURCHASES,
    PurchaseRow,
    (
        _c("purchase_id", U),
        _c("namespace", S),
        _c("customer_id", S),
        _c("currency", S),
        _c("credit_amount", N),
        _c("cost_basis", N, null=True),
        _c("settlement_type", S, shape=SettlementType),
        _c("status", S, shape=PurchaseStatus),
        _c("version", INT),
        _c("credit_grant_transaction_group_id", U),
        _c("granted_at", TS),
        _c("payment_status", S, null=True, shape=PaymentStatus),
        _c("authorized_amount", N, null=True),
        _c("authorized_transaction_group_id", U, null=True),
        _c("authorized_at", TS, null=True),
        _c("settled_transaction_group_id", U, null=True),
        _c("settled_at", TS, null=True),
        _c("payment_amount", N, null=True),
        _c("initial_payment_status", S, null=True, shape=InitialPaymentStatus),
        _c("priority", INT),
        _c("expires_at", TS, null=True),
        _c("feature_filters", J, shape=tuple),
        _c("name", S, null=True),
        _c("metadata", J, shape=dict),
        _c("meta_status", S, shape=MetaStatus),
        _c("authorized_reference", S, null=True),
        _c("settled_reference", S, null=True),
        _c("created_at", TS),
        _c("updated_at", TS),
        _c("created_position", INT),
        _c("position", INT),
    ),
    key=("purchase_id",),
    indexes=(
        Index("by_namespace", ("namespace", "created_position")),
        Index("by_customer", ("namespace", "customer_id", "created_position")),
        Index("by_status", ("namespace", "status", "created_position")),
    ),
)

ENTRIES: TableSpec[LedgerEntry] = TableSpec(
    Table.ENTRIES,
    LedgerEntry,
    (
        _c("purchase_id", U),
        _c("version", INT),
        _c("line", INT),
        _c("position", INT),
        _c("transaction_group_id", U),
        _c("namespace", S),
        _c("customer_id", S),
        _c("currency", S),
        _c("account", S, shape=Account),
        _c("cost_basis", N, null=True),
        _c("amount", N),
        _c("at", TS),
        _c("balance_after", N),
    ),
    # Keyed by log position: entries are appended in key order (a purchase-keyed b-tree would
    # take every insert at a random page). (position, line) names the same entry as
    # (purchase, version, line): each event has one position.
    key=("position", "line"),
    indexes=(
        # "Balance as of T": the last entry of one account at or before T, one index probe.
        Index(
            "by_account_time",
            ("namespace", "customer_id", "currency", "account", "at", "position", "line"),
        ),
    ),
)

ACCOUNTS: TableSpec[AccountBalance] = TableSpec(
    Table.ACCOUNTS,
    AccountBalance,
    (
        _c("namespace", S),
        _c("customer_id", S),
        _c("currency", S),
        _c("account", S, shape=Account),
        _c("balance", N),
        _c("entries", INT),
        _c("last_at", TS),
        _c("last_position", INT),
        _c("last_line", INT),
    ),
    key=("namespace", "customer_id", "currency", "account"),
)

RECEIVABLES: TableSpec[ReceivableRow] = TableSpec(
    Table.RECEIVABLES,
    ReceivableRow,
    (
        _c("purchase_id", U),
        _c("namespace", S),
        _c("customer_id", S),
        _c("currency", S),
        _c("credit_amount", N),
        _c("payment_amount", N),
        _c("opened_at", TS),
        _c("authorized_at", TS, null=True),
        _c("settled_at", TS, null=True),
        _c("position", INT),
    ),
    key=("purchase_id",),
    indexes=(Index("by_opened", ("namespace", "opened_at")),),
)

REVENUE: TableSpec[RevenueRow] = TableSpec(
    Table.REVENUE,
    RevenueRow,
    (
        _c("namespace", S),
        _c("currency", S),
        _c("day", D),
        _c("amount", N),
        _c("credits", N),
        _c("settlements", INT),
    ),
    key=("namespace", "day", "currency"),
)

SPECS: dict[Table, TableSpec[Any]] = {
    spec.table: spec for spec in (PURCHASES, ENTRIES, ACCOUNTS, RECEIVABLES, REVENUE)
}
