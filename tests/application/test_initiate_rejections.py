"""Initiating with bad input: one ValidationFailedError listing every problem; nothing stored."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from creditledger.application.commands import SettlementInput
from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import CreditPurchaseNotFoundError, ValidationFailedError
from creditledger.domain.identity import purchase_id_for_key
from tests.application.builders import (
    NAMESPACE,
    external_purchase,
    nothing_written,
    promotional_purchase,
)

FORTY_DIGITS = "1234567890" * 4
FORTY_DECIMALS = "0." + FORTY_DIGITS
TWENTY_NINE_SIGNIFICANT_DIGITS = "12345678901234567.123456789012"

BAD_AMOUNTS: list[tuple[str, object, str]] = [
    ("zero", "0", "{field}_not_positive"),
    ("negative", "-5", "{field}_not_positive"),
    ("negative zero", "-0", "negative_zero"),
    ("negative zero Decimal", Decimal("-0"), "negative_zero"),
    ("NaN", "NaN", "not_finite"),
    ("NaN Decimal", Decimal("NaN"), "not_finite"),
    ("Infinity", "Infinity", "not_finite"),
    ("minus Infinity", "-inf", "not_finite"),
    ("Infinity Decimal", Decimal("Infinity"), "not_finite"),
    ("1e999", "1e999", "out_of_range"),
    ("float", 10.5, "float_not_allowed"),
    ("forty digits", FORTY_DIGITS, "out_of_range"),
    ("forty decimals", FORTY_DECIMALS, "too_precise"),
    ("29 significant digits", TWENTY_NINE_SIGNIFICANT_DIGITS, "too_many_digits"),
    ("bool", True, "not_a_decimal"),
    ("words", "ten", "not_a_decimal"),
    ("empty", "", "not_a_decimal"),
    ("Arabic-Indic digits", "\u0661\u0660\u0660", "not_a_decimal"),
    ("fullwidth digits", "\uff11\uff10\uff10", "not_a_decimal"),
]


Case = tuple[str, dict[str, Any], set[tuple[str, str]]]
"""A bad request: its name, the fields that spoil it, and the (field, code) problems expected."""

CASES: list[Case] = [
    (f"{field}: {name}", {field: raw}, {(field, code.format(field=field))})
    for field in ("credit_amount", "cost_basis")
    for name, raw, code in BAD_AMOUNTS
] + [
    ("unknown currency", {"currency": "XYZ"}, {("currency", "invalid_currency")}),
    ("lower-case currency", {"currency": "usd"}, {("currency", "invalid_currency")}),
    ("gold is no money", {"currency": "XAU"}, {("currency", "invalid_currency")}),
    (
        "settlement currency differs from the credit currency",
        {"settlement_currency": "EUR"},
        {("settlement.currency", "currency_mismatch")},
    ),
    (
        "bad initial status",
        {"initial_status": "paid"},
        {("settlement.initial_status", "invalid_initial_status")},
    ),
    (
        "empty feature key",
        {"feature_filters": ["api_calls", ""]},
        {("feature_filters[1]", "feature_key_required")},
    ),
    (
        "blank feature key",
        {"feature_filters": ["api_calls", "   "]},
        {("feature_filters[1]", "feature_key_required")},
    ),
    (
        "duplicate feature key",
        {"feature_filters": ["api_calls", "storage", "api_calls"]},
        {("feature_filters[2]", "duplicate_feature_key")},
    ),
    ("no cost basis", {"cost_basis": None}, {("cost_basis", "cost_basis_required")}),
    (
        "0.004 USD rounds to 0.00",
        {"credit_amount": "0.004"},
        {("credit_amount", "credit_amount_not_positive")},
    ),
    (
        "0.4 JPY rounds to 0",
        {"credit_amount": "0.4", "currency": "JPY"},
        {("credit_amount", "credit_amount_not_positive")},
    ),
    (
        "the payment rounds to nothing",
        {"credit_amount": "1", "cost_basis": "0.004"},
        {("cost_basis", "payment_amount_not_positive")},
    ),
    ("priority 0", {"priority": 0}, {("priority", "priority_out_of_range")}),
    ("priority above int16", {"priority": 32768}, {("priority", "priority_out_of_range")}),
    ("blank customer", {"customer_id": " "}, {("customer_id", "customer_id_required")}),
    ("bad namespace", {"namespace": "a b"}, {("namespace", "invalid_namespace")}),
    (
        "a credit amount that rounds up to 10^18",
        {"credit_amount": "999999999999999999.995"},
        {("credit_amount", "out_of_range")},
    ),
    (
        "a payment of 10^18 or more",
        {"credit_amount": "100000000000000000", "cost_basis": "10"},
        {("cost_basis", "payment_amount_out_of_range")},
    ),
    (
        "a feature key of 257 characters",
        {"feature_filters": ["k" * 257]},
        {("feature_filters[0]", "feature_key_too_long")},
    ),
    (
        "a feature key with a control character",
        {"feature_filters": ["api\tcalls"]},
        {("feature_filters[0]", "invalid_feature_key")},
    ),
    *[
        (f"{where}: {what}", overrides, {(field, "unstorable_character")})
        for what, bad in (("NUL", "a\x00b"), ("lone surrogate", "a\ud800b"))
        for where, overrides, field in (
            ("customer id", {"customer_id": bad}, "customer_id"),
            ("name", {"name": bad}, "name"),
            ("feature key", {"feature_filters": ["ok", bad]}, "feature_filters[1]"),
            ("metadata value", {"metadata": {"order": bad}}, "metadata.order"),
            ("metadata key", {"metadata": {bad: "x"}}, "metadata." + ascii(bad)[1:-1]),
        )
    ],
]


def test_each_bad_external_purchase_is_rejected_with_its_problem_and_nothing_is_stored(
    ledger: CreditLedger, subtests: pytest.Subtests
) -> None:
    # One store for the whole table: rejections write nothing, so the cases cannot interfere,
    # and opening a PostgreSQL store per case would cost more than the table itself.
    ledger.initiate(external_purchase())  # the log is not empty: nothing may be added
    for name, overrides, expected in CASES:
        with subtests.test(name):
            with nothing_written(ledger), pytest.raises(ValidationFailedError) as rejected:
                ledger.initiate(external_purchase(**overrides))

            assert rejected.value.code == "validation_failed"
            assert {(error.field, error.code) for error in rejected.value.errors} == expected
            assert len(rejected.value.errors) == len(expected)


def test_a_request_with_three_problems_lists_all_three(ledger: CreditLedger) -> None:
    with nothing_written(ledger), pytest.raises(ValidationFailedError) as rejected:
        ledger.initiate(external_purchase(currency="usd", credit_amount="0", cost_basis="-1"))

    assert [(error.field, error.code) for error in rejected.value.errors] == [
        ("currency", "invalid_currency"),
        ("credit_amount", "credit_amount_not_positive"),
        ("cost_basis", "cost_basis_not_positive"),
    ]


def test_every_problem_of_a_request_is_listed_with_a_message(ledger: CreditLedger) -> None:
    command = external_purchase(
        credit_amount="NaN",
        cost_basis=1.5,
        settlement_currency="EUR",
        initial_status="bogus",
        feature_filters=["a", "a", ""],
        priority=-1,
    )

    with nothing_written(ledger), pytest.raises(ValidationFailedError) as rejected:
        ledger.initiate(command)

    assert {(error.field, error.code) for error in rejected.value.errors} == {
        ("credit_amount", "not_finite"),
        ("cost_basis", "float_not_allowed"),
        ("settlement.currency", "currency_mismatch"),
        ("settlement.initial_status", "invalid_initial_status"),
        ("feature_filters[1]", "duplicate_feature_key"),
        ("feature_filters[2]", "feature_key_required"),
        ("priority", "priority_out_of_range"),
    }
    assert all(error.message for error in rejected.value.errors)


@pytest.mark.parametrize("cost_basis", ["0", "-0.5"])
def test_a_cost_basis_that_is_not_positive_is_rejected_before_anything_is_granted(
    ledger: CreditLedger, cost_basis: str
) -> None:
    with nothing_written(ledger), pytest.raises(ValidationFailedError) as rejected:
        ledger.initiate(external_purchase(cost_basis=cost_basis, idempotency_key="k-1"))

    assert rejected.value.codes == {"cost_basis_not_positive"}
    with pytest.raises(CreditPurchaseNotFoundError):
        ledger.get_purchase(NAMESPACE, purchase_id_for_key(NAMESPACE, "k-1"))


def test_a_promotional_purchase_with_a_cost_basis_is_rejected(ledger: CreditLedger) -> None:
    with nothing_written(ledger), pytest.raises(ValidationFailedError) as rejected:
        ledger.initiate(promotional_purchase(cost_basis="0.5"))

    assert [(e.field, e.code) for e in rejected.value.errors] == [
        ("cost_basis", "cost_basis_not_allowed")
    ]


def test_a_promotional_purchase_with_an_initial_payment_status_is_rejected(
    ledger: CreditLedger,
) -> None:
    command = promotional_purchase(
        settlement=SettlementInput(type="promotional", initial_status="settled")
    )

    with nothing_written(ledger), pytest.raises(ValidationFailedError) as rejected:
        ledger.initiate(command)

    assert rejected.value.codes == {"invalid_initial_status"}


@pytest.mark.parametrize("settlement_type", ["barter", "Invoice", ""])
def test_a_settlement_type_without_rules_is_rejected(
    ledger: CreditLedger, settlement_type: str
) -> None:
    command = external_purchase(settlement=SettlementInput(type=settlement_type))

    with nothing_written(ledger), pytest.raises(ValidationFailedError) as rejected:
        ledger.initiate(command)

    assert rejected.value.codes == {"settlement_type_not_supported"}


def test_a_rejected_initiate_does_not_burn_its_idempotency_key(ledger: CreditLedger) -> None:
    with pytest.raises(ValidationFailedError):
        ledger.initiate(external_purchase(cost_basis="0", idempotency_key="order-7"))

    outcome = ledger.initiate(external_purchase(idempotency_key="order-7"))

    assert outcome.created
    assert outcome.purchase.id == purchase_id_for_key(NAMESPACE, "order-7")


@pytest.mark.parametrize(
    ("currency", "credit_amount", "stored"),
    [
        ("USD", "100.125", Decimal("100.13")),
        ("USD", "100.124", Decimal("100.12")),
        ("JPY", "100.5", Decimal("101")),
        ("JPY", "100.4", Decimal("100")),
        ("BHD", "1.0005", Decimal("1.001")),
        ("BHD", "1.0004", Decimal("1.000")),
    ],
)
def test_the_credit_amount_is_rounded_to_the_currency_half_away_from_zero(
    ledger: CreditLedger, currency: str, credit_amount: str, stored: Decimal
) -> None:
    purchase = ledger.initiate(
        external_purchase(currency=currency, credit_amount=credit_amount, cost_basis="1")
    ).purchase
    reread = ledger.get_purchase(purchase.namespace, purchase.id)

    assert reread.credit_amount == stored
    assert reread.credit_amount.as_tuple().exponent == stored.as_tuple().exponent


@pytest.mark.parametrize(
    ("credit_amount", "cost_basis", "paid"),
    [
        ("1", "1.004", Decimal("1.00")),
        ("1", "1.005", Decimal("1.01")),
        ("1", "1.006", Decimal("1.01")),
        ("1", "2.675", Decimal("2.68")),
        ("2", "1.0025", Decimal("2.01")),
        ("1", "0.005", Decimal("0.01")),
    ],
)
def test_the_payment_amount_is_credit_times_cost_basis_rounded_half_away_from_zero(
    ledger: CreditLedger, credit_amount: str, cost_basis: str, paid: Decimal
) -> None:
    purchase = ledger.initiate(
        external_purchase(
            credit_amount=credit_amount, cost_basis=cost_basis, initial_status="authorized"
        )
    ).purchase
    payment = ledger.get_purchase(purchase.namespace, purchase.id).realizations.external_payment

    assert payment is not None
    assert payment.amount == paid
