"""Double-entry postings: what each purchase event books in the ledger (domain reference §7.2).

A pure function of the purchase's initiation facts and one event, so postings are never stored
as a second truth: any reader, an auditor offline included, derives the same entries from the
events. Every transaction group sums to zero in each unit.

Units (docs/credit-lifecycle-design.md, section 7): each account counts one ``Unit``. The credit
side (FBO, the open receivable, accrued, breakage, ``brokerage_credits``) counts credits at face
value; the cash side (the authorized receivable, ``wash``, ``brokerage_cash``) counts the money
the payment moves, ``round(credits x cost basis)``. Authorization re-denominates the receivable
from credits to cash against the two brokerage accounts, as OpenMeter HEAD does against
``brokerage``, so ``wash`` is exactly the cash the payment provider reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple, assert_never
from uuid import UUID

from creditledger.domain.events import (
    CreditsConsumed,
    GrantAdded,
    GrantExpired,
    GrantRevoked,
    GrantVoided,
    Initiated,
    InvoiceCreated,
    PaymentAuthorized,
    PaymentFailed,
    PaymentRefunded,
    PaymentSettled,
    PurchaseEvent,
    PurchaseVoided,
    WalletEvent,
)
from creditledger.domain.identity import LedgerStep, wallet_group_id
from creditledger.domain.money import payment_amount
from creditledger.domain.status import SettlementType, Unit


class Account(StrEnum):
    CUSTOMER_FBO = "customer_fbo"
    """Spendable credit (for the benefit of the customer)."""
    CUSTOMER_RECEIVABLE_OPEN = "customer_receivable_open"
    """Owed by the customer, payment not yet authorized."""
    CUSTOMER_RECEIVABLE_AUTHORIZED = "customer_receivable_authorized"
    """Owed by the customer, payment authorized but not settled."""
    WASH = "wash"
    """The external cash boundary: settled payments leave the ledger here."""
    CUSTOMER_ACCRUED = "customer_accrued"
    """Credit the customer consumed (usage not yet recognized as earnings)."""
    BREAKAGE = "breakage"
    """Credit forfeited unused: expired at its ``expires_at``, or voided."""
    BROKERAGE_CREDITS = "brokerage_credits"
    """The credit side of re-denomination: the face value of credits whose receivable became
    cash at authorization (or that were given away, for promotional credit)."""
    BROKERAGE_CASH = "brokerage_cash"
    """The cash side of re-denomination: the money those credits were paid for. The two
    brokerage accounts together net the difference between face value and cash."""

    @property
    def unit(self) -> Unit:
        """What this account's amounts count; balances are never summed across units."""
        return Unit.CASH if self in _CASH_ACCOUNTS else Unit.CREDITS


_CASH_ACCOUNTS = frozenset(
    {Account.CUSTOMER_RECEIVABLE_AUTHORIZED, Account.WASH, Account.BROKERAGE_CASH}
)


@dataclass(frozen=True)
class Posting:
    """One entry of one transaction group."""

    transaction_group_id: UUID
    purchase_id: UUID
    version: int
    namespace: str
    customer_id: str
    currency: str
    cost_basis: Decimal | None
    account: Account
    amount: Decimal
    at: datetime

    @property
    def unit(self) -> Unit:
        return self.account.unit


class Entry(NamedTuple):
    """One entry of one transaction group, without its routing: what ``Posting`` adds (whose
    purchase, customer and currency, when) is the same for every entry one event books, so a
    reader that only sums balances (the auditor's replay of millions of events) takes entries
    and the event's routing, and builds no object per entry."""

    transaction_group_id: UUID
    account: Account
    amount: Decimal


def postings_for(initiated: Initiated, event: PurchaseEvent) -> list[Posting]:
    """The balanced entries ``event`` books, for the purchase that ``initiated`` began."""
    return [
        Posting(
            transaction_group_id=group,
            purchase_id=event.originator_id,
            version=event.originator_version,
            namespace=initiated.namespace,
            customer_id=initiated.customer_id,
            currency=initiated.currency,
            cost_basis=initiated.cost_basis,
            account=account,
            amount=value,
            at=event.timestamp,
        )
        for group, account, value in entries_for(initiated, event)
    ]


def entries_for(initiated: Initiated, event: PurchaseEvent) -> list[Entry]:
    """``postings_for`` without the routing each of its postings repeats: the purchase's
    namespace, customer, currency and cost basis, the event's purchase, version and time."""
    amount = initiated.credit_amount
    match event:
        case Initiated():
            if event.credit_grant_transaction_group_id is None:
                return []  # an invoice purchase grants when its invoice exists
            group = event.credit_grant_transaction_group_id
            entries = _issue(group, amount)
            if event.settlement_type is SettlementType.PROMOTIONAL:
                # Free credit: issued and paid for at once, in the grant's group, with no cash:
                # the whole face value goes to brokerage.
                entries += _authorize(group, amount, Decimal(0))
            return _nonzero(entries)
        case InvoiceCreated():
            return _issue(event.credit_grant_transaction_group_id, amount)
        case PaymentAuthorized():
            return _nonzero(_authorize(event.transaction_group_id, amount, event.amount))
        case PaymentSettled():
            return _nonzero(_settle(event.transaction_group_id, _cash(initiated)))
        case PurchaseVoided():
            # The forfeited credit leaves FBO for breakage; the receivable is untouched, because
            # a void leaves the payment as it was (the customer still owes or paid in full).
            return _forfeit(event.transaction_group_id, event.amount)
        case PaymentFailed():
            return _nonzero(_fail(event, amount))
        case PaymentRefunded():
            group = event.transaction_group_id
            # The credits go back (face value to brokerage), the money goes back out (wash).
            return _nonzero(
                [
                    Entry(group, Account.CUSTOMER_FBO, -event.amount),
                    Entry(group, Account.BROKERAGE_CREDITS, event.amount),
                    Entry(group, Account.BROKERAGE_CASH, -event.cash_amount),
                    Entry(group, Account.WASH, event.cash_amount),
                ]
            )
        case _:
            assert_never(event)


def _fail(event: PaymentFailed, credit_amount: Decimal) -> list[Entry]:
    """A failed payment: the authorization (if any) is undone, the unconsumed credit is taken
    back and the credit forfeited earlier is no longer owed either, so the open receivable that
    remains is exactly what the customer consumed."""
    group = event.transaction_group_id
    entries = []
    if event.reversed_authorization is not None:
        entries += [
            Entry(group, Account.CUSTOMER_RECEIVABLE_AUTHORIZED, event.reversed_authorization),
            Entry(group, Account.BROKERAGE_CASH, -event.reversed_authorization),
            Entry(group, Account.BROKERAGE_CREDITS, credit_amount),
            Entry(group, Account.CUSTOMER_RECEIVABLE_OPEN, -credit_amount),
        ]
    return [
        *entries,
        Entry(group, Account.CUSTOMER_FBO, -event.revoked),
        Entry(group, Account.CUSTOMER_RECEIVABLE_OPEN, event.revoked),
        Entry(group, Account.BREAKAGE, -event.released),
        Entry(group, Account.CUSTOMER_RECEIVABLE_OPEN, event.released),
    ]


def _cash(initiated: Initiated) -> Decimal:
    """The money the purchase's payment moves (none for promotional credit)."""
    if initiated.cost_basis is None:
        return Decimal(0)
    return payment_amount(initiated.credit_amount, initiated.cost_basis, initiated.currency)


def _nonzero(entries: list[Entry]) -> list[Entry]:
    """An entry of zero moves nothing: a promotional grant has no cash side, a payment failure
    before any consumption leaves no receivable."""
    return [entry for entry in entries if entry.amount != 0]


def wallet_postings(event: WalletEvent, grant_terms: Callable[[UUID], Initiated]) -> list[Posting]:
    """The balanced entries a wallet event books, one group per grant it touches.

    ``grant_terms`` gives a grant's purchase terms (its cost basis is a route dimension). A grant,
    a void and a revocation are booked by their purchase's events, so their wallet events book
    nothing.
    """
    return [
        Posting(
            transaction_group_id=entry.transaction_group_id,
            purchase_id=grant,
            version=event.originator_version,
            namespace=event.namespace,
            customer_id=event.customer_id,
            currency=event.currency,
            cost_basis=grant_terms(grant).cost_basis,
            account=entry.account,
            amount=entry.amount,
            at=at,
        )
        for grant, at, entry in wallet_entries(event)
    ]


def wallet_entries(event: WalletEvent) -> list[tuple[UUID, datetime, Entry]]:
    """``wallet_postings`` without the routing: each entry with the grant (purchase id) it
    draws on and the time it is booked at; the event gives namespace, customer and currency."""
    match event:
        case GrantAdded() | GrantVoided() | GrantRevoked():
            return []
        case CreditsConsumed():
            entries = []
            for allocation in event.allocations:
                group = wallet_group_id(
                    event.originator_id,
                    LedgerStep.CONSUMPTION,
                    event.originator_version,
                    allocation.purchase_id,
                )
                grant, at = allocation.purchase_id, event.consumed_at
                entries += [
                    (grant, at, Entry(group, Account.CUSTOMER_FBO, -allocation.amount)),
                    (grant, at, Entry(group, Account.CUSTOMER_ACCRUED, allocation.amount)),
                ]
            return entries
        case GrantExpired():
            # Booked at the expiry's effective time, whenever it was recorded: balances as of
            # any instant after expires_at show the breakage.
            group = wallet_group_id(
                event.originator_id, LedgerStep.EXPIRY, event.originator_version, event.purchase_id
            )
            return [
                (event.purchase_id, event.effective_at, entry)
                for entry in _forfeit(group, event.amount)
            ]
        case _:
            assert_never(event)


def _forfeit(group: UUID, amount: Decimal) -> list[Entry]:
    return [Entry(group, Account.CUSTOMER_FBO, -amount), Entry(group, Account.BREAKAGE, amount)]


def _issue(group: UUID, amount: Decimal) -> list[Entry]:
    return [
        Entry(group, Account.CUSTOMER_FBO, amount),
        Entry(group, Account.CUSTOMER_RECEIVABLE_OPEN, -amount),
    ]


def _authorize(group: UUID, credits: Decimal, cash: Decimal) -> list[Entry]:
    """The open receivable (credits) becomes an authorized receivable of the payment's cash,
    re-denominated against brokerage (OpenMeter HEAD's currency conversion at authorization)."""
    return [
        Entry(group, Account.CUSTOMER_RECEIVABLE_OPEN, credits),
        Entry(group, Account.BROKERAGE_CREDITS, -credits),
        Entry(group, Account.BROKERAGE_CASH, cash),
        Entry(group, Account.CUSTOMER_RECEIVABLE_AUTHORIZED, -cash),
    ]


def _settle(group: UUID, cash: Decimal) -> list[Entry]:
    return [
        Entry(group, Account.WASH, -cash),
        Entry(group, Account.CUSTOMER_RECEIVABLE_AUTHORIZED, cash),
    ]


def balances(postings: list[Posting]) -> dict[tuple[str, str, str, Account], Decimal]:
    """Balances per (namespace, customer, currency, account): the fold of the postings."""
    totals: dict[tuple[str, str, str, Account], Decimal] = {}
    for posting in postings:
        key = (posting.namespace, posting.customer_id, posting.currency, posting.account)
        totals[key] = totals.get(key, Decimal(0)) + posting.amount
    return totals


def unbalanced_groups(postings: Iterable[Posting | Entry]) -> dict[UUID, Decimal]:
    """Transaction groups whose entries do not sum to zero in some unit (there should be none);
    the value is the first non-zero sum found."""
    sums: dict[tuple[UUID, Unit], Decimal] = {}
    for posting in postings:
        key = (posting.transaction_group_id, posting.account.unit)
        sums[key] = sums.get(key, Decimal(0)) + posting.amount
    unbalanced: dict[UUID, Decimal] = {}
    for (group, _unit), total in sums.items():
        if total != 0:
            unbalanced.setdefault(group, total)
    return unbalanced
