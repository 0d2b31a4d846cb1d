"""Receivables and settled revenue: what customers owe and since when; what they paid, per day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.readmodels import ReceivableStage
from creditledger.domain.errors import ValidationFailedError
from creditledger.domain.events import Initiated, PaymentAuthorized, PaymentSettled
from creditledger.domain.status import InitialPaymentStatus, SettlementType
from creditledger.infrastructure.projections.service import ReadModelService
from tests.clock import START, FixedClock
from tests.readmodels_support import authorize, initiate, read_models, settle


@pytest.fixture
def views(ledger: CreditLedger) -> Iterator[ReadModelService]:
    with read_models(ledger) as service:
        yield service


def test_a_pending_purchase_is_owed_from_its_grant_with_its_age(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    purchase = initiate(ledger, amount="100.123", cost_basis="0.5")
    views.runner.catch_up()
    found = views.read_models.receivables("acme", as_of=START + timedelta(hours=2))
    assert [
        (item.purchase_id, item.stage, item.credit_amount, item.payment_amount, item.age_seconds)
        for item in found.items
    ] == [(purchase.id, ReceivableStage.OPEN, Decimal("100.12"), Decimal("50.06"), 7200)]


def test_an_authorized_receivable_stays_owed_until_it_settles(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    purchase = initiate(ledger)
    authorized_at = clock.advance(60)
    authorize(ledger, purchase)
    settled_at = clock.advance(60)
    settle(ledger, purchase)
    views.runner.catch_up()
    read = views.read_models

    before_authorization = read.receivables("acme", as_of=authorized_at - timedelta(seconds=1))
    assert [item.stage for item in before_authorization.items] == [ReceivableStage.OPEN]
    after_authorization = read.receivables("acme", as_of=authorized_at)
    assert [(item.stage, item.authorized_at) for item in after_authorization.items] == [
        (ReceivableStage.AUTHORIZED, authorized_at)
    ]
    assert read.receivables("acme", as_of=settled_at).items == []
    assert read.receivables("acme").items == []


def test_promotional_credit_is_never_owed(ledger: CreditLedger, views: ReadModelService) -> None:
    initiate(ledger, settlement="promotional")
    views.runner.catch_up()
    assert views.read_models.receivables("acme", as_of=START + timedelta(days=1)).items == []


def test_receivables_are_listed_oldest_first_per_namespace(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    older = initiate(ledger)
    clock.advance(10)
    newer = initiate(ledger, customer="cust-2")
    initiate(ledger, namespace="globex")
    views.runner.catch_up()
    found = views.read_models.receivables("acme", as_of=clock.now())
    assert [item.purchase_id for item in found.items] == [older.id, newer.id]
    assert [item.age_seconds for item in found.items] == [10, 0]


def test_settled_revenue_is_summed_per_utc_day_and_currency(
    ledger: CreditLedger, views: ReadModelService, clock: FixedClock
) -> None:
    settle(ledger, initiate(ledger, amount="100.123", cost_basis="0.5"))  # pays 50.06
    settle(ledger, initiate(ledger, amount="1", cost_basis="0.005"))  # pays 0.01
    settle(ledger, initiate(ledger, amount="10", cost_basis="2", currency="EUR"))
    initiate(ledger, amount="99", cost_basis="1")  # never settled: no revenue
    initiate(ledger, settlement="promotional")  # free: no revenue
    clock.advance(24 * 3600)
    settle(ledger, initiate(ledger, amount="3", cost_basis="1"))
    views.runner.catch_up()
    read = views.read_models
    first_day, second_day = START.date(), START.date() + timedelta(days=1)

    both = read.settled_revenue("acme", first_day, second_day)
    assert [
        (day.day, day.currency, day.amount, day.credits, day.settlements) for day in both.days
    ] == [
        (first_day, "EUR", Decimal("20.00"), Decimal("10.00"), 1),
        (first_day, "USD", Decimal("50.07"), Decimal("101.12"), 2),
        (second_day, "USD", Decimal("3.00"), Decimal("3.00"), 1),
    ]
    only_usd_first_day = read.settled_revenue("acme", first_day, first_day, currency="USD")
    assert [day.amount for day in only_usd_first_day.days] == [Decimal("50.07")]
    assert read.settled_revenue("globex", first_day, second_day).days == []


def test_a_reversed_revenue_range_is_refused(views: ReadModelService) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        views.read_models.settled_revenue("acme", date(2026, 2, 1), date(2026, 1, 1))
    assert refused.value.codes == {"range_reversed"}


def test_settled_revenue_is_summed_exactly_however_many_digits_it_takes(
    ledger: CreditLedger, views: ReadModelService
) -> None:
    # Logged before intake bounded the payment: its 30 digits must not be rounded to 28.
    credit, basis = Decimal("1234567890123456.78"), Decimal("1000000000000.01")
    paid = Decimal("1234567890123469125678901234.57")
    purchase_id = uuid4()
    common: dict[str, Any] = {"originator_id": purchase_id, "timestamp": START}
    ledger.events.put(
        [
            Initiated(
                **common,
                originator_version=1,
                namespace="acme",
                customer_id="cust-1",
                currency="USD",
                credit_amount=credit,
                cost_basis=basis,
                settlement_type=SettlementType.EXTERNAL,
                initial_payment_status=InitialPaymentStatus.CREATED,
                priority=100,
                expires_at=None,
                feature_filters=(),
                name=None,
                metadata={},
                credit_grant_transaction_group_id=uuid4(),
                granted_at=START,
            ),
            PaymentAuthorized(
                **common, originator_version=2, amount=paid, transaction_group_id=uuid4(), at=START
            ),
            PaymentSettled(**common, originator_version=3, transaction_group_id=uuid4(), at=START),
        ]
    )
    views.runner.catch_up()

    revenue = views.read_models.settled_revenue("acme", START.date(), START.date())

    assert [(day.amount, day.credits) for day in revenue.days] == [(paid, credit)]
