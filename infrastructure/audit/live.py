"""The live state to compare an export with: today, the event store's own state.

Each purchase comes from the live query path (``CreditLedger.get_purchase``, which loads the
purchase's events through the library's event store), and balances are folded from each
purchase's events with ``creditledger.domain.ledger.postings_for`` and from each of their credit
wallets' events with ``wallet_postings`` (consumption, expiry), read through the same event store.
The state is taken as of the export's cut: a purchase or wallet that changed after the cut is read
at the version it had there, so writers running since the export do not show up as differences.

This is one provider of ``creditledger.application.audit.state.LiveLedger``; the read models
(projections) are another, with the same ``snapshot`` method.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from creditledger.application.audit.state import (
    AuditScope,
    BalanceKey,
    LedgerSnapshot,
    state_of_view,
)
from creditledger.application.ledger import CreditLedger
from creditledger.application.projections.rows import PurchaseState
from creditledger.domain.errors import LedgerError
from creditledger.domain.events import Initiated, PurchaseEvent, WalletEvent
from creditledger.domain.identity import wallet_id_for
from creditledger.domain.ledger import Posting, balances, postings_for, wallet_postings
from creditledger.infrastructure.audit.log import DEFAULT_BATCH_SIZE, last_position, read_log


class StoreLiveLedger:
    """``LiveLedger`` over the event store, through the live query path."""

    def __init__(self, ledger: CreditLedger, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self._ledger = ledger
        self._batch_size = batch_size
        self.unreadable: dict[UUID, str] = {}
        """Purchases the live path could not load, with the reason (reported as missing), and
        wallets whose postings could not be booked, with the reason (their balances differ)."""

    def snapshot(self, scope: AuditScope) -> LedgerSnapshot:
        versions_at_cut = self._versions_at_cut(scope.last_position)
        purchases: dict[UUID, PurchaseState] = {}
        totals: dict[BalanceKey, Decimal] = {}
        terms: dict[UUID, Initiated] = {}
        for purchase_id, namespace in self._purchases(scope):
            version = versions_at_cut.get(purchase_id)
            try:
                view = self._ledger.get_purchase(namespace, purchase_id, version=version)
            except LedgerError as error:
                self.unreadable[purchase_id] = f"{error.code}: {error.detail}"
                continue
            purchases[purchase_id] = state_of_view(view)
            if scope.balances:
                initiated = self._book(purchase_id, view.version, totals)
                if initiated is not None:
                    terms[purchase_id] = initiated
        if scope.balances:
            # Balances are whole only with the purchases' wallets' postings; every grant of
            # those wallets is one of these purchases (a wallet is one customer's in one
            # namespace), so their terms are at hand.
            wallets = {
                wallet_id_for(initiated.namespace, initiated.customer_id, initiated.currency)
                for initiated in terms.values()
            }
            for wallet_id in sorted(wallets):
                self._book_wallet(wallet_id, versions_at_cut.get(wallet_id), terms, totals)
        return LedgerSnapshot(purchases, totals, position=scope.last_position)

    def _purchases(self, scope: AuditScope) -> list[tuple[UUID, str]]:
        """Every purchase initiated at or below the cut, in the scope."""
        found = []
        recorder, mapper = self._ledger.recorder, self._ledger.mapper
        position = 0
        while position < scope.last_position:
            notifications = recorder.select_notifications(
                start=position,
                limit=self._batch_size,
                stop=scope.last_position,
                topics=(Initiated.TOPIC,),
                inclusive_of_start=False,
            )
            if not notifications:
                break
            position = notifications[-1].id
            for notification in notifications:
                purchase_id = notification.originator_id
                if not isinstance(purchase_id, UUID) or notification.originator_version != 1:
                    continue
                if scope.purchase_ids is not None and purchase_id not in scope.purchase_ids:
                    continue
                event = mapper.to_domain_event(notification)
                if not isinstance(event, Initiated):  # pragma: no cover - filtered by topic
                    continue
                if scope.namespace is None or event.namespace == scope.namespace:
                    found.append((purchase_id, event.namespace))
        return found

    def _versions_at_cut(self, cut: int) -> dict[UUID, int]:
        """For purchases written to after the cut: the version they had at the cut."""
        versions: dict[UUID, int] = {}
        for batch in read_log(
            self._ledger, after=cut, up_to=last_position(self._ledger), batch_size=self._batch_size
        ):
            for entry in batch:
                # Entries come in log order, so a purchase's first entry after the cut is its
                # earliest version there.
                versions.setdefault(UUID(entry.aggregate_id), entry.version - 1)
        return versions

    def _book(
        self, purchase_id: UUID, version: int, totals: dict[BalanceKey, Decimal]
    ) -> Initiated | None:
        """Add the purchase's postings up to ``version``; its terms, if it has any."""
        events: list[PurchaseEvent] = [
            event
            for event in self._ledger.events.get(purchase_id, lte=version)
            if isinstance(event, PurchaseEvent)
        ]
        initiated = events[0] if events else None
        if not isinstance(initiated, Initiated):
            return None
        for event in events:
            _add(totals, postings_for(initiated, event))
        return initiated

    def _book_wallet(
        self,
        wallet_id: UUID,
        version: int | None,
        terms: dict[UUID, Initiated],
        totals: dict[BalanceKey, Decimal],
    ) -> None:
        """Add the wallet's postings up to ``version`` (None: all of them)."""
        postings: list[Posting] = []
        for event in self._ledger.events.get(wallet_id, lte=version):
            if not isinstance(event, WalletEvent):  # pragma: no cover - a wallet's own events
                continue
            try:
                postings += wallet_postings(event, terms.__getitem__)
            except KeyError as missing:
                self.unreadable[wallet_id] = (
                    f"wallet v{event.originator_version} draws on purchase {missing}, which the "
                    "live path could not load"
                )
                return
        _add(totals, postings)


def _add(totals: dict[BalanceKey, Decimal], postings: list[Posting]) -> None:
    for (namespace, customer, currency, account), amount in balances(postings).items():
        key = BalanceKey(namespace, customer, currency, account.value)
        totals[key] = totals.get(key, Decimal(0)) + amount
