"""The ledger read model: balances per account, now and as of any instant, on every store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.readmodels import CustomerBalances
from creditledger.domain.errors import ValidationFailedError
from creditledger.domain.ledger import Account
from creditledger.infrastructure.projections.service import ReadModelService
from tests.clock import FixedClock
from tests.readmodels_support import (
    authorize,
    folded_balances,
    initiate,
    logged_postings,
    read_models,
    settle,
)

FBO = Account.CUSTOMER_FBO
OPEN = Account.CUSTOMER_RECEIVABLE_OPEN
AUTHORIZED = Account.CUSTOMER_RECEIVABLE_AUTHORIZED
WASH = Account.WASH
CREDITS = Account.BROKERAGE_CREDITS
CASH = Account.BROKERAGE_CASH
# Credit neither spent, expired nor voided: these payment scenarios leave both at zero.
UNSPENT = {Account.CUSTOMER_ACCRUED: Decimal(0), Account.BREAKAGE: Decimal(0)}
UNPAID = {CREDITS: Decimal(0), CASH: Decimal(0)}


@pytest.fixture
def views(ledger: CreditLedger) -> Iterator[ReadModelService]:
    with read_models(ledger) as service:
        yield service


def balances_now(views: ReadModelService, customer: str = "cust-1") -> CustomerBalances:
    views.runner.catch_up()
    return views.read_models.balances("acme", customer)


def usd(balances: CustomerBalances) -> dict[Account, Decimal]:
    return {account: balances.balance("USD", account) for account in Account}


def test_openmeter_ledger_scenario_books_each_step_and_keeps_fbo_at_one(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    # 1 USD of credit at cost basis 0.005, priority 20 (OpenMeter's credit grant test). The
    # payment is round(1 x 0.005) = 0.01: from authorization on, the receivable counts that cash,
    # re-denominated from the credit against the two brokerage accounts (issue 13).
    purchase = initiate(ledger, amount="1", cost_basis="0.005", priority=20)
    assert usd(balances_now(views)) == {
        FBO: 1,
        OPEN: -1,
        AUTHORIZED: 0,
        WASH: 0,
        **UNPAID,
        **UNSPENT,
    }

    clock.advance(60)
    authorize(ledger, purchase)
    assert usd(balances_now(views)) == {
        FBO: 1,
        OPEN: 0,
        AUTHORIZED: Decimal("-0.01"),
        WASH: 0,
        CREDITS: -1,
        CASH: Decimal("0.01"),
        **UNSPENT,
    }

    clock.advance(60)
    settle(ledger, purchase)
    # Wash holds exactly the cash the provider moved, not the credit's face value.
    assert usd(balances_now(views)) == {
        FBO: 1,
        OPEN: 0,
        AUTHORIZED: 0,
        WASH: Decimal("-0.01"),
        CREDITS: -1,
        CASH: Decimal("0.01"),
        **UNSPENT,
    }


def test_balances_as_of_a_past_instant_show_the_ledger_as_it_stood_then(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    created = clock.now()
    purchase = initiate(ledger, amount="1", cost_basis="0.005")
    authorized = clock.advance(60)
    authorize(ledger, purchase)
    clock.advance(60)
    settle(ledger, purchase)
    views.runner.catch_up()
    read = views.read_models

    before = read.balances("acme", "cust-1", as_of=created - timedelta(microseconds=1))
    assert before.balances == []
    at_creation = read.balances("acme", "cust-1", as_of=created)
    assert usd(at_creation) == {FBO: 1, OPEN: -1, AUTHORIZED: 0, WASH: 0, **UNPAID, **UNSPENT}
    just_before_authorization = authorized - timedelta(microseconds=1)
    assert usd(read.balances("acme", "cust-1", as_of=just_before_authorization)) == usd(at_creation)
    assert usd(read.balances("acme", "cust-1", as_of=authorized)) == {
        FBO: 1,
        OPEN: 0,
        AUTHORIZED: Decimal("-0.01"),
        WASH: 0,
        CREDITS: -1,
        CASH: Decimal("0.01"),
        **UNSPENT,
    }


def test_an_entry_recorded_late_is_counted_at_its_own_time(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    start = clock.now()
    first = initiate(ledger, amount="10")
    clock.advance(100)
    initiate(ledger, amount="20")
    views.runner.catch_up()
    # Another writer whose clock is behind records a purchase stamped between the two.
    clock.set(start + timedelta(seconds=50))
    initiate(ledger, amount="5")
    clock.set(start + timedelta(seconds=200))
    authorize(ledger, first)
    views.runner.catch_up()

    postings = logged_postings(ledger)
    for seconds in (0, 49, 50, 99, 100, 150, 200, 300):
        moment = start + timedelta(seconds=seconds)
        expected = folded_balances(postings, "acme", "cust-1", as_of=moment)
        found = views.read_models.balances("acme", "cust-1", as_of=moment)
        assert {(line.currency, line.account): line.balance for line in found.balances} == {
            (currency, account): expected.get((currency, account), Decimal(0))
            for currency in {currency for currency, _ in expected}
            for account in Account
        }, f"as of +{seconds}s"
    # Only the first purchase (10 credits at 0.5) is authorized: its receivable is 5.00 of cash.
    assert usd(views.read_models.balances("acme", "cust-1")) == {
        FBO: 35,
        OPEN: -25,
        AUTHORIZED: Decimal("-5.00"),
        WASH: 0,
        CREDITS: -10,
        CASH: Decimal("5.00"),
        **UNSPENT,
    }


def test_promotional_credit_is_issued_and_paid_for_at_once_with_no_cash(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    initiate(ledger, amount="25", settlement="promotional")
    # Free credit moves no money: its face value goes to brokerage_credits, nothing to wash.
    assert usd(balances_now(views)) == {
        FBO: 25,
        OPEN: 0,
        AUTHORIZED: 0,
        WASH: 0,
        CREDITS: -25,
        CASH: 0,
        **UNSPENT,
    }


def test_balances_are_kept_per_namespace_customer_and_currency(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    initiate(ledger, amount="10")
    initiate(ledger, amount="7", currency="EUR")
    initiate(ledger, amount="3", customer="cust-2")
    initiate(ledger, amount="4", namespace="globex")
    found = balances_now(views)
    assert found.balance("USD", FBO) == 10
    assert found.balance("EUR", FBO) == 7
    assert {line.currency for line in found.balances} == {"EUR", "USD"}
    assert balances_now(views, "cust-2").balance("USD", FBO) == 3
    assert views.read_models.balances("globex", "cust-1").balance("USD", FBO) == 4
    assert views.read_models.balances("acme", "nobody").balances == []


def test_every_balance_is_shown_in_the_currencys_minor_units(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    initiate(ledger, amount="1")
    initiate(ledger, amount="500", currency="JPY")
    found = balances_now(views)
    assert str(found.balance("USD", WASH)) == "0.00"
    assert str(found.balance("JPY", FBO)) == "500"


def test_balances_as_of_a_naive_time_are_refused(views: ReadModelService) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        views.read_models.balances("acme", "cust-1", as_of=datetime(2026, 1, 1))
    assert refused.value.codes == {"timezone_required"}
