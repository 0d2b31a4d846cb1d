"""How a payment turns out, over HTTP: an invoice grants an invoice purchase's credit, a failure
takes back what is unconsumed and leaves the consumed part owed, refunds give back part or all of
a settled payment. Each route allowed and refused (problem documents, nothing written), replayed
by its Idempotency-Key, guarded by If-Match; and what the read models then show (balances in
their units, receivables, settled revenue). In-process app, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from creditledger.application.ledger import CreditLedger
from tests.clock import FixedClock
from tests.infrastructure.http_app import TestClient, client_for, purchase_body

PURCHASES = "/v1/namespaces/acme/credit-purchases"
PROBLEM = "application/problem+json"


@pytest.fixture
def client(ledger: CreditLedger) -> Iterator[TestClient]:
    with client_for(ledger) as app:
        yield app


def _path(purchase: dict[str, Any], action: str | None = None) -> str:
    path = f"{PURCHASES}/{purchase['id']}"
    return f"{path}/{action}" if action else path


def _create(client: TestClient, customer: str, **changes: Any) -> dict[str, Any]:
    response = client.post(
        PURCHASES, json=purchase_body(customer_id=customer, feature_filters=[], **changes)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _invoice_purchase(client: TestClient, customer: str) -> dict[str, Any]:
    return _create(client, customer, settlement={"type": "invoice"})


def _consume(client: TestClient, customer: str, amount: str) -> None:
    response = client.post(
        f"/v1/namespaces/acme/customers/{customer}/consumptions",
        json={"currency": "USD", "amount": amount},
    )
    assert response.status_code == 201, response.text


def _written(client: TestClient, purchase: dict[str, Any]) -> tuple[Any, Any]:
    """Everything a refused command could have written: the purchase's history and its
    customer's credit history."""
    history = client.get(_path(purchase, "events"))
    credit = client.get(
        f"/v1/namespaces/acme/customers/{purchase['customer_id']}/credit-history",
        params={"currency": "USD"},
    )
    assert history.status_code == credit.status_code == 200
    return history.json(), credit.json()


def _refused(  # noqa: PLR0917 - reads as the request line it checks
    client: TestClient,
    purchase: dict[str, Any],
    action: str,
    status: int,
    code: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The command is refused with this problem, and nothing is written."""
    before = _written(client, purchase)
    response = client.post(_path(purchase, action), json=body, headers=headers or {})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert (problem["code"], problem["status"]) == (code, status)
    assert "Idempotent-Replayed" not in response.headers
    assert _written(client, purchase) == before
    return problem


def _types(client: TestClient, purchase: dict[str, Any]) -> list[str]:
    return [item["type"] for item in client.get(_path(purchase, "events")).json()["items"]]


def _balances(client: TestClient, customer: str, position: str) -> dict[str, tuple[str, str]]:
    response = client.get(
        f"/v1/namespaces/acme/customers/{customer}/balances",
        headers={"X-Min-Position": position},
    )
    assert response.status_code == 200, response.text
    return {
        line["account"]: (line["balance"], line["unit"])
        for line in response.json()["balances"]
        if line["balance"] not in ("0.00", "-0.00")
    }


def _receivables(client: TestClient, customer: str, position: str, **params: str) -> Any:
    response = client.get(
        "/v1/namespaces/acme/reports/receivables",
        params={"min_position": position, **params},
    )
    assert response.status_code == 200, response.text
    return [item for item in response.json()["items"] if item["customer_id"] == customer]


# -- invoice ---------------------------------------------------------------------------------


def test_an_invoice_grants_an_invoice_purchases_credit_then_it_is_authorized_and_settled(
    client: TestClient, clock: FixedClock
) -> None:
    created = _invoice_purchase(client, "inv-1")
    assert (created["status"], created["remaining"]) == ("created", "0.00")
    assert created["realizations"]["credit_grant"] is None
    assert created["realizations"]["invoice"] is None
    assert _balances(client, "inv-1", "1") == {}
    _refused(client, created, "authorize", 409, "invoice_not_created")
    _refused(client, created, "settle", 409, "invoice_not_created")
    _refused(client, created, "void", 409, "credits_not_granted")
    _refused(client, created, "refund", 409, "payment_not_settled", {"amount": None})

    clock.advance(60)
    body = {"invoice_id": "inv-2026-0042", "line_id": "line-1"}
    headers = {"Idempotency-Key": "invoice-1", "If-Match": '"1"'}
    invoiced = client.post(_path(created, "invoice"), json=body, headers=headers)
    assert invoiced.status_code == 200, invoiced.text
    assert invoiced.headers["ETag"] == '"2"'
    assert "Idempotent-Replayed" not in invoiced.headers
    purchase = invoiced.json()
    assert (purchase["status"], purchase["remaining"]) == ("active.payment.pending", "100.12")
    assert purchase["realizations"]["invoice"] == {
        "invoice_id": "inv-2026-0042",
        "line_id": "line-1",
        "created_at": "2026-01-01T12:01:00Z",
    }
    assert purchase["realizations"]["credit_grant"]["granted_at"] == "2026-01-01T12:01:00Z"
    position = invoiced.headers["X-Position"]
    assert _balances(client, "inv-1", position) == {
        "customer_fbo": ("100.12", "credits"),
        "customer_receivable_open": ("-100.12", "credits"),
    }
    [receivable] = _receivables(client, "inv-1", position)
    assert (receivable["stage"], receivable["owed"]) == ("open", "50.06")
    assert receivable["opened_at"] == "2026-01-01T12:01:00Z"

    replay = client.post(_path(created, "invoice"), json=body, headers=headers)
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == purchase
    _refused(
        client,
        created,
        "invoice",
        409,
        "idempotency_key_reused",
        {"invoice_id": "inv-2026-0042", "line_id": "line-2"},
        {"Idempotency-Key": "invoice-1"},
    )
    _refused(client, created, "invoice", 409, "invoice_already_created", body)
    _refused(client, created, "settle", 409, "cannot_settle_not_authorized_payment")

    assert client.post(_path(created, "authorize")).status_code == 200
    settled = client.post(_path(created, "settle"), json={"external_reference": "bank-7"})
    assert settled.status_code == 200, settled.text
    final = settled.json()
    assert final["status"] == "final"
    assert final["realizations"]["external_payment"] is None
    payment = final["realizations"]["invoice_payment"]
    assert (payment["status"], payment["amount"]) == ("settled", "50.06")
    assert payment["settled"]["external_reference"] == "bank-7"
    _refused(client, created, "invoice", 409, "invoice_already_created", body)
    assert _types(client, created) == [
        "Initiated",
        "InvoiceCreated",
        "PaymentAuthorized",
        "PaymentSettled",
    ]
    assert _receivables(client, "inv-1", settled.headers["X-Position"]) == []


def test_an_invoice_is_refused_for_other_settlements_bad_bodies_and_other_versions(
    client: TestClient,
) -> None:
    external = _create(client, "inv-2")
    body = {"invoice_id": "inv-1", "line_id": "line-1"}
    _refused(client, external, "invoice", 409, "invalid_transition", body)
    invoice = _invoice_purchase(client, "inv-2")
    # The shape first (every field missing or mistyped), then the values (as the domain says).
    shape = _refused(client, invoice, "invoice", 422, "validation_failed", {"invoice_id": ""})
    assert [(error["field"], error["code"]) for error in shape["errors"]] == [
        ("line_id", "missing")
    ]
    values = _refused(
        client, invoice, "invoice", 422, "validation_failed", {"invoice_id": "", "line_id": ""}
    )
    assert {(error["field"], error["code"]) for error in values["errors"]} == {
        ("invoice_id", "too_short"),
        ("line_id", "too_short"),
    }
    _refused(client, invoice, "invoice", 422, "validation_failed", None)
    _refused(client, invoice, "invoice", 412, "version_mismatch", body, {"If-Match": '"2"'})
    missing = {"id": "7f3c3b34-3d1c-4c55-9d0c-3a8f4f6f5f5f"}
    response = client.post(_path(missing, "invoice"), json=body)
    assert (response.status_code, response.json()["code"]) == (404, "credit_purchase_not_found")


# -- failure ---------------------------------------------------------------------------------


def test_a_failed_payment_takes_back_the_unconsumed_credit_and_leaves_the_consumed_owed(
    client: TestClient, clock: FixedClock
) -> None:
    purchase = _create(client, "fail-1")
    _consume(client, "fail-1", "30")
    authorized = client.post(_path(purchase, "authorize"))
    assert authorized.status_code == 200
    clock.advance(60)
    body = {"reason": "card declined", "external_reference": "psp-9"}
    headers = {"Idempotency-Key": "fail-1", "If-Match": '"2"'}
    failed = client.post(_path(purchase, "fail"), json=body, headers=headers)
    assert failed.status_code == 200, failed.text
    assert failed.headers["ETag"] == '"3"'
    view = failed.json()
    assert (view["status"], view["meta_status"]) == ("final.payment_failed", "final")
    assert (view["remaining"], view["consumed"], view["revoked"]) == ("0.00", "30.00", "70.12")
    failure = view["realizations"]["payment_failure"]
    assert (failure["reason"], failure["external_reference"]) == ("card declined", "psp-9")
    assert (failure["revoked"], failure["released"], failure["owed"]) == ("70.12", "0.00", "30.00")
    assert failure["at"] == "2026-01-01T12:01:00Z"

    replay = client.post(_path(purchase, "fail"), json=body, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == view
    for action, late in [
        ("authorize", None),
        ("settle", None),
        ("void", None),
        ("fail", {"reason": "again"}),
        ("refund", {"amount": None}),
    ]:
        _refused(client, purchase, action, 409, "payment_already_failed", late)
    spend = client.post(
        "/v1/namespaces/acme/customers/fail-1/consumptions",
        json={"currency": "USD", "amount": "0.01"},
    )
    assert (spend.status_code, spend.json()["available"]) == (409, "0.00")

    # The authorization is reversed and the re-denomination undone; the open receivable is the
    # 30 credits consumed, and the receivables report says what they cost: 15.00 USD.
    position = failed.headers["X-Position"]
    assert _balances(client, "fail-1", position) == {
        "customer_receivable_open": ("-30.00", "credits"),
        "customer_accrued": ("30.00", "credits"),
    }
    [owed] = _receivables(client, "fail-1", position)
    assert (owed["stage"], owed["owed"], owed["payment_amount"]) == ("failed", "15.00", "50.06")
    assert owed["failed_at"] == "2026-01-01T12:01:00Z"
    [before] = _receivables(client, "fail-1", position, as_of="2026-01-01T12:00:30Z")
    assert (before["stage"], before["owed"], before["failed_at"]) == ("authorized", "50.06", None)


def test_a_failure_with_nothing_consumed_owes_nothing_and_closes_the_receivable(
    client: TestClient,
) -> None:
    purchase = _create(client, "fail-2")
    failed = client.post(_path(purchase, "fail"), json={"reason": "never paid"})
    assert failed.status_code == 200, failed.text
    assert failed.json()["realizations"]["payment_failure"]["owed"] == "0.00"
    position = failed.headers["X-Position"]
    assert _receivables(client, "fail-2", position) == []
    assert _balances(client, "fail-2", position) == {}

    waiting = _invoice_purchase(client, "fail-2")
    before_invoice = client.post(_path(waiting, "fail"), json={"reason": "cancelled"})
    assert before_invoice.status_code == 200, before_invoice.text
    assert before_invoice.json()["status"] == "final.payment_failed"
    assert before_invoice.json()["revoked"] == "0.00"
    assert _receivables(client, "fail-2", before_invoice.headers["X-Position"]) == []
    assert _types(client, waiting) == ["Initiated", "PaymentFailed"]


def test_a_failure_is_refused_after_settlement_for_free_credit_and_without_a_reason(
    client: TestClient,
) -> None:
    settled = _create(
        client, "fail-3", settlement={"type": "external", "initial_status": "settled"}
    )
    _refused(client, settled, "fail", 409, "payment_already_settled", {"reason": "late"})
    free = _create(client, "fail-3", settlement={"type": "promotional"}, cost_basis=None)
    _refused(client, free, "fail", 409, "invalid_transition", {"reason": "no payment"})
    pending = _create(client, "fail-3")
    problem = _refused(client, pending, "fail", 422, "validation_failed", {})
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("reason", "missing")]
    _refused(client, pending, "fail", 422, "validation_failed", {"reason": "x" * 257})
    _refused(client, pending, "fail", 412, "version_mismatch", {"reason": "x"}, {"If-Match": '"9"'})
    # A purchase's keys are its own: one used for its authorization cannot name a failure.
    authorized = client.post(_path(pending, "authorize"), headers={"Idempotency-Key": "k-3"})
    assert authorized.status_code == 200
    _refused(
        client,
        pending,
        "fail",
        409,
        "idempotency_key_reused",
        {"reason": "declined"},
        {"Idempotency-Key": "k-3"},
    )


# -- refunds ---------------------------------------------------------------------------------


def test_refunds_give_back_part_then_the_rest_of_a_settled_payment(
    client: TestClient, clock: FixedClock
) -> None:
    purchase = _create(
        client, "refund-1", settlement={"type": "external", "initial_status": "settled"}
    )
    _consume(client, "refund-1", "20")
    clock.advance(3600)
    headers = {"Idempotency-Key": "refund-1", "If-Match": '"3"'}
    body = {"amount": "10.005", "reason": "customer asked"}
    first = client.post(_path(purchase, "refund"), json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] == '"4"'
    view = first.json()
    assert view["status"] == "final"  # a refund keeps the status
    assert (view["refunded"], view["remaining"], view["consumed"]) == ("10.01", "70.11", "20.00")
    refunds = view["realizations"]["refunds"]
    assert (refunds["count"], refunds["amount"], refunds["cash_amount"]) == (1, "10.01", "5.01")

    replay = client.post(_path(purchase, "refund"), json=body, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == view
    too_much = _refused(
        client, purchase, "refund", 409, "refund_exceeds_remaining", {"amount": "70.12"}
    )
    assert too_much["remaining"] == "70.11"
    bad = _refused(client, purchase, "refund", 422, "validation_failed", {"amount": "0"})
    assert [error["field"] for error in bad["errors"]] == ["amount"]
    _refused(client, purchase, "refund", 422, "validation_failed", {"amount": 1.5})
    _refused(client, purchase, "refund", 422, "validation_failed", {"reason": "no amount"})

    rest = client.post(_path(purchase, "refund"), json={"amount": None})
    assert rest.status_code == 200, rest.text
    after = rest.json()
    assert (after["refunded"], after["remaining"]) == ("80.12", "0.00")
    # Cash follows the cumulative share: round(80.12 x 0.5) = 40.06 in all, 35.05 this time.
    assert after["realizations"]["refunds"]["cash_amount"] == "40.06"
    assert after["realizations"]["refunds"]["count"] == 2
    _refused(client, purchase, "refund", 409, "nothing_to_refund", {"amount": None})

    position = rest.headers["X-Position"]
    assert _balances(client, "refund-1", position) == {
        "customer_accrued": ("20.00", "credits"),
        "brokerage_credits": ("-20.00", "credits"),
        "brokerage_cash": ("10.00", "cash"),
        "wash": ("-10.00", "cash"),
    }
    revenue = client.get(
        "/v1/namespaces/acme/reports/settled-revenue",
        params={"from": "2026-01-01", "to": "2026-01-01", "min_position": position},
    )
    assert revenue.status_code == 200, revenue.text
    [day] = revenue.json()["days"]
    assert (day["amount"], day["settlements"]) == ("50.06", 1)
    assert (day["refunded"], day["refunds"], day["net"]) == ("40.06", 2, "10.00")
    assert _types(client, purchase) == [
        "Initiated",
        "PaymentAuthorized",
        "PaymentSettled",
        "PaymentRefunded",
        "PaymentRefunded",
    ]


def test_a_refund_is_refused_before_settlement_and_for_free_credit(client: TestClient) -> None:
    pending = _create(client, "refund-2")
    _refused(client, pending, "refund", 409, "payment_not_settled", {"amount": "1"})
    assert client.post(_path(pending, "authorize")).status_code == 200
    _refused(client, pending, "refund", 409, "payment_not_settled", {"amount": None})
    free = _create(client, "refund-2", settlement={"type": "promotional"}, cost_basis=None)
    _refused(client, free, "refund", 409, "invalid_transition", {"amount": None})
    settled = _create(
        client, "refund-3", settlement={"type": "external", "initial_status": "settled"}
    )
    _consume(client, "refund-3", "100.12")
    _refused(client, settled, "refund", 409, "nothing_to_refund", {"amount": None})
    _refused(client, settled, "refund", 422, "validation_failed", None)
