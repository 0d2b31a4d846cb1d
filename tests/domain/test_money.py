"""Money: strict decimal parsing, ISO 4217 minor units, rounding half away from zero."""

from __future__ import annotations

from decimal import Decimal

import pytest

from creditledger.domain.errors import FieldError
from creditledger.domain.money import minor_units, parse_decimal, payment_amount, round_money


class TestParseDecimal:
    @pytest.mark.parametrize(
        ("raw", "parsed"),
        [
            ("10.50", Decimal("10.50")),
            ("0.005", Decimal("0.005")),
            (".5", Decimal("0.5")),
            ("1.", Decimal("1")),
            ("+1", Decimal("1")),
            ("-3.25", Decimal("-3.25")),
            ("1e2", Decimal("100")),
            ("1E-18", Decimal("1E-18")),
            ("999999999999999999", Decimal("999999999999999999")),
            ("0", Decimal("0")),
            (7, Decimal("7")),
            (Decimal("1.5"), Decimal("1.5")),
        ],
    )
    def test_a_decimal_written_as_text_an_int_or_a_decimal_is_read_exactly(
        self, raw: object, parsed: Decimal
    ) -> None:
        result = parse_decimal(raw, "credit_amount")

        assert isinstance(result, Decimal)
        assert result == parsed

    def test_the_written_precision_is_kept(self) -> None:
        result = parse_decimal("10.50", "credit_amount")

        assert isinstance(result, Decimal)
        assert result.as_tuple().exponent == -2

    @pytest.mark.parametrize(
        ("raw", "code"),
        [
            (0.1, "float_not_allowed"),
            (1.0, "float_not_allowed"),
            (True, "not_a_decimal"),
            (False, "not_a_decimal"),
            (None, "not_a_decimal"),
            ([1], "not_a_decimal"),
            ("", "not_a_decimal"),
            (" 1", "not_a_decimal"),
            ("1_000", "not_a_decimal"),
            ("0x10", "not_a_decimal"),
            ("1,5", "not_a_decimal"),
            ("ten", "not_a_decimal"),
            ("NaN", "not_finite"),
            ("-nan", "not_finite"),
            ("sNaN", "not_finite"),
            ("Infinity", "not_finite"),
            ("-Infinity", "not_finite"),
            ("inf", "not_finite"),
            (Decimal("NaN"), "not_finite"),
            (Decimal("-Infinity"), "not_finite"),
            ("-0", "negative_zero"),
            ("-0.00", "negative_zero"),
            (Decimal("-0"), "negative_zero"),
            ("1e999", "out_of_range"),
            ("1000000000000000000", "out_of_range"),
            ("1234567890" * 4, "out_of_range"),
            ("-1e18", "out_of_range"),
            ("1E-19", "too_precise"),
            ("0." + "1234567890" * 4, "too_precise"),
            ("12345678901234567.123456789012", "too_many_digits"),
        ],
    )
    def test_what_is_not_an_amount_is_refused_with_a_precise_code(
        self, raw: object, code: str
    ) -> None:
        result = parse_decimal(raw, "cost_basis")

        assert isinstance(result, FieldError)
        assert (result.field, result.code) == ("cost_basis", code)
        assert result.message

    def test_trailing_zeros_do_not_count_as_precision(self) -> None:
        result = parse_decimal("1." + "0" * 30, "credit_amount")

        assert result == Decimal(1)

    def test_a_zero_is_read_as_plain_zero(self) -> None:
        # Positivity is judged by the caller, per field; the parser only refuses the sign.
        assert parse_decimal("0e5", "credit_amount") == Decimal(0)


class TestMinorUnits:
    @pytest.mark.parametrize(
        ("code", "units"),
        [("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("BHD", 3), ("KWD", 3)],
    )
    def test_a_currency_has_its_iso_4217_number_of_decimals(self, code: str, units: int) -> None:
        assert minor_units(code) == units

    @pytest.mark.parametrize("code", ["usd", "Usd", "XYZ", "US", "USDX", "", "XAU", "XXX", "ÜSD"])
    def test_what_is_not_a_money_currency_has_none(self, code: str) -> None:
        assert minor_units(code) is None


class TestRoundMoney:
    @pytest.mark.parametrize(
        ("amount", "currency", "rounded"),
        [
            ("100.123", "USD", "100.12"),
            ("100.125", "USD", "100.13"),
            ("1.005", "USD", "1.01"),
            ("1.004", "USD", "1.00"),
            ("-1.005", "USD", "-1.01"),
            ("0.004", "USD", "0.00"),
            ("0.005", "USD", "0.01"),
            ("2.5", "JPY", "3"),
            ("-2.5", "JPY", "-3"),
            ("2.4", "JPY", "2"),
            ("1.0005", "BHD", "1.001"),
            ("1.0004", "BHD", "1.000"),
            ("7", "USD", "7.00"),
        ],
    )
    def test_amounts_round_to_the_minor_unit_half_away_from_zero(
        self, amount: str, currency: str, rounded: str
    ) -> None:
        result = round_money(Decimal(amount), currency)

        assert result == Decimal(rounded)
        assert result.as_tuple().exponent == Decimal(rounded).as_tuple().exponent

    def test_rounding_in_an_unknown_currency_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError, match="unknown currency"):
            round_money(Decimal("1.5"), "XYZ")


class TestPaymentAmount:
    @pytest.mark.parametrize(
        ("credit_amount", "cost_basis", "paid"),
        [
            ("1", "1.004", "1.00"),
            ("1", "1.005", "1.01"),
            ("1", "1.006", "1.01"),
            ("1", "2.675", "2.68"),
            ("2", "1.0025", "2.01"),
            ("1", "0.005", "0.01"),
            ("100.12", "0.5", "50.06"),
            ("30", "0.5", "15.00"),
        ],
    )
    def test_the_payment_is_credit_times_cost_basis_rounded_once(
        self, credit_amount: str, cost_basis: str, paid: str
    ) -> None:
        assert payment_amount(Decimal(credit_amount), Decimal(cost_basis), "USD") == Decimal(paid)

    def test_the_product_is_exact_before_the_one_rounding(self) -> None:
        # The exact product is 4999999999999999.99499999999999999999. Python's default 28-digit
        # context would first round it to ...99.995000000000, which then rounds up to a whole
        # 5000000000000000.00: a cent too much.
        credit = Decimal("4999999999999999.99")
        basis = Decimal("1.000000000000000001")

        assert payment_amount(credit, basis, "USD") == Decimal("4999999999999999.99")
