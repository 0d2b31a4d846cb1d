"""The purchase intent: what the customer asked for, normalized once and checked twice.

``normalize_intent`` turns a caller's raw values into a ``PurchaseIntent`` or raises one
``ValidationFailedError`` listing every problem. ``intent_problems`` re-checks a normalized intent;
the aggregate calls it again before recording anything (defence in depth), with the same checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from creditledger.domain.errors import FieldError, ValidationFailedError
from creditledger.domain.money import (
    MAX_ADJUSTED_EXPONENT,
    is_currency,
    parse_decimal,
    payment_amount,
    round_money,
)
from creditledger.domain.rules import SUPPORTED_SETTLEMENTS
from creditledger.domain.status import InitialPaymentStatus, SettlementType
from creditledger.domain.text import is_storable, unstorable_problem

DEFAULT_PRIORITY = 100
MIN_PRIORITY, MAX_PRIORITY = 1, 32767  # OpenMeter's credit grants take an int16 priority
MAX_NAME_LENGTH = 256
MAX_ID_LENGTH = 256
MAX_METADATA_ENTRIES = 50
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 512
MAX_FEATURE_FILTERS = 100
MAX_FEATURE_KEY_LENGTH = 256

_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PurchaseIntent(BaseModel):
    """A normalized, valid intent: the credit amount is rounded, the filters sorted and unique."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    customer_id: str
    currency: str
    credit_amount: Decimal
    cost_basis: Decimal | None
    settlement_type: SettlementType
    initial_payment_status: InitialPaymentStatus | None
    priority: int
    expires_at: datetime | None
    feature_filters: tuple[str, ...]
    name: str | None
    metadata: dict[str, str]


def normalize_intent(
    *,
    now: datetime,
    namespace: str,
    customer_id: str,
    currency: str,
    credit_amount: object,
    settlement_type: str,
    cost_basis: object = None,
    initial_status: str | None = None,
    settlement_currency: str | None = None,
    priority: int | None = None,
    expires_at: datetime | None = None,
    feature_filters: Sequence[str] = (),
    name: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> PurchaseIntent:
    """Normalize a caller's intent, or raise ``ValidationFailedError`` with every problem found."""
    problems: list[FieldError] = []

    def keep(result: Decimal | FieldError | None) -> Decimal | None:
        if isinstance(result, FieldError):
            problems.append(result)
            return None
        return result

    problems += identity_problems(namespace, customer_id, name)
    bad_currency = currency_problem(currency, "currency")
    if bad_currency:
        problems.append(bad_currency)
    if settlement_currency is not None and settlement_currency != currency:
        problems.append(
            FieldError(
                "settlement.currency",
                "currency_mismatch",
                f"settlement currency {settlement_currency!r} must match credit currency "
                f"{currency!r}",
            )
        )

    settlement = _settlement_type(settlement_type, problems)
    initial = _initial_status(settlement, initial_status, problems)

    raw_amount = keep(parse_decimal(credit_amount, "credit_amount"))
    amount = None
    if raw_amount is not None and bad_currency is None:
        # Rounded once, here, half away from zero; every later consumer sees this value.
        amount = round_money(raw_amount, currency)
    elif raw_amount is not None:
        amount = raw_amount
    basis = keep(parse_decimal(cost_basis, "cost_basis")) if cost_basis is not None else None

    if amount is not None:
        problems += _amount_problems(amount)
    if settlement is not None:
        problems += _cost_basis_problems(settlement, basis, cost_basis_given=cost_basis is not None)
    if amount is not None and basis is not None and bad_currency is None:
        problems += _payment_amount_problems(amount, basis, currency)

    resolved_priority = DEFAULT_PRIORITY if priority is None else priority
    problems += _priority_problems(resolved_priority)
    expiry = _normalize_expiry(expires_at, problems)
    if expiry is not None:
        problems += _expiry_problems(expiry, now)
    problems += _feature_filter_problems(feature_filters)
    labels = dict(metadata or {})
    problems += _metadata_problems(labels)

    if problems or amount is None or settlement is None:
        raise ValidationFailedError(problems)
    return PurchaseIntent(
        namespace=namespace,
        customer_id=customer_id,
        currency=currency,
        credit_amount=amount,
        cost_basis=basis,
        settlement_type=settlement,
        initial_payment_status=initial,
        priority=resolved_priority,
        expires_at=expiry,
        feature_filters=tuple(sorted(feature_filters)),
        name=name,
        metadata=labels,
    )


def intent_problems(intent: PurchaseIntent, now: datetime) -> list[FieldError]:
    """Every invariant a stored intent must hold, checked again by the aggregate."""
    problems = identity_problems(intent.namespace, intent.customer_id, intent.name)
    bad_currency = currency_problem(intent.currency, "currency")
    if bad_currency:
        problems.append(bad_currency)
    elif round_money(intent.credit_amount, intent.currency) != intent.credit_amount:
        problems.append(
            FieldError(
                "credit_amount", "credit_amount_not_rounded", "must be rounded to the currency"
            )
        )
    problems += _amount_problems(intent.credit_amount)
    if intent.settlement_type not in SUPPORTED_SETTLEMENTS:
        problems.append(_unsupported_settlement(intent.settlement_type.value))
    problems += _cost_basis_problems(
        intent.settlement_type, intent.cost_basis, cost_basis_given=intent.cost_basis is not None
    )
    if intent.cost_basis is not None and bad_currency is None:
        problems += _payment_amount_problems(
            intent.credit_amount, intent.cost_basis, intent.currency
        )
    if (
        intent.initial_payment_status is not None
        and intent.settlement_type != SettlementType.EXTERNAL
    ):
        problems.append(_initial_status_not_allowed())
    problems += _priority_problems(intent.priority)
    if intent.expires_at is not None:
        problems += _expiry_problems(intent.expires_at, now)
    problems += _feature_filter_problems(intent.feature_filters)
    if list(intent.feature_filters) != sorted(intent.feature_filters):
        problems.append(
            FieldError("feature_filters", "feature_filters_not_sorted", "must be sorted")
        )
    problems += _metadata_problems(intent.metadata)
    return problems


def identity_problems(namespace: str, customer_id: str, name: str | None) -> list[FieldError]:
    problems = []
    if not _NAMESPACE.fullmatch(namespace):
        problems.append(
            FieldError(
                "namespace",
                "invalid_namespace",
                "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
        )
    if not is_storable(customer_id):
        problems.append(unstorable_problem("customer_id"))
    elif (
        not customer_id.strip() or len(customer_id) > MAX_ID_LENGTH or _CONTROL.search(customer_id)
    ):
        problems.append(
            FieldError(
                "customer_id",
                "customer_id_required",
                f"must be a non-blank id of at most {MAX_ID_LENGTH} printable characters",
            )
        )
    if name is not None and not is_storable(name):
        problems.append(unstorable_problem("name"))
    elif name is not None and (not name.strip() or len(name) > MAX_NAME_LENGTH):
        problems.append(
            FieldError(
                "name", "invalid_name", f"must be 1 to {MAX_NAME_LENGTH} characters when given"
            )
        )
    return problems


def currency_problem(code: str, field: str) -> FieldError | None:
    if is_currency(code):
        return None
    return FieldError(
        field, "invalid_currency", f'{code[:16]!r} is not an ISO 4217 currency code (e.g. "USD")'
    )


def _unsupported_settlement(value: str) -> FieldError:
    supported = ", ".join(sorted(s.value for s in SUPPORTED_SETTLEMENTS))
    return FieldError(
        "settlement.type",
        "settlement_type_not_supported",
        f"{value[:32]!r} is not supported; use one of: {supported}",
    )


def _settlement_type(value: str, problems: list[FieldError]) -> SettlementType | None:
    try:
        settlement = SettlementType(value)
    except ValueError:
        problems.append(_unsupported_settlement(value))
        return None
    if settlement not in SUPPORTED_SETTLEMENTS:
        problems.append(_unsupported_settlement(value))
        return None
    return settlement


def _initial_status_not_allowed() -> FieldError:
    return FieldError(
        "settlement.initial_status",
        "invalid_initial_status",
        "only external purchases have an initial payment status",
    )


def _initial_status(
    settlement: SettlementType | None, value: str | None, problems: list[FieldError]
) -> InitialPaymentStatus | None:
    if settlement != SettlementType.EXTERNAL:
        if value is not None and settlement is not None:
            problems.append(_initial_status_not_allowed())
        return None
    if value is None:
        return InitialPaymentStatus.CREATED
    try:
        return InitialPaymentStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in InitialPaymentStatus)
        problems.append(
            FieldError(
                "settlement.initial_status",
                "invalid_initial_status",
                f"invalid payment settlement status {value[:32]!r}; use one of: {allowed}",
            )
        )
        return None


def _amount_problems(amount: Decimal) -> list[FieldError]:
    if amount <= 0:
        return [
            FieldError(
                "credit_amount",
                "credit_amount_not_positive",
                "credit amount must be positive after rounding to the currency",
            )
        ]
    # The bound holds for the amount the ledger books: rounding may carry 999...9.995 to 10^18.
    if amount.adjusted() > MAX_ADJUSTED_EXPONENT:
        return [
            FieldError("credit_amount", "out_of_range", "must be less than 10^18 after rounding")
        ]
    return []


def _cost_basis_problems(
    settlement: SettlementType, basis: Decimal | None, *, cost_basis_given: bool
) -> list[FieldError]:
    if settlement == SettlementType.PROMOTIONAL:
        if cost_basis_given:
            return [
                FieldError(
                    "cost_basis",
                    "cost_basis_not_allowed",
                    "promotional credit purchase cannot have a cost basis",
                )
            ]
        return []
    if not cost_basis_given:
        return [
            FieldError(
                "cost_basis",
                "cost_basis_required",
                "payment-backed credit purchase requires a cost basis",
            )
        ]
    if basis is not None and basis <= 0:
        return [FieldError("cost_basis", "cost_basis_not_positive", "cost basis must be positive")]
    return []


def _payment_amount_problems(amount: Decimal, basis: Decimal, currency: str) -> list[FieldError]:
    if amount <= 0 or basis <= 0:
        return []
    paid = payment_amount(amount, basis, currency)
    if paid <= 0:
        return [
            FieldError(
                "cost_basis",
                "payment_amount_not_positive",
                "credit amount x cost basis rounds to zero in the currency: nothing to pay",
            )
        ]
    # The payment is booked as an amount like any other: the same bound applies to it.
    if paid.adjusted() > MAX_ADJUSTED_EXPONENT:
        return [
            FieldError(
                "cost_basis",
                "payment_amount_out_of_range",
                "credit amount x cost basis must be less than 10^18 after rounding",
            )
        ]
    return []


def _priority_problems(priority: int) -> list[FieldError]:
    if MIN_PRIORITY <= priority <= MAX_PRIORITY:
        return []
    return [
        FieldError(
            "priority",
            "priority_out_of_range",
            f"must be between {MIN_PRIORITY} and {MAX_PRIORITY}",
        )
    ]


def _normalize_expiry(expires_at: datetime | None, problems: list[FieldError]) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None or expires_at.utcoffset() is None:
        problems.append(
            FieldError("expires_at", "timezone_required", "must carry a UTC offset (e.g. 'Z')")
        )
        return None
    try:
        # OpenMeter truncates charge timestamps to the second, in UTC.
        return expires_at.astimezone(UTC).replace(microsecond=0)
    except OverflowError:
        # 0001-01-01T00:00:05+02:00 is a valid RFC 3339 time that has no UTC datetime.
        problems.append(
            FieldError("expires_at", "out_of_range", "must fall within years 1 to 9999 in UTC")
        )
        return None


def _expiry_problems(expires_at: datetime, now: datetime) -> list[FieldError]:
    if expires_at > now:
        return []
    return [
        FieldError(
            "expires_at", "expires_at_not_in_future", "expires at must be after the purchase time"
        )
    ]


def _feature_filter_problems(filters: Sequence[str]) -> list[FieldError]:
    problems = []
    if len(filters) > MAX_FEATURE_FILTERS:
        problems.append(
            FieldError(
                "feature_filters",
                "too_many_feature_filters",
                f"at most {MAX_FEATURE_FILTERS} feature keys",
            )
        )
    seen: set[str] = set()
    for index, key in enumerate(filters):
        problem = feature_key_problem(f"feature_filters[{index}]", key)
        if problem is not None:
            problems.append(problem)
        elif key in seen:
            problems.append(
                FieldError(
                    f"feature_filters[{index}]",
                    "duplicate_feature_key",
                    f"duplicate feature key {key[:64]!r}",
                )
            )
        seen.add(key)
    return problems


def feature_key_problem(field: str, key: str) -> FieldError | None:
    if not is_storable(key):
        return unstorable_problem(field)
    if not key.strip():
        return FieldError(field, "feature_key_required", "feature key is required")
    if len(key) > MAX_FEATURE_KEY_LENGTH:
        return FieldError(
            field, "feature_key_too_long", f"at most {MAX_FEATURE_KEY_LENGTH} characters"
        )
    if _CONTROL.search(key):
        return FieldError(field, "invalid_feature_key", "must not contain control characters")
    return None


def _metadata_problems(metadata: Mapping[str, str]) -> list[FieldError]:
    problems = []
    if len(metadata) > MAX_METADATA_ENTRIES:
        problems.append(
            FieldError(
                "metadata", "too_many_metadata_entries", f"at most {MAX_METADATA_ENTRIES} entries"
            )
        )
    for key, value in metadata.items():
        if not (is_storable(key) and is_storable(value)):
            problems.append(unstorable_problem(f"metadata.{key[:64]}"))
            continue
        if not key or len(key) > MAX_METADATA_KEY_LENGTH:
            problems.append(
                FieldError(
                    f"metadata.{key[:64]}",
                    "invalid_metadata_key",
                    f"keys must be 1 to {MAX_METADATA_KEY_LENGTH} characters",
                )
            )
        if len(value) > MAX_METADATA_VALUE_LENGTH:
            problems.append(
                FieldError(
                    f"metadata.{key[:64]}",
                    "metadata_value_too_long",
                    f"values must be at most {MAX_METADATA_VALUE_LENGTH} characters",
                )
            )
    return problems
