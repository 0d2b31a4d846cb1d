"""The ledger read model: every posting, and a running balance per account.

Each entry carries the balance of its account just after it, in time order (at, position, line),
so the balance as of any instant T is exactly the running balance of the account's last entry at
or before T: one index lookup per account, never a sum over history.

Events are applied in log order, and the log order is the order of commits, not of clocks: an
event can be recorded after one that happened later (another writer's clock, a retried
command). Such a late entry is slotted in at its time, and its amount is carried into the
running balance of every entry after it, so "as of T" stays exact for every T.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

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
from creditledger.domain.events import Initiated
from creditledger.domain.ledger import Posting, postings_for, wallet_postings

ZERO = Decimal(0)
BY_ACCOUNT_TIME = Tables.ENTRIES.index("by_account_time")


class LedgerProjection(Projection):
    name = ReadModelName.LEDGER

    def __init__(self) -> None:
        self._postings: dict[int, list[Posting]] = {}
        self._wallet_postings: dict[int, list[Posting]] = {}

    def prefetch(
        self, batch: Sequence[Recorded], terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        # The postings are worked out here once, so that only the accounts they touch are read.
        self._postings = {
            recorded.position: postings_for(terms.of(recorded.event), recorded.event)
            for recorded in batch
        }
        store.load(
            Tables.ACCOUNTS,
            {
                (posting.namespace, posting.customer_id, posting.currency, posting.account)
                for postings in self._postings.values()
                for posting in postings
            },
        )

    def prefetch_wallet(
        self, batch: Sequence[WalletRecorded], terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        self._wallet_postings = {
            recorded.position: wallet_postings(recorded.event, terms.of_purchase)
            for recorded in batch
        }
        store.load(
            Tables.ACCOUNTS,
            {
                (posting.namespace, posting.customer_id, posting.currency, posting.account)
                for postings in self._wallet_postings.values()
                for posting in postings
            },
        )

    def apply(self, recorded: Recorded, terms: Initiated, store: ReadModelTransaction) -> None:
        postings = self._postings.pop(recorded.position, None)
        if postings is None:
            postings = postings_for(terms, recorded.event)
        for line, posting in enumerate(postings):
            post(store, posting, recorded.position, line)

    def apply_wallet(
        self, recorded: WalletRecorded, terms: PurchaseTerms, store: ReadModelTransaction
    ) -> None:
        # A consumption books one group per grant it drew from; an expiry is booked at its
        # effective time (the grant's expires_at), slotted in before anything recorded later.
        postings = self._wallet_postings.pop(recorded.position, None)
        if postings is None:
            postings = wallet_postings(recorded.event, terms.of_purchase)
        for line, posting in enumerate(postings):
            post(store, posting, recorded.position, line)


def post(store: TableStore, posting: Posting, position: int, line: int) -> None:
    """Add the posting to its account as an entry, keeping every running balance exact."""
    key = (posting.namespace, posting.customer_id, posting.currency, posting.account)
    order = (posting.at, position, line)
    account = store.get(Tables.ACCOUNTS, key)
    if account is None or order > (account.last_at, account.last_position, account.last_line):
        # The usual case: the newest entry of the account, in time as in the log.
        balance_after = (account.balance if account is not None else ZERO) + posting.amount
        store.insert(Tables.ENTRIES, _entry(posting, position, line, balance_after))
        store.put(
            Tables.ACCOUNTS,
            AccountBalance(
                namespace=posting.namespace,
                customer_id=posting.customer_id,
                currency=posting.currency,
                account=posting.account,
                balance=balance_after,
                entries=(account.entries if account is not None else 0) + 1,
                last_at=posting.at,
                last_position=position,
                last_line=line,
            ),
        )
        return
    # Recorded after entries that happened later: slot it in at its time.
    before = _entry_before(store, key, order)
    later = store.scan(Tables.ENTRIES, BY_ACCOUNT_TIME, key, above=order)
    balance_after = (before.balance_after if before is not None else ZERO) + posting.amount
    store.insert(Tables.ENTRIES, _entry(posting, position, line, balance_after))
    for following in later:
        store.put(
            Tables.ENTRIES,
            evolve(following, balance_after=following.balance_after + posting.amount),
        )
    store.put(
        Tables.ACCOUNTS,
        evolve(account, balance=account.balance + posting.amount, entries=account.entries + 1),
    )


def _entry_before(store: TableStore, key: AccountKey, order: EntryOrder) -> LedgerEntry | None:
    """The account's last entry ordered before ``order``, if any."""
    found = store.scan(Tables.ENTRIES, BY_ACCOUNT_TIME, key, below=order, descending=True, limit=1)
    return found[0] if found else None


def _entry(posting: Posting, position: int, line: int, balance_after: Decimal) -> LedgerEntry:
    return LedgerEntry(
        purchase_id=posting.purchase_id,
        version=posting.version,
        line=line,
        position=position,
        transaction_group_id=posting.transaction_group_id,
        namespace=posting.namespace,
        customer_id=posting.customer_id,
        currency=posting.currency,
        account=posting.account,
        cost_basis=posting.cost_basis,
        amount=posting.amount,
        at=posting.at,
        balance_after=balance_after,
    )
