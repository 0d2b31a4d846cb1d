"""Normalizing a purchase intent, and re-checking a normalized one (defence in depth)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from creditledger.domain.errors import ValidationFailedError
from creditledger.domain.intent import PurchaseIntent, intent_problems, normalize_intent
from creditledger.domain.status import InitialPaymentStatus, SettlementType

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def normalize(**overrides: Any) -> PurchaseIntent:
    fields: dict[str, Any] = {
        "now": NOW,
        "namespace": "acme",
        "customer_id": "cust-1",
        "currency": "USD",
        "credit_amount": "100.123",
        "settlement_type": "external",
        "cost_basis": "0.5",
    }
    return normalize_intent(**{**fields, **overrides})


def problems_of(**overrides: Any) -> set[tuple[str, str]]:
    with pytest.raises(ValidationFailedError) as rejected:
        normalize(**overrides)
    return {(error.field, error.code) for error in rejected.value.errors}


class TestNormalizeIntent:
    def test_the_credit_amount_is_rounded_to_the_currency_once_at_intake(self) -> None:
        assert normalize(credit_amount="100.123").credit_amount == Decimal("100.12")

    def test_the_cost_basis_is_kept_unrounded(self) -> None:
        assert normalize(cost_basis="0.0049").cost_basis == Decimal("0.0049")

    def test_an_external_purchase_defaults_to_initial_status_created_and_priority_100(
        self,
    ) -> None:
        intent = normalize()

        assert intent.settlement_type is SettlementType.EXTERNAL
        assert intent.initial_payment_status is InitialPaymentStatus.CREATED
        assert intent.priority == 100

    def test_a_promotional_purchase_has_no_initial_status_and_no_cost_basis(self) -> None:
        intent = normalize(settlement_type="promotional", cost_basis=None)

        assert intent.initial_payment_status is None
        assert intent.cost_basis is None

    def test_feature_filters_are_sorted(self) -> None:
        assert normalize(feature_filters=["b", "c", "a"]).feature_filters == ("a", "b", "c")

    def test_duplicate_feature_keys_are_rejected_not_silently_merged(self) -> None:
        assert problems_of(feature_filters=["a", "b", "a"]) == {
            ("feature_filters[2]", "duplicate_feature_key")
        }

    def test_an_expiry_is_normalized_to_utc_seconds(self) -> None:
        expiry = datetime(2026, 6, 1, 11, 0, 0, 500_000, tzinfo=timezone(timedelta(hours=2)))

        assert normalize(expires_at=expiry).expires_at == datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    @pytest.mark.parametrize("expiry", [NOW, NOW - timedelta(days=1)])
    def test_an_expiry_that_is_not_in_the_future_is_rejected(self, expiry: datetime) -> None:
        assert problems_of(expires_at=expiry) == {("expires_at", "expires_at_not_in_future")}

    def test_a_naive_expiry_is_rejected(self) -> None:
        assert problems_of(expires_at=datetime(2027, 1, 1)) == {("expires_at", "timezone_required")}

    def test_an_expiry_with_no_utc_equivalent_is_out_of_range(self) -> None:
        # Found by schemathesis: two hours east of UTC on the first day of year 1 is before
        # the first representable UTC moment; it used to escape as an OverflowError (a 500).
        plus_two = timezone(timedelta(hours=2))
        expiry = datetime(1, 1, 1, 0, 0, 5, tzinfo=plus_two)
        assert problems_of(expires_at=expiry) == {("expires_at", "out_of_range")}

    def test_the_settlement_currency_must_be_the_credit_currency(self) -> None:
        assert normalize(settlement_currency="USD").currency == "USD"
        assert problems_of(settlement_currency="EUR") == {
            ("settlement.currency", "currency_mismatch")
        }

    def test_every_problem_is_reported_at_once(self) -> None:
        assert problems_of(
            namespace="",
            customer_id="",
            currency="usd",
            credit_amount="0",
            cost_basis="-1",
            priority=0,
            name="",
        ) == {
            ("namespace", "invalid_namespace"),
            ("customer_id", "customer_id_required"),
            ("name", "invalid_name"),
            ("currency", "invalid_currency"),
            ("credit_amount", "credit_amount_not_positive"),
            ("cost_basis", "cost_basis_not_positive"),
            ("priority", "priority_out_of_range"),
        }

    @pytest.mark.parametrize(
        ("metadata", "code"),
        [
            ({"": "x"}, "invalid_metadata_key"),
            ({"k" * 65: "x"}, "invalid_metadata_key"),
            ({"k": "v" * 513}, "metadata_value_too_long"),
        ],
    )
    def test_metadata_labels_are_bounded(self, metadata: dict[str, str], code: str) -> None:
        assert {found for _, found in problems_of(metadata=metadata)} == {code}

    def test_too_many_feature_filters_are_rejected(self) -> None:
        keys = [f"feature-{index:03}" for index in range(101)]

        assert problems_of(feature_filters=keys) == {
            ("feature_filters", "too_many_feature_filters")
        }


class TestIntentProblems:
    def test_a_normalized_intent_has_no_problems(self) -> None:
        assert intent_problems(normalize(feature_filters=["b", "a"]), NOW) == []

    def test_an_intent_that_skipped_normalization_is_caught(self) -> None:
        tampered = normalize().model_copy(
            update={
                "credit_amount": Decimal("100.123"),
                "feature_filters": ("b", "a"),
                "cost_basis": Decimal("0"),
            }
        )

        assert {problem.code for problem in intent_problems(tampered, NOW)} == {
            "credit_amount_not_rounded",
            "feature_filters_not_sorted",
            "cost_basis_not_positive",
        }

    def test_a_promotional_intent_with_payment_terms_is_caught(self) -> None:
        tampered = normalize(settlement_type="promotional", cost_basis=None).model_copy(
            update={
                "cost_basis": Decimal("0.5"),
                "initial_payment_status": InitialPaymentStatus.SETTLED,
            }
        )

        assert {problem.code for problem in intent_problems(tampered, NOW)} == {
            "cost_basis_not_allowed",
            "invalid_initial_status",
        }

    def test_an_invoice_intent_with_an_initial_payment_status_is_caught(self) -> None:
        # Only external purchases have an initial status: an invoice is paid when it is paid.
        tampered = normalize().model_copy(update={"settlement_type": SettlementType.INVOICE})

        assert {problem.code for problem in intent_problems(tampered, NOW)} == {
            "invalid_initial_status"
        }

    def test_an_expiry_is_judged_against_the_time_of_the_check(self) -> None:
        intent = normalize(expires_at=NOW + timedelta(hours=1))

        assert intent_problems(intent, NOW + timedelta(hours=2)) != []
