"""Hypothesis strategies for the ledger's inputs: intents valid and invalid, keys, times.

Valid intents sit where ledgers break: currencies with 0, 2, 3 and 4 minor units; credit amounts
exactly on, just below and just above half a minor unit; cost bases from 10^-18 to 10^17, and
cost bases that put the payment amount right on a rounding edge; feature filters, metadata and
expiry in every time zone. Invalid intents are valid ones with one to three independent problems
planted, each with the exact ``FieldError`` codes the ledger must answer with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from functools import cache
from math import ceil, floor
from typing import Any, TypeVar

from hypothesis import strategies as st

from creditledger.application.commands import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    InitiatePurchase,
    SettlementInput,
)
from creditledger.application.testing.model import MINOR_UNITS, round_half_away_from_zero

NAMESPACES = ("acme", "globex")
CUSTOMERS = ("cust-1", "cust-2", "cust-3")
KEY_POOL = ("key-1", "key-2", "key-3")
"""A few keys drawn often, so that keys collide: retries and reuses happen in short histories."""
FEATURE_POOL = ("api_calls", "storage")
"""The features grants of one wallet are filtered on, and consumptions name."""
WALLET_CURRENCIES = ("USD", "JPY", "BHD")
"""Currencies with 2, 0 and 3 minor units: few, so that one customer's grants share a wallet."""

MAX_PLACES = 18
"""The finest digit an amount may carry (the ledger refuses 10^-19)."""

OPENMETER_ROUNDING_CASES = (
    # (credit amount, cost basis) in USD from OpenMeter's own tests: the payment amount is
    # 1.00, 1.01, 1.01, 2.68, 2.01, 0.01 and 50.06.
    ("1", "1.004"),
    ("1", "1.005"),
    ("1", "1.006"),
    ("1", "2.675"),
    ("2", "1.0025"),
    ("1", "0.005"),
    ("100.123", "0.5"),
)

_TIME_ZONES = (
    UTC,
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-8)),
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
)
_PRINTABLE = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))


# -- small values ---------------------------------------------------------------------------------


@cache
def currencies() -> st.SearchStrategy[str]:
    """ISO 4217 codes with 0 (JPY, KRW), 2 (USD, EUR), 3 (BHD, KWD, TND) and 4 (CLF) minor units."""
    return st.sampled_from(sorted(MINOR_UNITS))


@cache
def idempotency_keys() -> st.SearchStrategy[str]:
    """Any key an HTTP header can carry: 1 to 255 printable ASCII characters, no spaces."""
    return st.one_of(
        st.sampled_from(KEY_POOL),
        st.text(
            alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E),
            min_size=1,
            max_size=IDEMPOTENCY_KEY_MAX_LENGTH,
        ),
    )


@cache
def optional_keys() -> st.SearchStrategy[str | None]:
    return st.none() | idempotency_keys()


@cache
def external_references() -> st.SearchStrategy[str | None]:
    """A payment provider's reference, or none."""
    return st.none() | st.sampled_from(("psp-1", "psp-2")) | _text(1, 256)


@cache
def clock_advances() -> st.SearchStrategy[timedelta]:
    """How far the clock moves between commands: often not at all, sometimes a microsecond."""
    return st.one_of(
        st.just(timedelta(0)),
        st.sampled_from(
            (timedelta(microseconds=1), timedelta(seconds=1), timedelta(hours=1), timedelta(days=1))
        ),
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
    )


@cache
def as_of_offsets() -> st.SearchStrategy[timedelta]:
    """Where to look, relative to a recorded event: exactly on it, a microsecond either side, or
    anywhere within two days."""
    micro = timedelta(microseconds=1)
    return st.one_of(
        st.sampled_from((timedelta(0), -micro, micro)),
        st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=2)),
    )


@cache
def priorities() -> st.SearchStrategy[int | None]:
    return st.none() | st.sampled_from((1, 100, 32767)) | st.integers(1, 32767)


FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)
"""Before every moment ``expiries()`` draws: the clock rules never move the clock past it, so
those intents stay valid in every history (``expiry_delays()`` are the expiries a test reaches)."""


@cache
def expiries() -> st.SearchStrategy[datetime | None]:
    """None, or a moment well after any clock a test runs (after ``FAR_FUTURE``), in any time
    zone, to the microsecond."""
    return st.none() | st.datetimes(
        min_value=datetime(2100, 1, 1),  # naive bounds; zones drawn below
        max_value=datetime(2199, 12, 31),
        timezones=st.sampled_from(_TIME_ZONES),
    )


@cache
def feature_keys() -> st.SearchStrategy[str]:
    return st.sampled_from(("api_calls", "storage", "gpu_seconds")) | _text(1, 40)


@cache
def feature_filters() -> st.SearchStrategy[list[str]]:
    """Distinct feature keys in any order (the ledger sorts them)."""
    return st.lists(feature_keys(), unique=True, max_size=4)


@cache
def metadata() -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(_text(1, 20), st.text(_PRINTABLE, max_size=40), max_size=3)


@cache
def customer_ids(customers: Sequence[str] = CUSTOMERS) -> st.SearchStrategy[str]:
    return st.sampled_from(customers) | _text(1, 64)


@cache
def names() -> st.SearchStrategy[str | None]:
    return st.none() | _text(1, 40)


# -- grants and consumptions ----------------------------------------------------------------------


@cache
def expiry_delays() -> st.SearchStrategy[timedelta | None]:
    """How long after now a grant expires (None: never): whole seconds, from one second to three
    days, so the clock rules reach them (the ledger keeps expiries to the second)."""
    return (
        st.none()
        | st.sampled_from((timedelta(seconds=1), timedelta(hours=1), timedelta(days=1)))
        | st.integers(1, 3 * 24 * 3600).map(lambda seconds: timedelta(seconds=seconds))
    )


@cache
def wallet_feature_filters() -> st.SearchStrategy[list[str]]:
    """Filters from ``FEATURE_POOL``: none (serves every consumption: half the time, so that
    consumptions span grants), one, or both."""
    return st.just([]) | st.lists(
        st.sampled_from(FEATURE_POOL), unique=True, min_size=1, max_size=len(FEATURE_POOL)
    )


GrantTermsDraw = tuple[timedelta | None, int | None, list[str]]
"""A grant's burn-down terms as the machine draws them: expiry delay, priority, feature filters."""


@cache
def grant_terms() -> st.SearchStrategy[GrantTermsDraw]:
    """Expiry delay, priority (none: the default, 100; or 1 or 2) and filters of one grant."""
    return st.tuples(expiry_delays(), st.none() | st.sampled_from((1, 2)), wallet_feature_filters())


@st.composite
def tying_grant_terms(draw: st.DrawFn, min_size: int = 1) -> list[GrantTermsDraw]:
    """The terms of ``min_size`` to three grants made together, each after the first often the
    one before with a single burn-down term changed (or none: a full tie, which the purchase id
    breaks). Burn-down bugs hide in exactly such neighbours: drawn independently, two grants
    that differ only in expiry, or only in priority, are rare."""
    terms = [draw(grant_terms())]
    for _ in range(draw(st.integers(min_size - 1, 2))):
        expires_in, priority, filters = previous = terms[-1]
        change = _pick(draw, ("expiry", "priority", "filters", "nothing", "all"))
        if change == "expiry":
            # The other kind of expiry, or another delay: never-expiring against dated, and
            # dated against dated, are the two comparisons the order makes.
            other = None if expires_in is not None else draw(expiry_delays())
            terms.append((draw(st.just(other) | expiry_delays()), priority, filters))
        elif change == "priority":
            terms.append((expires_in, draw(st.none() | st.sampled_from((1, 2))), filters))
        elif change == "filters":
            terms.append((expires_in, priority, draw(wallet_feature_filters())))
        elif change == "nothing":
            terms.append(previous)
        else:
            terms.append(draw(grant_terms()))
    return terms


@cache
def consumption_features() -> st.SearchStrategy[str | None]:
    """A consumption's feature: none, one a grant may be filtered on, or one no grant names."""
    return st.none() | st.sampled_from((*FEATURE_POOL, "gpu_seconds"))


@cache
def usage_references() -> st.SearchStrategy[str | None]:
    return st.none() | st.sampled_from(("usage-1", "usage-2")) | _text(1, 64)


def consumption_amounts(
    currency: str, remainders: Sequence[Decimal] = ()
) -> st.SearchStrategy[str | int | Decimal]:
    """An amount to consume from grants holding ``remainders`` (in burn-down order): exactly what
    the first k hold, a minor unit either side of that (where the burn-down moves to the next
    grant), part of it all, all of it, more than all, any amount, or a value that rounds at half a
    minor unit; written as a caller writes it (text, exponent, Decimal...). Never one that rounds
    to nothing."""
    return st.composite(lambda draw: _write(draw, _draw_consumption(draw, currency, remainders)))()


def _draw_consumption(draw: st.DrawFn, currency: str, remainders: Sequence[Decimal]) -> Fraction:
    quantum = Fraction(1, 10 ** MINOR_UNITS[currency])
    bounds = [0]
    for remainder in remainders:
        bounds.append(bounds[-1] + int(Fraction(remainder) / quantum))
    total = bounds[-1]
    kind = _pick(draw, ("boundary", "boundary", "part", "all", "more", "any", "half"))
    if kind == "boundary" and len(bounds) > 1:
        edge = bounds[draw(st.integers(1, len(bounds) - 1))] + draw(st.integers(-1, 1))
        return max(edge, 1) * quantum
    if kind in ("part", "boundary") and total > 1:
        return draw(st.integers(1, total - 1)) * quantum
    if kind in ("part", "boundary", "all"):
        return max(total, 1) * quantum
    if kind == "more":
        return (total + draw(st.integers(1, 3))) * quantum
    if kind == "any":
        return draw(st.integers(1, 10**6)) * quantum
    # Half a minor unit above a whole number of them: rounds away from zero, up.
    return (draw(st.integers(0, max(total, 1))) + Fraction(1, 2)) * quantum


# -- invoices, failures, refunds -----------------------------------------------------------------


@cache
def invoice_lines() -> st.SearchStrategy[tuple[str, str]]:
    """(invoice id, line id) of the invoice that bills an invoice purchase."""
    return st.tuples(
        st.sampled_from(("inv-1", "inv-2")) | _text(1, 256),
        st.sampled_from(("line-1", "line-2")) | _text(1, 256),
    )


@cache
def failure_reasons() -> st.SearchStrategy[str]:
    """Why a payment failed, as a provider or a billing system says it."""
    return st.sampled_from(("card_declined", "invoice_uncollectible")) | _text(1, 256)


@cache
def refund_reasons() -> st.SearchStrategy[str | None]:
    return st.none() | st.sampled_from(("customer request", "duplicate")) | _text(1, 256)


@dataclass(frozen=True)
class RefundAmount:
    """A refund's amount as a caller writes it (None: everything unconsumed), and the problem
    codes the ledger must answer with if it is not an amount at all (the model judges the
    rest: what rounds to nothing, and what exceeds the credit left)."""

    value: str | int | Decimal | float | None
    problems: frozenset[str] = frozenset()


_INVALID_REFUND_AMOUNTS: tuple[tuple[object, str], ...] = (
    ("abc", "not_a_decimal"),
    ("1,5", "not_a_decimal"),
    (True, "not_a_decimal"),
    (1.5, "float_not_allowed"),
    ("NaN", "not_finite"),
    ("-Infinity", "not_finite"),
    ("-0", "negative_zero"),
    ("-0.00", "negative_zero"),
    ("1e-19", "too_precise"),
    ("1e18", "out_of_range"),
)


_REFUND_KINDS = (
    *("part", "none", "all", "part", "above", "more", "part"),
    *("zero", "negative", "tiny", "invalid"),
)
_ACCEPTED_REFUND_KINDS = ("part", "part", "part", "all", "none")
_ZEROS: tuple[str | int | Decimal, ...] = ("0", "0.00", 0, Decimal("0E-3"))


def refund_amounts(
    currency: str, remaining: Decimal, *, accepted_only: bool = False
) -> st.SearchStrategy[RefundAmount]:
    """An amount to refund from a grant with ``remaining`` credit: none (everything), all of it,
    part of it, a minor unit more than it or more still (``refund_exceeds_remaining``), zero, a
    negative amount or one below half a minor unit (``amount_not_positive``), or no amount at all
    (``not_a_decimal``, ``float_not_allowed``, ...). With ``accepted_only``: a part (mostly),
    all of it, or none, the amounts a payment refunded in parts is made of."""
    kinds = _ACCEPTED_REFUND_KINDS if accepted_only else _REFUND_KINDS
    return st.composite(lambda draw: _draw_refund(draw, currency, remaining, kinds))()


def _draw_refund(
    draw: st.DrawFn, currency: str, remaining: Decimal, kinds: Sequence[str]
) -> RefundAmount:
    quantum = Fraction(1, 10 ** MINOR_UNITS[currency])
    units = int(Fraction(remaining) / quantum)
    # A part is drawn most often: what a later refund of the same payment can still take.
    kind = _pick(draw, kinds)
    if kind == "none":
        return RefundAmount(None)
    if kind == "invalid":
        value, code = _pick(draw, _INVALID_REFUND_AMOUNTS)
        return RefundAmount(cast_amount(value), frozenset({code}))
    if kind == "zero":
        return RefundAmount(_pick(draw, _ZEROS))
    if kind == "negative":
        return RefundAmount(_write_signed(draw, -draw(st.integers(1, 10**6)) * quantum))
    if kind == "tiny":
        # Below half a minor unit: rounds to nothing.
        return RefundAmount(_plain(_decimal(quantum / 2 * draw(st.integers(1, 999)) / 1000)))
    amount = {
        "all": units,
        "part": draw(st.integers(1, max(units - 1, 1))),
        "above": units + 1,
        "more": units + draw(st.integers(2, 10**6)),
    }[kind]
    return RefundAmount(_write(draw, max(amount, 1) * quantum))


def cast_amount(value: object) -> str | int | Decimal | float:
    """An invalid amount, typed as the command's ``AmountInput`` takes it (bool is an int)."""
    if isinstance(value, str | int | Decimal | float):
        return value
    msg = f"not an amount input: {value!r}"
    raise TypeError(msg)


def _write_signed(draw: st.DrawFn, value: Fraction) -> str | Decimal:
    """A negative ``value`` as text or a Decimal."""
    number = _decimal(value)
    return number if draw(st.booleans()) else format(number, "f")


# -- amounts -------------------------------------------------------------------------------------


@cache
def credit_amounts(currency: str) -> st.SearchStrategy[str | int | Decimal]:
    """Credit amounts as a caller may write them, positive once rounded to ``currency``."""
    return st.composite(lambda draw: _write(draw, _draw_credit_amount(draw, currency)))()


def cost_bases(credit_amount: Fraction, currency: str) -> st.SearchStrategy[str | int | Decimal]:
    """Cost bases, tiny to huge, that leave a payment of at least one minor unit for the
    (rounded) ``credit_amount``."""
    return st.composite(
        lambda draw: _write(draw, _draw_cost_basis(draw, credit_amount, currency))
    )()


_WHOLE_UNITS = st.one_of(
    st.integers(0, 9),
    st.integers(10, 10**6),
    st.integers(10**15, 10**17 - 1),
    st.just(10**17 - 1),  # rounds up to 10^17 at the largest edge
)
_TYPICAL_BASES = st.sampled_from(
    [Fraction(Decimal(text)) for text in ("0.005", "0.5", "1", "1.25", "2.675")]
) | st.builds(
    lambda units, places: Fraction(units, 10**places), st.integers(1, 10**6), st.integers(0, 6)
)


def _draw_credit_amount(draw: st.DrawFn, currency: str) -> Fraction:
    places = MINOR_UNITS[currency]
    quantum = Fraction(1, 10**places)
    base = draw(_WHOLE_UNITS) + draw(st.integers(0, 10**places - 1)) * quantum
    extra = draw(st.integers(1, 4))
    nudge = Fraction(1, 10 ** (places + extra))
    half = quantum / 2
    edge = _pick(draw, ("exact", "half", "below_half", "above_half", "digits"))
    value = {
        "exact": base,
        "half": base + half,  # rounds away from zero
        "below_half": base + half - nudge,
        "above_half": base + half + nudge,
        "digits": base + draw(st.integers(0, 10**extra - 1)) * nudge,
    }[edge]
    if round_half_away_from_zero(value, places) <= 0:
        value += 1  # below half a minor unit rounds to nothing: not a valid credit amount
    return value


def _draw_cost_basis(draw: st.DrawFn, credit_amount: Fraction, currency: str) -> Fraction:
    quantum = Fraction(1, 10 ** MINOR_UNITS[currency])
    kind = _pick(draw, ("tiny", "typical", "huge", "payment_edge"))
    if kind == "tiny":
        basis = Fraction(draw(st.integers(1, 999)), 10 ** draw(st.integers(12, MAX_PLACES)))
    elif kind == "typical":
        basis = draw(_TYPICAL_BASES)
    elif kind == "huge":
        basis = Fraction(draw(st.integers(10**12, 10**17 - 1)), 10 ** draw(st.integers(0, 6)))
    else:
        # A basis that puts credit amount x basis 10^-18 on either side of (t - 1/2) minor
        # units: the payment amount's own rounding edge.
        target = (draw(st.integers(1, 10**6)) - Fraction(1, 2)) * quantum
        scale = 10**MAX_PLACES
        raw = target / credit_amount * scale
        basis = Fraction(ceil(raw) if draw(st.booleans()) else floor(raw), scale)
    smallest = Fraction(ceil(quantum / 2 / credit_amount * 10**MAX_PLACES), 10**MAX_PLACES)
    # (Six decimals: enough below the bound, and few enough digits to stay a valid basis.)
    largest = Fraction(floor((10**18 - quantum) / credit_amount * 10**6), 10**6)
    # Below the smallest basis the payment rounds to nothing, above the largest it reaches
    # 10^18: both invalid, so keep the basis between them.
    return min(max(basis, smallest), largest)


def _write(draw: st.DrawFn, value: Fraction) -> str | int | Decimal:
    """``value`` written as a caller might: plain text, padded, exponent, a Decimal or an int."""
    number = _decimal(value)
    forms = ("plain", "padded", "exponent", "decimal", "signed", "int")
    form = _pick(draw, forms if value.denominator == 1 else forms[:-1])
    plain = _plain(number)
    if form == "plain":
        return plain
    if form == "padded":
        return plain + ("" if "." in plain else ".") + "0" * draw(st.integers(1, 3))
    if form == "exponent":
        return format(number, "E")
    if form == "decimal":
        return number
    if form == "signed":
        return "+" + plain
    return int(value)


def _decimal(value: Fraction) -> Decimal:
    """The exact Decimal of a fraction whose denominator is a power of ten (or divides one)."""
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
        if places > 2 * MAX_PLACES:
            msg = f"{value} is not a finite decimal"
            raise ValueError(msg)
    units = value * 10**places
    return Decimal(f"{units.numerator}E-{places}")


def _plain(number: Decimal) -> str:
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


T = TypeVar("T")


def _pick(draw: st.DrawFn, values: Sequence[T]) -> T:
    """One of ``values`` (shrinking towards the first): an index is cheaper than sampled_from,
    which costs a strategy per tuple of values and more per draw."""
    return values[draw(st.integers(0, len(values) - 1))]


# -- valid intents --------------------------------------------------------------------------------


@st.composite
def valid_initiations(
    draw: st.DrawFn,
    namespaces: Sequence[str] = NAMESPACES,
    customers: Sequence[str] = CUSTOMERS,
    keys: st.SearchStrategy[str | None] | None = None,
    in_currencies: Sequence[str] | None = None,
) -> InitiatePurchase:
    """An initiation the ledger must accept: every field valid, amounts at the edges
    (in one of ``in_currencies``, if given)."""
    return _draw_valid_initiation(draw, namespaces, customers, keys, in_currencies)


def _draw_valid_initiation(
    draw: st.DrawFn,
    namespaces: Sequence[str],
    customers: Sequence[str],
    keys: st.SearchStrategy[str | None] | None,
    in_currencies: Sequence[str] | None = None,
) -> InitiatePurchase:
    settlement_type = _pick(draw, ("external", "external", "promotional", "invoice"))
    openmeter_case = in_currencies is None or "USD" in in_currencies
    if settlement_type != "promotional" and openmeter_case and draw(st.integers(0, 9)) == 0:
        currency = "USD"
        credit_amount, basis = _pick(draw, OPENMETER_ROUNDING_CASES)
        cost_basis: str | int | Decimal | None = basis
        written_amount: str | int | Decimal = credit_amount
    else:
        currency = draw(currencies()) if in_currencies is None else _pick(draw, in_currencies)
        value = _draw_credit_amount(draw, currency)
        written_amount = _write(draw, value)
        rounded = Fraction(round_half_away_from_zero(value, MINOR_UNITS[currency]))
        cost_basis = (
            None
            if settlement_type == "promotional"
            else _write(draw, _draw_cost_basis(draw, rounded, currency))
        )
    initial_status = (
        _pick(draw, (None, "created", "authorized", "settled"))
        if settlement_type == "external"
        else None
    )
    return InitiatePurchase(
        namespace=_pick(draw, namespaces),
        idempotency_key=draw(keys if keys is not None else optional_keys()),
        customer_id=draw(customer_ids(customers)),
        currency=currency,
        credit_amount=written_amount,
        cost_basis=cost_basis,
        settlement=SettlementInput(
            type=settlement_type,
            initial_status=initial_status,
            currency=_pick(draw, (None, currency)),
        ),
        priority=draw(priorities()),
        expires_at=draw(expiries()),
        feature_filters=draw(feature_filters()),
        name=draw(names()),
        metadata=draw(metadata()),
    )


# -- invalid intents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvalidInitiation:
    """An initiation the ledger must refuse, and every problem code it must list."""

    request: InitiatePurchase
    problems: frozenset[str]


_Fields = dict[str, Any]
_Plant = Callable[[st.DrawFn, _Fields], frozenset[str]]


# Planted problems that are one bad value in one field: (field, values, the code it must raise).
_BAD_VALUES: dict[str, tuple[str, tuple[object, ...], str]] = {
    "amount_not_positive": (
        "credit_amount",
        ("-1", "-0.01", "0", "0.00", "-100"),
        "credit_amount_not_positive",
    ),
    "amount_negative_zero": ("credit_amount", ("-0", "-0.00", Decimal("-0")), "negative_zero"),
    "amount_float": ("credit_amount", (1.5, 0.1, 100.0), "float_not_allowed"),
    "amount_not_finite": ("credit_amount", ("NaN", "Infinity", "-inf", "sNaN"), "not_finite"),
    "amount_not_decimal": (
        "credit_amount",
        ("", "1,5", "12abc", "0x10", "1e", True),
        "not_a_decimal",
    ),
    "amount_out_of_range": ("credit_amount", ("1e18", "1" + "0" * 18, "9E+20"), "out_of_range"),
    "amount_too_precise": ("credit_amount", ("1e-19", "0." + "0" * 18 + "1"), "too_precise"),
    "amount_too_many_digits": (
        "credit_amount",
        ("12345678901234567.123456789012",),
        "too_many_digits",
    ),
}
_BAD_EXTERNAL_BASES: dict[str, tuple[str, tuple[object, ...], str]] = {
    "basis_not_positive": (
        "cost_basis",
        ("0", "0.000", "-0.5", "-1", 0, -3),
        "cost_basis_not_positive",
    ),
    "basis_negative_zero": ("cost_basis", ("-0.0",), "negative_zero"),
    "basis_missing": ("cost_basis", (None,), "cost_basis_required"),
    "basis_float": ("cost_basis", (0.5,), "float_not_allowed"),
    "basis_not_finite": ("cost_basis", ("NaN", "Infinity"), "not_finite"),
}
_BAD_PROMOTIONAL_BASES: dict[str, tuple[str, tuple[object, ...], str]] = {
    "basis_on_promotional": ("cost_basis", ("1", "0.5"), "cost_basis_not_allowed"),
}


def _plant_money_problem(draw: st.DrawFn, fields: _Fields) -> frozenset[str]:
    """One problem with the amount, cost basis, currency or settlement type (these interact, so
    never two at once)."""
    settlement = fields["settlement"]
    external = settlement["type"] != "promotional"  # external and invoice: payment-backed
    bad_values = {**_BAD_VALUES, **(_BAD_EXTERNAL_BASES if external else _BAD_PROMOTIONAL_BASES)}
    shaped = ["amount_rounds_to_zero", "currency_unknown", "settlement_unsupported"]
    if external:
        shaped.append("payment_rounds_to_zero")
    choice = _pick(draw, sorted(bad_values) + shaped)
    if choice in bad_values:
        field, values, code = bad_values[choice]
        fields[field] = _pick(draw, values)
        return frozenset({code})
    quantum = Fraction(1, 10 ** MINOR_UNITS[fields["currency"]])
    if choice == "amount_rounds_to_zero":
        below = draw(st.integers(1, 10**3 - 1))
        fields["credit_amount"] = _plain(_decimal(quantum / 2 * below / 10**3))
        return frozenset({"credit_amount_not_positive"})
    if choice == "currency_unknown":
        fields["currency"] = _pick(draw, ("usd", "XAU", "ABC", "US", "EURO", "XXX"))
        settlement["currency"] = None
        return frozenset({"invalid_currency"})
    if choice == "settlement_unsupported":
        settlement["type"] = _pick(draw, ("card", "barter", ""))
        return frozenset({"settlement_type_not_supported"})
    # A small amount and a basis 10^-18 short of paying half a minor unit.
    amount = draw(st.integers(1, 1000)) * quantum
    fields["credit_amount"] = _plain(_decimal(amount))
    limit = quantum / 2 / amount * 10**MAX_PLACES
    fields["cost_basis"] = _plain(_decimal(Fraction(ceil(limit) - 1, 10**MAX_PLACES)))
    return frozenset({"payment_amount_not_positive"})


def _plant_initial_status_problem(draw: st.DrawFn, fields: _Fields) -> frozenset[str]:
    settlement = fields["settlement"]
    if settlement["type"] == "external":
        settlement["initial_status"] = _pick(draw, ("paid", "CREATED", "", "pending"))
    elif settlement["type"] in ("promotional", "invoice"):
        # Only an external payment may start further along; the others start where they must.
        settlement["initial_status"] = _pick(draw, ("created", "settled"))
    else:
        return frozenset()  # an unsupported type has no initial status to judge
    return frozenset({"invalid_initial_status"})


def _plant_settlement_currency_problem(draw: st.DrawFn, fields: _Fields) -> frozenset[str]:
    others = sorted(set(MINOR_UNITS) - {fields["currency"]})
    fields["settlement"]["currency"] = _pick(draw, others)
    return frozenset({"currency_mismatch"})


def _plant_namespace_problem(draw: st.DrawFn, fields: _Fields) -> frozenset[str]:
    fields["namespace"] = _pick(draw, ("", "-acme", "a" * 65, "ac me", "acmé", ".x"))
    return frozenset({"invalid_namespace"})


_UNSTORABLE_TEXTS = ("cust\x00", "c\ud800d", "\udfff")
"""Text no store can hold (NUL, unpaired surrogates): refused as unstorable_character."""


def _plant_customer_problem(draw: st.DrawFn, fields: _Fields) -> frozenset[str]:
    if draw(st.booleans()):
        fields["customer_id"] = _pick(draw, _UNSTORABLE_TEXTS)
        return frozenset({"unstorable_character"})
    fields["customer_id"] = _pick(draw, ("", "   ", "c\x1fd", "x" * 257))
    return frozenset({"customer_id_required"})


def _plant_name_problem(draw: st.DrawFn, fields: _Fields) -> frozenset[str]:
    if draw(st.booleans()):
        fields["name"] = _pick(draw, _UNSTORABLE_TEXTS)
        return frozenset({"unstorable_character"})
    fields["name"] = _pick(draw, ("", "  ", "n" * 257))
    return frozenset({"invalid_name"})


def _plant_priority_problem(draw: st.DrawFn, fields: _Fields) -> frozenset[str]:
    fields["priority"] = _pick(draw, (0, -1, 32768, 10**9))
    return frozenset({"priority_out_of_range"})


_PAST = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2000, 1, 1),
    timezones=st.sampled_from(_TIME_ZONES),
)


def _plant_expiry_problem(draw: st.DrawFn, fields: _Fields) -> frozenset[str]:
    if draw(st.booleans()):
        fields["expires_at"] = datetime(2150, 1, 1)  # naive: the planted problem
        return frozenset({"timezone_required"})
    fields["expires_at"] = draw(_PAST)
    return frozenset({"expires_at_not_in_future"})


def _plant_feature_filter_problem(draw: st.DrawFn, fields: _Fields) -> frozenset[str]:
    filters = list(fields["feature_filters"])
    choice = _pick(draw, ("duplicate", "blank", "too_long", "control", "unstorable", "too_many"))
    if choice == "duplicate":
        key = draw(feature_keys())
        fields["feature_filters"] = [*filters, key, key] if key not in filters else [*filters, key]
        return frozenset({"duplicate_feature_key"})
    bad_keys = {
        "blank": (("", "   "), "feature_key_required"),
        "too_long": (("k" * 257,), "feature_key_too_long"),
        "control": (("a\tb", "a\x1fb", "\x7f"), "invalid_feature_key"),
        "unstorable": (_UNSTORABLE_TEXTS, "unstorable_character"),
    }
    if choice in bad_keys:
        keys, code = bad_keys[choice]
        fields["feature_filters"] = [*filters, _pick(draw, keys)]
        return frozenset({code})
    fields["feature_filters"] = [f"feature-{index}" for index in range(101)]
    return frozenset({"too_many_feature_filters"})


def _plant_metadata_problem(draw: st.DrawFn, fields: _Fields) -> frozenset[str]:
    labels = dict(fields["metadata"])
    choice = _pick(draw, ("empty_key", "long_key", "long_value", "unstorable", "too_many"))
    if choice == "unstorable":
        labels["note"] = _pick(draw, _UNSTORABLE_TEXTS)
        code = "unstorable_character"
    elif choice == "empty_key":
        labels[""] = "value"
        code = "invalid_metadata_key"
    elif choice == "long_key":
        labels["k" * 65] = "value"
        code = "invalid_metadata_key"
    elif choice == "long_value":
        labels["note"] = "v" * 513
        code = "metadata_value_too_long"
    else:
        labels = {f"label-{index}": "x" for index in range(51)}
        code = "too_many_metadata_entries"
    fields["metadata"] = labels
    return frozenset({code})


_PLANTS: dict[str, _Plant] = {
    "money": _plant_money_problem,
    "initial_status": _plant_initial_status_problem,
    "settlement_currency": _plant_settlement_currency_problem,
    "namespace": _plant_namespace_problem,
    "customer": _plant_customer_problem,
    "name": _plant_name_problem,
    "priority": _plant_priority_problem,
    "expiry": _plant_expiry_problem,
    "feature_filters": _plant_feature_filter_problem,
    "metadata": _plant_metadata_problem,
}


_FAMILY_CHOICES = st.sets(st.sampled_from(sorted(_PLANTS)), min_size=1, max_size=3)


@st.composite
def invalid_initiations(
    draw: st.DrawFn,
    namespaces: Sequence[str] = NAMESPACES,
    customers: Sequence[str] = CUSTOMERS,
    keys: st.SearchStrategy[str | None] | None = None,
) -> InvalidInitiation:
    """A valid initiation with one to three independent problems planted, and their codes."""
    base = _draw_valid_initiation(draw, namespaces, customers, keys)
    fields = base.model_dump(exclude={"settlement"})
    fields["settlement"] = base.settlement.model_dump()
    # Problems go in the table's order, so the money problem (which may change the settlement
    # type) is planted before the initial status is judged against that type.
    chosen = draw(_FAMILY_CHOICES)
    problems: frozenset[str] = frozenset()
    for family, plant in _PLANTS.items():
        if family in chosen:
            problems |= plant(draw, fields)
    settlement = SettlementInput(**fields.pop("settlement"))
    return InvalidInitiation(InitiatePurchase(**fields, settlement=settlement), problems)


@cache
def _text(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Printable text that is not blank."""
    return st.text(_PRINTABLE, min_size=min_size, max_size=max_size).filter(
        lambda text: bool(text.strip())
    )
