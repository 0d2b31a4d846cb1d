"""The bare eventsourcing library doing the same work as creditledger: the baseline of each row.

A plain ``Aggregate`` with an ``@event`` created event and two ``@event`` methods, the
library's default mapper and JSON transcoder, and an ``Application`` that reads its store
settings from the environment creditledger derives for the same kind of store (and from
nothing else: a stray ``POSTGRES_*`` variable in the shell must not change one side only).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import Environment, EnvType

from bench.stores import Store
from bench.timing import LifecycleRun, Timing, check_event_count, time_callers

CREDIT_AMOUNT = Decimal("100.12")
COST_BASIS = Decimal("0.5")
PAYMENT = Decimal("50.06")
EVENTS_PER_LIFECYCLE = 3
"""The bare library's lifecycle: 3 saves of 1 event (creditledger's is 4 events: see
``bench.lifecycles.LEDGER_EVENTS_PER_LIFECYCLE``)."""
COMMANDS_PER_LIFECYCLE = 3
"""Initiate, authorize, settle: on both sides."""


class BarePurchase(Aggregate):
    """The three steps of a purchase, as the library's own idiom writes them."""

    @event("Initiated")
    def __init__(
        self, customer_id: str, currency: str, credit_amount: Decimal, cost_basis: Decimal
    ) -> None:
        self.customer_id = customer_id
        self.currency = currency
        self.credit_amount = credit_amount
        self.cost_basis = cost_basis
        self.status = "active.payment.pending"

    @event("PaymentAuthorized")
    def authorize_payment(self, amount: Decimal) -> None:
        self.amount = amount
        self.status = "active.payment.authorized"

    @event("PaymentSettled")
    def settle_payment(self) -> None:
        self.status = "final"


class BareLedger(Application[UUID]):
    """The library's Application, configured only by the environment it is given."""

    name = "baseline"

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        return Environment(name, dict(env or {}))

    def initiate(self, index: int) -> UUID:
        purchase = BarePurchase(f"customer-{index}", "USD", CREDIT_AMOUNT, COST_BASIS)
        self.save(purchase)
        return purchase.id

    def authorize(self, purchase_id: UUID) -> None:
        # A command handler loads what it changes: the same read creditledger does.
        purchase: BarePurchase = self.repository.get(purchase_id)
        purchase.authorize_payment(PAYMENT)
        self.save(purchase)

    def settle(self, purchase_id: UUID) -> None:
        purchase: BarePurchase = self.repository.get(purchase_id)
        purchase.settle_payment()
        self.save(purchase)

    def lifecycle(self, index: int) -> UUID:
        """Initiate, authorize, settle: 3 saves of 1 event each, the last two after a load."""
        purchase_id = self.initiate(index)
        self.authorize(purchase_id)
        self.settle(purchase_id)
        return purchase_id


def open_bare_ledger(store: Store, pool_size: int = 5) -> BareLedger:
    return BareLedger(store.library_env(pool_size))


def library_lifecycles(
    store: Store, purchases: int, callers: int, warmup: int, *, replay: bool = False
) -> LifecycleRun:
    """Full purchase lifecycles through the bare library, by ``callers`` threads."""
    ids: dict[int, UUID] = {}

    def lifecycle(index: int) -> None:
        ids[index] = app.lifecycle(index)

    with open_bare_ledger(store, pool_size=callers) as app:
        # Warm up with as many callers as will be timed, so every pooled connection is open.
        time_callers(lifecycle, range(-warmup, 0), callers)
        seconds = time_callers(lifecycle, range(purchases), callers)
        check_event_count(
            app.recorder.max_notification_id() or 0,
            EVENTS_PER_LIFECYCLE * (purchases + warmup),
            "library lifecycles",
        )
        replayed = library_replay(app, list(ids.values())) if replay else None
    timing = Timing(
        purchases,
        EVENTS_PER_LIFECYCLE * purchases,
        seconds,
        commands=COMMANDS_PER_LIFECYCLE * purchases,
    )
    return LifecycleRun(timing, replayed)


def library_appends(store: Store, events: int, threads: int, per_save: int, warmup: int) -> Timing:
    """Appends of new one-event purchases, ``per_save`` of them per save (one transaction)."""

    def save_batch(index: int) -> None:
        app.save(
            *(
                BarePurchase(f"customer-{index}-{n}", "USD", CREDIT_AMOUNT, COST_BASIS)
                for n in range(per_save)
            )
        )

    saves = events // per_save
    with open_bare_ledger(store, pool_size=threads) as app:
        time_callers(save_batch, range(-warmup, 0), threads)
        seconds = time_callers(save_batch, range(saves), threads)
        check_event_count(
            app.recorder.max_notification_id() or 0,
            per_save * (saves + warmup),
            "library appends",
        )
    return Timing(saves, saves * per_save, seconds, commands=saves)


def library_replay(app: BareLedger, purchase_ids: Sequence[UUID]) -> Timing:
    """``repository.get`` of every purchase: each one's events read, decoded and applied."""
    started = time.perf_counter()
    settled = 0
    for purchase_id in purchase_ids:
        purchase: BarePurchase = app.repository.get(purchase_id)
        settled += purchase.status == "final"
    seconds = time.perf_counter() - started
    if settled != len(purchase_ids):
        msg = f"library replay: {settled} of {len(purchase_ids)} purchases came back settled"
        raise RuntimeError(msg)
    return Timing(len(purchase_ids), EVENTS_PER_LIFECYCLE * len(purchase_ids), seconds)
