"""What every namespaced request passes before the ledger sees it, and in which order."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import open_ledger
from tests.infrastructure.http_app import (
    ACME_TOKEN,
    API_KEYS,
    TestClient,
    bearer,
    client_for,
    purchase_body,
)

PURCHASES = "/v1/namespaces/acme/credit-purchases"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def memory_ledger() -> Iterator[CreditLedger]:
    with open_ledger("memory://") as ledger:
        yield ledger


@pytest.fixture
def client(memory_ledger: CreditLedger) -> Iterator[TestClient]:
    with client_for(memory_ledger, api_keys=API_KEYS, max_request_body_bytes=4096) as client:
        yield client


def _code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def test_an_unauthenticated_request_is_refused_before_its_body_is_read(
    client: TestClient,
) -> None:
    response = client.post(PURCHASES, content=b"{broken", headers=JSON)
    assert _code(response) == (401, "unauthenticated")


def test_another_namespace_is_not_found_before_the_body_is_judged(client: TestClient) -> None:
    response = client.post(
        "/v1/namespaces/globex/credit-purchases",
        content=b"{broken",
        headers={**JSON, **bearer(ACME_TOKEN)},
    )
    assert _code(response) == (404, "not_found")


def test_a_declared_oversized_body_is_refused_before_anything_else(client: TestClient) -> None:
    response = client.post(PURCHASES, content=b"x" * 5000, headers=JSON)
    assert _code(response) == (413, "request_too_large")
    assert response.headers["content-type"] == "application/problem+json"


def test_a_namespace_that_cannot_exist_names_nothing(client: TestClient) -> None:
    headers = bearer(ACME_TOKEN)
    assert _code(
        client.post("/v1/namespaces/-acme/credit-purchases", json={}, headers=headers)
    ) == (
        404,
        "not_found",
    )
    assert _code(
        client.get(
            "/v1/namespaces/%20/credit-purchases/00000000-0000-0000-0000-000000000000",
            headers=headers,
        )
    ) == (404, "credit_purchase_not_found")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"customer_id": "\\ud800"}', "a lone surrogate cannot be stored as UTF-8"),
        (b"[" * 1000 + b"]" * 1000, "nesting deeper than any request needs"),
        (b'{"credit_amount": NaN}', "NaN is not JSON"),
        (b'{"a": 1,}', "a trailing comma"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_a_body_that_is_not_strict_json_is_a_validation_failure(
    client: TestClient, body: bytes, why: str
) -> None:
    response = client.post(PURCHASES, content=body, headers={**JSON, **bearer(ACME_TOKEN)})
    assert _code(response) == (422, "validation_failed"), why
    assert response.json()["errors"][0]["field"] == "body"
    assert response.json()["errors"][0]["code"] == "json_invalid"


def test_a_body_without_a_json_media_type_is_unsupported(client: TestClient) -> None:
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        headers = bearer(ACME_TOKEN) | ({"Content-Type": content_type} if content_type else {})
        response = client.post(PURCHASES, content=b'{"customer_id": "c"}', headers=headers)
        assert _code(response) == (415, "unsupported_media_type"), content_type


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/vnd.creditledger+json"]
)
def test_json_media_types_with_parameters_or_a_suffix_are_json(
    client: TestClient, content_type: str
) -> None:
    response = client.post(
        PURCHASES,
        content=b'{"customer_id":"c","currency":"USD","credit_amount":"1","cost_basis":"1",'
        b'"settlement":{"type":"external"}}',
        headers={"Content-Type": content_type, **bearer(ACME_TOKEN)},
    )
    assert response.status_code == 201, response.text


def test_a_payment_command_needs_no_body(client: TestClient) -> None:
    created = client.post(PURCHASES, json=purchase_body(), headers=bearer(ACME_TOKEN)).json()
    response = client.post(f"{PURCHASES}/{created['id']}/authorize", headers=bearer(ACME_TOKEN))
    assert response.status_code == 200
    assert response.json()["status"] == "active.payment.authorized"


def test_a_create_without_a_body_says_the_body_is_missing(client: TestClient) -> None:
    response = client.post(PURCHASES, headers=bearer(ACME_TOKEN))
    assert _code(response) == (422, "validation_failed")
    assert response.json()["errors"] == [
        {"field": "body", "code": "missing", "message": "Field required"}
    ]


def test_a_body_that_is_no_object_is_a_validation_failure(client: TestClient) -> None:
    response = client.post(PURCHASES, json=["customer_id"], headers=bearer(ACME_TOKEN))
    assert _code(response) == (422, "validation_failed")
    assert response.json()["errors"][0]["field"] == "body"
