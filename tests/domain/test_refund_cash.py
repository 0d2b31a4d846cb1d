"""The cash a refund returns: the payment for everything refunded so far, rounded once, less
what earlier refunds returned. Refunding every credit, in any parts, returns exactly the payment."""

from __future__ import annotations

from decimal import Decimal

import pytest

from creditledger.domain.errors import NothingToRefundError, RefundExceedsRemainingError
from creditledger.domain.events import PaymentRefunded
from creditledger.domain.money import payment_amount
from tests.domain.purchases import Lifecycle


def refunds_of(lifecycle: Lifecycle) -> list[tuple[Decimal, Decimal]]:
    return [
        (event.amount, event.cash_amount)
        for event in lifecycle.purchase_events
        if isinstance(event, PaymentRefunded)
    ]


def test_thirds_of_a_half_dollar_come_back_as_17_16_and_17_cents() -> None:
    # 100 credits at 0.005: 0.50 paid. Cumulative: 33.33 -> 0.16665 -> 0.17; 66.66 -> 0.3333 ->
    # 0.33, less 0.17 = 0.16; 100 -> 0.50, less 0.33 = 0.17. Together exactly 0.50.
    lifecycle = Lifecycle.start(credit_amount="100", cost_basis="0.005", initial_status="settled")
    assert lifecycle.purchase.payment_amount == Decimal("0.50")

    for amount in ("33.33", "33.33", "33.34"):
        lifecycle.refund(amount)

    assert refunds_of(lifecycle) == [
        (Decimal("33.33"), Decimal("0.17")),
        (Decimal("33.33"), Decimal("0.16")),
        (Decimal("33.34"), Decimal("0.17")),
    ]
    assert lifecycle.purchase.refunded_cash == Decimal("0.50")


def test_a_refund_too_small_to_be_worth_a_cent_returns_nothing_until_the_rest_is_refunded() -> None:
    lifecycle = Lifecycle.start(credit_amount="1", cost_basis="0.005", initial_status="settled")

    lifecycle.refund("0.5")  # 0.0025 rounds to 0.00
    lifecycle.refund()  # the rest: 0.01 in all

    assert refunds_of(lifecycle) == [
        (Decimal("0.5"), Decimal("0.00")),
        (Decimal("0.5"), Decimal("0.01")),
    ]


@pytest.mark.parametrize(
    ("currency", "credit_amount", "cost_basis", "parts"),
    [
        ("USD", "100.12", "0.5", ["0.01", "50", "0.03", "50.08"]),
        ("USD", "10", "0.3333", ["3.33", "3.33", "3.34"]),
        ("USD", "7", "1.2345", ["1", "1", "1", "1", "1", "1", "1"]),
        ("JPY", "1000", "0.7", ["333", "333", "334"]),
        ("BHD", "10.001", "0.333", ["0.001", "5", "5"]),
    ],
)
def test_refunding_everything_in_parts_returns_exactly_the_payment(
    currency: str, credit_amount: str, cost_basis: str, parts: list[str]
) -> None:
    lifecycle = Lifecycle.start(
        currency=currency,
        credit_amount=credit_amount,
        cost_basis=cost_basis,
        initial_status="settled",
    )

    for part in parts:
        lifecycle.refund(part)

    cash = [amount for _, amount in refunds_of(lifecycle)]
    paid = payment_amount(Decimal(credit_amount), Decimal(cost_basis), currency)
    assert sum(cash, Decimal(0)) == paid == lifecycle.purchase.payment_amount
    assert all(amount >= 0 for amount in cash)
    # Each refund returns the cumulative payment less what came back before, never more.
    refunded = Decimal(0)
    for index, part in enumerate(parts):
        before = payment_amount(refunded, Decimal(cost_basis), currency)
        refunded += Decimal(part)
        assert cash[index] == payment_amount(refunded, Decimal(cost_basis), currency) - before


def test_the_default_refund_is_everything_unconsumed_and_is_paid_back_pro_rata() -> None:
    lifecycle = Lifecycle.start(initial_status="settled")  # 100 credits, 50.00 paid
    lifecycle.consume("30")

    lifecycle.refund()

    assert refunds_of(lifecycle) == [(Decimal(70), Decimal("35.00"))]
    assert lifecycle.wallet.grants[lifecycle.purchase.id].remaining == 0


def test_a_refund_above_what_remains_is_refused_with_what_remains() -> None:
    lifecycle = Lifecycle.start(initial_status="settled")
    lifecycle.consume("30")
    lifecycle.refund("20")

    with pytest.raises(RefundExceedsRemainingError) as refused:
        lifecycle.refund("50.01")

    assert Decimal(refused.value.remaining) == 50
    assert lifecycle.purchase.collect_events() == []


def test_nothing_remaining_is_nothing_to_refund() -> None:
    lifecycle = Lifecycle.start(initial_status="settled")
    lifecycle.consume("100")

    with pytest.raises(NothingToRefundError):
        lifecycle.refund()
    with pytest.raises(NothingToRefundError):
        lifecycle.refund("1")
