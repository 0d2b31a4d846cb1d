"""Spending credit: burn-down order, feature filters, refusals, retries and races."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import (
    IdempotencyKeyReusedError,
    InsufficientCreditError,
    ValidationFailedError,
)
from tests.application.builders import (
    NAMESPACE,
    consume,
    external_purchase,
    nothing_written,
    promotional_purchase,
)
from tests.application.racers import consume_each, race, race_processes
from tests.clock import START, FixedClock


def test_a_consumption_draws_by_priority_then_expiry_then_grant_time(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    no_expiry = ledger.initiate(promotional_purchase(credit_amount="10", priority=5)).purchase
    clock.advance()
    late = ledger.initiate(
        promotional_purchase(credit_amount="10", priority=5, expires_at=START + timedelta(days=30))
    ).purchase
    clock.advance()
    soon = ledger.initiate(
        promotional_purchase(credit_amount="10", priority=5, expires_at=START + timedelta(days=3))
    ).purchase
    clock.advance()
    urgent = ledger.initiate(promotional_purchase(credit_amount="4", priority=1)).purchase

    consumption = ledger.consume(consume("25")).consumption

    assert [(a.purchase_id, a.amount) for a in consumption.allocations] == [
        (urgent.id, Decimal("4")),
        (soon.id, Decimal("10")),
        (late.id, Decimal("10")),
        (no_expiry.id, Decimal("1")),
    ]
    assert consumption.balance_after == Decimal("9")
    credits = ledger.customer_credits(NAMESPACE, "cust-1", "USD")
    assert [(g.purchase_id, g.remaining) for g in credits.grants] == [(no_expiry.id, Decimal("9"))]


def test_grants_alike_in_everything_but_time_are_drawn_oldest_first(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    first = ledger.initiate(promotional_purchase(credit_amount="3")).purchase
    clock.advance()
    second = ledger.initiate(promotional_purchase(credit_amount="3")).purchase

    consumption = ledger.consume(consume("4")).consumption

    assert [(a.purchase_id, a.amount) for a in consumption.allocations] == [
        (first.id, Decimal("3")),
        (second.id, Decimal("1")),
    ]


def test_credit_is_spendable_from_the_grant_on_before_payment(ledger: CreditLedger) -> None:
    pending = ledger.initiate(external_purchase(credit_amount="50")).purchase
    assert pending.status == "active.payment.pending"

    ledger.consume(consume("20"))

    purchase = ledger.get_purchase(NAMESPACE, pending.id)
    assert (purchase.consumed, purchase.remaining) == (Decimal("20"), Decimal("30"))
    assert purchase.status == "active.payment.pending"


def test_feature_filters_decide_which_grants_a_consumption_may_draw_from(
    ledger: CreditLedger,
) -> None:
    for_api = ledger.initiate(
        promotional_purchase(credit_amount="5", priority=1, feature_filters=["api_calls"])
    ).purchase
    anything = ledger.initiate(promotional_purchase(credit_amount="5", priority=2)).purchase

    api = ledger.consume(consume("6", feature_key="api_calls")).consumption
    assert [(a.purchase_id, a.amount) for a in api.allocations] == [
        (for_api.id, Decimal("5")),
        (anything.id, Decimal("1")),
    ]
    # Without a feature (or with another one) only unfiltered credit can be spent.
    ledger.initiate(promotional_purchase(credit_amount="5", feature_filters=["storage"]))
    with pytest.raises(InsufficientCreditError) as refused:
        ledger.consume(consume("5"))
    assert Decimal(refused.value.available) == 4


def test_a_consumption_beyond_the_spendable_total_is_refused_and_writes_nothing(
    ledger: CreditLedger,
) -> None:
    ledger.initiate(promotional_purchase(credit_amount="10"))
    ledger.consume(consume("7.5"))

    with nothing_written(ledger), pytest.raises(InsufficientCreditError) as refused:
        ledger.consume(consume("2.51"))

    assert refused.value.code == "insufficient_credit"
    assert refused.value.available == "2.50"
    assert "2.50 available" in refused.value.detail
    assert ledger.customer_credits(NAMESPACE, "cust-1", "USD").balance == Decimal("2.50")


def test_a_customer_without_credit_has_nothing_available(ledger: CreditLedger) -> None:
    with nothing_written(ledger), pytest.raises(InsufficientCreditError) as refused:
        ledger.consume(consume("1", customer_id="nobody"))
    assert Decimal(refused.value.available) == 0


def test_the_amount_is_rounded_once_to_the_currency(ledger: CreditLedger) -> None:
    ledger.initiate(promotional_purchase(credit_amount="10"))

    consumption = ledger.consume(consume("1.005")).consumption

    assert consumption.amount == Decimal("1.01")
    assert consumption.allocations[0].amount == Decimal("1.01")


def test_every_problem_of_a_consumption_is_listed_and_nothing_is_written(
    ledger: CreditLedger,
) -> None:
    ledger.initiate(promotional_purchase(credit_amount="10"))

    with nothing_written(ledger), pytest.raises(ValidationFailedError) as refused:
        ledger.consume(consume("0.001", feature_key=" ", customer_id="", usage_reference=""))

    assert {error.field for error in refused.value.errors} == {
        "amount",
        "feature",
        "customer_id",
        "reference",
    }
    with nothing_written(ledger), pytest.raises(ValidationFailedError) as refused:
        ledger.consume(consume("1", currency="usd"))
    assert [error.field for error in refused.value.errors] == ["currency"]


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-0", "-1", "1e30", 1.5])
def test_amounts_that_are_not_plain_positive_decimals_are_refused(
    ledger: CreditLedger, amount: object
) -> None:
    ledger.initiate(promotional_purchase(credit_amount="10"))
    with nothing_written(ledger), pytest.raises(ValidationFailedError) as refused:
        ledger.consume(consume(amount))
    assert [error.field for error in refused.value.errors] == ["amount"]


def test_a_retry_with_the_same_key_returns_the_first_answer_and_spends_once(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    ledger.initiate(promotional_purchase(credit_amount="10"))
    first = ledger.consume(consume("4", idempotency_key="usage-1"))
    clock.advance()
    ledger.consume(consume("1"))

    retry = ledger.consume(consume("4", idempotency_key="usage-1"))

    assert retry.replayed
    assert not first.replayed
    assert retry.consumption == first.consumption
    assert ledger.customer_credits(NAMESPACE, "cust-1", "USD").balance == Decimal("5")
    with nothing_written(ledger), pytest.raises(IdempotencyKeyReusedError):
        ledger.consume(consume("3", idempotency_key="usage-1"))


def test_a_retry_after_a_restart_still_replays(
    backend: str, open_store: Callable[[], CreditLedger]
) -> None:
    if backend == "memory":
        pytest.skip("an in-memory store does not outlive its ledger: restart is meaningless")
    before = open_store()
    before.initiate(promotional_purchase(credit_amount="10"))
    first = before.consume(consume("4", idempotency_key="usage-1")).consumption

    after = open_store()
    retry = after.consume(consume("4", idempotency_key="usage-1"))

    assert retry.replayed
    assert retry.consumption == first
    assert after.customer_credits(NAMESPACE, "cust-1", "USD").balance == Decimal("6")


def test_a_wallet_written_by_another_ledger_is_read_before_refusing(
    backend: str, open_store: Callable[[], CreditLedger]
) -> None:
    if backend == "memory":
        pytest.skip("an in-memory store belongs to one ledger")
    first, second = open_store(), open_store()
    first.initiate(promotional_purchase(credit_amount="5"))
    second.consume(consume("5"))  # second now caches an empty wallet
    first.initiate(promotional_purchase(credit_amount="3"))  # first's grant is news to second

    consumption = second.consume(consume("3")).consumption

    assert consumption.balance_after == Decimal("0")


RACERS = 16


def test_racing_consumptions_never_spend_more_than_was_granted(
    backend: str, ledger: CreditLedger, open_store: Callable[[], CreditLedger]
) -> None:
    ledgers = [ledger] if backend == "memory" else [ledger, open_store()]
    ledger.initiate(promotional_purchase(credit_amount="10"))

    def consuming(which: CreditLedger) -> Callable[[], object]:
        return lambda: which.consume(consume("1"))

    results = race([consuming(ledgers[n % len(ledgers)]) for n in range(RACERS)])

    succeeded = [result for result in results if result.error is None]
    assert len(succeeded) == 10
    assert {result.error for result in results if result.error is not None} == {
        "insufficient_credit"
    }
    history = ledger.credit_history(NAMESPACE, "cust-1", "USD")
    assert [entry.balance_after for entry in history] == [
        Decimal(10 - n) for n in range(len(history))
    ]
    assert min(entry.balance_after for entry in history) == 0


PROCESSES, ATTEMPTS_EACH = 4, 10


def test_processes_racing_for_the_last_credits_never_spend_more_than_was_granted(
    backend: str, ledger: CreditLedger, store_url: str
) -> None:
    if backend == "memory":
        pytest.skip("an in-memory store cannot be shared between processes")
    ledger.initiate(promotional_purchase(credit_amount="25"))

    outcomes = race_processes(
        PROCESSES,
        consume_each,
        (store_url, (NAMESPACE, "cust-1", ATTEMPTS_EACH)),
        expected_results=PROCESSES * ATTEMPTS_EACH,
    )

    spent = [consumption for consumption, outcome in outcomes if outcome == "ok"]
    assert len(spent) == 25
    assert len(set(spent)) == 25
    assert {outcome for _, outcome in outcomes if outcome != "ok"} == {"insufficient_credit"}
    history = ledger.credit_history(NAMESPACE, "cust-1", "USD")
    assert [entry.sequence for entry in history] == list(range(1, 27))
    assert history[-1].balance_after == 0
    # The racers ran on the system clock, after this test's fixed one.
    now = datetime.now(UTC)
    assert ledger.customer_credits(NAMESPACE, "cust-1", "USD", as_of=now).balance == 0
