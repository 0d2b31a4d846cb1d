"""Payment failures, settlements and refunds racing each other and the customer's consumptions.

The purchase and the wallet are changed in one transaction under the wallet's lock, and decided
again from the store when another writer (a thread, another ledger on the store, another process)
wrote first. Whatever the interleaving: a failure takes back exactly what was not spent, nothing
is spent after it, a settle and a failure never both win, and a refund never takes back more
than remains. Few rounds: each round is a real race (released by a barrier), and the invariants
are checked exactly on each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar, cast
from uuid import UUID

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import ConcurrentModificationError, InsufficientCreditError
from creditledger.domain.events import (
    CreditsConsumed,
    GrantRevoked,
    WalletEvent,
    WalletEventBase,
)
from creditledger.domain.identity import wallet_id_for
from creditledger.domain.ledger import Account
from creditledger.domain.wallet import CreditWallet, project_wallet
from tests.application.builders import (
    NAMESPACE,
    consume,
    external_purchase,
    fail,
    refund,
    settle,
)
from tests.application.racers import pay_or_spend, race, race_processes
from tests.clock import FixedClock
from tests.readmodels_support import logged_balances

T = TypeVar("T")

ROUNDS = 3
CLIENT_RETRIES = 20
CONSUMERS = 3
SPENDS = 15
GRANTED = Decimal(100)


@pytest.fixture
def racing_ledgers(
    backend: str, ledger: CreditLedger, open_store: Callable[[], CreditLedger]
) -> tuple[CreditLedger, CreditLedger]:
    """Two ledgers on one store (on memory, where a store belongs to its ledger, the same one)."""
    if backend == "memory":
        return ledger, ledger
    return ledger, open_store()


def spending(ledger: CreditLedger, customer: str) -> Callable[[], int]:
    """Spend 1 credit SPENDS times; how many were spent (the others found no credit left)."""

    def spend() -> int:
        spent = 0
        for _ in range(SPENDS):
            try:
                ledger.consume(consume("1", customer_id=customer))
                spent += 1
            except InsufficientCreditError:
                pass
        return spent

    return spend


def retried(command: Callable[[], T]) -> Callable[[], T]:
    """The command as a client sends it: again after ``concurrent_modification`` (the ledger's
    "someone kept writing first, try again"), a bounded number of times."""

    def send() -> T:
        for _ in range(CLIENT_RETRIES - 1):
            try:
                return command()
            except ConcurrentModificationError:
                continue
        return command()

    return send


def failing(ledger: CreditLedger, purchase_id: UUID) -> Callable[[], str]:
    return retried(lambda: ledger.fail_payment(fail(purchase_id)).purchase.status)


def settling(ledger: CreditLedger, purchase_id: UUID) -> Callable[[], str]:
    return retried(lambda: ledger.settle(settle(purchase_id)).purchase.status)


def refunding(ledger: CreditLedger, purchase_id: UUID, amount: str | None) -> Callable[[], str]:
    return retried(lambda: ledger.refund(refund(purchase_id, amount)).purchase.status)


def stored_wallet(ledger: CreditLedger, customer: str) -> tuple[CreditWallet, list[WalletEvent]]:
    events = cast(
        list[WalletEvent], list(ledger.events.get(wallet_id_for(NAMESPACE, customer, "USD")))
    )
    assert all(isinstance(event, WalletEventBase) for event in events)
    wallet = project_wallet(None, events)
    assert wallet is not None
    return wallet, events


def check_failure(ledger: CreditLedger, customer: str, purchase_id: UUID, spent: int) -> None:
    """The failure took back exactly what was not spent; nothing was spent after it."""
    failed = ledger.get_purchase(NAMESPACE, purchase_id)
    assert failed.status == "final.payment_failed"
    failure = failed.realizations.payment_failure
    assert failure is not None
    assert failure.released == 0
    assert failure.revoked + failure.owed == GRANTED
    assert failure.owed == spent
    wallet, events = stored_wallet(ledger, customer)
    grant = wallet.grants[purchase_id]
    assert (grant.consumed, grant.revoked, grant.remaining) == (
        Decimal(spent),
        failure.revoked,
        Decimal(0),
    )
    revocations = [n for n, e in enumerate(events) if isinstance(e, GrantRevoked)]
    consumptions = [n for n, e in enumerate(events) if isinstance(e, CreditsConsumed)]
    if failure.revoked:
        assert len(revocations) == 1
        assert all(n < revocations[0] for n in consumptions)
    assert ledger.customer_credits(NAMESPACE, customer, "USD").balance == 0
    balances = logged_balances(ledger, customer=customer)
    assert balances[Account.CUSTOMER_FBO] == GRANTED - grant.consumed - grant.revoked == 0
    assert balances[Account.CUSTOMER_RECEIVABLE_OPEN] == -spent
    assert balances[Account.CUSTOMER_ACCRUED] == spent


def test_a_failure_racing_consumptions_takes_back_exactly_what_was_not_spent(
    racing_ledgers: tuple[CreditLedger, CreditLedger],
) -> None:
    first, second = racing_ledgers
    for round_ in range(ROUNDS):
        customer = f"racer-{round_}"
        command = external_purchase(credit_amount=str(GRANTED), customer_id=customer)
        purchase = first.initiate(command).purchase
        spenders = [spending((first, second)[n % 2], customer) for n in range(CONSUMERS)]

        results = race([*spenders, failing(second, purchase.id)])

        assert [result.error for result in results] == [None] * len(results)
        spent = sum(result.value for result in results if isinstance(result.value, int))
        check_failure(first, customer, purchase.id, spent)


def test_a_settle_racing_a_failure_has_exactly_one_winner(
    racing_ledgers: tuple[CreditLedger, CreditLedger],
) -> None:
    first, second = racing_ledgers
    outcomes: Counter[str] = Counter()
    for round_ in range(ROUNDS * 2):
        customer = f"payer-{round_}"
        authorized = external_purchase(customer_id=customer, initial_status="authorized")
        purchase = first.initiate(authorized).purchase

        results = race([settling(first, purchase.id), failing(second, purchase.id)])

        winners = [result.value for result in results if result.error is None]
        errors = [result.error for result in results if result.error is not None]
        history = [e.type for e in first.purchase_history(NAMESPACE, purchase.id)]
        balance = first.customer_credits(NAMESPACE, customer, "USD").balance
        if winners == ["final"]:
            assert errors == ["payment_already_settled"]
            assert history == ["Initiated", "PaymentAuthorized", "PaymentSettled"]
            assert balance == purchase.credit_amount
        else:
            assert winners == ["final.payment_failed"]
            assert errors == ["payment_already_failed"]
            assert history == ["Initiated", "PaymentAuthorized", "PaymentFailed"]
            assert balance == 0
        outcomes.update(str(winner) for winner in winners)
    assert sum(outcomes.values()) == ROUNDS * 2


@pytest.mark.parametrize("amount", [None, "40"], ids=["all-remaining", "partial"])
def test_a_refund_racing_consumptions_never_takes_back_more_than_remains(
    racing_ledgers: tuple[CreditLedger, CreditLedger], amount: str | None
) -> None:
    first, second = racing_ledgers
    for round_ in range(ROUNDS):
        customer = f"refunded-{round_}"
        command = external_purchase(
            credit_amount=str(GRANTED), customer_id=customer, initial_status="settled"
        )
        purchase = first.initiate(command).purchase
        spenders = [spending((first, second)[n % 2], customer) for n in range(CONSUMERS + 2)]

        results = race([*spenders, refunding(second, purchase.id, amount)])

        refusals = [result.error for result in results if result.error is not None]
        assert refusals in ([], ["refund_exceeds_remaining"]), refusals
        spent = sum(result.value for result in results if isinstance(result.value, int))
        found = first.get_purchase(NAMESPACE, purchase.id)
        wallet, _ = stored_wallet(first, customer)
        grant = wallet.grants[purchase.id]
        assert grant.consumed == found.consumed == spent
        assert grant.revoked == found.refunded
        assert found.remaining == grant.remaining == GRANTED - spent - found.refunded >= 0
        if amount is None:
            # Everything that remained when the refund was decided: nothing left after.
            assert found.remaining == 0
        elif not refusals:
            assert found.refunded == Decimal(amount)
        balances = logged_balances(first, customer=customer)
        assert balances[Account.CUSTOMER_FBO] == found.remaining
        refunds = found.realizations.refunds
        cash = refunds.cash_amount if refunds is not None else Decimal(0)
        assert balances[Account.WASH] == cash - Decimal("50.00")


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_a_failure_racing_consumptions_in_other_processes_takes_back_what_was_not_spent(
    ledger: CreditLedger, store_url: str, clock: FixedClock
) -> None:
    purchase = ledger.initiate(external_purchase(credit_amount="100", customer_id="procs")).purchase
    plan = (NAMESPACE, "procs", str(purchase.id), 40)

    outcomes = race_processes(
        3,
        pay_or_spend,
        (store_url, plan),
        expected_results=81,
        roles=["consume", "consume", "fail"],
    )

    clock.set(datetime.now(UTC))  # the racing processes ran on the system clock
    counted = Counter((role.partition("#")[0], outcome) for role, outcome in outcomes)
    assert counted[("fail", "ok")] == 1
    assert set(counted) <= {("consume", "ok"), ("consume", "insufficient_credit"), ("fail", "ok")}
    check_failure(ledger, "procs", purchase.id, counted[("consume", "ok")])


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_a_settle_and_a_failure_in_two_processes_have_exactly_one_winner(
    ledger: CreditLedger, store_url: str
) -> None:
    for round_ in range(2):
        command = external_purchase(customer_id=f"p-{round_}", initial_status="authorized")
        purchase = ledger.initiate(command).purchase
        plan = (NAMESPACE, f"p-{round_}", str(purchase.id), 0)

        outcomes = race_processes(
            2, pay_or_spend, (store_url, plan), expected_results=2, roles=["settle", "fail"]
        )

        assert sorted((role.partition("#")[0], outcome) for role, outcome in outcomes) in (
            [("fail", "ok"), ("settle", "payment_already_failed")],
            [("fail", "payment_already_settled"), ("settle", "ok")],
        )
        types = Counter(e.type for e in ledger.purchase_history(NAMESPACE, purchase.id))
        assert types["PaymentSettled"] + types["PaymentFailed"] == 1
