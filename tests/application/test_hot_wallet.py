"""A hot customer's wallet under racing consumers: nothing lost, nothing spent twice.

With group commit (SQLite, PostgreSQL), a consumption is decided on top of the wallet's
consumptions handed to the committer and not written yet, so many share a transaction; on
memory each is written under the wallet's lock. Either way, 32 threads spending a customer's
last credits never spend more than was granted, every refusal is ``insufficient_credit``, and the
wallet read back from the store is the one the answers describe. Two ledgers on one store (two
processes) collide on the wallet's versions and decide again: the same holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import cast
from uuid import UUID

import pytest

from creditledger.application.ledger import ConsumptionOutcome, CreditLedger
from creditledger.domain.errors import InsufficientCreditError
from creditledger.domain.events import WalletEvent, WalletEventBase
from creditledger.domain.identity import wallet_id_for
from creditledger.domain.wallet import CreditWallet, project_wallet
from tests.application.builders import NAMESPACE, consume
from tests.readmodels_support import initiate

THREADS = 32
PER_THREAD = 5
GRANTED = (Decimal(60), Decimal(40))


def _grant(ledger: CreditLedger) -> None:
    for amount in GRANTED:
        initiate(ledger, namespace=NAMESPACE, customer="hot", amount=str(amount))


def _race(ledgers: list[CreditLedger]) -> tuple[list[ConsumptionOutcome], list[Exception]]:
    """THREADS threads (dealt over the ledgers) each consume 1 credit PER_THREAD times."""
    outcomes: list[ConsumptionOutcome] = []
    errors: list[Exception] = []
    barrier = threading.Barrier(THREADS)

    def spend(thread: int) -> None:
        ledger = ledgers[thread % len(ledgers)]
        barrier.wait()
        for index in range(PER_THREAD):
            key = f"use-{thread}-{index}"
            try:
                command = consume("1", customer_id="hot", idempotency_key=key)
                outcomes.append(ledger.consume(command))
            except Exception as error:
                errors.append(error)

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, errors


def _stored_wallet(ledger: CreditLedger) -> CreditWallet:
    wallet_id = wallet_id_for(NAMESPACE, "hot", "USD")
    events = cast(list[WalletEvent], list(ledger.events.get(wallet_id)))
    assert all(isinstance(event, WalletEventBase) for event in events)
    assert [event.originator_version for event in events] == list(range(1, len(events) + 1))
    wallet = project_wallet(None, events)
    assert wallet is not None
    return wallet


def _check(
    ledger: CreditLedger, outcomes: list[ConsumptionOutcome], errors: list[Exception]
) -> None:
    granted = sum(GRANTED, Decimal(0))
    assert len(outcomes) == granted  # 1 credit each: exactly the credit granted, no more
    assert len(errors) == THREADS * PER_THREAD - granted
    assert {type(error) for error in errors} == {InsufficientCreditError}
    available = {e.available for e in errors if isinstance(e, InsufficientCreditError)}
    assert {Decimal(amount) for amount in available} == {Decimal(0)}
    wallet = _stored_wallet(ledger)
    consumed = [record.event for record in wallet.consumptions.values()]
    assert sum((event.amount for event in consumed), Decimal(0)) == granted
    # Every answer is a consumption the store holds, once; every stored one was answered.
    answered = sorted(outcome.consumption.id for outcome in outcomes)
    assert answered == sorted(event.consumption_id for event in consumed)
    assert len(set(answered)) == len(answered)
    assert ledger.customer_credits(NAMESPACE, "hot", "USD").balance == 0
    # The balances the answers gave are the store's, one per version, down to zero.
    assert sorted(o.consumption.balance_after for o in outcomes) == [
        Decimal(n) for n in range(int(granted))
    ]


def test_racing_consumers_of_one_wallet_spend_exactly_what_was_granted(
    ledger: CreditLedger,
) -> None:
    _grant(ledger)
    outcomes, errors = _race([ledger])
    _check(ledger, outcomes, errors)
    # A retry of each answered consumption replays it and writes nothing.
    head = ledger.head_position()
    key_of = _keys(ledger)
    for outcome in outcomes[:10]:
        again = ledger.consume(
            consume("1", customer_id="hot", idempotency_key=key_of[outcome.consumption.id])
        )
        assert again.replayed
        assert again.consumption == outcome.consumption
    assert ledger.head_position() == head


def _keys(ledger: CreditLedger) -> dict[UUID, str]:
    wallet = _stored_wallet(ledger)
    return {record.event.consumption_id: key for key, record in wallet.consumptions.items()}


def test_two_ledgers_on_one_store_racing_for_one_wallet_spend_exactly_what_was_granted(
    backend: str, open_store: Callable[[], CreditLedger]
) -> None:
    if backend == "memory":
        pytest.skip("two ledgers share a store on SQLite and PostgreSQL only")
    first, second = open_store(), open_store()
    _grant(first)
    outcomes, errors = _race([first, second])
    _check(first, outcomes, errors)
