"""Expiry over HTTP, with a clock the test moves: the app in-process over a ledger on memory,
SQLite and PostgreSQL (a server process keeps its own clock)."""

from __future__ import annotations

from datetime import timedelta

from creditledger.application.ledger import CreditLedger
from tests.clock import START, FixedClock
from tests.e2e.http_support import assert_problem
from tests.infrastructure.http_app import client_for, purchase_body

PURCHASES = "/v1/namespaces/acme/credit-purchases"
CUSTOMER = "/v1/namespaces/acme/customers/cust-1"
EXPIRES_AT = START + timedelta(days=30)


def test_credit_stops_being_spendable_at_expires_at_whatever_is_recorded(
    ledger: CreditLedger, clock: FixedClock
) -> None:
    with client_for(ledger) as client:
        expiring = client.post(
            PURCHASES, json=purchase_body(expires_at=EXPIRES_AT.isoformat(), priority=1)
        ).json()
        lasting = client.post(PURCHASES, json=purchase_body(priority=2)).json()
        client.post(f"{CUSTOMER}/consumptions", json={"currency": "USD", "amount": "0.12"})

        clock.set(EXPIRES_AT - timedelta(microseconds=1))
        still = client.get(f"{CUSTOMER}/credits", params={"currency": "USD"}).json()
        clock.set(EXPIRES_AT)
        # Nothing recorded the expiry yet: the queries apply it all the same.
        unrecorded = client.get(f"{CUSTOMER}/credits", params={"currency": "USD"}).json()
        purchase_then = client.get(f"{PURCHASES}/{expiring['id']}").json()
        too_much = client.post(
            f"{CUSTOMER}/consumptions", json={"currency": "USD", "amount": "100.13"}
        )
        spent = client.post(f"{CUSTOMER}/consumptions", json={"currency": "USD", "amount": "1"})
        void = client.post(f"{PURCHASES}/{expiring['id']}/void")
        history = client.get(f"{CUSTOMER}/credit-history", params={"currency": "USD"}).json()
        before = client.get(
            f"{CUSTOMER}/credits",
            params={"currency": "USD", "as_of": (EXPIRES_AT - timedelta(seconds=1)).isoformat()},
        ).json()
        purchase_after = client.get(f"{PURCHASES}/{expiring['id']}").json()

    assert [g["purchase_id"] for g in still["grants"]] == [expiring["id"], lasting["id"]]
    assert [g["purchase_id"] for g in unrecorded["grants"]] == [lasting["id"]]
    assert unrecorded["balance"] == "100.12"
    assert purchase_then["expired"] == "100.00"
    assert purchase_then["realizations"]["expiry"] == {
        "at": "2026-01-31T12:00:00Z",
        "amount": "100.00",
        "recorded": False,
    }
    assert assert_problem(too_much, 409, "insufficient_credit")["available"] == "100.12"
    assert spent.status_code == 201
    assert spent.json()["allocations"] == [{"purchase_id": lasting["id"], "amount": "1.00"}]
    assert_problem(void, 409, "credit_grant_expired")
    # The consumption recorded the expiry first, effective at expires_at.
    assert [(e["type"], e["amount"]) for e in history["items"]] == [
        ("granted", "100.12"),
        ("granted", "100.12"),
        ("consumed", "0.12"),
        ("expired", "100.00"),
        ("consumed", "1.00"),
    ]
    assert history["items"][3]["effective_at"] == "2026-01-31T12:00:00Z"
    assert history["items"][3]["purchase_id"] == expiring["id"]
    assert [g["purchase_id"] for g in before["grants"]] == [expiring["id"], lasting["id"]]
    assert before["balance"] == "200.12"
    assert purchase_after["realizations"]["expiry"]["recorded"] is True
    assert (purchase_after["remaining"], purchase_after["consumed"]) == ("0.00", "0.12")
