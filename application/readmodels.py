"""Queries over the read models, for callers: purchases, balances, receivables, revenue.

The views follow the event log; every answer says the position it reflects, and
``wait_until`` lets a caller who has just written wait (with a timeout) until the views have
reached that write: read-your-writes on an asynchronous projection.
"""

from __future__ import annotations

import base64
import binascii
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from creditledger.application.clock import Clock
from creditledger.application.projections.purchases import purchase_view
from creditledger.application.projections.rows import (
    PurchaseRow,
    ReadModelName,
    ReadModelSnapshot,
    ReceivableRow,
    RevenueRow,
)
from creditledger.application.projections.signal import ProjectionSignal
from creditledger.application.purchase_view import PurchaseView
from creditledger.domain.errors import FieldError, ValidationFailedError
from creditledger.domain.ledger import Account
from creditledger.domain.money import minor_units
from creditledger.domain.status import PurchaseStatus, Unit

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CURSOR_PREFIX = "p1:"
_POLL_SECONDS = 0.05

T = TypeVar("T")


@dataclass(frozen=True)
class Positioned(Generic[T]):
    """Rows read in one transaction, with the position their read model stood at."""

    position: int
    rows: list[T]


MAX_PENDING_EXPIRIES = 100_000
"""A bound on the due-but-unrecorded expiries one balance query folds in (the sweep keeps the
real number near zero)."""


class ReadModelQueries(Protocol):
    """The read side of a view store: every read query, declared once.

    Each store implements it (``MemoryViewDatabase``, and ``SqlReads`` for SQLite and
    PostgreSQL, through ``ViewDatabase``, which subclasses it so that mypy checks every store
    implements every query). Each call reads in one transaction, and answers with the position
    its read model stood at.
    """

    @abstractmethod
    def positions(self) -> dict[str, int]:
        """Every tracked position by its tracking name (live read models and rebuilds)."""

    @abstractmethod
    def purchases_page(
        self,
        namespace: str,
        *,
        customer_id: str | None,
        status: PurchaseStatus | None,
        after: int,
        limit: int,
    ) -> Positioned[PurchaseRow]:
        """Up to ``limit`` purchases created after ``after`` (a ``created_position``), in order."""

    @abstractmethod
    def due_expiries(
        self, at: datetime, limit: int, *, namespace: str | None, customer_id: str | None
    ) -> Positioned[PurchaseRow]:
        """Up to ``limit`` purchases whose grant expired at or before ``at`` with credit left
        and no expiry (or void) recorded yet, oldest ``expires_at`` first."""

    @abstractmethod
    def balances(
        self, namespace: str, customer_id: str, as_of: datetime | None
    ) -> Positioned[tuple[str, Account, Decimal]]:
        """(currency, account, balance) of every account with an entry at or before ``as_of``."""

    @abstractmethod
    def receivables(self, namespace: str, as_of: datetime) -> Positioned[ReceivableRow]:
        """The receivables open at ``as_of`` (``owed_at``), oldest first."""

    @abstractmethod
    def settled_revenue(
        self, namespace: str, first: date, last: date, currency: str | None
    ) -> Positioned[RevenueRow]:
        """Settled revenue rows from day ``first`` to ``last`` (inclusive), by day and currency."""

    @abstractmethod
    def snapshot(self) -> ReadModelSnapshot:
        """Every live row and position, read in one consistent snapshot."""


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class PurchasePage(_Result):
    items: list[PurchaseView]
    next_cursor: str | None
    position: int


class BalanceLine(_Result):
    currency: str
    account: Account
    unit: Unit
    """What the balance counts (the account's unit): credits or cash, never summed together."""
    balance: Decimal


class CustomerBalances(_Result):
    namespace: str
    customer_id: str
    as_of: datetime | None
    position: int
    balances: list[BalanceLine]

    def balance(self, currency: str, account: Account) -> Decimal:
        for line in self.balances:
            if line.currency == currency and line.account is account:
                return line.balance
        return Decimal(0)


class ReceivableStage(StrEnum):
    OPEN = "open"
    """Credits granted, payment not yet authorized."""
    AUTHORIZED = "authorized"
    """Payment authorized, not yet settled."""
    FAILED = "failed"
    """The payment failed: the unconsumed credit was taken back, the consumed credit is owed."""


class Receivable(_Result):
    purchase_id: UUID
    customer_id: str
    currency: str
    credit_amount: Decimal
    payment_amount: Decimal
    stage: ReceivableStage
    owed: Decimal
    """What the customer owes at ``as_of``: the payment before a failure, after it the money
    for the credit consumed before the failure."""
    opened_at: datetime
    authorized_at: datetime | None
    failed_at: datetime | None
    age_seconds: int
    """Whole seconds from the grant to ``as_of``."""


class Receivables(_Result):
    namespace: str
    as_of: datetime
    position: int
    items: list[Receivable]


class RevenueDay(_Result):
    day: date
    currency: str
    amount: Decimal
    """Payments settled that day, in the currency (gross of refunds)."""
    credits: Decimal
    settlements: int
    refunded: Decimal
    """Money returned that day by refunds (of payments settled that day or before)."""
    refunds: int
    net: Decimal
    """``amount`` - ``refunded``: what the day kept."""


class SettledRevenue(_Result):
    namespace: str
    first_day: date
    last_day: date
    currency: str | None
    position: int
    days: list[RevenueDay]


class ReadModels:
    """The read side of the ledger, over an injected view store."""

    def __init__(
        self,
        queries: ReadModelQueries,
        *,
        clock: Clock,
        head: Callable[[], int],
        signal: ProjectionSignal | None = None,
        nudge: Callable[[], None] | None = None,
    ) -> None:
        self._queries = queries
        self._clock = clock
        self._head = head
        self._signal = signal or ProjectionSignal()
        self._nudge = nudge

    # -- consistency ----------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        """Each read model's position: the last event of the log it reflects."""
        return self._queries.positions()

    def position(self) -> int:
        """The position every read model has reached."""
        positions = self.positions()
        return min((positions.get(name, 0) for name in ReadModelName), default=0)

    def head(self) -> int:
        """The position of the last event recorded in the log."""
        return self._head()

    def wait_until(self, position: int | None = None, timeout: float = 5.0) -> bool:
        """Wait until every read model reflects ``position`` (default: the log's head now).

        Returns False if ``timeout`` seconds pass first; the views are then simply behind.
        """
        target = self._head() if position is None else position
        deadline = time.monotonic() + timeout
        while True:
            generation = self._signal.generation
            if self.position() >= target:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._nudge is not None:
                self._nudge()
            self._signal.wait_after(generation, min(remaining, _POLL_SECONDS))

    # -- queries --------------------------------------------------------------------------

    def list_purchases(
        self,
        namespace: str,
        *,
        customer_id: str | None = None,
        status: PurchaseStatus | str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> PurchasePage:
        """Purchases in the order they were created, a page at a time (keyset pagination)."""
        problems = []
        if not 1 <= limit <= MAX_LIMIT:
            problems.append(
                FieldError("limit", "limit_out_of_range", f"must be from 1 to {MAX_LIMIT}")
            )
        wanted_status = None
        if status is not None:
            try:
                wanted_status = PurchaseStatus(status)
            except ValueError:
                problems.append(FieldError("status", "invalid_status", "not a purchase status"))
        after = 0
        if cursor is not None:
            decoded = decode_cursor(cursor)
            if decoded is None:
                problems.append(FieldError("cursor", "invalid_cursor", "not a cursor we issued"))
            else:
                after = decoded
        if problems:
            raise ValidationFailedError(problems)
        # One row more than asked says whether there is a next page.
        page = self._queries.purchases_page(
            namespace, customer_id=customer_id, status=wanted_status, after=after, limit=limit + 1
        )
        rows = page.rows[:limit]
        more = len(page.rows) > limit
        now = self._clock.now()
        return PurchasePage(
            items=[purchase_view(row, now) for row in rows],
            next_cursor=encode_cursor(rows[-1].created_position) if more and rows else None,
            position=page.position,
        )

    def balances(
        self, namespace: str, customer_id: str, as_of: datetime | None = None
    ) -> CustomerBalances:
        """Every account of the customer, per currency, now or as of a time (inclusive)."""
        if as_of is not None and as_of.tzinfo is None:
            raise ValidationFailedError(
                [FieldError("as_of", "timezone_required", "must include a timezone")]
            )
        found = self._queries.balances(namespace, customer_id, as_of)
        amounts = {(currency, account): balance for currency, account, balance in found.rows}
        # An expiry takes effect at expires_at whether or not its event is written yet: book now
        # exactly what that event will book (what remained, from FBO to breakage), so balances
        # as of any time are exact before the sweep or the next consumption records it.
        due = self._queries.due_expiries(
            as_of or self._clock.now(),
            MAX_PENDING_EXPIRIES,
            namespace=namespace,
            customer_id=customer_id,
        )
        for row in due.rows:
            left = (
                row.credit_amount
                - row.consumed
                - row.voided
                - row.expired
                - row.revoked
                - row.refunded
            )
            fbo, breakage = (row.currency, Account.CUSTOMER_FBO), (row.currency, Account.BREAKAGE)
            amounts[fbo] = amounts.get(fbo, Decimal(0)) - left
            amounts[breakage] = amounts.get(breakage, Decimal(0)) + left
        currencies = sorted({currency for currency, _ in amounts})
        return CustomerBalances(
            namespace=namespace,
            customer_id=customer_id,
            as_of=as_of,
            position=found.position,
            balances=[
                BalanceLine(
                    currency=currency,
                    account=account,
                    unit=account.unit,
                    balance=_in_minor_units(amounts.get((currency, account), Decimal(0)), currency),
                )
                for currency in currencies
                for account in Account
            ],
        )

    def receivables(self, namespace: str, as_of: datetime | None = None) -> Receivables:
        """Receivables open at ``as_of`` (default now): granted, not yet settled, and their age;
        a failed payment's while the credit consumed before the failure is owed."""
        if as_of is not None and as_of.tzinfo is None:
            raise ValidationFailedError(
                [FieldError("as_of", "timezone_required", "must include a timezone")]
            )
        moment = as_of or self._clock.now()
        found = self._queries.receivables(namespace, moment)
        return Receivables(
            namespace=namespace,
            as_of=moment,
            position=found.position,
            items=[_receivable(row, moment) for row in found.rows],
        )

    def settled_revenue(
        self, namespace: str, from_: date, to: date, currency: str | None = None
    ) -> SettledRevenue:
        """Payments settled per UTC day and currency, from ``from_`` to ``to``, both inclusive."""
        first, last = _utc_day(from_), _utc_day(to)
        if first > last:
            raise ValidationFailedError(
                [FieldError("to", "range_reversed", "must not be before from")]
            )
        found = self._queries.settled_revenue(namespace, first, last, currency)
        return SettledRevenue(
            namespace=namespace,
            first_day=first,
            last_day=last,
            currency=currency,
            position=found.position,
            days=[
                RevenueDay(
                    day=row.day,
                    currency=row.currency,
                    amount=row.amount,
                    credits=row.credits,
                    settlements=row.settlements,
                    refunded=row.refunded,
                    refunds=row.refunds,
                    net=row.net,
                )
                for row in found.rows
            ],
        )


def encode_cursor(created_position: int) -> str:
    text = f"{_CURSOR_PREFIX}{created_position}".encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    digits = text[len(_CURSOR_PREFIX) :]
    # Positions are SQL bigints: a longer number was never issued (and would overflow a query).
    if not text.startswith(_CURSOR_PREFIX) or not digits.isdigit() or len(digits) > 18:
        return None
    return int(digits)


def _utc_day(value: date) -> date:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationFailedError(
                [FieldError("from", "timezone_required", "must include a timezone")]
            )
        return value.astimezone(UTC).date()
    return value


def _in_minor_units(amount: Decimal, currency: str) -> Decimal:
    units = minor_units(currency)
    if units is None:
        return amount
    # Entries are whole minor units already; this only gives zero the currency's shape.
    return amount.quantize(Decimal(1).scaleb(-units))


def owed_at(row: ReceivableRow, as_of: datetime) -> bool:
    """Whether the receivable is open at ``as_of``: granted by then and neither settled nor
    failed with nothing consumed by then (a failure leaves owed only what was consumed).

    Every store answers ``receivables`` with exactly the rows this keeps (SQL filters what it
    can compare in the query, and this the rest: a decimal kept as text cannot be compared).
    """
    if row.opened_at > as_of:
        return False
    if row.settled_at is not None and row.settled_at <= as_of:
        return False
    failed = row.failed_at is not None and row.failed_at <= as_of
    return not failed or bool(row.owed)


def _receivable(row: ReceivableRow, as_of: datetime) -> Receivable:
    authorized = row.authorized_at is not None and row.authorized_at <= as_of
    failed = row.failed_at is not None and row.failed_at <= as_of
    if failed:
        stage, owed = ReceivableStage.FAILED, row.owed or Decimal(0)
    else:
        stage = ReceivableStage.AUTHORIZED if authorized else ReceivableStage.OPEN
        owed = row.payment_amount
    return Receivable(
        purchase_id=row.purchase_id,
        customer_id=row.customer_id,
        currency=row.currency,
        credit_amount=row.credit_amount,
        payment_amount=row.payment_amount,
        stage=stage,
        owed=_in_minor_units(owed, row.currency),
        opened_at=row.opened_at,
        authorized_at=row.authorized_at if authorized else None,
        failed_at=row.failed_at if failed else None,
        age_seconds=int((as_of - row.opened_at).total_seconds()),
    )
