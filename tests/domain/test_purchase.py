"""The CreditPurchase aggregate on its own: commands follow the rules, ``apply`` guards again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from creditledger.domain.errors import (
    CannotSettleNotAuthorizedPaymentError,
    EventSequenceError,
    InvalidTransitionError,
    PaymentAlreadyAuthorizedError,
    PaymentAlreadySettledError,
    ValidationFailedError,
)
from creditledger.domain.events import Initiated, PaymentAuthorized, PaymentSettled, PurchaseEvent
from creditledger.domain.intent import PurchaseIntent, normalize_intent
from creditledger.domain.purchase import CommandContext, CreditPurchase, project_purchase
from creditledger.domain.status import PaymentStatus, PurchaseStatus

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
AT_NOW = CommandContext(at=NOW)


def intent(**overrides: Any) -> PurchaseIntent:
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


def initiated(**overrides: Any) -> CreditPurchase:
    return CreditPurchase.initiate(uuid4(), intent(**overrides), AT_NOW)


def history_of(**overrides: Any) -> list[PurchaseEvent]:
    return initiated(**overrides).collect_events()


def snapshot(purchase: CreditPurchase) -> tuple[object, ...]:
    return (purchase.version, purchase.status, purchase.payment, purchase.updated_at)


def renumbered(event: PurchaseEvent, version: int) -> PurchaseEvent:
    return event.model_copy(update={"originator_version": version})


class TestCommands:
    def test_initiating_records_one_initiated_event_and_leaves_the_purchase_pending(self) -> None:
        purchase = initiated()

        events = purchase.collect_events()

        assert [type(event) for event in events] == [Initiated]
        assert purchase.status is PurchaseStatus.PAYMENT_PENDING
        assert purchase.version == 1
        assert purchase.collect_events() == []

    def test_initiating_as_settled_records_the_three_facts_in_order(self) -> None:
        events = history_of(initial_status="settled")

        assert [type(event) for event in events] == [Initiated, PaymentAuthorized, PaymentSettled]
        assert [event.originator_version for event in events] == [1, 2, 3]

    def test_an_intent_that_fails_the_checks_is_refused_by_the_aggregate_too(self) -> None:
        unrounded = intent().model_copy(update={"credit_amount": Decimal("100.123")})

        with pytest.raises(ValidationFailedError) as refused:
            CreditPurchase.initiate(uuid4(), unrounded, AT_NOW)

        assert refused.value.codes == {"credit_amount_not_rounded"}

    def test_authorizing_twice_raises_and_records_nothing(self) -> None:
        purchase = initiated()
        purchase.authorize_payment(AT_NOW)
        purchase.collect_events()
        before = snapshot(purchase)

        with pytest.raises(PaymentAlreadyAuthorizedError):
            purchase.authorize_payment(AT_NOW)

        assert purchase.collect_events() == []
        assert snapshot(purchase) == before

    def test_settling_a_settled_purchase_raises_and_records_nothing(self) -> None:
        purchase = initiated(initial_status="settled")
        purchase.collect_events()
        before = snapshot(purchase)

        with pytest.raises(PaymentAlreadySettledError):
            purchase.settle_payment(AT_NOW)

        assert purchase.collect_events() == []
        assert snapshot(purchase) == before

    def test_a_promotional_purchase_has_no_payment_to_authorize_or_settle(self) -> None:
        purchase = initiated(settlement_type="promotional", cost_basis=None)

        with pytest.raises(InvalidTransitionError):
            purchase.authorize_payment(AT_NOW)
        with pytest.raises(InvalidTransitionError):
            purchase.settle_payment(AT_NOW)
        assert purchase.status is PurchaseStatus.FINAL

    def test_event_time_never_runs_backwards_even_when_the_clock_does(self) -> None:
        purchase = initiated()
        earlier = CommandContext(at=NOW - timedelta(hours=1))

        purchase.settle_payment(earlier)

        _, authorized, settled = purchase.collect_events()
        assert isinstance(authorized, PaymentAuthorized)
        assert isinstance(settled, PaymentSettled)
        assert authorized.timestamp == settled.timestamp == NOW
        assert authorized.at == settled.at == NOW
        assert purchase.updated_at == NOW

    def test_event_time_follows_the_clock_when_it_moves_forward(self) -> None:
        purchase = initiated()
        later = NOW + timedelta(minutes=5)

        purchase.authorize_payment(CommandContext(at=later))

        (authorized,) = purchase.collect_events()[1:]
        assert authorized.timestamp == later


class TestApplyGuards:
    def test_a_second_payment_authorization_is_refused(self) -> None:
        events = history_of(initial_status="authorized")
        purchase = project_purchase(None, events)
        assert purchase is not None
        before = snapshot(purchase)

        with pytest.raises(PaymentAlreadyAuthorizedError):
            purchase.apply(renumbered(events[1], 3))

        assert snapshot(purchase) == before

    def test_a_settlement_without_authorization_is_refused(self) -> None:
        settled_history = history_of(initial_status="settled")
        purchase = project_purchase(None, settled_history[:1])
        assert purchase is not None

        with pytest.raises(CannotSettleNotAuthorizedPaymentError):
            purchase.apply(renumbered(settled_history[2], 2))

        assert purchase.status is PurchaseStatus.PAYMENT_PENDING
        assert purchase.payment is None

    def test_a_second_settlement_is_refused(self) -> None:
        events = history_of(initial_status="settled")
        purchase = project_purchase(None, events)
        assert purchase is not None
        before = snapshot(purchase)

        with pytest.raises(PaymentAlreadySettledError):
            purchase.apply(renumbered(events[2], 4))

        assert snapshot(purchase) == before

    @pytest.mark.parametrize("version", [1, 3, 7])
    def test_an_event_that_does_not_follow_the_last_version_is_refused(self, version: int) -> None:
        events = history_of(initial_status="authorized")
        purchase = project_purchase(None, events[:1])
        assert purchase is not None

        with pytest.raises(EventSequenceError) as refused:
            purchase.apply(renumbered(events[1], version))

        assert refused.value.code == "event_sequence_broken"
        assert purchase.version == 1

    def test_an_event_of_another_purchase_is_refused(self) -> None:
        purchase = project_purchase(None, history_of()[:1])
        assert purchase is not None
        stranger = history_of(initial_status="authorized")[1]

        with pytest.raises(EventSequenceError):
            purchase.apply(stranger)

    def test_a_second_initiation_is_refused(self) -> None:
        events = history_of()
        purchase = project_purchase(None, events)
        assert purchase is not None

        with pytest.raises(EventSequenceError):
            purchase.apply(renumbered(events[0], 2))

    def test_a_history_that_does_not_start_with_initiated_is_refused(self) -> None:
        authorized = history_of(initial_status="authorized")[1]

        with pytest.raises(EventSequenceError):
            project_purchase(None, [renumbered(authorized, 1)])

    def test_a_payment_authorization_of_a_promotional_purchase_is_refused(self) -> None:
        promotional = history_of(settlement_type="promotional", cost_basis=None)
        purchase = project_purchase(None, promotional)
        assert purchase is not None
        authorization = history_of(initial_status="authorized")[1].model_copy(
            update={"originator_id": purchase.id, "originator_version": 2}
        )

        with pytest.raises(InvalidTransitionError):
            purchase.apply(authorization)


class TestReplay:
    def test_replaying_the_events_rebuilds_the_same_purchase(self) -> None:
        live = initiated(initial_status="settled", feature_filters=["b", "a"])
        events = live.collect_events()

        rebuilt = project_purchase(None, events)

        assert rebuilt is not None
        assert rebuilt.id == live.id
        assert snapshot(rebuilt) == snapshot(live)
        assert rebuilt.initiated == live.initiated
        assert rebuilt.created_at == live.created_at

    def test_the_same_purchase_derives_the_same_transaction_groups_every_time(self) -> None:
        purchase_id = UUID("0b6a4a55-7d0c-4a59-8f1e-1a2b3c4d5e6f")

        def groups() -> tuple[object, ...]:
            purchase = CreditPurchase.initiate(
                purchase_id, intent(initial_status="settled"), AT_NOW
            )
            payment = purchase.payment
            assert payment is not None
            assert payment.settled is not None
            return (
                purchase.intent.credit_grant_transaction_group_id,
                payment.authorized.transaction_group_id,
                payment.settled.transaction_group_id,
            )

        first, second = groups(), groups()

        assert first == second
        assert len(set(first)) == 3

    def test_the_idempotency_keys_seen_are_rebuilt_from_the_events(self) -> None:
        context = CommandContext(at=NOW, idempotency_key="order-1", request_fingerprint="abc")
        live = CreditPurchase.initiate(uuid4(), intent(initial_status="authorized"), context)

        rebuilt = project_purchase(None, live.collect_events())

        assert rebuilt is not None
        assert rebuilt.commands == {"order-1": ("abc", 2)}
        assert rebuilt.payment is not None
        assert rebuilt.payment.status is PaymentStatus.AUTHORIZED
