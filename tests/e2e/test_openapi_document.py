"""The committed OpenAPI document is the one the app serves, and it documents every error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from creditledger.infrastructure.http.app import create_app
from creditledger.infrastructure.http.openapi import render
from tests.infrastructure.http_app import settings

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REGENERATE = ".venv/bin/python -m creditledger.infrastructure.http.openapi_file docs/openapi.json"


def _served() -> dict[str, Any]:
    document: dict[str, Any] = create_app(settings()).openapi()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_the_committed_document_is_the_one_the_app_serves() -> None:
    assert DOCUMENT.read_text() == render(_served()), f"docs/openapi.json drifted: {REGENERATE}"


def test_the_document_is_openapi_3_1_and_the_same_whatever_the_tokens() -> None:
    closed = create_app(settings(api_keys="acme=t-1", admin_token="a-1")).openapi()  # noqa: S106
    assert closed == _served()
    assert closed["openapi"] == "3.1.0"


def test_every_namespaced_operation_documents_each_refusal_it_can_give() -> None:
    for path, method, operation in _operations(_served()):
        if not path.startswith("/v1/namespaces/"):
            continue
        statuses = set(operation["responses"])
        expected = {"401", "404"} | ({"403", "413", "415", "422"} if method == "post" else set())
        assert expected <= statuses, (method, path, expected - statuses)
        assert operation["security"] == [{"bearerAuth": []}]


def test_every_error_response_is_a_problem_with_an_example_per_code() -> None:
    for path, method, operation in _operations(_served()):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                assert "application/json" in response["content"] or path == "/metrics"
                continue
            content = response["content"]
            assert list(content) == ["application/problem+json"], (method, path, status)
            examples = content["application/problem+json"]["examples"]
            assert examples, (method, path, status)
            for code, example in examples.items():
                assert example["value"]["code"] == code
                assert example["value"]["status"] == int(status)
                assert f"`{code}`" in response["description"]


def test_purchase_responses_show_an_example_with_its_nulls() -> None:
    document = json.loads(DOCUMENT.read_text())
    get = document["paths"]["/v1/namespaces/{namespace}/credit-purchases/{purchase_id}"]["get"]
    example = get["responses"]["200"]["content"]["application/json"]["examples"]["at_version_1"]
    assert example["value"]["realizations"]["external_payment"] is None
    assert example["value"]["expires_at"] is None
