"""The external lifecycle over HTTP, against a real server process on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest

from tests.e2e.http_support import (
    LiveServer,
    assert_problem,
    create,
    external_purchase,
    history_types,
    new_key,
    purchase_path,
    purchases_path,
)


def test_an_external_purchase_goes_from_created_to_final(live_server: LiveServer) -> None:
    with live_server.client("acme") as client:
        created = client.post(
            purchases_path(), json=external_purchase(), headers={"Idempotency-Key": new_key()}
        )
        assert created.status_code == 201
        purchase = created.json()
        assert created.headers["Location"] == purchase_path(purchase["id"])
        assert created.headers["ETag"] == '"1"'
        assert "Idempotent-Replayed" not in created.headers
        assert purchase["status"] == "active.payment.pending"
        assert purchase["meta_status"] == "active"
        assert purchase["realizations"]["external_payment"] is None

        fetched = client.get(created.headers["Location"])
        assert fetched.status_code == 200
        assert fetched.json() == purchase
        assert fetched.headers["ETag"] == '"1"'

        authorized = client.post(
            f"{purchase_path(purchase['id'])}/authorize", json={"external_reference": "psp-123"}
        )
        assert authorized.status_code == 200
        assert authorized.headers["ETag"] == '"2"'
        payment = authorized.json()["realizations"]["external_payment"]
        assert authorized.json()["status"] == "active.payment.authorized"
        assert payment["status"] == "authorized"
        assert payment["amount"] == "50.06"
        assert payment["authorized"]["external_reference"] == "psp-123"
        assert payment["settled"] is None

        settled = client.post(f"{purchase_path(purchase['id'])}/settle")
        assert settled.status_code == 200
        assert settled.headers["ETag"] == '"3"'
        assert settled.json()["status"] == "final"
        assert settled.json()["meta_status"] == "final"
        assert settled.json()["realizations"]["external_payment"]["status"] == "settled"

        history = client.get(f"{purchase_path(purchase['id'])}/events").json()["items"]
        assert [item["type"] for item in history] == [
            "Initiated",
            "PaymentAuthorized",
            "PaymentSettled",
        ]
        assert [item["version"] for item in history] == [1, 2, 3]
        assert [item["status_after"] for item in history] == [
            "active.payment.pending",
            "active.payment.authorized",
            "final",
        ]
        assert history[1]["data"]["amount"] == "50.06"


def test_a_purchase_can_be_read_at_a_version_and_as_of_a_time(live_server: LiveServer) -> None:
    with live_server.client("acme") as client:
        purchase = create(client)
        client.post(f"{purchase_path(purchase['id'])}/authorize")
        path = purchase_path(purchase["id"])

        at_one = client.get(path, params={"version": 1})
        assert at_one.status_code == 200
        assert at_one.json()["status"] == "active.payment.pending"
        assert at_one.headers["ETag"] == '"1"'

        as_created = client.get(path, params={"as_of": purchase["created_at"]})
        assert as_created.json()["version"] == 1

        before = datetime.fromisoformat(purchase["created_at"]) - timedelta(seconds=1)
        assert_problem(
            client.get(path, params={"as_of": before.isoformat()}),
            404,
            "credit_purchase_not_found",
        )
        assert_problem(client.get(path, params={"version": 3}), 404, "credit_purchase_not_found")


def test_settling_a_pending_purchase_authorizes_then_settles(live_server: LiveServer) -> None:
    with live_server.client("acme") as client:
        purchase = create(client)
        settled = client.post(
            f"{purchase_path(purchase['id'])}/settle", json={"external_reference": "psp-9"}
        )
        assert settled.status_code == 200
        assert settled.json()["status"] == "final"
        assert settled.json()["version"] == 3
        assert history_types(client, purchase["id"]) == [
            "Initiated",
            "PaymentAuthorized",
            "PaymentSettled",
        ]


@pytest.mark.parametrize(
    ("initial_status", "status", "events"),
    [
        ("created", "active.payment.pending", ["Initiated"]),
        ("authorized", "active.payment.authorized", ["Initiated", "PaymentAuthorized"]),
        ("settled", "final", ["Initiated", "PaymentAuthorized", "PaymentSettled"]),
    ],
)
def test_each_initial_status_leaves_the_purchase_where_it_says(
    live_server: LiveServer, initial_status: str, status: str, events: list[str]
) -> None:
    with live_server.client("acme") as client:
        purchase = create(client, settlement={"type": "external", "initial_status": initial_status})
        assert purchase["status"] == status
        assert purchase["version"] == len(events)
        assert purchase["settlement"] == {"type": "external", "initial_status": initial_status}
        assert history_types(client, purchase["id"]) == events


def test_a_promotional_purchase_is_final_at_once_with_no_payment(live_server: LiveServer) -> None:
    body = external_purchase(settlement={"type": "promotional"})
    del body["cost_basis"]
    with live_server.client("acme") as client:
        response = client.post(purchases_path(), json=body)
        assert response.status_code == 201
        purchase = response.json()
        assert purchase["status"] == "final"
        assert purchase["cost_basis"] is None
        assert purchase["payment_amount"] is None
        assert purchase["settlement"] == {"type": "promotional", "initial_status": None}
        assert purchase["realizations"]["external_payment"] is None
        assert history_types(client, purchase["id"]) == ["Initiated"]


def test_decimals_travel_as_strings_and_times_as_utc(live_server: LiveServer) -> None:
    with live_server.client("acme") as client:
        response = client.post(
            purchases_path(), json=external_purchase(credit_amount="100.125", cost_basis="0.333")
        )
        raw = json.loads(response.text)
        assert raw["credit_amount"] == "100.13"  # rounded once, half away from zero
        assert raw["cost_basis"] == "0.333"  # never rounded
        assert raw["payment_amount"] == "33.34"
        for moment in (
            raw["created_at"],
            raw["updated_at"],
            raw["realizations"]["credit_grant"]["granted_at"],
        ):
            assert moment.endswith("Z")
            assert datetime.fromisoformat(moment).utcoffset() == timedelta(0)


def test_every_response_carries_a_request_id_that_the_log_repeats(
    live_server: LiveServer,
) -> None:
    with live_server.client("acme") as client:
        chosen = client.get("/healthz", headers={"X-Request-Id": "trace-e2e-1"})
        generated = client.get("/healthz")
    assert chosen.headers["X-Request-Id"] == "trace-e2e-1"
    assert len(generated.headers["X-Request-Id"]) == 32
    # The line is written as the response ends, so it may land just after the client has it.
    deadline = time.monotonic() + 10
    logged: list[dict[str, object]] = []
    while not logged and time.monotonic() < deadline:
        logged = [
            entry
            for line in live_server.log_path.read_text().splitlines()
            if '"trace-e2e-1"' in line
            and (entry := json.loads(line))["request_id"] == "trace-e2e-1"
        ]
        time.sleep(0.05)
    assert logged
    assert logged[0]["path"] == "/healthz"
    assert logged[0]["status"] == 200
