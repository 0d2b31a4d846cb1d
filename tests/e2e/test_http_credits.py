"""Spending credit over HTTP: consumptions in burn-down order, replays, insufficient credit,
voids, the spendable grants and the credit history; against a real server on SQLite and
PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.http_support import LiveServer, assert_problem, create, new_key, purchase_path


def _customer() -> str:
    return f"cust-{uuid.uuid4().hex[:12]}"


def _customer_path(customer: str, what: str, namespace: str = "acme") -> str:
    return f"/v1/namespaces/{namespace}/customers/{customer}/{what}"


def _consume(
    client: httpx.Client, customer: str, amount: str, *, key: str | None = None, **body: Any
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(
        _customer_path(customer, "consumptions"),
        json={"currency": "USD", "amount": amount, **body},
        headers=headers,
    )


def _grant(client: httpx.Client, customer: str, **changes: Any) -> dict[str, Any]:
    """100.12 USD of credit for any feature (no filters), unless changed."""
    return create(client, customer_id=customer, feature_filters=[], **changes)


def _history(client: httpx.Client, customer: str, **params: Any) -> httpx.Response:
    return client.get(
        _customer_path(customer, "credit-history"), params={"currency": "USD", **params}
    )


def _entries(client: httpx.Client, customer: str) -> list[dict[str, Any]]:
    response = _history(client, customer, limit=1000)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_consumption_draws_from_the_grants_in_burn_down_order(client: httpx.Client) -> None:
    customer = _customer()
    later = _grant(client, customer, priority=20)
    first = _grant(client, customer, priority=10)
    response = _consume(client, customer, "150", feature="api_calls", reference="usage-1")
    assert response.status_code == 201, response.text
    consumption = response.json()
    assert consumption["amount"] == "150.00"
    assert consumption["allocations"] == [
        {"purchase_id": first["id"], "amount": "100.12"},
        {"purchase_id": later["id"], "amount": "49.88"},
    ]
    assert consumption["balance_after"] == "50.24"
    assert consumption["customer_id"] == customer
    assert consumption["feature"] == "api_calls"
    assert consumption["reference"] == "usage-1"
    assert consumption["sequence"] == 3
    assert int(response.headers["X-Position"]) > 0
    assert "Idempotent-Replayed" not in response.headers
    drawn = client.get(purchase_path(later["id"])).json()
    assert (drawn["consumed"], drawn["remaining"]) == ("49.88", "50.24")


def test_a_retried_consumption_replays_the_first_answer_and_spends_once(
    client: httpx.Client,
) -> None:
    customer = _customer()
    _grant(client, customer)
    key = new_key()
    first = _consume(client, customer, "10", key=key)
    again = _consume(client, customer, "10", key=key)
    other = _consume(client, customer, "11", key=key)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert_problem(other, 409, "idempotency_key_reused")
    assert [entry["type"] for entry in _entries(client, customer)] == ["granted", "consumed"]


def test_a_consumption_beyond_the_spendable_credit_says_what_is_available(
    client: httpx.Client,
) -> None:
    customer = _customer()
    _grant(client, customer)
    create(client, customer_id=customer, feature_filters=["storage"])
    for_calls = _consume(client, customer, "100.13", feature="api_calls")
    for_storage = _consume(client, customer, "200.25", feature="storage")
    problem = assert_problem(for_calls, 409, "insufficient_credit")
    assert problem["available"] == "100.12"
    assert "100.12 available" in problem["detail"]
    assert assert_problem(for_storage, 409, "insufficient_credit")["available"] == "200.24"
    assert [entry["type"] for entry in _entries(client, customer)] == ["granted", "granted"]


def test_bad_consumptions_list_every_problem_and_write_nothing(client: httpx.Client) -> None:
    customer = _customer()
    _grant(client, customer)
    response = client.post(
        _customer_path(customer, "consumptions"),
        json={"currency": "usd", "amount": 1.5, "feature": "", "reference": ""},
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("currency", "invalid_currency"),
        ("amount", "float_not_allowed"),
        ("feature", "feature_key_required"),
        ("reference", "invalid_reference"),
    ]
    not_positive = _consume(client, customer, "0.004")
    assert [
        e["code"] for e in assert_problem(not_positive, 422, "validation_failed")["errors"]
    ] == ["amount_not_positive"]
    shapeless = client.post(_customer_path(customer, "consumptions"), json={"amount": "1", "x": 1})
    assert {
        (e["field"], e["code"])
        for e in assert_problem(shapeless, 422, "validation_failed")["errors"]
    } == {("currency", "missing"), ("x", "extra_forbidden")}
    assert [entry["type"] for entry in _entries(client, customer)] == ["granted"]


def test_a_voided_grant_is_never_drawn_from_again(client: httpx.Client) -> None:
    customer = _customer()
    voided = _grant(client, customer, priority=1)
    kept = _grant(client, customer, priority=2)
    _consume(client, customer, "0.12")
    key = new_key()
    response = client.post(
        f"{purchase_path(voided['id'])}/void",
        json={"reason": "granted by mistake"},
        headers={"If-Match": '"1"', "Idempotency-Key": key},
    )
    assert response.status_code == 200, response.text
    purchase = response.json()
    assert response.headers["ETag"] == '"2"'
    assert (purchase["voided"], purchase["consumed"], purchase["remaining"]) == (
        "100.00",
        "0.12",
        "0.00",
    )
    assert purchase["status"] == voided["status"]
    assert purchase["realizations"]["void"]["amount"] == "100.00"
    assert purchase["realizations"]["void"]["reason"] == "granted by mistake"

    replay = client.post(
        f"{purchase_path(voided['id'])}/void",
        json={"reason": "granted by mistake"},
        headers={"If-Match": '"1"', "Idempotency-Key": key},
    )
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == purchase
    assert_problem(client.post(f"{purchase_path(voided['id'])}/void"), 409, "nothing_to_void")
    assert_problem(
        client.post(f"{purchase_path(kept['id'])}/void", headers={"If-Match": '"7"'}),
        412,
        "version_mismatch",
    )

    too_much = _consume(client, customer, "100.13")
    assert assert_problem(too_much, 409, "insufficient_credit")["available"] == "100.12"
    drawn = _consume(client, customer, "50")
    assert drawn.json()["allocations"] == [{"purchase_id": kept["id"], "amount": "50.00"}]
    assert [entry["type"] for entry in _entries(client, customer)] == [
        "granted",
        "granted",
        "consumed",
        "voided",
        "consumed",
    ]


def test_the_spendable_grants_in_burn_down_order_now_and_around_an_expiry(
    client: httpx.Client,
) -> None:
    customer = _customer()
    expires_at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    lasting = _grant(client, customer, priority=5)
    expiring = _grant(client, customer, priority=5, expires_at=expires_at.isoformat())
    _consume(client, customer, "30")
    path = _customer_path(customer, "credits")

    now = client.get(path, params={"currency": "USD"})
    before = client.get(
        path, params={"currency": "USD", "as_of": (expires_at - timedelta(seconds=1)).isoformat()}
    )
    at_expiry = client.get(path, params={"currency": "USD", "as_of": expires_at.isoformat()})

    assert now.status_code == before.status_code == at_expiry.status_code == 200
    # Same priority: the grant that expires goes first, and the consumption drew from it.
    assert [(g["purchase_id"], g["remaining"]) for g in now.json()["grants"]] == [
        (expiring["id"], "70.12"),
        (lasting["id"], "100.12"),
    ]
    assert now.json()["balance"] == "170.24"
    assert before.json()["grants"] == now.json()["grants"]
    assert [g["purchase_id"] for g in at_expiry.json()["grants"]] == [lasting["id"]]
    assert at_expiry.json()["balance"] == "100.12"
    expired = client.get(purchase_path(expiring["id"]), params={"as_of": expires_at.isoformat()})
    assert (expired.json()["expired"], expired.json()["remaining"]) == ("70.12", "0.00")
    assert expired.json()["realizations"]["expiry"]["recorded"] is False


def test_credit_queries_need_a_currency_and_refuse_bad_input_together(
    client: httpx.Client,
) -> None:
    credits = client.get(_customer_path("cust-1", "credits"))
    assert [e["code"] for e in assert_problem(credits, 422, "validation_failed")["errors"]] == [
        "missing"
    ]
    wrong = client.get(_customer_path(" ", "credits"), params={"currency": "XYZ"})
    assert [
        (e["field"], e["code"]) for e in assert_problem(wrong, 422, "validation_failed")["errors"]
    ] == [("customer_id", "customer_id_required"), ("currency", "invalid_currency")]
    naive = client.get(
        _customer_path("cust-1", "credits"),
        params={"currency": "USD", "as_of": "2026-01-01T00:00:00"},
    )
    assert [e["field"] for e in assert_problem(naive, 422, "validation_failed")["errors"]] == [
        "as_of"
    ]
    history = client.get(
        _customer_path("cust-1", "credit-history"),
        params={"currency": "USD", "limit": 1001, "after": -1},
    )
    assert {e["field"] for e in assert_problem(history, 422, "validation_failed")["errors"]} == {
        "limit",
        "after",
    }


def test_the_credit_history_pages_by_sequence_with_balances_before_and_after(
    client: httpx.Client,
) -> None:
    customer = _customer()
    purchase = _grant(client, customer)
    _consume(client, customer, "10")
    _consume(client, customer, "20.5")
    client.post(f"{purchase_path(purchase['id'])}/void")
    pages: list[list[dict[str, Any]]] = []
    after: int | None = 0
    while after is not None:
        response = _history(client, customer, after=after, limit=2)
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        after = response.json()["next_after"]
    entries = [entry for page in pages for entry in page]
    assert [len(page) for page in pages] == [2, 2]
    assert entries == _entries(client, customer)
    assert [(e["sequence"], e["type"], e["amount"]) for e in entries] == [
        (1, "granted", "100.12"),
        (2, "consumed", "10.00"),
        (3, "consumed", "20.50"),
        (4, "voided", "69.62"),
    ]
    assert [(e["balance_before"], e["balance_after"]) for e in entries[1:]] == [
        ("100.12", "90.12"),
        ("90.12", "69.62"),
        ("69.62", "0.00"),
    ]
    assert entries[0]["purchase_id"] == entries[3]["purchase_id"] == purchase["id"]
    assert entries[1]["purchase_id"] is None
    assert entries[1]["allocations"] == [{"purchase_id": purchase["id"], "amount": "10.00"}]
    as_of = _history(client, customer, as_of=entries[1]["recorded_at"])
    assert [e["sequence"] for e in as_of.json()["items"]] == [1, 2]
    assert as_of.json()["next_after"] is None


def test_another_namespaces_token_cannot_spend_or_read_the_credit(
    live_server: LiveServer,
) -> None:
    customer = _customer()
    with live_server.client("acme") as acme, live_server.client("globex") as globex:
        _grant(acme, customer)
        spend = globex.post(
            _customer_path(customer, "consumptions"), json={"currency": "USD", "amount": "1"}
        )
        read = globex.get(_customer_path(customer, "credits"), params={"currency": "USD"})
        own = globex.get(_customer_path(customer, "credits", "globex"), params={"currency": "USD"})
        left = acme.get(_customer_path(customer, "credits"), params={"currency": "USD"})
    assert_problem(spend, 404, "not_found")
    assert_problem(read, 404, "not_found")
    assert own.json()["grants"] == []
    assert left.json()["balance"] == "100.12"
