"""``/healthz`` and ``/readyz`` on every backend; not ready when the store stops answering."""

from __future__ import annotations

import psycopg
import pytest

from application.ledger import CreditLedger
from infrastructure.bootstrap import open_ledger
from tests.infrastructure.http_app import client_for
from tests.support import (
    POSTGRES_URL,
    postgres_reachable,
    postgres_required,
    postgres_schema,
    postgres_url,
)


def test_a_server_whose_store_answers_is_ready(ledger: CreditLedger) -> None:
    with client_for(ledger) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"store": "ok"}}


def test_a_server_whose_store_is_gone_is_not_ready_but_alive() -> None:
    problem = postgres_reachable()
    if problem is not None:  # the suite's rule: skip where the server is down, fail in CI
        if postgres_required():
            pytest.fail(problem)
        pytest.skip(problem)
    with postgres_schema("creditledger_ready") as schema:
        ledger = open_ledger(postgres_url(schema))
        try:
            with client_for(ledger) as client:
                assert client.get("/readyz").status_code == 200
                with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
                    connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
                response = client.get("/readyz")
                alive = client.get("/healthz")
        finally:
            ledger.close()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    assert response.json()["code"] == "not_ready"
    assert response.json()["errors"][0]["code"] == "store_unreachable"
    assert alive.status_code == 200
