"""Request ids, metrics, JSON log lines, and the last-resort 500 problem."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import open_ledger
from creditledger.infrastructure.http.app import create_app
from creditledger.infrastructure.http.logging import FIELDS, REQUEST_ID, JsonFormatter
from tests.infrastructure.http_app import TestClient, client_for, purchase_body, settings

PURCHASES = "/v1/namespaces/acme/credit-purchases"


@pytest.fixture
def memory_ledger() -> Iterator[CreditLedger]:
    with open_ledger("memory://") as ledger:
        yield ledger


@pytest.fixture
def client(memory_ledger: CreditLedger) -> Iterator[TestClient]:
    with client_for(memory_ledger) as client:
        yield client


def _samples(client: TestClient, name: str) -> dict[str, float]:
    """The metric's samples by label text, e.g. {'command="initiate",outcome="created"': 1}."""
    found = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            found[labels] = float(value)
    return found


def test_a_plain_request_id_is_echoed_and_any_other_replaced(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-Id": "job-42:a"}).headers["X-Request-Id"]
        == "job-42:a"
    )
    replaced = client.get("/healthz", headers={"X-Request-Id": "two words"}).headers["X-Request-Id"]
    assert replaced != "two words"
    assert len(replaced) == 32


def test_a_problem_names_the_request_it_answers(client: TestClient) -> None:
    response = client.get("/nowhere", headers={"X-Request-Id": "find-me"})
    assert response.json()["request_id"] == "find-me"


def test_requests_are_counted_by_route_template_never_by_path(client: TestClient) -> None:
    created = client.post(PURCHASES, json=purchase_body()).json()
    client.get(f"{PURCHASES}/{created['id']}")
    client.get("/no/such/path")
    requests = _samples(client, "creditledger_http_requests_total")
    route = "/v1/namespaces/{namespace}/credit-purchases/{purchase_id}"
    assert requests[f'method="GET",route="{route}",status="200"'] == 1
    assert requests['method="GET",route="unmatched",status="404"'] == 1
    assert not [labels for labels in requests if created["id"] in labels]
    latency = _samples(client, "creditledger_http_request_duration_seconds_count")
    assert latency[f'method="POST",route="{PURCHASES.replace("acme", "{namespace}")}"'] == 1


def test_command_outcomes_are_counted_by_error_code(client: TestClient) -> None:
    key = {"Idempotency-Key": "k-1"}
    created = client.post(PURCHASES, json=purchase_body(), headers=key).json()
    client.post(PURCHASES, json=purchase_body(), headers=key)
    client.post(PURCHASES, json=purchase_body(currency="XYZ"))
    client.post(f"{PURCHASES}/{created['id']}/authorize")
    client.post(f"{PURCHASES}/{created['id']}/authorize")
    assert _samples(client, "creditledger_commands_total") == {
        'command="initiate",outcome="created"': 1,
        'command="initiate",outcome="replayed"': 1,
        'command="initiate",outcome="validation_failed"': 1,
        'command="authorize",outcome="applied"': 1,
        'command="authorize",outcome="payment_already_authorized"': 1,
    }


def test_an_unexpected_error_is_a_500_problem_with_the_request_id(
    memory_ledger: CreditLedger, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings(), ledger=memory_ledger)

    def broken() -> None:
        msg = "a bug"
        raise RuntimeError(msg)

    app.add_api_route("/broken", broken)
    with (
        caplog.at_level(logging.ERROR, logger="creditledger.http"),
        TestClient(app, raise_server_exceptions=False) as client,
    ):
        response = client.get("/broken", headers={"X-Request-Id": "r-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["X-Request-Id"] == "r-500"
    assert response.json()["code"] == "internal_error"
    assert "a bug" not in response.text
    assert any(record.exc_info for record in caplog.records)


def test_a_log_line_is_one_json_object_with_the_request_id_and_fields() -> None:
    record = logging.LogRecord(
        "creditledger.http", logging.INFO, __file__, 1, "served %s", ("x",), None
    )
    setattr(record, FIELDS, {"status": 201, "route": "/r"})
    token = REQUEST_ID.set("req-1")
    try:
        line = JsonFormatter().format(record)
    finally:
        REQUEST_ID.reset(token)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "served x"
    assert entry["level"] == "info"
    assert entry["request_id"] == "req-1"
    assert entry["status"] == 201
    assert entry["time"].endswith("+00:00")
