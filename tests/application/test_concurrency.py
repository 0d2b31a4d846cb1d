"""Optimistic concurrency: racing writers never authorize twice; conflicts are retried, boundedly.

Races run for many rounds with the racers released together by a barrier, so that they really
load the same version and collide on saving. The deterministic tests use a clock that lets a
second writer in between the first writer's load and its save.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from uuid import UUID

import pytest

from creditledger.application.clock import Clock
from creditledger.application.ledger import CreditLedger, Outcome
from creditledger.application.purchase_view import PurchaseView
from creditledger.domain.errors import (
    ConcurrentModificationError,
    PaymentAlreadyAuthorizedError,
    PaymentAlreadySettledError,
)
from creditledger.infrastructure.bootstrap import open_ledger
from creditledger.infrastructure.settings import Settings
from tests.application.builders import NAMESPACE, authorize, external_purchase, settle
from tests.application.racers import authorize_each, race, race_processes
from tests.clock import FixedClock

ROUNDS = 20
PROCESS_ROUNDS = 10


@pytest.fixture
def racing_ledgers(
    backend: str, ledger: CreditLedger, open_store: Callable[[], CreditLedger]
) -> tuple[CreditLedger, CreditLedger]:
    """Two ledgers on one store (on memory, where a store belongs to its ledger, the same one)."""
    if backend == "memory":
        return ledger, ledger
    return ledger, open_store()


def test_two_racing_authorizations_record_exactly_one_payment_authorization(
    racing_ledgers: tuple[CreditLedger, CreditLedger],
) -> None:
    first, second = racing_ledgers
    for _ in range(ROUNDS):
        purchase = first.initiate(external_purchase()).purchase

        results = race([_authorizing(first, purchase.id), _authorizing(second, purchase.id)])

        assert sorted(result.error or "ok" for result in results) == [
            "ok",
            "payment_already_authorized",
        ]
        history = first.purchase_history(NAMESPACE, purchase.id)
        assert [entry.type for entry in history] == ["Initiated", "PaymentAuthorized"]


def test_two_racing_initiates_with_one_key_create_exactly_one_purchase(
    racing_ledgers: tuple[CreditLedger, CreditLedger],
) -> None:
    first, second = racing_ledgers
    for round_number in range(ROUNDS):
        key = f"order-{round_number}"
        log_before = first.recorder.max_notification_id() or 0

        results = race([_initiating(first, key), _initiating(second, key)])

        outcomes = [_outcome(result.value, result.error) for result in results]
        assert outcomes[0].purchase == outcomes[1].purchase
        assert sorted(outcome.replayed for outcome in outcomes) == [False, True]
        # Counted, not subtracted: a PostgreSQL sequence skips the ids of failed inserts.
        written = first.recorder.select_notifications(
            start=log_before, limit=10, inclusive_of_start=False
        )
        # One purchase, its grant made spendable in the customer's wallet in the same write.
        assert [notification.topic for notification in written] == [
            "creditledger.purchase:Initiated",
            "creditledger.wallet:GrantAdded",
        ]


def _authorizing(ledger: CreditLedger, purchase_id: UUID) -> Callable[[], PurchaseView]:
    return lambda: ledger.authorize(authorize(purchase_id)).purchase


def _initiating(ledger: CreditLedger, key: str) -> Callable[[], Outcome]:
    return lambda: ledger.initiate(external_purchase(idempotency_key=key))


def _outcome(value: Outcome | None, error: str | None) -> Outcome:
    if value is None:
        pytest.fail(f"a racing initiate was refused: {error}")
    return value


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_two_processes_starting_and_authorizing_together_authorize_each_purchase_once(
    ledger: CreditLedger, store_url: str
) -> None:
    purchases = [ledger.initiate(external_purchase()).purchase.id for _ in range(PROCESS_ROUNDS)]

    outcomes = race_processes(
        2, authorize_each, (store_url, NAMESPACE, purchases), expected_results=2 * PROCESS_ROUNDS
    )

    by_purchase: dict[str, list[str]] = {}
    for reported_id, outcome in outcomes:
        by_purchase.setdefault(reported_id, []).append(outcome)
    for purchase in purchases:
        assert sorted(by_purchase[str(purchase)]) == ["ok", "payment_already_authorized"]
        types = Counter(entry.type for entry in ledger.purchase_history(NAMESPACE, purchase))
        assert types == {"Initiated": 1, "PaymentAuthorized": 1}


class InterleavingClock:
    """The test clock, except that once armed, its next reading first lets another writer in.

    Every command reads the clock after loading the purchase and before saving, so the other
    writer's events land exactly in between: a race, made deterministic.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._interloper: Callable[[], object] | None = None

    def arm(self, interloper: Callable[[], object]) -> None:
        self._interloper = interloper

    def now(self) -> datetime:
        interloper, self._interloper = self._interloper, None
        if interloper is not None:
            interloper()
        return self._clock.now()


@pytest.fixture
def interleaving_clock(clock: FixedClock) -> InterleavingClock:
    return InterleavingClock(clock)


@pytest.fixture
def open_with_attempts(
    store_url: str, interleaving_clock: InterleavingClock
) -> Iterator[Callable[[int], CreditLedger]]:
    opened: list[CreditLedger] = []

    def open_one(max_attempts: int) -> CreditLedger:
        settings = Settings(database_url=store_url, max_attempts=max_attempts)
        ledger = open_ledger(settings=settings, clock=interleaving_clock)
        opened.append(ledger)
        return ledger

    yield open_one
    for ledger in opened:
        ledger.close()


def _other_writer(
    backend: str, ledger: CreditLedger, open_store: Callable[[], CreditLedger]
) -> CreditLedger:
    return ledger if backend == "memory" else open_store()


def test_when_the_retries_run_out_the_caller_gets_a_concurrent_modification(
    backend: str,
    open_with_attempts: Callable[[int], CreditLedger],
    open_store: Callable[[], CreditLedger],
    interleaving_clock: InterleavingClock,
) -> None:
    ledger = open_with_attempts(1)
    purchase = ledger.initiate(external_purchase()).purchase
    other = _other_writer(backend, ledger, open_store)
    interleaving_clock.arm(lambda: other.authorize(authorize(purchase.id)).purchase)

    with pytest.raises(ConcurrentModificationError) as refused:
        ledger.authorize(authorize(purchase.id))

    assert refused.value.code == "concurrent_modification"
    history = ledger.purchase_history(NAMESPACE, purchase.id)
    assert [entry.type for entry in history] == ["Initiated", "PaymentAuthorized"]


def test_a_conflicting_authorization_is_retried_and_refused_as_already_authorized(
    backend: str,
    open_with_attempts: Callable[[int], CreditLedger],
    open_store: Callable[[], CreditLedger],
    interleaving_clock: InterleavingClock,
) -> None:
    ledger = open_with_attempts(2)
    purchase = ledger.initiate(external_purchase()).purchase
    other = _other_writer(backend, ledger, open_store)
    interleaving_clock.arm(lambda: other.authorize(authorize(purchase.id)).purchase)

    with pytest.raises(PaymentAlreadyAuthorizedError):
        ledger.authorize(authorize(purchase.id))

    history = ledger.purchase_history(NAMESPACE, purchase.id)
    assert [entry.type for entry in history] == ["Initiated", "PaymentAuthorized"]


def test_a_settlement_that_lost_a_race_to_another_settlement_is_refused_as_already_settled(
    backend: str,
    open_with_attempts: Callable[[int], CreditLedger],
    open_store: Callable[[], CreditLedger],
    interleaving_clock: InterleavingClock,
) -> None:
    ledger = open_with_attempts(2)
    purchase = ledger.initiate(external_purchase()).purchase
    other = _other_writer(backend, ledger, open_store)
    interleaving_clock.arm(lambda: other.settle(settle(purchase.id)).purchase)

    with pytest.raises(PaymentAlreadySettledError):
        ledger.settle(settle(purchase.id))

    history = ledger.purchase_history(NAMESPACE, purchase.id)
    assert [entry.type for entry in history] == ["Initiated", "PaymentAuthorized", "PaymentSettled"]


@pytest.mark.parametrize("attempts", [1, 2])
def test_a_conflicting_initiate_with_the_same_key_is_retried_and_replays_the_winner(
    backend: str,
    open_with_attempts: Callable[[int], CreditLedger],
    open_store: Callable[[], CreditLedger],
    interleaving_clock: InterleavingClock,
    attempts: int,
) -> None:
    # The write comes first and the read only after it is refused, so even one attempt is
    # enough to find the winner's answer.
    ledger = open_with_attempts(attempts)
    other = _other_writer(backend, ledger, open_store)
    command = external_purchase(idempotency_key="order-1")
    created: list[PurchaseView] = []
    interleaving_clock.arm(lambda: created.append(other.initiate(command).purchase))

    outcome = ledger.initiate(command)

    assert outcome.replayed
    assert [outcome.purchase] == created
    assert ledger.get_purchase(NAMESPACE, outcome.purchase.id) == outcome.purchase
    history = ledger.purchase_history(NAMESPACE, outcome.purchase.id)
    assert [entry.type for entry in history] == ["Initiated"]


def test_an_authorization_saved_after_the_purchase_was_loaded_wins_over_a_stale_settle(
    backend: str,
    open_with_attempts: Callable[[int], CreditLedger],
    open_store: Callable[[], CreditLedger],
    interleaving_clock: InterleavingClock,
) -> None:
    # The settle loaded a pending purchase (so it meant to authorize and settle); after the
    # conflict it reloads, finds the payment authorized, and only settles.
    ledger = open_with_attempts(2)
    purchase = ledger.initiate(external_purchase()).purchase
    other = _other_writer(backend, ledger, open_store)
    interleaving_clock.arm(lambda: other.authorize(authorize(purchase.id)).purchase)

    settled = ledger.settle(settle(purchase.id)).purchase

    assert settled.status == "final"
    history = ledger.purchase_history(NAMESPACE, purchase.id)
    assert [entry.type for entry in history] == ["Initiated", "PaymentAuthorized", "PaymentSettled"]
