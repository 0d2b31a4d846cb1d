"""Double-entry postings: what each purchase event books in the ledger (domain reference §7.2).

A pure function of the purchase's initiation facts and one event, so postings are never stored
as a second truth: any reader, an auditor offline included, derives the same entries from the
events. Amounts are in credit units of the purchase currency; every transaction group sums to zero.
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
    GrantVoided,
    Initiated,
    PaymentAuthorized,
    PaymentSettled,
    PurchaseEvent,
    PurchaseVoided,
    WalletEvent,
)
from creditledger.domain.identity import LedgerStep, wallet_group_id
from creditledger.domain.status import SettlementType


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
            group = event.credit_grant_transaction_group_id
            entries = _issue(group, amount)
            if event.settlement_type is SettlementType.PROMOTIONAL:
                # Free credit: issued, authorized and settled at once, in the grant's group.
                entries += _authorize(group, amount) + _settle(group, amount)
            return entries
        case PaymentAuthorized():
            return _authorize(event.transaction_group_id, amount)
        case PaymentSettled():
            return _settle(event.transaction_group_id, amount)
        case PurchaseVoided():
            # The forfeited credit leaves FBO for breakage; the receivable is untouched, because
            # a void leaves the payment as it was (the customer still owes or paid in full).
            return _forfeit(event.transaction_group_id, event.amount)
        case _:
            assert_never(event)


def wallet_postings(event: WalletEvent, grant_terms: Callable[[UUID], Initiated]) -> list[Posting]:
    """The balanced entries a wallet event books, one group per grant it touches.

    ``grant_terms`` gives a grant's purchase terms (its cost basis is a route dimension). A grant
    and a void are booked by their purchase's events, so their wallet events book nothing.
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
        case GrantAdded() | GrantVoided():
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


def _authorize(group: UUID, amount: Decimal) -> list[Entry]:
    return [
        Entry(group, Account.CUSTOMER_RECEIVABLE_AUTHORIZED, -amount),
        Entry(group, Account.CUSTOMER_RECEIVABLE_OPEN, amount),
    ]


def _settle(group: UUID, amount: Decimal) -> list[Entry]:
    return [
        Entry(group, Account.WASH, -amount),
        Entry(group, Account.CUSTOMER_RECEIVABLE_AUTHORIZED, amount),
    ]


def balances(postings: list[Posting]) -> dict[tuple[str, str, str, Account], Decimal]:
    """Balances per (namespace, customer, currency, account): the fold of the postings."""
    totals: dict[tuple[str, str, str, Account], Decimal] = {}
    for posting in postings:
        key = (posting.namespace, posting.customer_id, posting.currency, posting.account)
        totals[key] = totals.get(key, Decimal(0)) + posting.amount
    return totals


def unbalanced_groups(postings: Iterable[Posting | Entry]) -> dict[UUID, Decimal]:
    """Transaction groups whose entries do not sum to zero (there should be none)."""
    sums: dict[UUID, Decimal] = {}
    for posting in postings:
        sums[posting.transaction_group_id] = (
            sums.get(posting.transaction_group_id, Decimal(0)) + posting.amount
        )
    return {group: total for group, total in sums.items() if total != 0}
