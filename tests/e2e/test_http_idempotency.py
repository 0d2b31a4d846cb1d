"""``Idempotency-Key`` over HTTP: a retry gets the first answer; another request with the same key
is refused; the keys are durable (the purchase's own history remembers them)."""

from __future__ import annotations

import httpx

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


def test_retrying_a_create_with_its_key_replays_the_first_answer(client: httpx.Client) -> None:
    key, body = new_key(), external_purchase()
    first = client.post(purchases_path(), json=body, headers={"Idempotency-Key": key})
    again = client.post(purchases_path(), json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert history_types(client, first.json()["id"]) == ["Initiated"]


def test_the_same_key_with_another_body_is_refused_and_writes_nothing(
    client: httpx.Client,
) -> None:
    key, body = new_key(), external_purchase()
    first = client.post(purchases_path(), json=body, headers={"Idempotency-Key": key}).json()
    changed = {**body, "credit_amount": "200"}
    assert_problem(
        client.post(purchases_path(), json=changed, headers={"Idempotency-Key": key}),
        409,
        "idempotency_key_reused",
    )
    assert client.get(purchase_path(first["id"])).json() == first


def test_a_key_belongs_to_its_namespace(live_server: LiveServer) -> None:
    key, body = new_key(), external_purchase()
    with live_server.client("acme") as acme, live_server.client("globex") as globex:
        in_acme = acme.post(purchases_path("acme"), json=body, headers={"Idempotency-Key": key})
        in_globex = globex.post(
            purchases_path("globex"), json=body, headers={"Idempotency-Key": key}
        )
    assert in_acme.status_code == in_globex.status_code == 201
    assert in_acme.json()["id"] != in_globex.json()["id"]


def test_retrying_an_authorization_replays_it_even_after_the_purchase_moved_on(
    client: httpx.Client,
) -> None:
    purchase = create(client)
    path = purchase_path(purchase["id"])
    key = new_key()
    first = client.post(
        f"{path}/authorize",
        json={"external_reference": "psp-1"},
        headers={"Idempotency-Key": key, "If-Match": '"1"'},
    )
    client.post(f"{path}/settle")
    again = client.post(
        f"{path}/authorize",
        json={"external_reference": "psp-1"},
        headers={"Idempotency-Key": key, "If-Match": '"1"'},
    )
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.json()["status"] == "active.payment.authorized"
    assert again.headers["ETag"] == '"2"'
    assert history_types(client, purchase["id"]) == [
        "Initiated",
        "PaymentAuthorized",
        "PaymentSettled",
    ]


def test_a_settlement_key_reused_for_another_reference_is_refused(client: httpx.Client) -> None:
    purchase = create(client)
    path = purchase_path(purchase["id"])
    key = new_key()
    settled = client.post(
        f"{path}/settle", json={"external_reference": "psp-1"}, headers={"Idempotency-Key": key}
    )
    assert settled.status_code == 200
    assert_problem(
        client.post(
            f"{path}/settle",
            json={"external_reference": "psp-2"},
            headers={"Idempotency-Key": key},
        ),
        409,
        "idempotency_key_reused",
    )
    replay = client.post(
        f"{path}/settle", json={"external_reference": "psp-1"}, headers={"Idempotency-Key": key}
    )
    assert replay.json() == settled.json()
