"""A purchase's history, and its state at any version or as of any time."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.application.purchase_view import PurchaseView
from creditledger.domain.errors import CreditPurchaseNotFoundError, ValidationFailedError
from tests.application.builders import NAMESPACE, authorize, external_purchase, settle
from tests.clock import START, FixedClock


def _lifecycle(ledger: CreditLedger, clock: FixedClock) -> list[PurchaseView]:
    """A purchase initiated at START, authorized a minute later and settled a minute after that."""
    initiated = ledger.initiate(external_purchase(idempotency_key="order-1")).purchase
    clock.advance(60)
    authorized = ledger.authorize(authorize(initiated.id, external_reference="psp-1")).purchase
    clock.advance(60)
    settled = ledger.settle(settle(initiated.id)).purchase
    return [initiated, authorized, settled]


class TestHistory:
    def test_the_history_lists_every_event_oldest_first_with_the_status_it_left(
        self, ledger: CreditLedger, clock: FixedClock
    ) -> None:
        purchase, _, _ = _lifecycle(ledger, clock)

        history = ledger.purchase_history(NAMESPACE, purchase.id)

        assert [
            (entry.version, entry.type, entry.recorded_at, entry.status_after) for entry in history
        ] == [
            (1, "Initiated", START, "active.payment.pending"),
            (2, "PaymentAuthorized", START + timedelta(seconds=60), "active.payment.authorized"),
            (3, "PaymentSettled", START + timedelta(seconds=120), "final"),
        ]

    def test_each_entry_carries_the_event_data_as_plain_json_values(
        self, ledger: CreditLedger, clock: FixedClock
    ) -> None:
        purchase, _, settled = _lifecycle(ledger, clock)

        initiated_entry, authorized_entry, settled_entry = ledger.purchase_history(
            NAMESPACE, purchase.id
        )

        assert initiated_entry.data["credit_amount"] == "100.12"
        assert initiated_entry.data["cost_basis"] == "0.5"
        assert initiated_entry.data["currency"] == "USD"
        assert initiated_entry.data["settlement_type"] == "external"
        assert initiated_entry.data["idempotency_key"] == "order-1"
        grant = purchase.realizations.credit_grant
        assert grant is not None
        assert initiated_entry.data["credit_grant_transaction_group_id"] == str(
            grant.transaction_group_id
        )
        assert authorized_entry.data["amount"] == "50.06"
        assert authorized_entry.data["external_reference"] == "psp-1"
        payment = settled.realizations.external_payment
        assert payment is not None
        assert payment.settled is not None
        assert settled_entry.data["transaction_group_id"] == str(
            payment.settled.transaction_group_id
        )
        for entry in (initiated_entry, authorized_entry, settled_entry):
            assert not {"originator_id", "originator_version", "timestamp"} & entry.data.keys()

    def test_the_history_of_a_purchase_that_does_not_exist_is_not_found(
        self, ledger: CreditLedger
    ) -> None:
        with pytest.raises(CreditPurchaseNotFoundError):
            ledger.purchase_history(NAMESPACE, uuid4())


class TestAtVersion:
    def test_each_version_shows_the_purchase_as_that_event_left_it(
        self, ledger: CreditLedger, clock: FixedClock
    ) -> None:
        states = _lifecycle(ledger, clock)
        purchase_id = states[0].id

        at_versions = [
            ledger.get_purchase(NAMESPACE, purchase_id, version=version) for version in (1, 2, 3)
        ]

        assert at_versions == states

    @pytest.mark.parametrize("version", [0, -1, 4])
    def test_a_version_the_purchase_never_had_is_not_found(
        self, ledger: CreditLedger, clock: FixedClock, version: int
    ) -> None:
        purchase, _, _ = _lifecycle(ledger, clock)

        with pytest.raises(CreditPurchaseNotFoundError):
            ledger.get_purchase(NAMESPACE, purchase.id, version=version)

    def test_the_version_of_a_direct_settlement_in_between_shows_the_authorization(
        self, ledger: CreditLedger
    ) -> None:
        purchase = ledger.initiate(external_purchase()).purchase
        ledger.settle(settle(purchase.id))

        halfway = ledger.get_purchase(NAMESPACE, purchase.id, version=2)

        assert halfway.status == "active.payment.authorized"
        assert halfway.realizations.external_payment is not None
        assert halfway.realizations.external_payment.amount == Decimal("50.06")
        assert halfway.realizations.external_payment.settled is None


class TestAsOf:
    def test_before_the_purchase_was_initiated_it_is_not_found(
        self, ledger: CreditLedger, clock: FixedClock
    ) -> None:
        purchase, _, _ = _lifecycle(ledger, clock)

        with pytest.raises(CreditPurchaseNotFoundError):
            ledger.get_purchase(NAMESPACE, purchase.id, as_of=START - timedelta(microseconds=1))

    @pytest.mark.parametrize(
        ("seconds_after_start", "expected_version"),
        [(0, 1), (59.999, 1), (60, 2), (119, 2), (120, 3), (86_400, 3)],
    )
    def test_as_of_a_time_shows_the_purchase_as_it_then_stood(
        self,
        ledger: CreditLedger,
        clock: FixedClock,
        seconds_after_start: float,
        expected_version: int,
    ) -> None:
        states = _lifecycle(ledger, clock)
        moment = START + timedelta(seconds=seconds_after_start)

        then = ledger.get_purchase(NAMESPACE, states[0].id, as_of=moment)

        assert then == states[expected_version - 1]

    def test_as_of_and_version_together_give_the_earlier_of_the_two(
        self, ledger: CreditLedger, clock: FixedClock
    ) -> None:
        states = _lifecycle(ledger, clock)

        then = ledger.get_purchase(
            NAMESPACE, states[0].id, version=3, as_of=START + timedelta(seconds=90)
        )

        assert then == states[1]

    def test_a_naive_time_is_refused(self, ledger: CreditLedger, clock: FixedClock) -> None:
        purchase, _, _ = _lifecycle(ledger, clock)

        with pytest.raises(ValidationFailedError) as refused:
            ledger.get_purchase(NAMESPACE, purchase.id, as_of=datetime(2026, 1, 1, 12, 1))

        assert [(error.field, error.code) for error in refused.value.errors] == [
            ("as_of", "timezone_required")
        ]

    def test_event_times_never_run_backwards_even_when_the_clock_does(
        self, ledger: CreditLedger, clock: FixedClock
    ) -> None:
        purchase = ledger.initiate(external_purchase()).purchase
        clock.set(START - timedelta(hours=1))

        authorized = ledger.authorize(authorize(purchase.id)).purchase

        assert authorized.updated_at == START
        history = ledger.purchase_history(NAMESPACE, purchase.id)
        assert [entry.recorded_at for entry in history] == [START, START]
        assert ledger.get_purchase(NAMESPACE, purchase.id, as_of=START) == authorized
