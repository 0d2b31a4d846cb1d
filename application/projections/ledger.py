"""The ledger read model: every posting, and a running balance per account.

Each entry carries the balance of its account just after it, in time order (at, position, line),
so the balance as of any instant T is exactly the running balance of the account's last entry at
or before T: one index lookup per account, never a sum over history.

Events are applied in log order, and the log order is the order of commits, not of clocks: an
event can be recorded after one that happened later (another writer's clock, a retried
command). Such a late entry is slotted in at its time, and its amount is carried into the
running balance of every entry after it, so "as of T" stays exact for every T.

What an event books comes from the domain's ``entries_for`` and ``wallet_entries`` (the entries
of ``postings_for`` and ``wallet_postings``, without the routing each posting repeats): the
catch-up books about two entries per event, and a ``Posting`` object per entry, only to be taken
apart again here, was a tenth of the model's time (issue 14).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

from creditledger.application.projections.projection import (
    Projection,
    PurchaseTerms,
    Recorded,
    WalletRecorded,
)
from creditledger.application.projections.rows import (
    AccountBalance,
    AccountKey,
    EntryOrder,
    LedgerEntry,
    ReadModelName,
    Tables,
    evolve,
)
from creditledger.application.projections.store import ReadModelTransaction, TableStore
from creditledger.domain.events import (
    GrantAdded,
    GrantRevoked,
    GrantVoided,
    Initiated,
    PurchaseEvent,
    WalletEvent,
)
from creditledger.domain.ledger import entries_for, wallet_entries

ZERO = Decimal(0)
BY_ACCOUNT_TIME = Tables.ENTRIES.index("by_account_time")


class Booking(NamedTuple):
    """One entry an event books, with its routing: what ``Posting`` holds, as a plain tuple."""

    key: AccountKey
    purchase_id: UUID
    version: int
    cost_basis: Decimal | None
    transaction_group_id: UUID
    amount: Decimal
    at: datetime


def purchase_bookings(initiated: Initiated, event: PurchaseEvent) -> list[Booking]:
    """What ``postings_for(initiated, event)`` books, in the same order."""
    namespace, customer, currency = initiated.namespace, initiated.customer_id, initiated.currency
    purchase, version, at = event.originator_id, event.originator_version, event.timestamp
    cost_basis = initiated.cost_basis
    return [
        Booking(
            (namespace, customer, currency, account),
            purchase,
            version,
            cost_basis,
            group,
            amount,
            at,
        )
        for group, account, amount in entries_for(initiated, event)
    ]


def wallet_bookings(event: WalletEvent, terms: PurchaseTerms) -> list[Booking]:
    """What ``wallet_postings(event, terms.of_purchase)`` books, in the same order."""
    namespace, customer, currency = event.namespace, event.customer_id, event.currency
    version = event.originator_version
    return [
        Booking(
            (namespace, customer, currency, entry.account),
            grant,
            version,
            terms.of_purchase(grant).cost_basis,
            entry.transaction_group_id,
            entry.amount,
            at,
        )
        for grant, at, entry in wallet_entries(event)
    ]


class LedgerProjection(Projection):
    name = ReadModelName.LEDGER
    # The purchase's own events book these: ``wallet_entries`` has no entry for them.
    ignores = frozenset({GrantAdded, GrantVoided, GrantRevoked})

    def __init__(self) -> None:
        self._bookings: dict[int, list[Booking]] = {}
        self._wallet_bookings: dict[int, list[Booking]] = {}

    def prefetch(
        self, batch: Sequence[Recorded], terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        # The bookings are worked out here once, so that only the accounts they touch are read.
        self._bookings = {
            recorded.position: purchase_bookings(terms.of(recorded.event), recorded.event)
            for recorded in batch
        }
        store.load(
            Tables.ACCOUNTS,
            {booking.key for bookings in self._bookings.values() for booking in bookings},
        )

    def prefetch_wallet(
        self, batch: Sequence[WalletRecorded], terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        self._wallet_bookings = {
            recorded.position: wallet_bookings(recorded.event, terms) for recorded in batch
        }
        store.load(
            Tables.ACCOUNTS,
            {booking.key for bookings in self._wallet_bookings.values() for booking in bookings},
        )

    def apply(self, recorded: Recorded, terms: Initiated, store: ReadModelTransaction) -> None:
        bookings = self._bookings.pop(recorded.position, None)
        if bookings is None:
            bookings = purchase_bookings(terms, recorded.event)
        for line, booking in enumerate(bookings):
            post(store, booking, recorded.position, line)

    def apply_wallet(
        self, recorded: WalletRecorded, terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        # A consumption books one group per grant it drew from; an expiry is booked at its
        # effective time (the grant's expires_at), slotted in before anything recorded later.
        bookings = self._wallet_bookings.pop(recorded.position, None)
        if bookings is None:
            bookings = wallet_bookings(recorded.event, terms)
        for line, booking in enumerate(bookings):
            post(store, booking, recorded.position, line)


def post(store: TableStore, booking: Booking, position: int, line: int) -> None:
    """Add the booking to its account as an entry, keeping every running balance exact."""
    key, at, amount = booking.key, booking.at, booking.amount
    account = store.get(Tables.ACCOUNTS, key)
    if account is None or (at, position, line) > (
        account.last_at,
        account.last_position,
        account.last_line,
    ):
        # The usual case: the newest entry of the account, in time as in the log.
        namespace, customer, currency, name = key
        balance_after = (account.balance if account is not None else ZERO) + amount
        store.insert(Tables.ENTRIES, _entry(booking, position, line, balance_after))
        store.put(
            Tables.ACCOUNTS,
            AccountBalance(
                namespace=namespace,
                customer_id=customer,
                currency=currency,
                account=name,
                balance=balance_after,
                entries=(account.entries if account is not None else 0) + 1,
                last_at=at,
                last_position=position,
                last_line=line,
            ),
        )
        return
    # Recorded after entries that happened later: slot it in at its time.
    order = (at, position, line)
    before = _entry_before(store, key, order)
    later = store.scan(Tables.ENTRIES, BY_ACCOUNT_TIME, key, above=order)
    balance_after = (before.balance_after if before is not None else ZERO) + amount
    store.insert(Tables.ENTRIES, _entry(booking, position, line, balance_after))
    for following in later:
        store.put(
            Tables.ENTRIES,
            evolve(following, balance_after=following.balance_after + amount),
        )
    store.put(
        Tables.ACCOUNTS,
        evolve(account, balance=account.balance + amount, entries=account.entries + 1),
    )


def _entry_before(store: TableStore, key: AccountKey, order: EntryOrder) -> LedgerEntry | None:
    """The account's last entry ordered before ``order``, if any."""
    found = store.scan(Tables.ENTRIES, BY_ACCOUNT_TIME, key, below=order, descending=True, limit=1)
    return found[0] if found else None


def _entry(booking: Booking, position: int, line: int, balance_after: Decimal) -> LedgerEntry:
    namespace, customer, currency, account = booking.key
    return LedgerEntry(
        purchase_id=booking.purchase_id,
        version=booking.version,
        line=line,
        position=position,
        transaction_group_id=booking.transaction_group_id,
        namespace=namespace,
        customer_id=customer,
        currency=currency,
        account=account,
        cost_basis=booking.cost_basis,
        amount=booking.amount,
        at=booking.at,
        balance_after=balance_after,
    )
