"""What the projections need from a store, inside one view transaction.

The projections say what each event does to a view as calls on these interfaces; the
infrastructure implements them over SQLite, PostgreSQL or memory. Everything a projection writes
in one transaction commits together with the new tracked positions, or not at all.

``load_*`` methods are hints: they fetch many rows in one round trip before a batch is applied,
so that the per-event lookups that follow are answered from memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol
from uuid import UUID

from creditledger.application.projections.rows import (
    AccountBalance,
    AccountKey,
    EntryOrder,
    LedgerEntry,
    PurchaseRow,
    ReceivableRow,
    RevenueKey,
    RevenueRow,
)


class PurchaseStore(Protocol):
    def load_purchases(self, purchase_ids: Iterable[UUID]) -> None: ...

    def purchase(self, purchase_id: UUID) -> PurchaseRow | None: ...

    def put_purchase(self, row: PurchaseRow) -> None: ...


class LedgerStore(Protocol):
    def load_accounts(self, keys: Iterable[AccountKey]) -> None: ...

    def account(self, key: AccountKey) -> AccountBalance | None: ...

    def put_account(self, balance: AccountBalance) -> None: ...

    def add_entry(self, entry: LedgerEntry) -> None: ...

    def entry_before(self, key: AccountKey, order: EntryOrder) -> LedgerEntry | None:
        """The account's last entry ordered before ``order``, if any."""
        ...

    def entries_after(self, key: AccountKey, order: EntryOrder) -> list[LedgerEntry]:
        """The account's entries ordered after ``order``, oldest first."""
        ...

    def replace_entry(self, entry: LedgerEntry) -> None:
        """Store a new running balance for an entry already added."""
        ...


class ReceivableStore(Protocol):
    def load_receivables(self, purchase_ids: Iterable[UUID]) -> None: ...

    def receivable(self, purchase_id: UUID) -> ReceivableRow | None: ...

    def put_receivable(self, row: ReceivableRow) -> None: ...


class RevenueStore(Protocol):
    def load_revenue(self, keys: Iterable[RevenueKey]) -> None: ...

    def revenue(self, key: RevenueKey) -> RevenueRow | None: ...

    def put_revenue(self, row: RevenueRow) -> None: ...


class ReadModelTransaction(PurchaseStore, LedgerStore, ReceivableStore, RevenueStore, Protocol):
    """One view transaction: every read model's rows, and the positions they are tracked at."""

    def positions(self) -> Mapping[str, int]:
        """The tracked positions of this transaction's read models, locked until it ends."""
        ...

    def set_positions(self, positions: Mapping[str, int]) -> None: ...
