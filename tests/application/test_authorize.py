"""Authorizing the external payment of a purchase."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import (
    CreditPurchaseNotFoundError,
    InvalidTransitionError,
    PaymentAlreadyAuthorizedError,
    VersionMismatchError,
)
from creditledger.domain.identity import LedgerStep, transaction_group_id
from tests.application.builders import (
    authorize,
    event_types,
    external_purchase,
    nothing_written,
    promotional_purchase,
    settle,
)
from tests.clock import START, FixedClock


def test_authorizing_a_pending_purchase_records_the_payment_authorization(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    purchase = ledger.initiate(external_purchase()).purchase
    clock.advance(60)

    authorized = ledger.authorize(authorize(purchase.id, external_reference="psp-1")).purchase

    assert authorized.status == "active.payment.authorized"
    assert authorized.meta_status == "active"
    assert authorized.version == 2
    payment = authorized.realizations.external_payment
    assert payment is not None
    assert payment.status == "authorized"
    assert payment.amount == Decimal("50.06")
    assert payment.authorized.transaction_group_id == transaction_group_id(
        purchase.id, LedgerStep.PAYMENT_AUTHORIZATION
    )
    assert payment.authorized.at == clock.now()
    assert payment.authorized.external_reference == "psp-1"
    assert payment.settled is None
    assert authorized.realizations.credit_grant == purchase.realizations.credit_grant
    assert authorized.created_at == START
    assert authorized.updated_at == clock.now()
    assert event_types(ledger, purchase) == ["Initiated", "PaymentAuthorized"]


def test_the_authorization_is_what_a_later_read_returns(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(external_purchase()).purchase

    authorized = ledger.authorize(authorize(purchase.id)).purchase

    assert ledger.get_purchase(purchase.namespace, purchase.id) == authorized


def test_authorizing_an_authorized_purchase_again_is_rejected_and_changes_nothing(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(external_purchase()).purchase
    authorized = ledger.authorize(authorize(purchase.id)).purchase

    with (
        nothing_written(ledger, authorized),
        pytest.raises(PaymentAlreadyAuthorizedError) as rejected,
    ):
        ledger.authorize(authorize(purchase.id))

    assert rejected.value.code == "payment_already_authorized"


def test_authorizing_a_purchase_created_as_authorized_is_rejected(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(external_purchase(initial_status="authorized")).purchase

    with nothing_written(ledger, purchase), pytest.raises(PaymentAlreadyAuthorizedError):
        ledger.authorize(authorize(purchase.id))


def test_authorizing_a_final_purchase_is_rejected_as_already_authorized(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(external_purchase()).purchase
    ledger.authorize(authorize(purchase.id))
    final = ledger.settle(settle(purchase.id)).purchase

    with nothing_written(ledger, final), pytest.raises(PaymentAlreadyAuthorizedError):
        ledger.authorize(authorize(purchase.id))


def test_authorizing_a_promotional_purchase_is_an_invalid_transition(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(promotional_purchase()).purchase

    with nothing_written(ledger, purchase), pytest.raises(InvalidTransitionError) as rejected:
        ledger.authorize(authorize(purchase.id))

    assert rejected.value.code == "invalid_transition"


def test_authorizing_a_purchase_that_does_not_exist_is_not_found(ledger: CreditLedger) -> None:
    with nothing_written(ledger), pytest.raises(CreditPurchaseNotFoundError) as rejected:
        ledger.authorize(authorize(uuid4()))

    assert rejected.value.code == "credit_purchase_not_found"


def test_authorizing_at_the_expected_version_succeeds(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(external_purchase()).purchase

    authorized = ledger.authorize(authorize(purchase.id, expected_version=1)).purchase

    assert authorized.version == 2


@pytest.mark.parametrize("expected_version", [0, 2, 7])
def test_authorizing_at_another_version_than_expected_is_rejected(
    ledger: CreditLedger, expected_version: int
) -> None:
    purchase = ledger.initiate(external_purchase()).purchase

    with nothing_written(ledger, purchase), pytest.raises(VersionMismatchError) as rejected:
        ledger.authorize(authorize(purchase.id, expected_version=expected_version))

    assert rejected.value.code == "version_mismatch"


def test_the_thirty_credit_purchase_at_0_5_goes_from_pending_to_final(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(
        external_purchase(credit_amount="30", cost_basis="0.5", initial_status="created")
    ).purchase
    assert purchase.status == "active.payment.pending"
    assert purchase.realizations.external_payment is None

    authorized = ledger.authorize(authorize(purchase.id)).purchase
    assert authorized.status == "active.payment.authorized"
    assert authorized.realizations.external_payment is not None
    assert authorized.realizations.external_payment.status == "authorized"
    assert authorized.realizations.external_payment.amount == Decimal("15.00")

    settled = ledger.settle(settle(purchase.id)).purchase
    assert settled.status == "final"
    assert settled.realizations.external_payment is not None
    assert settled.realizations.external_payment.status == "settled"
    assert settled.credit_amount == Decimal("30.00")
