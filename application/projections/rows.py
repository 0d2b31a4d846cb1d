"""The rows of the read models: what each view stores, whatever the store.

Rows are plain frozen values, compared field by field: a live view and a rebuild from the log
are equal exactly when their rows are. Money is ``Decimal`` and times are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from creditledger.domain.ledger import Account
from creditledger.domain.status import (
    InitialPaymentStatus,
    MetaStatus,
    PaymentStatus,
    PurchaseStatus,
    SettlementType,
)

RowT = TypeVar("RowT")
KeyT = TypeVar("KeyT")


def evolve(row: RowT, **changes: Any) -> RowT:
    """A copy of a frozen row with some fields changed.

    ``dataclasses.replace`` re-runs ``__init__`` field by field; on the projector's hot path (a
    30-column purchase row per payment event) copying the instance dictionary is several times
    faster, and the rows have no ``__post_init__`` to skip.
    """
    unknown = changes.keys() - row.__dict__.keys()
    if unknown:
        msg = f"{type(row).__name__} has no field {sorted(unknown)}"
        raise TypeError(msg)
    copy: RowT = object.__new__(type(row))
    copy.__dict__.update(row.__dict__)
    copy.__dict__.update(changes)
    return copy


RowClass = TypeVar("RowClass", bound=type)


def quick_init(cls: RowClass) -> RowClass:
    """Give a frozen row class an ``__init__`` that fills the instance dictionary directly.

    A frozen dataclass's own ``__init__`` sets each field through ``object.__setattr__`` (to get
    past its own ``__setattr__``): 2.5 us for a 13-field ledger entry, most of the cost of the
    catch-up's rows (issue 14). This one takes the same parameters, in the same order, and
    stores the same values; the class stays frozen (assignment still raises). Rows have no
    defaults nor ``__post_init__``, which it would skip, so it refuses a class with either.
    """
    names = [each.name for each in fields(cls)]
    if hasattr(cls, "__post_init__") or any(
        each.default is not MISSING or each.default_factory is not MISSING for each in fields(cls)
    ):
        msg = f"{cls.__name__}: quick_init needs fields without defaults and no __post_init__"
        raise TypeError(msg)
    source = f"def __init__(self, {', '.join(names)}):\n    fill = self.__dict__\n" + "".join(
        f"    fill[{name!r}] = {name}\n" for name in names
    )
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - our own field names, as dataclasses itself does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]
    return cls


class ReadModelName(StrEnum):
    """The read models, each with its own tables and its own tracked position."""

    PURCHASES = "purchases"
    LEDGER = "ledger"
    RECEIVABLES = "receivables"
    SETTLED_REVENUE = "settled_revenue"


DEFINITION_VERSIONS: dict[ReadModelName, int] = {
    ReadModelName.PURCHASES: 1,
    ReadModelName.LEDGER: 2,
    ReadModelName.RECEIVABLES: 1,
    ReadModelName.SETTLED_REVENUE: 1,
}
"""Bump a model's number when its rows change meaning without changing shape (the ledger's 2:
postings in credit and cash units, issue 13): stores then rebuild it from the log on start. A
change of columns needs no bump; the tables' definition includes them."""


@dataclass(frozen=True)
class PurchaseState:
    """A purchase's terms, status, version and realizations: what every account of it agrees on.

    The read model's row extends it (``PurchaseRow``); the audit compares exactly these fields
    between the state folded from an export and the live state (``application/audit/state.py``).
    """

    purchase_id: UUID
    namespace: str
    customer_id: str
    currency: str
    credit_amount: Decimal
    cost_basis: Decimal | None
    settlement_type: SettlementType
    status: PurchaseStatus
    version: int
    credit_grant_transaction_group_id: UUID | None
    """None while an invoice purchase waits for its invoice (nothing granted yet)."""
    granted_at: datetime | None
    payment_status: PaymentStatus | None
    authorized_amount: Decimal | None
    """The payment's amount, once authorized (an invoice purchase's: its line total)."""
    authorized_transaction_group_id: UUID | None
    authorized_at: datetime | None
    settled_transaction_group_id: UUID | None
    settled_at: datetime | None
    invoice_id: str | None
    line_id: str | None
    failure_transaction_group_id: UUID | None
    failed_at: datetime | None
    failure_reason: str | None
    owed: Decimal | None
    """What a failed payment leaves owed: the credit consumed before the failure."""
    refunded: Decimal
    """Credit taken back by refunds."""
    refunded_cash: Decimal
    """Money returned by refunds."""
    refunds: int


@quick_init
@dataclass(frozen=True)
class PurchaseRow(PurchaseState):
    """One purchase as it stands after the last event applied (``position``).

    Its fields are ``PurchaseState``'s, then these (the table's columns follow the same order).
    """

    payment_amount: Decimal | None
    """The payment the cost basis asks for (``payment_amount``), from the initiation."""
    initial_payment_status: InitialPaymentStatus | None
    priority: int
    expires_at: datetime | None
    feature_filters: tuple[str, ...]
    name: str | None
    metadata: dict[str, str]
    meta_status: MetaStatus
    authorized_reference: str | None
    settled_reference: str | None
    created_at: datetime
    updated_at: datetime
    created_position: int
    """Where the purchase's first event sits in the log: the order purchases are listed in."""
    position: int
    """The log position of the purchase's last event (its wallet's events do not move it)."""
    consumed: Decimal
    """Credit drawn from this purchase's grant by consumptions (its wallet's events)."""
    expired: Decimal
    """What remained at ``expires_at``, once the expiry is recorded."""
    expired_at: datetime | None
    voided: Decimal
    void_transaction_group_id: UUID | None
    voided_at: datetime | None
    void_reason: str | None
    expiry_due: bool
    """Credit remains and neither an expiry nor a void is recorded: the expiry sweep's filter
    (with ``expires_at``), kept as a column because a store cannot compare decimals as text."""
    invoice_created_at: datetime | None
    revoked: Decimal
    """Credit taken back when the payment failed."""
    released: Decimal
    """Credit forfeited before the payment failed (expired, voided), no longer owed."""
    failure_reference: str | None
    last_refund_transaction_group_id: UUID | None
    last_refunded_at: datetime | None


AccountKey = tuple[str, str, str, Account]
"""(namespace, customer id, currency, account): what a balance is kept for."""

EntryOrder = tuple[datetime, int, int]
"""(at, position, line): the order of an account's entries, by time first."""

EntryId = tuple[UUID, int, int]
"""(purchase id, event version, line): an entry's identity."""


@quick_init
@dataclass(frozen=True)
class LedgerEntry:
    """One posting as the ledger view keeps it, with the account's running balance after it."""

    purchase_id: UUID
    version: int
    line: int
    position: int
    transaction_group_id: UUID
    namespace: str
    customer_id: str
    currency: str
    account: Account
    cost_basis: Decimal | None
    amount: Decimal
    at: datetime
    balance_after: Decimal

    @property
    def id(self) -> EntryId:
        return (self.purchase_id, self.version, self.line)

    @property
    def key(self) -> AccountKey:
        return (self.namespace, self.customer_id, self.currency, self.account)

    @property
    def order(self) -> EntryOrder:
        return (self.at, self.position, self.line)


@quick_init
@dataclass(frozen=True)
class AccountBalance:
    """An account's balance over every entry, and the latest entry in time order."""

    namespace: str
    customer_id: str
    currency: str
    account: Account
    balance: Decimal
    entries: int
    last_at: datetime
    last_position: int
    last_line: int

    @property
    def key(self) -> AccountKey:
        return (self.namespace, self.customer_id, self.currency, self.account)

    @property
    def last_order(self) -> EntryOrder:
        return (self.last_at, self.last_position, self.last_line)


@quick_init
@dataclass(frozen=True)
class ReceivableRow:
    """A payment-backed purchase's receivable: opened at grant, authorized, settled."""

    purchase_id: UUID
    namespace: str
    customer_id: str
    currency: str
    credit_amount: Decimal
    payment_amount: Decimal
    opened_at: datetime
    """When the credits were granted (an invoice purchase's: when its invoice was created)."""
    authorized_at: datetime | None
    settled_at: datetime | None
    position: int
    failed_at: datetime | None
    """When the payment failed: from then on only ``owed`` is owed (nothing when zero)."""
    owed: Decimal | None
    """After a failure, the money for the credit consumed before it: round(consumed x cost
    basis), what the customer still owes."""


RevenueKey = tuple[str, str, date]
"""(namespace, currency, UTC day)."""


@quick_init
@dataclass(frozen=True)
class RevenueRow:
    """Settled payments of one namespace, currency and UTC day."""

    namespace: str
    currency: str
    day: date
    amount: Decimal
    """Settled payments (gross: refunds are in ``refunded``)."""
    credits: Decimal
    settlements: int
    refunded: Decimal
    """Money returned by refunds recorded that day (of payments settled on any day)."""
    refunds: int

    @property
    def net(self) -> Decimal:
        """Settled less refunded: what the day kept."""
        return self.amount - self.refunded

    @property
    def key(self) -> RevenueKey:
        return (self.namespace, self.currency, self.day)


@dataclass(frozen=True)
class Index:
    """An ordered index: rows are found by equal leading columns, ordered by the rest."""

    purpose: str
    columns: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class ViewTable(Generic[RowT, KeyT]):
    """One table of a read model, declared once: every store keeps, reads and compares it so.

    Its columns are the row's fields, in order (each store works out how to keep a field from
    its type). ``key`` names the primary key's columns; a row's key is their values, a tuple in
    that order (the value itself for a one-column key), typed ``KeyT``.
    """

    name: str
    """The table's name (``readmodel_<name>`` in SQL; the row counts of ``verify``)."""
    model: ReadModelName
    row: type[RowT]
    key: tuple[str, ...]
    snapshot: str
    """The ``ReadModelSnapshot`` field that holds its rows."""
    indexes: tuple[Index, ...] = ()
    label: str | None = None
    """The table's name in ``verify``'s differences (default: the snapshot field)."""
    identity: Callable[[RowT], Hashable] | None = None
    """A row's identity in ``verify``'s differences (default: its key)."""

    @property
    def value(self) -> str:
        """The table's name (as the ``Table`` enum it replaces spelled it)."""
        return self.name

    @property
    def key_of(self) -> Callable[[RowT], KeyT]:
        return cast(Callable[[RowT], KeyT], _getters(self.key))

    def index(self, purpose: str) -> Index:
        return next(index for index in self.indexes if index.purpose == purpose)

    def __repr__(self) -> str:
        return f"ViewTable({self.name})"


_GETTERS: dict[tuple[str, ...], Callable[[Any], Any]] = {}


def _getters(columns: tuple[str, ...]) -> Callable[[Any], Any]:
    getter = _GETTERS.get(columns)
    if getter is None:
        getter = _GETTERS[columns] = attrgetter(*columns)
    return getter


class Tables:
    """Every read model table, in the order stores write and compare them."""

    PURCHASES: ViewTable[PurchaseRow, UUID] = ViewTable(
        "purchases",
        ReadModelName.PURCHASES,
        PurchaseRow,
        key=("purchase_id",),
        snapshot="purchases",
        indexes=(
            Index("by_namespace", ("namespace", "created_position")),
            Index("by_customer", ("namespace", "customer_id", "created_position")),
            Index("by_status", ("namespace", "status", "created_position")),
            # The expiry sweep's question: which grants are past expires_at with credit left.
            Index("by_due_expiry", ("expiry_due", "expires_at")),
        ),
    )
    ENTRIES: ViewTable[LedgerEntry, tuple[int, int]] = ViewTable(
        "ledger_entries",
        ReadModelName.LEDGER,
        LedgerEntry,
        # Keyed by log position: entries are appended in key order (a purchase-keyed b-tree
        # would take every insert at a random page). (position, line) names the same entry as
        # (purchase, version, line): each event has one position.
        key=("position", "line"),
        snapshot="entries",
        indexes=(
            # "Balance as of T": the last entry of one account at or before T, one index probe.
            Index(
                "by_account_time",
                ("namespace", "customer_id", "currency", "account", "at", "position", "line"),
            ),
        ),
        identity=lambda entry: entry.id,
    )
    ACCOUNTS: ViewTable[AccountBalance, AccountKey] = ViewTable(
        "ledger_accounts",
        ReadModelName.LEDGER,
        AccountBalance,
        key=("namespace", "customer_id", "currency", "account"),
        snapshot="accounts",
    )
    RECEIVABLES: ViewTable[ReceivableRow, UUID] = ViewTable(
        "receivables",
        ReadModelName.RECEIVABLES,
        ReceivableRow,
        key=("purchase_id",),
        snapshot="receivables",
        indexes=(Index("by_opened", ("namespace", "opened_at")),),
    )
    REVENUE: ViewTable[RevenueRow, tuple[str, date, str]] = ViewTable(
        "settled_revenue",
        ReadModelName.SETTLED_REVENUE,
        RevenueRow,
        key=("namespace", "day", "currency"),
        snapshot="revenue",
        label="settled_revenue",
        identity=lambda row: row.key,
    )


TABLES: tuple[ViewTable[Any, Any], ...] = tuple(
    table for table in vars(Tables).values() if isinstance(table, ViewTable)
)
"""Every table, in declaration order."""


@dataclass(frozen=True)
class ReadModelSnapshot:
    """Every row of every read model, and the positions they stand at, read at one instant."""

    positions: dict[str, int]
    purchases: list[PurchaseRow] = field(default_factory=list)
    entries: list[LedgerEntry] = field(default_factory=list)
    accounts: list[AccountBalance] = field(default_factory=list)
    receivables: list[ReceivableRow] = field(default_factory=list)
    revenue: list[RevenueRow] = field(default_factory=list)

    @classmethod
    def of(
        cls, positions: dict[str, int], rows: Mapping[ViewTable[Any, Any], Sequence[Any]]
    ) -> ReadModelSnapshot:
        snapshot = cls(positions)
        for table, found in rows.items():
            snapshot.rows(table).extend(found)
        return snapshot

    def rows(self, table: ViewTable[RowT, Any]) -> list[RowT]:
        return cast(list[RowT], getattr(self, table.snapshot))
