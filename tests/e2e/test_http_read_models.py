"""The read-model endpoints over HTTP (list, balances, reports), read-your-writes with the
commands' X-Position, against a real server with its in-process projector, on SQLite and
PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.e2e.http_support import (
    LiveServer,
    assert_problem,
    create,
    external_purchase,
    new_key,
    purchase_path,
    purchases_path,
)


def _customer() -> str:
    return f"cust-{uuid.uuid4().hex[:12]}"


def _balances(client: httpx.Client, customer_id: str, position: str) -> dict[str, str]:
    response = client.get(
        f"/v1/namespaces/acme/customers/{customer_id}/balances",
        headers={"X-Min-Position": position},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == customer_id
    assert body["position"] >= int(position)
    lines = [line for line in body["balances"] if line["currency"] == "USD"]
    # Each account counts one unit: credits at face value, or the cash they were paid for.
    assert {line["account"]: line["unit"] for line in lines} == UNITS
    return {line["account"]: line["balance"] for line in lines}


UNITS = {
    "customer_fbo": "credits",
    "customer_receivable_open": "credits",
    "customer_accrued": "credits",
    "breakage": "credits",
    "brokerage_credits": "credits",
    "customer_receivable_authorized": "cash",
    "wash": "cash",
    "brokerage_cash": "cash",
}


def test_balances_follow_the_openmeter_scenario_with_read_your_writes(
    live_server: LiveServer,
) -> None:
    customer_id = _customer()
    with live_server.client("acme") as client:
        created = client.post(
            purchases_path(),
            json=external_purchase(
                customer_id=customer_id, credit_amount="1", cost_basis="0.005", priority=20
            ),
            headers={"Idempotency-Key": new_key()},
        )
        assert created.status_code == 201
        after_create = _balances(client, customer_id, created.headers["X-Position"])
        path = purchase_path(created.json()["id"])
        authorized = client.post(f"{path}/authorize")
        after_authorize = _balances(client, customer_id, authorized.headers["X-Position"])
        settled = client.post(f"{path}/settle")
        after_settle = _balances(client, customer_id, settled.headers["X-Position"])
    zero = dict.fromkeys(UNITS, "0.00")
    assert after_create == {
        **zero,
        "customer_fbo": "1.00",
        "customer_receivable_open": "-1.00",
    }
    # Authorization re-denominates the receivable: 1 credit against brokerage_credits, and the
    # 0.01 USD it was paid for (1 x 0.005, rounded) against brokerage_cash.
    assert after_authorize == {
        **zero,
        "customer_fbo": "1.00",
        "brokerage_credits": "-1.00",
        "brokerage_cash": "0.01",
        "customer_receivable_authorized": "-0.01",
    }
    # Settlement clears the cash receivable against wash: exactly the cash the provider moved.
    assert after_settle == {
        **zero,
        "customer_fbo": "1.00",
        "brokerage_credits": "-1.00",
        "brokerage_cash": "0.01",
        "wash": "-0.01",
    }


def test_the_list_pages_through_every_purchase_of_a_customer_once_in_creation_order(
    live_server: LiveServer,
) -> None:
    customer_id = _customer()
    with live_server.client("acme") as client:
        created = [create(client, customer_id=customer_id) for _ in range(7)]
        create(client)  # another customer's, never listed
        last = client.post(f"{purchase_path(created[2]['id'])}/settle")
        position = last.headers["X-Position"]
        seen: list[dict[str, Any]] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"customer_id": customer_id, "limit": 3}
            params["min_position"] = position
            if cursor is not None:
                params["cursor"] = cursor
            response = client.get(purchases_path(), params=params)
            assert response.status_code == 200, response.text
            pages += 1
            seen.extend(response.json()["items"])
            cursor = response.json()["next_cursor"]
            if cursor is None:
                break
        final = client.get(
            purchases_path(),
            params={"customer_id": customer_id, "status": "final", "min_position": position},
        )
    assert pages == 3
    assert [item["id"] for item in seen] == [purchase["id"] for purchase in created]
    assert seen[0] == created[0]
    assert [item["id"] for item in final.json()["items"]] == [created[2]["id"]]
    assert final.json()["items"][0]["status"] == "final"


def test_a_list_request_hears_of_every_problem_at_once(live_server: LiveServer) -> None:
    with live_server.client("acme") as client:
        response = client.get(
            purchases_path(), params={"limit": 1001, "status": "nope", "cursor": "garbage"}
        )
    problem = assert_problem(response, 422, "validation_failed")
    assert {error["field"] for error in problem["errors"]} == {"limit", "status", "cursor"}


def test_reports_show_open_receivables_and_settled_revenue(live_server: LiveServer) -> None:
    customer_id = _customer()
    with live_server.client("acme") as client:
        pending = create(client, customer_id=customer_id, credit_amount="10", cost_basis="0.5")
        paid = create(client, customer_id=customer_id, credit_amount="4", cost_basis="0.25")
        settled = client.post(f"{purchase_path(paid['id'])}/settle")
        position = settled.headers["X-Position"]
        receivables = client.get(
            "/v1/namespaces/acme/reports/receivables", params={"min_position": position}
        )
        today = datetime.now(UTC).date().isoformat()
        revenue = client.get(
            "/v1/namespaces/acme/reports/settled-revenue",
            params={"from": "2000-01-01", "to": "2999-12-31", "currency": "USD"},
            headers={"X-Min-Position": position},
        )
        reversed_range = client.get(
            "/v1/namespaces/acme/reports/settled-revenue",
            params={"from": "2020-01-02", "to": "2020-01-01"},
        )
    assert receivables.status_code == 200, receivables.text
    mine = [r for r in receivables.json()["items"] if r["customer_id"] == customer_id]
    assert [(r["purchase_id"], r["stage"], r["payment_amount"]) for r in mine] == [
        (pending["id"], "open", "5.00")
    ]
    assert receivables.json()["position"] >= int(position)
    assert revenue.status_code == 200, revenue.text
    days = revenue.json()["days"]
    assert today in {day["day"] for day in days}
    assert all(day["currency"] == "USD" for day in days)
    assert revenue.json()["position"] >= int(position)
    assert_problem(reversed_range, 422, "validation_failed")


def test_a_read_asking_for_a_position_the_log_has_not_reached_is_refused(
    live_server: LiveServer,
) -> None:
    with live_server.client("acme") as client:
        response = client.get(purchases_path(), params={"min_position": 2**62})
    problem = assert_problem(response, 422, "validation_failed")
    assert [error["code"] for error in problem["errors"]] == ["position_not_recorded"]


def test_another_namespaces_reads_are_not_found(live_server: LiveServer) -> None:
    with live_server.client("acme") as client:
        for path in (
            "/v1/namespaces/globex/credit-purchases",
            "/v1/namespaces/globex/customers/c/balances",
            "/v1/namespaces/globex/reports/receivables",
        ):
            assert_problem(client.get(path), 404, "not_found")


def test_readiness_reports_the_projection_lag(live_server: LiveServer) -> None:
    with live_server.client(None) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    projections = response.json()["checks"]["projections"]
    assert projections["projector"] == "inprocess"
    assert projections["projector_running"] is True
    assert projections["lag"] == projections["head"] - projections["position"]
    assert projections["lag"] >= 0
