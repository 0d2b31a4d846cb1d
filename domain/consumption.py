"""A consumption request: what a caller asks to spend, normalized once and checked twice.

``normalize_consumption`` turns raw values into a ``ConsumptionRequest`` or raises one
``ValidationFailedError`` listing every problem; ``consumption_problems`` re-checks a normalized
request, and the wallet calls it again before recording anything (defence in depth).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from creditledger.domain.errors import FieldError, ValidationFailedError
from creditledger.domain.intent import (
    MAX_ID_LENGTH,
    currency_problem,
    feature_key_problem,
    identity_problems,
)
from creditledger.domain.money import MAX_ADJUSTED_EXPONENT, parse_decimal, round_money
from creditledger.domain.text import is_storable, unstorable_problem


class ConsumptionRequest(BaseModel):
    """A valid request to spend ``amount`` (rounded to the currency) of a customer's credit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    customer_id: str
    currency: str
    amount: Decimal
    feature_key: str | None = None
    usage_reference: str | None = None


def normalize_consumption(
    *,
    namespace: str,
    customer_id: str,
    currency: str,
    amount: object,
    feature_key: str | None = None,
    usage_reference: str | None = None,
) -> ConsumptionRequest:
    """Normalize a consumption, or raise ``ValidationFailedError`` with every problem found."""
    problems = identity_problems(namespace, customer_id, None)
    bad_currency = currency_problem(currency, "currency")
    if bad_currency is not None:
        problems.append(bad_currency)
    parsed = parse_decimal(amount, "amount")
    rounded: Decimal | None = None
    if isinstance(parsed, FieldError):
        problems.append(parsed)
    else:
        # Rounded once, here, like a credit amount; the wallet books exactly this value.
        rounded = parsed if bad_currency is not None else round_money(parsed, currency)
        problems += amount_problems(rounded)
    if feature_key is not None:
        bad_key = feature_key_problem("feature", feature_key)
        if bad_key is not None:
            problems.append(bad_key)
    if usage_reference is not None:
        problems += _reference_problems(usage_reference)
    if problems or rounded is None:
        raise ValidationFailedError(problems)
    return ConsumptionRequest(
        namespace=namespace,
        customer_id=customer_id,
        currency=currency,
        amount=rounded,
        feature_key=feature_key,
        usage_reference=usage_reference,
    )


def consumption_problems(request: ConsumptionRequest) -> list[FieldError]:
    """The same checks again, on a normalized request (the wallet's defence in depth)."""
    try:
        normalize_consumption(
            namespace=request.namespace,
            customer_id=request.customer_id,
            currency=request.currency,
            amount=request.amount,
            feature_key=request.feature_key,
            usage_reference=request.usage_reference,
        )
    except ValidationFailedError as error:
        return list(error.errors)
    if round_money(request.amount, request.currency) != request.amount:
        return [FieldError("amount", "not_rounded", "amount must be rounded to the currency")]
    return []


def normalize_credit_amount(value: object, currency: str, field: str = "amount") -> Decimal:
    """A credit amount a caller asks to take back (a refund), parsed and rounded once to the
    currency, or ``ValidationFailedError`` with every problem."""
    parsed = parse_decimal(value, field)
    if isinstance(parsed, FieldError):
        raise ValidationFailedError([parsed])
    rounded = round_money(parsed, currency)
    problems = amount_problems(rounded, field)
    if problems:
        raise ValidationFailedError(problems)
    return rounded


def amount_problems(amount: Decimal, field: str = "amount") -> list[FieldError]:
    """A credit amount to spend, forfeit or take back: positive after rounding, below 10^18."""
    if amount <= 0:
        return [
            FieldError(
                field,
                "amount_not_positive",
                "amount must be positive after rounding to the currency",
            )
        ]
    if amount.adjusted() > MAX_ADJUSTED_EXPONENT:
        return [FieldError(field, "out_of_range", "must be less than 10^18 after rounding")]
    return []


def _reference_problems(reference: str) -> list[FieldError]:
    if not is_storable(reference):
        return [unstorable_problem("reference")]
    if not reference.strip() or len(reference) > MAX_ID_LENGTH:
        return [
            FieldError(
                "reference",
                "invalid_reference",
                f"must be 1 to {MAX_ID_LENGTH} characters when given",
            )
        ]
    return []
