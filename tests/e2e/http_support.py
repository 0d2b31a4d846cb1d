"""What the HTTP end-to-end tests share: a live server's coordinates, clients, request bodies."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.stores import postgres_reachable, postgres_required, postgres_schema, postgres_url

HTTP_BACKENDS = ("sqlite", "postgres")
"""Backends a separate server process can share with the test: memory lives inside one process."""

PROBLEM_FIELDS = {"type", "title", "status", "code", "detail", "errors"}


@dataclass(frozen=True)
class LiveServer:
    """A running ``creditledger serve`` and the tokens it accepts."""

    backend: str
    base_url: str
    tokens: dict[str, str]
    admin_token: str
    log_path: Path

    def client(self, namespace: str | None = "acme", *, token: str | None = None) -> httpx.Client:
        """A client with the namespace's token (or the given one, or none for namespace=None)."""
        chosen = token if token is not None else self.tokens.get(namespace or "", "")
        headers = {"Authorization": f"Bearer {chosen}"} if chosen else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)


@contextmanager
def store_url_for(backend: str, directory: Path) -> Iterator[str]:
    """An empty store of the backend: a new SQLite file, or a new PostgreSQL schema (dropped
    afterwards). PostgreSQL skips when unreachable, except in CI, where it fails."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'ledger-{uuid.uuid4().hex[:8]}.sqlite'}"
        return
    problem = postgres_reachable()
    if problem is not None:
        if postgres_required():
            pytest.fail(f"{problem} (CI requires the PostgreSQL tests to run)")
        pytest.skip(problem)
    with postgres_schema("creditledger_http") as schema:
        yield postgres_url(schema)


def purchases_path(namespace: str = "acme") -> str:
    return f"/v1/namespaces/{namespace}/credit-purchases"


def purchase_path(purchase_id: str, namespace: str = "acme") -> str:
    return f"{purchases_path(namespace)}/{purchase_id}"


def external_purchase(**changes: Any) -> dict[str, Any]:
    """A valid external purchase body for a new customer, with the given fields changed."""
    body: dict[str, Any] = {
        "customer_id": f"cust-{uuid.uuid4().hex[:12]}",
        "currency": "USD",
        "credit_amount": "100.123",
        "cost_basis": "0.5",
        "settlement": {"type": "external", "initial_status": "created"},
        "priority": 10,
        "feature_filters": ["api_calls"],
        "name": "Top-up",
        "metadata": {"order": "A-1"},
    }
    body.update(changes)
    return body


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


def create(client: httpx.Client, namespace: str = "acme", **changes: Any) -> dict[str, Any]:
    """Create an external purchase and return its body; fails the test unless it is a 201."""
    response = client.post(
        purchases_path(namespace),
        json=external_purchase(**changes),
        headers={"Idempotency-Key": new_key()},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def history_types(client: httpx.Client, purchase_id: str, namespace: str = "acme") -> list[str]:
    response = client.get(f"{purchase_path(purchase_id, namespace)}/events")
    assert response.status_code == 200, response.text
    return [item["type"] for item in response.json()["items"]]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is a problem document with this status and code; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem.keys() >= PROBLEM_FIELDS
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["type"] == f"/v1/problems/{code}"
    return problem
