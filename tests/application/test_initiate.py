"""Initiating a purchase: credits are granted at once, then the initial payment status is acted on.

The acceptance scenarios of domain-reference.md §8 for external and promotional purchases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from creditledger.application.ledger import CreditLedger
from creditledger.domain.identity import LedgerStep, transaction_group_id
from tests.application.builders import event_types, external_purchase, promotional_purchase
from tests.clock import START, FixedClock


def test_an_external_purchase_created_as_created_waits_for_payment_with_credits_granted(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(external_purchase(initial_status="created")).purchase

    assert purchase.status == "active.payment.pending"
    assert purchase.meta_status == "active"
    assert purchase.realizations.credit_grant is not None
    assert purchase.realizations.credit_grant.transaction_group_id == transaction_group_id(
        purchase.id, LedgerStep.CREDIT_GRANT
    )
    assert purchase.realizations.credit_grant.granted_at == START
    assert purchase.realizations.external_payment is None
    assert purchase.version == 1
    assert event_types(ledger, purchase) == ["Initiated"]


def test_an_external_purchase_without_initial_status_starts_as_created(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(external_purchase()).purchase

    assert purchase.settlement.initial_status == "created"
    assert purchase.status == "active.payment.pending"


def test_an_external_purchase_created_as_authorized_has_its_payment_authorized(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(external_purchase(initial_status="authorized")).purchase

    assert purchase.status == "active.payment.authorized"
    assert purchase.meta_status == "active"
    payment = purchase.realizations.external_payment
    assert payment is not None
    assert payment.status == "authorized"
    assert payment.settled is None
    assert purchase.realizations.credit_grant is not None
    assert event_types(ledger, purchase) == ["Initiated", "PaymentAuthorized"]


def test_an_external_purchase_created_as_settled_is_final_after_grant_authorize_and_settle(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(external_purchase(initial_status="settled")).purchase

    assert purchase.status == "final"
    assert purchase.meta_status == "final"
    payment = purchase.realizations.external_payment
    assert payment is not None
    assert payment.status == "settled"
    assert payment.authorized.transaction_group_id == transaction_group_id(
        purchase.id, LedgerStep.PAYMENT_AUTHORIZATION
    )
    assert payment.settled is not None
    assert payment.settled.transaction_group_id == transaction_group_id(
        purchase.id, LedgerStep.PAYMENT_SETTLEMENT
    )
    history = ledger.purchase_history(purchase.namespace, purchase.id)
    assert [(entry.version, entry.type) for entry in history] == [
        (1, "Initiated"),
        (2, "PaymentAuthorized"),
        (3, "PaymentSettled"),
    ]
    assert [entry.status_after for entry in history] == [
        "active.payment.pending",
        "active.payment.authorized",
        "final",
    ]


def test_a_credit_amount_of_100_123_usd_is_stored_as_100_12_and_used_everywhere(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(
        external_purchase(credit_amount="100.123", cost_basis="0.5", initial_status="settled")
    ).purchase

    assert purchase.credit_amount == Decimal("100.12")
    assert purchase.payment_amount == Decimal("50.06")
    payment = purchase.realizations.external_payment
    assert payment is not None
    assert payment.amount == Decimal("50.06")
    initiated, authorized, _ = ledger.purchase_history(purchase.namespace, purchase.id)
    assert initiated.data["credit_amount"] == "100.12"
    assert authorized.data["amount"] == "50.06"
    reread = ledger.get_purchase(purchase.namespace, purchase.id)
    assert reread.credit_amount == Decimal("100.12")
    assert reread.payment_amount == Decimal("50.06")


def test_the_cost_basis_is_kept_as_given_not_rounded(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(external_purchase(credit_amount="1", cost_basis="0.005")).purchase

    assert purchase.cost_basis == Decimal("0.005")


def test_one_usd_at_a_cost_basis_of_0_005_with_priority_20_pays_one_cent(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(
        external_purchase(credit_amount="1", cost_basis="0.005", priority=20)
    ).purchase

    assert purchase.priority == 20
    assert purchase.credit_amount == Decimal("1.00")
    # 1 x 0.005 = 0.005 rounds half away from zero to 0.01.
    assert purchase.payment_amount == Decimal("0.01")


def test_a_purchase_without_priority_gets_the_default_priority_100(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(external_purchase()).purchase

    assert purchase.priority == 100


def test_a_promotional_purchase_is_final_at_once_with_credits_granted_and_no_payment(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(promotional_purchase(credit_amount="25")).purchase

    assert purchase.status == "final"
    assert purchase.meta_status == "final"
    assert purchase.settlement.type == "promotional"
    assert purchase.settlement.initial_status is None
    assert purchase.credit_amount == Decimal("25.00")
    assert purchase.cost_basis is None
    assert purchase.payment_amount is None
    assert purchase.realizations.credit_grant is not None
    assert purchase.realizations.credit_grant.transaction_group_id == transaction_group_id(
        purchase.id, LedgerStep.CREDIT_GRANT
    )
    assert purchase.realizations.external_payment is None
    assert event_types(ledger, purchase) == ["Initiated"]


def test_feature_filters_are_stored_sorted(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(
        external_purchase(feature_filters=["storage", "api_calls", "compute"])
    ).purchase

    assert purchase.feature_filters == ["api_calls", "compute", "storage"]
    assert ledger.get_purchase(purchase.namespace, purchase.id).feature_filters == [
        "api_calls",
        "compute",
        "storage",
    ]


def test_the_descriptive_fields_are_stored_as_given(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(
        external_purchase(name="Top-up", metadata={"order": "A-1"}, customer_id="cust-42")
    ).purchase
    reread = ledger.get_purchase(purchase.namespace, purchase.id)

    assert (reread.name, reread.metadata, reread.customer_id) == (
        "Top-up",
        {"order": "A-1"},
        "cust-42",
    )


def test_an_expiry_is_stored_in_utc_truncated_to_the_second(ledger: CreditLedger) -> None:
    plus_two = timezone(timedelta(hours=2))
    expires = datetime(2027, 1, 1, 14, 30, 15, 999_999, tzinfo=plus_two)

    purchase = ledger.initiate(external_purchase(expires_at=expires)).purchase

    assert purchase.expires_at == datetime(2027, 1, 1, 12, 30, 15, tzinfo=UTC)
    stored = ledger.get_purchase(purchase.namespace, purchase.id).expires_at
    assert stored is not None
    assert stored.utcoffset() == timedelta(0)
    assert stored == datetime(2027, 1, 1, 12, 30, 15, tzinfo=UTC)


def test_the_purchase_is_stamped_with_the_injected_clock(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    clock.advance(90)

    purchase = ledger.initiate(external_purchase()).purchase

    assert purchase.created_at == purchase.updated_at == START + timedelta(seconds=90)


def test_each_initiate_without_a_key_is_a_new_purchase(ledger: CreditLedger) -> None:
    first = ledger.initiate(external_purchase())
    second = ledger.initiate(external_purchase())

    assert first.purchase.id != second.purchase.id
    assert first.created
    assert second.created
    assert not second.replayed
