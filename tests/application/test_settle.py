"""Settling the external payment of a purchase (authorizing it first if that was never reported)."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import (
    CreditPurchaseNotFoundError,
    InvalidTransitionError,
    PaymentAlreadySettledError,
    VersionMismatchError,
)
from creditledger.domain.identity import LedgerStep, transaction_group_id
from tests.application.builders import (
    authorize,
    external_purchase,
    nothing_written,
    promotional_purchase,
    settle,
)
from tests.clock import FixedClock


def test_settling_an_authorized_purchase_makes_it_final_and_keeps_both_ledger_groups(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    purchase = ledger.initiate(external_purchase()).purchase
    clock.advance(60)
    authorized = ledger.authorize(authorize(purchase.id, external_reference="psp-a")).purchase
    clock.advance(60)

    settled = ledger.settle(settle(purchase.id, external_reference="psp-s")).purchase

    assert settled.status == "final"
    assert settled.meta_status == "final"
    assert settled.version == 3
    payment = settled.realizations.external_payment
    assert payment is not None
    assert authorized.realizations.external_payment is not None
    assert payment.status == "settled"
    assert payment.amount == Decimal("50.06")
    assert payment.authorized == authorized.realizations.external_payment.authorized
    assert payment.settled is not None
    assert payment.settled.transaction_group_id == transaction_group_id(
        purchase.id, LedgerStep.PAYMENT_SETTLEMENT
    )
    assert payment.settled.transaction_group_id != payment.authorized.transaction_group_id
    assert payment.settled.at == clock.now()
    assert payment.settled.external_reference == "psp-s"
    history = ledger.purchase_history(purchase.namespace, purchase.id)
    assert [entry.status_after for entry in history] == [
        "active.payment.pending",
        "active.payment.authorized",
        "final",
    ]


def test_settling_a_pending_purchase_authorizes_then_settles_in_one_command(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    purchase = ledger.initiate(external_purchase()).purchase
    clock.advance(60)

    settled = ledger.settle(settle(purchase.id, external_reference="psp-1")).purchase

    assert settled.status == "final"
    payment = settled.realizations.external_payment
    assert payment is not None
    assert payment.status == "settled"
    assert payment.authorized.transaction_group_id == transaction_group_id(
        purchase.id, LedgerStep.PAYMENT_AUTHORIZATION
    )
    assert payment.settled is not None
    assert payment.authorized.at == payment.settled.at == clock.now()
    history = ledger.purchase_history(purchase.namespace, purchase.id)
    assert [(entry.version, entry.type, entry.status_after) for entry in history] == [
        (1, "Initiated", "active.payment.pending"),
        (2, "PaymentAuthorized", "active.payment.authorized"),
        (3, "PaymentSettled", "final"),
    ]


def test_settling_a_final_purchase_is_rejected_and_changes_nothing(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(external_purchase()).purchase
    final = ledger.settle(settle(purchase.id)).purchase

    with nothing_written(ledger, final), pytest.raises(PaymentAlreadySettledError) as rejected:
        ledger.settle(settle(purchase.id))

    assert rejected.value.code == "payment_already_settled"


def test_settling_a_purchase_created_as_settled_is_rejected(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(external_purchase(initial_status="settled")).purchase

    with nothing_written(ledger, purchase), pytest.raises(PaymentAlreadySettledError):
        ledger.settle(settle(purchase.id))


def test_settling_a_promotional_purchase_is_an_invalid_transition(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(promotional_purchase()).purchase

    with nothing_written(ledger, purchase), pytest.raises(InvalidTransitionError):
        ledger.settle(settle(purchase.id))


def test_settling_a_purchase_that_does_not_exist_is_not_found(ledger: CreditLedger) -> None:
    with nothing_written(ledger), pytest.raises(CreditPurchaseNotFoundError):
        ledger.settle(settle(uuid4()))


def test_settling_at_another_version_than_expected_is_rejected(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(external_purchase()).purchase
    authorized = ledger.authorize(authorize(purchase.id)).purchase

    with nothing_written(ledger, authorized), pytest.raises(VersionMismatchError):
        ledger.settle(settle(purchase.id, expected_version=1))

    assert ledger.settle(settle(purchase.id, expected_version=2)).purchase.status == "final"
