"""Money: ISO 4217 currencies, strict decimal parsing, and rounding half away from zero.

Amounts are ``Decimal`` end to end. Floats are refused at the door because a binary float cannot
say 0.1; NaN, infinities, negative zero and absurd magnitudes are refused because no ledger entry
can hold them. The credit amount is rounded once, at intake; the cost basis is never rounded.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import cache

from iso4217 import Currency as _Iso4217Currency

from creditledger.domain.errors import FieldError

MAX_SIGNIFICANT_DIGITS = 28
"""More significant digits than this is not an amount anyone meant."""

MAX_ADJUSTED_EXPONENT = 17
"""Largest accepted magnitude: below 10**18 units of any currency."""

MIN_EXPONENT = -18
"""Finest accepted digit: 10**-18, far below any currency's minor unit (and any sane price)."""

# Exact arithmetic for products of two bounded decimals: 2 x 28 digits fit with room to spare,
# so multiplying never rounds before the one rounding we mean to apply.
_EXACT = Context(prec=80, Emax=999, Emin=-999)

_NON_FINITE_WORDS = frozenset({"nan", "snan", "inf", "infinity"})
# [0-9], not \d: \d (and Decimal()) take any script's digits, Arabic-Indic or fullwidth ones too.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@cache
def minor_units(code: str) -> int | None:
    """The number of decimals of an ISO 4217 currency, or None if the code is not a money currency.

    Codes are matched exactly: ``usd`` is not ``USD``. Funds and metals without minor units
    (``XAU``, ``XXX``) are not money the ledger can round, so they count as unknown.
    """
    if len(code) != 3 or not code.isascii() or not code.isupper():
        return None
    try:
        currency = _Iso4217Currency(code)
    except ValueError:
        return None
    exponent = currency.exponent
    return exponent if isinstance(exponent, int) else None


def is_currency(code: str) -> bool:
    return minor_units(code) is not None


def parse_decimal(value: object, field: str) -> Decimal | FieldError:
    """Read an amount from a caller: a decimal string, an int or a Decimal; never a float.

    Returns the parsed value or the one problem with it, so a caller can collect every problem
    of a request before answering.
    """
    if isinstance(value, bool):
        return FieldError(field, "not_a_decimal", "must be a decimal number written as a string")
    if isinstance(value, float):
        return FieldError(
            field, "float_not_allowed", 'must be a decimal string such as "10.50", not a float'
        )
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        if value.lower().lstrip("+-") in _NON_FINITE_WORDS:
            return FieldError(field, "not_finite", "must be a finite number (not NaN or Infinity)")
        if not _DECIMAL_TEXT.fullmatch(value):
            return FieldError(field, "not_a_decimal", f"{value[:40]!r} is not a decimal number")
        try:
            number = Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
            return FieldError(field, "not_a_decimal", f"{value[:40]!r} is not a decimal number")
    else:
        return FieldError(field, "not_a_decimal", "must be a decimal number written as a string")
    return check_decimal(number, field)


def check_decimal(number: Decimal, field: str) -> Decimal | FieldError:
    """Refuse NaN, infinities, negative zero and magnitudes or precisions no ledger holds."""
    if not number.is_finite():
        return FieldError(field, "not_finite", "must be a finite number (not NaN or Infinity)")
    if number.is_zero():
        if number.is_signed():
            return FieldError(field, "negative_zero", "negative zero is not an amount")
        return Decimal(0)
    sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):  # pragma: no cover - finite numbers have int exponents
        return FieldError(field, "not_finite", "must be a finite number")
    if number.adjusted() > MAX_ADJUSTED_EXPONENT:
        return FieldError(field, "out_of_range", "must be less than 10^18")
    # Trailing zeros carry no information; strip them before judging precision.
    normalized = number.normalize(_EXACT)
    n_sign, n_digits, n_exponent = normalized.as_tuple()
    if not isinstance(n_exponent, int):  # pragma: no cover
        return FieldError(field, "not_finite", "must be a finite number")
    if n_exponent < MIN_EXPONENT:
        return FieldError(field, "too_precise", "must have at most 18 decimal places")
    if len(n_digits) > MAX_SIGNIFICANT_DIGITS:
        return FieldError(
            field,
            "too_many_digits",
            f"must have at most {MAX_SIGNIFICANT_DIGITS} significant digits",
        )
    del sign, digits, n_sign
    return number


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, half away from zero (1.005 USD -> 1.01)."""
    units = minor_units(currency)
    if units is None:
        msg = f"unknown currency {currency!r}"
        raise ValueError(msg)
    quantum = Decimal(1).scaleb(-units)
    return amount.quantize(quantum, rounding=ROUND_HALF_UP, context=_EXACT)


def payment_amount(credit_amount: Decimal, cost_basis: Decimal, currency: str) -> Decimal:
    """What the customer pays: credit amount x cost basis, computed exactly, then rounded once."""
    return round_money(_EXACT.multiply(credit_amount, cost_basis), currency)
