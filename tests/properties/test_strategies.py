"""The kit's strategies mean what they say: valid intents are valid, invalid ones carry exactly
the problems they claim, and the model's currency table is ISO 4217's."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given

from creditledger.application.commands import InitiatePurchase
from creditledger.application.testing.clock import DEFAULT_START
from creditledger.application.testing.model import MINOR_UNITS, exact, round_to_currency
from creditledger.application.testing.profiles import settings_for
from creditledger.application.testing.strategies import (
    InvalidInitiation,
    invalid_initiations,
    valid_initiations,
)
from creditledger.domain.errors import ValidationFailedError
from creditledger.domain.money import minor_units, payment_amount


@pytest.mark.parametrize("currency", sorted(MINOR_UNITS))
def test_the_model_currency_table_agrees_with_iso_4217(currency: str) -> None:
    assert minor_units(currency) == MINOR_UNITS[currency]


@settings_for("domain")
@given(request=valid_initiations())
def test_a_valid_initiation_normalizes_to_the_amounts_the_model_computes(
    request: InitiatePurchase,
) -> None:
    intent = request.intent(DEFAULT_START)
    expected = round_to_currency(exact(request.credit_amount), request.currency)
    assert str(intent.credit_amount) == str(expected)
    if intent.cost_basis is not None:
        assert request.cost_basis is not None
        paid = payment_amount(intent.credit_amount, intent.cost_basis, intent.currency)
        product = Fraction(expected) * exact(request.cost_basis)
        assert str(paid) == str(round_to_currency(product, request.currency))
        assert paid > 0


@settings_for("domain")
@given(case=invalid_initiations())
def test_an_invalid_initiation_is_refused_with_exactly_its_planted_problems(
    case: InvalidInitiation,
) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        case.request.intent(DEFAULT_START)
    assert refused.value.codes == case.problems
