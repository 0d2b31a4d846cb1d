"""The live state to compare an export with: the event store's own state.

Each purchase comes from the live query path (``CreditLedger.purchase_events``, the events
``get_purchase`` loads through the library's event store, folded by the repository's projector
and shown by ``PurchaseView``; not the wallet's credit amounts, which a row does not hold and
which would cost a fold of the wallet's history per purchase), and balances are folded from each
purchase's events with ``creditledger.domain.ledger.entries_for`` and from each of their credit
wallets' events with ``wallet_entries`` (consumption, expiry), read through the same event store.
The state is taken as of the export's cut: a purchase or wallet that changed after the cut is read
at the version it had there, so writers running since the export do not show up as differences.

This is one provider of ``creditledger.application.audit.against_live.LiveLedger``; the read
models (projections) are another.

Memory: the purchases are found in id order a page at a time (their first events, by keyset
pagination over the events table's primary key: ``select_first_events`` on the SQLite and
PostgreSQL recorders) and read one at a time. Held whole: the balances and the set of wallets
(both grow with customers, not with the log), the version at the cut of each aggregate written to
after the cut (it grows with what happened since the export), and the purchases the live path
could not read (they grow with what differs). A wallet's events are read a page at a time. The
memory store keeps every event in memory anyway: its purchases are found by sorting their ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from functools import partial
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from creditledger.application.audit.against_live import LivePurchase, LiveReading, LiveRow
from creditledger.application.audit.state import AuditScope, BalanceKey, state_of_view
from creditledger.application.ledger import CreditLedger
from creditledger.application.purchase_view import PurchaseView
from creditledger.domain.errors import CreditPurchaseNotFoundError, LedgerError
from creditledger.domain.events import Initiated, PurchaseEvent, WalletEvent
from creditledger.domain.identity import wallet_id_for
from creditledger.domain.ledger import Entry, entries_for, wallet_entries
from creditledger.domain.purchase import CreditPurchase, project_purchase
from creditledger.infrastructure.audit.log import (
    DEFAULT_BATCH_SIZE,
    append_function_recorder,
    last_position,
    read_log,
)
from creditledger.infrastructure.audit.wallet_replays import (
    WalletReplay,
    replay_wallet,
    wallet_events,
)
from creditledger.infrastructure.persistence.sqlite import AppendOnlySQLiteRecorder


class StoreLiveLedger:
    """``LiveLedger`` over the event store, through the live query path."""

    def __init__(self, ledger: CreditLedger, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self._ledger = ledger
        self._batch_size = batch_size
        self.unreadable: dict[UUID, str] = {}
        """Purchases the live path could not load, with the reason (reported as missing), and
        wallets whose postings could not be booked, with the reason (their balances differ)."""

    @contextmanager
    def reading(self, scope: AuditScope) -> Iterator[LiveReading]:
        yield _StoreAtCut(
            self._ledger,
            scope,
            self._versions_at_cut(scope.last_position),
            self.unreadable,
            self._batch_size,
        )

    def _versions_at_cut(self, cut: int) -> dict[UUID, int]:
        """For aggregates written to after the cut: the version they had at the cut."""
        versions: dict[UUID, int] = {}
        for batch in read_log(
            self._ledger, after=cut, up_to=last_position(self._ledger), batch_size=self._batch_size
        ):
            for entry in batch:
                # Entries come in log order, so an aggregate's first entry after the cut is its
                # earliest version there.
                versions.setdefault(UUID(entry.aggregate_id), entry.version - 1)
        return versions


class _StoreAtCut:
    """``LiveReading`` of the event store at a cut."""

    wallet_postings = True

    def __init__(
        self,
        ledger: CreditLedger,
        scope: AuditScope,
        versions_at_cut: dict[UUID, int],
        unreadable: dict[UUID, str],
        batch_size: int,
    ) -> None:
        self._ledger = ledger
        self._scope = scope
        self._versions_at_cut = versions_at_cut
        self._unreadable = unreadable
        self._batch_size = batch_size
        self._totals: dict[BalanceKey, Decimal] = {}
        self._wallets: set[UUID] = set()
        """The wallets of the purchases booked (one per namespace, customer and currency)."""
        self._replays: dict[UUID, WalletReplay] = {}
        """How each wallet of the purchases read replays (one per namespace, customer and
        currency)."""

    def purchases(self) -> Iterator[LivePurchase]:
        for purchase_id, namespace in _initiations(self._ledger, self._scope, self._batch_size):
            read = _Once(partial(self._read, purchase_id, namespace))
            yield LivePurchase(purchase_id, read)
            if self._scope.balances:
                read()  # every purchase's postings count, compared or not

    def _read(self, purchase_id: UUID, namespace: str) -> LiveRow | None:
        version = self._versions_at_cut.get(purchase_id)
        try:
            events = self._ledger.purchase_events(namespace, purchase_id, version=version)
            purchase = project_purchase(None, events)
            if purchase is None:  # pragma: no cover - purchase_events finds at least one
                raise CreditPurchaseNotFoundError(f"credit purchase {purchase_id} not found")
            moment = events[-1].timestamp if version is not None else self._ledger.clock.now()
            self._refuse_as_get_purchase_would(purchase, namespace, version, moment)
            # Without its wallet's grant: a row compares what the purchase records, never what
            # its wallet consumed or expired (the balances do), and ``get_purchase`` would fold
            # the wallet's whole history for each of its purchases (quadratic in them).
            view = PurchaseView.of(purchase)
        except LedgerError as error:
            self._unreadable[purchase_id] = f"{error.code}: {error.detail}"
            return None
        if self._scope.balances:
            self._book(events)
        return LiveRow(state_of_view(view))

    def _refuse_as_get_purchase_would(
        self, purchase: CreditPurchase, namespace: str, version: int | None, moment: datetime
    ) -> None:
        """Raise what ``get_purchase`` raises when the purchase's wallet, as of ``moment``, does
        not replay; the wallet is folded once for all its purchases (``wallet_replays``)."""
        intent = purchase.intent
        wallet_id = wallet_id_for(intent.namespace, intent.customer_id, intent.currency)
        replay = self._replays.get(wallet_id)
        if replay is None:
            replay = self._replays[wallet_id] = replay_wallet(self._ledger, wallet_id)
        if not replay.in_time_order:
            # The fold of the history (a query "now" would start from a wallet this process
            # holds; the audit reads what the log says).
            if version is None:
                self._ledger.get_purchase(namespace, purchase.id, as_of=moment)
            else:
                self._ledger.get_purchase(namespace, purchase.id, version=version)
            return
        refusal = replay.refusal_at(moment)
        if refusal is not None:
            raise refusal

    def _book(self, events: list[PurchaseEvent]) -> None:
        """Add the purchase's postings, and note its wallet."""
        initiated = events[0] if events else None
        if not isinstance(initiated, Initiated):
            return
        routing = (initiated.namespace, initiated.customer_id, initiated.currency)
        for event in events:
            _add(self._totals, routing, entries_for(initiated, event))
        self._wallets.add(wallet_id_for(*routing))

    def balances(self) -> Mapping[BalanceKey, Decimal]:
        # Balances are whole only with the purchases' wallets' postings; every grant of those
        # wallets is one of the purchases booked (a wallet is one customer's in one namespace).
        for wallet_id in sorted(self._wallets):
            self._book_wallet(wallet_id, self._versions_at_cut.get(wallet_id))
        self._wallets.clear()
        return self._totals

    def _book_wallet(self, wallet_id: UUID, version: int | None) -> None:
        """Add the wallet's postings up to ``version`` (None: all of them), unless one draws on
        a purchase the live path could not load (none are added then: the balances differ)."""
        totals: dict[BalanceKey, Decimal] = {}
        for event in wallet_events(self._ledger, wallet_id, up_to=version):
            if not isinstance(event, WalletEvent):  # pragma: no cover - a wallet's own events
                continue
            routing = (event.namespace, event.customer_id, event.currency)
            booked = wallet_entries(event)
            for grant in dict.fromkeys(grant for grant, _, _ in booked):
                if not self._loaded(grant):
                    self._unreadable[wallet_id] = (
                        f"wallet v{event.originator_version} draws on purchase {grant!r}, which "
                        "the live path could not load"
                    )
                    return
            _add(totals, routing, [entry for _, _, entry in booked])
        for key, amount in totals.items():
            self._totals[key] = self._totals.get(key, Decimal(0)) + amount

    def _loaded(self, purchase_id: UUID) -> bool:
        """Whether the purchase was among those booked: initiated in the scope (a wallet at the
        cut draws only on grants made at or before it) and read by the live path."""
        if purchase_id in self._unreadable:
            return False
        stored = self._ledger.recorder.select_events(purchase_id, lte=1)
        if not stored or stored[0].topic != Initiated.TOPIC:
            return False
        namespace = self._scope.namespace
        if namespace is None:
            return True
        initiated = self._ledger.mapper.to_domain_event(stored[0])
        return isinstance(initiated, Initiated) and initiated.namespace == namespace


class _Once:
    """A read done at most once, its answer kept."""

    def __init__(self, read: Callable[[], LiveRow | None]) -> None:
        self._read: Callable[[], LiveRow | None] | None = read
        self._row: LiveRow | None = None

    def __call__(self) -> LiveRow | None:
        if self._read is not None:
            self._row, self._read = self._read(), None
        return self._row


def _initiations(
    ledger: CreditLedger, scope: AuditScope, batch_size: int
) -> Iterator[tuple[UUID, str]]:
    """Every purchase initiated at or below the cut, in the scope's namespace, in ascending id
    order: (id, namespace)."""
    mapper = ledger.mapper
    for purchase_id, state in _first_initiated_rows(ledger, scope.last_position, batch_size):
        event = mapper.to_domain_event(
            StoredEvent(
                originator_id=purchase_id,
                originator_version=1,
                topic=Initiated.TOPIC,
                state=state,
            )
        )
        if not isinstance(event, Initiated):  # pragma: no cover - selected by topic
            continue
        if scope.namespace is None or event.namespace == scope.namespace:
            yield purchase_id, event.namespace


def _first_initiated_rows(
    ledger: CreditLedger, cut: int, batch_size: int
) -> Iterator[tuple[UUID, bytes]]:
    """(purchase id, stored state of its ``Initiated``) in ascending id order."""
    recorder = ledger.recorder
    if isinstance(recorder, AppendOnlySQLiteRecorder):
        after: str | None = None
        while rows := recorder.select_first_events(after, cut, batch_size, Initiated.TOPIC):
            yield from ((UUID(stored_id), state) for stored_id, state in rows)
            after = rows[-1][0]
        return
    if (postgres := append_function_recorder(recorder)) is not None:
        after_id: UUID | None = None
        while found := postgres.select_first_events(after_id, cut, batch_size, Initiated.TOPIC):
            yield from found
            after_id = found[-1][0]
        return
    # The memory store: every event is in memory already; its ids are sorted here.
    initiated = []
    position = 0
    while position < cut:
        notifications = recorder.select_notifications(
            start=position,
            limit=batch_size,
            stop=cut,
            topics=(Initiated.TOPIC,),
            inclusive_of_start=False,
        )
        if not notifications:
            break
        position = notifications[-1].id
        initiated += [
            (notification.originator_id, notification.state)
            for notification in notifications
            if isinstance(notification.originator_id, UUID) and notification.originator_version == 1
        ]
    yield from sorted(initiated, key=lambda found: found[0])


def _add(
    totals: dict[BalanceKey, Decimal], routing: tuple[str, str, str], entries: list[Entry]
) -> None:
    namespace, customer, currency = routing
    for _, account, amount in entries:
        key = BalanceKey(namespace, customer, currency, account.value)
        totals[key] = totals.get(key, Decimal(0)) + amount
