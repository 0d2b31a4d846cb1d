"""The event feed over HTTP: a namespace's events in commit order, paged without gaps or repeats,
never another namespace's; against a real server on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.http_support import LiveServer, assert_problem, create, purchase_path

FEED = "/v1/namespaces/{namespace}/events"


def _read_all(client: httpx.Client, namespace: str, after: int, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: int | None = after
    while cursor is not None:
        response = client.get(
            FEED.format(namespace=namespace), params={"after": cursor, "limit": limit}
        )
        assert response.status_code == 200, response.text
        items.extend(response.json()["items"])
        cursor = response.json()["next_after"]
    return items


def _head(client: httpx.Client, namespace: str) -> int:
    items = _read_all(client, namespace, 0, 1000)
    return items[-1]["position"] if items else 0


def test_the_feed_pages_through_a_namespaces_events_in_commit_order(
    live_server: LiveServer,
) -> None:
    with live_server.client("acme") as acme, live_server.client("globex") as globex:
        start = max(_head(acme, "acme"), _head(globex, "globex"))
        first = create(acme)
        create(globex, namespace="globex")
        acme.post(f"{purchase_path(first['id'])}/authorize")
        second = create(acme)
        create(globex, namespace="globex")
        acme.post(f"{purchase_path(first['id'])}/settle")
        acme.post(f"{purchase_path(second['id'])}/settle")
        paged = _read_all(acme, "acme", start, 2)
        whole = _read_all(acme, "acme", start, 1000)
        theirs = _read_all(globex, "globex", start, 1)
    assert paged == whole
    # Each grant is recorded on the customer's credit wallet too, right after its Initiated
    # (each purchase here has its own customer, so each wallet is at version 1).
    assert [(item["purchase_id"], item["version"], item["type"]) for item in paged] == [
        (first["id"], 1, "Initiated"),
        (first["id"], 1, "GrantAdded"),
        (first["id"], 2, "PaymentAuthorized"),
        (second["id"], 1, "Initiated"),
        (second["id"], 1, "GrantAdded"),
        (first["id"], 3, "PaymentSettled"),
        (second["id"], 2, "PaymentAuthorized"),
        (second["id"], 3, "PaymentSettled"),
    ]
    positions = [item["position"] for item in paged]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    assert {item["namespace"] for item in paged} == {"acme"}
    assert paged[0]["data"]["customer_id"] == first["customer_id"]
    assert paged[2]["data"]["amount"] == "50.06"
    assert len(theirs) == 4
    assert {item["namespace"] for item in theirs} == {"globex"}
    assert not {item["position"] for item in theirs} & set(positions)


def test_a_page_that_stops_early_resumes_after_the_last_position_scanned(
    live_server: LiveServer,
) -> None:
    with live_server.client("acme") as acme, live_server.client("globex") as globex:
        start = max(_head(acme, "acme"), _head(globex, "globex"))
        for _ in range(12):  # more than 10 x limit other-namespace events
            create(globex, namespace="globex")
        mine = create(acme)
        page = acme.get(FEED.format(namespace="acme"), params={"after": start, "limit": 1})
        rest = _read_all(acme, "acme", page.json()["next_after"], 1)
    assert page.status_code == 200
    assert page.json()["items"] == []
    assert page.json()["next_after"] == start + 10
    assert [(item["purchase_id"], item["type"]) for item in rest] == [
        (mine["id"], "Initiated"),
        (mine["id"], "GrantAdded"),
    ]


def test_wallet_events_appear_in_commit_order_with_the_purchases_events(
    live_server: LiveServer,
) -> None:
    customer = f"cust-{uuid.uuid4().hex[:12]}"
    with live_server.client("acme") as acme:
        start = _head(acme, "acme")
        first = create(acme, customer_id=customer, feature_filters=[])
        second = create(acme, customer_id=customer, feature_filters=[], priority=1)
        consumed = acme.post(
            f"/v1/namespaces/acme/customers/{customer}/consumptions",
            json={"currency": "USD", "amount": "150", "reference": "usage-1"},
        ).json()
        acme.post(f"{purchase_path(first['id'])}/void", json={"reason": "mistake"})
        items = _read_all(acme, "acme", start, 3)
    wallet_id = items[1]["aggregate_id"]
    assert [
        (
            item["aggregate"],
            item["aggregate_id"],
            item["purchase_id"],
            item["version"],
            item["type"],
        )
        for item in items
    ] == [
        ("credit_purchase", first["id"], first["id"], 1, "Initiated"),
        ("credit_wallet", wallet_id, first["id"], 1, "GrantAdded"),
        ("credit_purchase", second["id"], second["id"], 1, "Initiated"),
        ("credit_wallet", wallet_id, second["id"], 2, "GrantAdded"),
        ("credit_wallet", wallet_id, None, 3, "CreditsConsumed"),
        ("credit_purchase", first["id"], first["id"], 2, "PurchaseVoided"),
        ("credit_wallet", wallet_id, first["id"], 4, "GrantVoided"),
    ]
    assert wallet_id not in {first["id"], second["id"]}
    consumption = items[4]["data"]
    assert consumption["consumption_id"] == consumed["id"]
    assert consumption["customer_id"] == customer
    assert consumption["usage_reference"] == "usage-1"
    assert consumption["allocations"] == [
        {"purchase_id": second["id"], "amount": "100.12"},
        {"purchase_id": first["id"], "amount": "49.88"},
    ]
    assert items[6]["data"]["amount"] == items[5]["data"]["amount"] == "50.24"
    positions = [item["position"] for item in items]
    assert positions == sorted(set(positions))


def test_invoices_failures_and_refunds_appear_with_their_wallets_revocations(
    live_server: LiveServer,
) -> None:
    customer = f"cust-{uuid.uuid4().hex[:12]}"
    with live_server.client("acme") as acme:
        start = _head(acme, "acme")
        invoiced = create(acme, customer_id=customer, settlement={"type": "invoice"})
        path = purchase_path(invoiced["id"])
        assert acme.post(f"{path}/invoice", json={"invoice_id": "i-1", "line_id": "l-1"}).is_success
        assert acme.post(f"{path}/authorize").is_success
        assert acme.post(f"{path}/settle").is_success
        assert acme.post(f"{path}/refund", json={"amount": "10", "reason": "asked"}).is_success
        failing = create(acme, customer_id=customer)
        assert acme.post(
            f"/v1/namespaces/acme/customers/{customer}/consumptions",
            json={"currency": "USD", "amount": "100.12", "feature": "api_calls"},
        ).is_success
        failed = acme.post(f"{purchase_path(failing['id'])}/fail", json={"reason": "declined"})
        assert failed.is_success
        items = _read_all(acme, "acme", start, 4)
    wallet_id = items[2]["aggregate_id"]
    # Each command's purchase event and wallet event commit together, the purchase's first.
    assert [
        (
            item["aggregate"],
            item["aggregate_id"],
            item["purchase_id"],
            item["version"],
            item["type"],
        )
        for item in items
    ] == [
        ("credit_purchase", invoiced["id"], invoiced["id"], 1, "Initiated"),
        ("credit_purchase", invoiced["id"], invoiced["id"], 2, "InvoiceCreated"),
        ("credit_wallet", wallet_id, invoiced["id"], 1, "GrantAdded"),
        ("credit_purchase", invoiced["id"], invoiced["id"], 3, "PaymentAuthorized"),
        ("credit_purchase", invoiced["id"], invoiced["id"], 4, "PaymentSettled"),
        ("credit_purchase", invoiced["id"], invoiced["id"], 5, "PaymentRefunded"),
        ("credit_wallet", wallet_id, invoiced["id"], 2, "GrantRevoked"),
        ("credit_purchase", failing["id"], failing["id"], 1, "Initiated"),
        ("credit_wallet", wallet_id, failing["id"], 3, "GrantAdded"),
        ("credit_wallet", wallet_id, None, 4, "CreditsConsumed"),
        ("credit_purchase", failing["id"], failing["id"], 2, "PaymentFailed"),
        ("credit_wallet", wallet_id, failing["id"], 5, "GrantRevoked"),
    ]
    assert {item["namespace"] for item in items} == {"acme"}
    assert (items[1]["data"]["invoice_id"], items[1]["data"]["line_id"]) == ("i-1", "l-1")
    refund, refund_revoked = items[5]["data"], items[6]["data"]
    assert (refund["amount"], refund["cash_amount"], refund["reason"]) == ("10.00", "5.00", "asked")
    assert (refund_revoked["amount"], refund_revoked["cause"]) == ("10.00", "refund")
    failure, failure_revoked = items[10]["data"], items[11]["data"]
    # The consumption drew 90.12 from the refunded invoice purchase first (older grant), then 10
    # from this one: 90.12 of it is taken back, the 10 consumed stay owed.
    assert (failure["reason"], failure["consumed"], failure["revoked"]) == (
        "declined",
        "10.00",
        "90.12",
    )
    assert (failure_revoked["amount"], failure_revoked["cause"]) == ("90.12", "payment_failed")
    assert failure_revoked["customer_id"] == customer


def test_a_namespace_token_gets_404_on_another_namespaces_feed(live_server: LiveServer) -> None:
    with live_server.client("acme") as client:
        response = client.get(FEED.format(namespace="globex"))
    assert_problem(response, 404, "not_found")


def test_the_feed_refuses_a_limit_above_1000(live_server: LiveServer) -> None:
    with live_server.client("acme") as client:
        response = client.get(FEED.format(namespace="acme"), params={"limit": 1001})
    problem = assert_problem(response, 422, "validation_failed")
    assert [error["field"] for error in problem["errors"]] == ["limit"]
