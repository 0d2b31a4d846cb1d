"""Invoice purchases (OpenMeter's invoice settlement): ``created`` with nothing granted until the
invoice exists, then granted, authorized on the invoice's approval, and ``final`` once paid."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.domain.errors import (
    CannotSettleNotAuthorizedPaymentError,
    CreditsNotGrantedError,
    IdempotencyKeyReusedError,
    InsufficientCreditError,
    InvoiceAlreadyCreatedError,
    InvoiceNotCreatedError,
    LedgerError,
    PaymentNotSettledError,
)
from tests.application.builders import (
    NAMESPACE,
    authorize,
    consume,
    create_invoice,
    event_types,
    invoice_purchase,
    nothing_written,
    refund,
    settle,
    void,
)
from tests.clock import START, FixedClock
from tests.readmodels_support import logged_postings


def test_openmeter_invoice_scenario_created_granted_on_the_invoice_authorized_then_final(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    # "invoice line 50 for 100 credits at 0.5"
    created = ledger.initiate(invoice_purchase(credit_amount="100", cost_basis="0.5")).purchase
    assert (created.status, created.meta_status) == ("created", "created")
    assert created.payment_amount == Decimal("50.00")
    assert created.realizations.credit_grant is None
    assert created.realizations.invoice is None
    assert created.remaining == 0

    invoiced_at = clock.advance(60)
    invoiced = ledger.create_invoice(create_invoice(created.id, invoice_id="in_1", line_id="il_1"))
    pending = invoiced.purchase
    assert pending.status == "active.payment.pending"
    assert pending.remaining == Decimal("100.00")
    assert pending.realizations.credit_grant is not None
    assert pending.realizations.credit_grant.granted_at == invoiced_at
    assert pending.realizations.invoice is not None
    assert (pending.realizations.invoice.invoice_id, pending.realizations.invoice.line_id) == (
        "in_1",
        "il_1",
    )
    assert pending.realizations.invoice.created_at == invoiced_at
    assert ledger.customer_credits(NAMESPACE, "cust-1", "USD").balance == 100

    clock.advance(60)
    authorized = ledger.authorize(authorize(created.id)).purchase
    assert authorized.status == "active.payment.authorized"
    payment = authorized.realizations.invoice_payment
    assert payment is not None
    assert (payment.status, payment.amount) == ("authorized", Decimal("50.00"))
    assert authorized.realizations.external_payment is None

    clock.advance(60)
    final = ledger.settle(settle(created.id)).purchase
    assert (final.status, final.meta_status) == ("final", "final")
    payment = final.realizations.invoice_payment
    assert payment is not None
    assert (payment.status, payment.amount) == ("settled", Decimal("50.00"))
    assert event_types(ledger, final) == [
        "Initiated",
        "InvoiceCreated",
        "PaymentAuthorized",
        "PaymentSettled",
    ]
    assert [entry.status_after for entry in ledger.purchase_history(NAMESPACE, final.id)] == [
        "created",
        "active.payment.pending",
        "active.payment.authorized",
        "final",
    ]
    assert ledger.get_purchase(NAMESPACE, final.id) == final


def test_a_future_dated_invoice_purchase_stays_created_grants_nothing_and_books_nothing(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    purchase = ledger.initiate(invoice_purchase()).purchase
    clock.advance(30 * 24 * 3600)

    found = ledger.get_purchase(NAMESPACE, purchase.id)
    assert found.status == "created"
    assert found.remaining == found.consumed == 0
    assert found.realizations.credit_grant is None
    credits = ledger.customer_credits(NAMESPACE, "cust-1", "USD")
    assert credits.balance == 0
    assert credits.grants == []
    assert ledger.credit_history(NAMESPACE, "cust-1", "USD") == []
    with nothing_written(ledger, purchase), pytest.raises(InsufficientCreditError) as refused:
        ledger.consume(consume("1"))
    assert Decimal(refused.value.available) == 0
    assert logged_postings(ledger) == []


def test_an_invoice_purchases_credit_is_spendable_once_invoiced(
    ledger: CreditLedger,
) -> None:
    purchase = ledger.initiate(invoice_purchase(credit_amount="40")).purchase
    ledger.create_invoice(create_invoice(purchase.id))

    spent = ledger.consume(consume("40")).consumption

    assert [(a.purchase_id, a.amount) for a in spent.allocations] == [(purchase.id, Decimal(40))]
    assert ledger.get_purchase(NAMESPACE, purchase.id).remaining == 0
    history = ledger.credit_history(NAMESPACE, "cust-1", "USD")
    assert [(entry.type, entry.amount) for entry in history] == [
        ("granted", Decimal(40)),
        ("consumed", Decimal(40)),
    ]


Send = Callable[[CreditLedger, UUID], object]


@pytest.mark.parametrize(
    ("send", "error"),
    [
        (lambda ledger, p: ledger.authorize(authorize(p)), InvoiceNotCreatedError),
        (lambda ledger, p: ledger.settle(settle(p)), InvoiceNotCreatedError),
        (lambda ledger, p: ledger.void(void(p)), CreditsNotGrantedError),
        (lambda ledger, p: ledger.refund(refund(p)), PaymentNotSettledError),
    ],
    ids=["authorize", "settle", "void", "refund"],
)
def test_before_its_invoice_only_the_invoice_or_a_failure_is_accepted(
    ledger: CreditLedger, send: Send, error: type[LedgerError]
) -> None:
    purchase = ledger.initiate(invoice_purchase()).purchase

    with nothing_written(ledger, purchase), pytest.raises(error):
        send(ledger, purchase.id)


def test_an_invoice_cannot_be_settled_before_its_approval(ledger: CreditLedger) -> None:
    purchase = ledger.initiate(invoice_purchase()).purchase
    ledger.create_invoice(create_invoice(purchase.id))

    with (
        nothing_written(ledger, purchase),
        pytest.raises(CannotSettleNotAuthorizedPaymentError),
    ):
        ledger.settle(settle(purchase.id))


def test_a_second_invoice_is_refused_and_a_retry_of_the_first_replays_it(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    purchase = ledger.initiate(invoice_purchase()).purchase
    first = ledger.create_invoice(create_invoice(purchase.id, idempotency_key="inv-key")).purchase
    clock.advance(60)
    ledger.authorize(authorize(purchase.id))

    again = ledger.create_invoice(create_invoice(purchase.id, idempotency_key="inv-key"))

    assert again.replayed
    assert again.purchase == first
    with nothing_written(ledger, purchase):
        with pytest.raises(InvoiceAlreadyCreatedError):
            ledger.create_invoice(create_invoice(purchase.id, invoice_id="inv-2"))
        with pytest.raises(IdempotencyKeyReusedError):
            ledger.create_invoice(
                create_invoice(purchase.id, invoice_id="inv-2", idempotency_key="inv-key")
            )
    assert event_types(ledger, first) == ["Initiated", "InvoiceCreated", "PaymentAuthorized"]


def test_an_invoice_purchase_as_of_before_its_invoice_had_nothing_granted(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    purchase = ledger.initiate(invoice_purchase()).purchase
    clock.advance(60)
    ledger.create_invoice(create_invoice(purchase.id))

    before = ledger.get_purchase(NAMESPACE, purchase.id, as_of=START + timedelta(seconds=30))
    assert before.status == "created"
    assert before.remaining == 0
    assert before.realizations.credit_grant is None
    assert (
        ledger.customer_credits(
            NAMESPACE, "cust-1", "USD", as_of=START + timedelta(seconds=30)
        ).grants
        == []
    )
