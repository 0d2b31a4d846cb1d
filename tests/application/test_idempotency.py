"""Idempotency keys: a retried command gets the first answer back and writes nothing.

The purchase itself remembers every key it has seen (each event carries its command's key and
request fingerprint), so the memory is as durable as the history.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import IdempotencyKeyReusedError, ValidationFailedError
from creditledger.domain.identity import purchase_id_for_key
from tests.application.builders import (
    NAMESPACE,
    authorize,
    external_purchase,
    nothing_written,
    settle,
)
from tests.clock import START, FixedClock


class TestInitiate:
    def test_retrying_with_the_same_key_and_request_replays_the_first_answer(
        self, ledger: CreditLedger, clock: FixedClock
    ) -> None:
        first = ledger.initiate(external_purchase(idempotency_key="order-1"))
        clock.advance(30)

        with nothing_written(ledger, first.purchase):
            retry = ledger.initiate(external_purchase(idempotency_key="order-1"))

        assert first.created
        assert not first.replayed
        assert retry.replayed
        assert not retry.created
        assert retry.purchase == first.purchase

    def test_the_purchase_id_is_derived_from_the_namespace_and_the_key(
        self, ledger: CreditLedger
    ) -> None:
        purchase = ledger.initiate(external_purchase(idempotency_key="order-1")).purchase

        assert purchase.id == purchase_id_for_key(NAMESPACE, "order-1")

    def test_a_replay_after_the_purchase_moved_on_returns_what_the_initiate_produced(
        self, ledger: CreditLedger
    ) -> None:
        first = ledger.initiate(external_purchase(idempotency_key="order-1")).purchase
        ledger.authorize(authorize(first.id))

        retry = ledger.initiate(external_purchase(idempotency_key="order-1"))

        assert retry.replayed
        assert retry.purchase == first
        assert retry.purchase.version == 1
        assert retry.purchase.status == "active.payment.pending"

    def test_a_replay_of_an_initiate_that_settled_returns_the_final_purchase(
        self, ledger: CreditLedger
    ) -> None:
        command = external_purchase(initial_status="settled", idempotency_key="order-1")
        first = ledger.initiate(command).purchase

        retry = ledger.initiate(command)

        assert retry.replayed
        assert retry.purchase == first
        assert retry.purchase.version == 3

    def test_a_retry_listing_the_feature_keys_in_another_order_replays(
        self, ledger: CreditLedger
    ) -> None:
        first = ledger.initiate(
            external_purchase(idempotency_key="order-9", feature_filters=["storage", "api_calls"])
        )

        with nothing_written(ledger, first.purchase):
            retry = ledger.initiate(
                external_purchase(
                    idempotency_key="order-9", feature_filters=["api_calls", "storage"]
                )
            )

        assert retry.replayed
        assert retry.purchase == first.purchase

    def test_the_same_key_with_a_different_request_is_rejected(self, ledger: CreditLedger) -> None:
        first = ledger.initiate(external_purchase(idempotency_key="order-1")).purchase

        with nothing_written(ledger, first), pytest.raises(IdempotencyKeyReusedError) as rejected:
            ledger.initiate(external_purchase(credit_amount="5", idempotency_key="order-1"))

        assert rejected.value.code == "idempotency_key_reused"

    def test_a_reused_key_is_rejected_even_when_the_new_request_is_invalid(
        self, ledger: CreditLedger
    ) -> None:
        first = ledger.initiate(external_purchase(idempotency_key="order-1")).purchase

        with nothing_written(ledger, first), pytest.raises(IdempotencyKeyReusedError):
            ledger.initiate(external_purchase(cost_basis="0", idempotency_key="order-1"))

    def test_the_same_key_in_another_namespace_is_another_purchase(
        self, ledger: CreditLedger
    ) -> None:
        ours = ledger.initiate(external_purchase(idempotency_key="order-1"))
        theirs = ledger.initiate(external_purchase(namespace="globex", idempotency_key="order-1"))

        assert theirs.created
        assert theirs.purchase.id != ours.purchase.id


class TestAuthorize:
    def test_retrying_with_the_same_key_replays_the_authorization(
        self, ledger: CreditLedger
    ) -> None:
        purchase = ledger.initiate(external_purchase()).purchase
        first = ledger.authorize(authorize(purchase.id, idempotency_key="auth-1"))

        with nothing_written(ledger, first.purchase):
            retry = ledger.authorize(authorize(purchase.id, idempotency_key="auth-1"))

        assert not first.replayed
        assert retry.replayed
        assert retry.purchase == first.purchase

    def test_a_replay_after_settlement_returns_the_authorized_purchase(
        self, ledger: CreditLedger
    ) -> None:
        purchase = ledger.initiate(external_purchase()).purchase
        first = ledger.authorize(authorize(purchase.id, idempotency_key="auth-1")).purchase
        ledger.settle(settle(purchase.id))

        retry = ledger.authorize(authorize(purchase.id, idempotency_key="auth-1"))

        assert retry.replayed
        assert retry.purchase == first
        assert retry.purchase.status == "active.payment.authorized"

    def test_a_retry_with_an_outdated_expected_version_still_replays(
        self, ledger: CreditLedger
    ) -> None:
        purchase = ledger.initiate(external_purchase()).purchase
        first = ledger.authorize(
            authorize(purchase.id, idempotency_key="auth-1", expected_version=1)
        ).purchase

        retry = ledger.authorize(
            authorize(purchase.id, idempotency_key="auth-1", expected_version=1)
        )

        assert retry.replayed
        assert retry.purchase == first

    def test_the_same_key_with_a_different_request_is_rejected(self, ledger: CreditLedger) -> None:
        purchase = ledger.initiate(external_purchase()).purchase
        first = ledger.authorize(
            authorize(purchase.id, idempotency_key="auth-1", external_reference="psp-1")
        ).purchase

        with nothing_written(ledger, first), pytest.raises(IdempotencyKeyReusedError):
            ledger.authorize(
                authorize(purchase.id, idempotency_key="auth-1", external_reference="psp-2")
            )

    def test_a_key_used_to_initiate_cannot_authorize(self, ledger: CreditLedger) -> None:
        purchase = ledger.initiate(external_purchase(idempotency_key="order-1")).purchase

        with nothing_written(ledger, purchase), pytest.raises(IdempotencyKeyReusedError):
            ledger.authorize(authorize(purchase.id, idempotency_key="order-1"))


class TestSettle:
    def test_retrying_with_the_same_key_replays_the_settlement(self, ledger: CreditLedger) -> None:
        purchase = ledger.initiate(external_purchase()).purchase
        first = ledger.settle(settle(purchase.id, idempotency_key="settle-1"))

        with nothing_written(ledger, first.purchase):
            retry = ledger.settle(settle(purchase.id, idempotency_key="settle-1"))

        assert retry.replayed
        assert retry.purchase == first.purchase
        assert retry.purchase.status == "final"

    def test_a_retried_settle_is_not_mistaken_for_a_second_settlement(
        self, ledger: CreditLedger
    ) -> None:
        purchase = ledger.initiate(external_purchase()).purchase
        ledger.authorize(authorize(purchase.id))
        first = ledger.settle(settle(purchase.id, idempotency_key="settle-1")).purchase

        retry = ledger.settle(settle(purchase.id, idempotency_key="settle-1"))

        assert retry.replayed
        assert retry.purchase == first

    def test_the_same_key_with_a_different_request_is_rejected(self, ledger: CreditLedger) -> None:
        purchase = ledger.initiate(external_purchase()).purchase
        first = ledger.settle(settle(purchase.id, idempotency_key="settle-1")).purchase

        with nothing_written(ledger, first), pytest.raises(IdempotencyKeyReusedError):
            ledger.settle(settle(purchase.id, idempotency_key="settle-1", external_reference="x"))

    def test_an_authorize_key_cannot_be_reused_to_settle(self, ledger: CreditLedger) -> None:
        purchase = ledger.initiate(external_purchase()).purchase
        authorized = ledger.authorize(authorize(purchase.id, idempotency_key="pay-1")).purchase

        with nothing_written(ledger, authorized), pytest.raises(IdempotencyKeyReusedError):
            ledger.settle(settle(purchase.id, idempotency_key="pay-1"))


def test_keys_are_remembered_across_a_restart(
    backend: str, open_store: Callable[[], CreditLedger]
) -> None:
    if backend == "memory":
        pytest.skip("an in-memory store does not outlive its ledger: restart is meaningless")
    before = open_store()
    initiated = before.initiate(external_purchase(idempotency_key="order-1")).purchase
    authorized = before.authorize(authorize(initiated.id, idempotency_key="auth-1")).purchase
    before.close()

    after = open_store()
    with nothing_written(after, authorized):
        initiate_retry = after.initiate(external_purchase(idempotency_key="order-1"))
        authorize_retry = after.authorize(authorize(initiated.id, idempotency_key="auth-1"))
    with pytest.raises(IdempotencyKeyReusedError):
        after.initiate(external_purchase(credit_amount="1", idempotency_key="order-1"))

    assert initiate_retry.replayed
    assert initiate_retry.purchase == initiated
    assert authorize_retry.replayed
    assert authorize_retry.purchase == authorized


def test_a_retry_made_after_the_request_became_invalid_still_gets_the_first_answer(
    backend: str, open_store: Callable[[], CreditLedger], clock: FixedClock
) -> None:
    # Valid when first made; by the retry its expiry has passed, which a new request could not
    # ask for. A retry is not a new request: it gets its first answer, read from the store.
    request = external_purchase(idempotency_key="order-1", expires_at=START + timedelta(days=1))
    first = open_store()
    initiated = first.initiate(request).purchase
    clock.advance(2 * 24 * 3600)
    ledger = first if backend == "memory" else open_store()  # a restart: nothing cached

    with nothing_written(ledger, initiated):
        retry = ledger.initiate(request)
    with pytest.raises(ValidationFailedError):
        ledger.initiate(request.model_copy(update={"idempotency_key": "order-2"}))

    assert retry.replayed
    assert retry.purchase == initiated
