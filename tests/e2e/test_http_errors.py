"""Every error of the contract, as a problem document, from a real server; and nothing written.

Two codes of the contract cannot be provoked over HTTP and are covered below the HTTP layer:
``cannot_settle_not_authorized_payment`` (no rule of the transition table reaches it: a direct
settle authorizes first) and ``concurrent_modification`` (needs a writer that keeps winning a race
for every attempt).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx

from tests.e2e.http_support import (
    assert_problem,
    create,
    external_purchase,
    history_types,
    new_key,
    purchase_path,
    purchases_path,
)


def test_an_invalid_purchase_lists_every_problem_and_writes_nothing(client: httpx.Client) -> None:
    key = new_key()
    body = external_purchase(currency="XYZ", credit_amount="-5", cost_basis="0", priority=0)
    problem = assert_problem(
        client.post(purchases_path(), json=body, headers={"Idempotency-Key": key}),
        422,
        "validation_failed",
    )
    codes = {error["code"] for error in problem["errors"]}
    assert codes == {
        "invalid_currency",
        "credit_amount_not_positive",
        "cost_basis_not_positive",
        "priority_out_of_range",
    }
    # Nothing was stored under the key: a valid body with it now creates (201, not a replay).
    retried = client.post(
        purchases_path(), json=external_purchase(), headers={"Idempotency-Key": key}
    )
    assert retried.status_code == 201


def test_a_malformed_request_lists_every_field_problem(client: httpx.Client) -> None:
    body = {"customer_id": 7, "currency": "USD", "settlement": {"type": "external"}, "colour": "x"}
    problem = assert_problem(client.post(purchases_path(), json=body), 422, "validation_failed")
    assert {(error["field"], error["code"]) for error in problem["errors"]} == {
        ("customer_id", "string_type"),
        ("credit_amount", "missing"),
        ("colour", "extra_forbidden"),
    }


def test_a_json_number_for_an_amount_is_refused_as_a_float(client: httpx.Client) -> None:
    problem = assert_problem(
        client.post(purchases_path(), json=external_purchase(credit_amount=100.12)),
        422,
        "validation_failed",
    )
    assert problem["errors"] == [
        {
            "field": "credit_amount",
            "code": "float_not_allowed",
            "message": 'must be a decimal string such as "10.50", not a float',
        }
    ]


def test_a_body_that_is_not_json_is_unsupported(client: httpx.Client) -> None:
    response = client.post(
        purchases_path(), content=b"customer_id=c", headers={"Content-Type": "text/plain"}
    )
    assert_problem(response, 415, "unsupported_media_type")


def test_a_body_that_does_not_parse_is_a_validation_failure(client: httpx.Client) -> None:
    response = client.post(
        purchases_path(), content=b'{"customer_id": ', headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"][0]["code"] == "json_invalid"


def test_an_oversized_body_is_refused(client: httpx.Client) -> None:
    huge = external_purchase(name="x" * 300_000)
    assert_problem(client.post(purchases_path(), json=huge), 413, "request_too_large")


def test_an_oversized_chunked_body_is_refused(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}'

    response = client.post(
        purchases_path(), content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "request_too_large")


def test_authorizing_twice_is_refused_and_changes_nothing(client: httpx.Client) -> None:
    purchase = create(client)
    client.post(f"{purchase_path(purchase['id'])}/authorize")
    assert_problem(
        client.post(f"{purchase_path(purchase['id'])}/authorize"),
        409,
        "payment_already_authorized",
    )
    assert history_types(client, purchase["id"]) == ["Initiated", "PaymentAuthorized"]


def test_settling_twice_is_refused_and_changes_nothing(client: httpx.Client) -> None:
    purchase = create(client)
    client.post(f"{purchase_path(purchase['id'])}/settle")
    assert_problem(
        client.post(f"{purchase_path(purchase['id'])}/settle"), 409, "payment_already_settled"
    )
    assert_problem(
        client.post(f"{purchase_path(purchase['id'])}/authorize"),
        409,
        "payment_already_authorized",
    )
    assert client.get(purchase_path(purchase["id"])).json()["version"] == 3


def test_paying_for_promotional_credit_is_an_invalid_transition(client: httpx.Client) -> None:
    body = external_purchase(settlement={"type": "promotional"})
    del body["cost_basis"]
    purchase = client.post(purchases_path(), json=body).json()
    for command in ("authorize", "settle"):
        assert_problem(
            client.post(f"{purchase_path(purchase['id'])}/{command}"), 409, "invalid_transition"
        )
    assert history_types(client, purchase["id"]) == ["Initiated"]


def test_a_stale_if_match_is_a_version_mismatch_and_writes_nothing(client: httpx.Client) -> None:
    purchase = create(client)
    path = purchase_path(purchase["id"])
    problem = assert_problem(
        client.post(f"{path}/authorize", headers={"If-Match": '"2"'}), 412, "version_mismatch"
    )
    assert "version 1" in problem["detail"]
    assert_problem(
        client.post(f"{path}/settle", headers={"If-Match": 'W/"1"'}), 412, "version_mismatch"
    )
    assert history_types(client, purchase["id"]) == ["Initiated"]

    authorized = client.post(f"{path}/authorize", headers={"If-Match": '"1"'})
    assert authorized.status_code == 200
    settled = client.post(f"{path}/settle", headers={"If-Match": authorized.headers["ETag"]})
    assert settled.status_code == 200
    assert settled.json()["status"] == "final"


def test_a_malformed_if_match_is_a_validation_failure(client: httpx.Client) -> None:
    purchase = create(client)
    problem = assert_problem(
        client.post(f"{purchase_path(purchase['id'])}/authorize", headers={"If-Match": "1"}),
        422,
        "validation_failed",
    )
    assert problem["errors"][0]["field"] == "If-Match"


def test_an_unknown_purchase_is_not_found(client: httpx.Client) -> None:
    unknown = str(uuid.uuid4())
    for response in (
        client.get(purchase_path(unknown)),
        client.get(f"{purchase_path(unknown)}/events"),
        client.post(f"{purchase_path(unknown)}/authorize"),
        client.post(f"{purchase_path(unknown)}/settle"),
    ):
        problem = assert_problem(response, 404, "credit_purchase_not_found")
        assert problem["detail"] == f"credit purchase {unknown} not found"


def test_an_id_that_is_no_uuid_names_no_purchase(client: httpx.Client) -> None:
    assert_problem(client.get(purchase_path("not-a-uuid")), 404, "credit_purchase_not_found")
    assert_problem(client.post(f"{purchase_path('42')}/settle"), 404, "credit_purchase_not_found")


def test_an_unknown_route_or_method_is_a_problem_too(client: httpx.Client) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(client.get(f"{purchases_path()}/"), 404, "not_found")
    not_allowed = assert_problem(
        client.delete(purchase_path(str(uuid.uuid4()))), 405, "method_not_allowed"
    )
    assert not_allowed["status"] == 405


def test_an_idempotency_key_that_no_header_can_carry_is_refused(client: httpx.Client) -> None:
    problem = assert_problem(
        client.post(
            purchases_path(), json=external_purchase(), headers={"Idempotency-Key": "k" * 300}
        ),
        422,
        "validation_failed",
    )
    assert problem["errors"][0]["field"] == "Idempotency-Key"


def test_a_query_that_cannot_name_a_state_is_a_validation_failure(client: httpx.Client) -> None:
    purchase = create(client)
    problem = assert_problem(
        client.get(
            purchase_path(purchase["id"]), params={"version": 0, "as_of": "2026-01-01T00:00:00"}
        ),
        422,
        "validation_failed",
    )
    assert {error["field"] for error in problem["errors"]} == {"version", "as_of"}


def test_lax_types_are_refused_not_coerced(client: httpx.Client) -> None:
    # pydantic's lax mode would read true as priority 1, "5" as 5 and a bare number as a Unix
    # time; the contract says an integer and an RFC 3339 string with an offset.
    for priority, expires_at in ((True, 4102444800), ("5", "4102444800")):
        problem = assert_problem(
            client.post(
                purchases_path(),
                json=external_purchase(priority=priority, expires_at=expires_at),
                headers={"Idempotency-Key": new_key()},
            ),
            422,
            "validation_failed",
        )
        assert {(error["field"], error["code"]) for error in problem["errors"]} == {
            ("priority", "int_type"),
            ("expires_at", "invalid_timestamp"),
        }


def test_a_bare_number_is_no_time_to_read_as_of(client: httpx.Client) -> None:
    purchase = create(client)
    for path in (purchase_path(purchase["id"]), "/v1/namespaces/acme/customers/cust-1/balances"):
        problem = assert_problem(
            client.get(path, params={"as_of": "0.5"}), 422, "validation_failed"
        )
        assert [(error["field"], error["code"]) for error in problem["errors"]] == [
            ("as_of", "invalid_timestamp")
        ]


def test_text_no_store_can_hold_is_refused_in_every_field(client: httpx.Client) -> None:
    nul = "a\u0000b"
    body = external_purchase(customer_id=nul, name=nul, metadata={nul: "x", "order": nul})
    problem = assert_problem(
        client.post(purchases_path(), json=body, headers={"Idempotency-Key": new_key()}),
        422,
        "validation_failed",
    )
    assert {(error["field"], error["code"]) for error in problem["errors"]} == {
        ("customer_id", "unstorable_character"),
        ("name", "unstorable_character"),
        ("metadata.a\\x00b", "unstorable_character"),
        ("metadata.order", "unstorable_character"),
    }
    purchase = create(client)
    refused = assert_problem(
        client.post(purchase_path(purchase["id"]) + "/authorize", json={"external_reference": nul}),
        422,
        "validation_failed",
    )
    assert [(error["field"], error["code"]) for error in refused["errors"]] == [
        ("external_reference", "unstorable_character")
    ]
    assert history_types(client, purchase["id"]) == ["Initiated"]
