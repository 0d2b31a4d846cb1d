"""``/healthz`` and ``/readyz`` on every backend; not ready when the store stops answering."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import open_ledger
from creditledger.infrastructure.http.deps import Services
from tests.clock import START, FixedClock
from tests.infrastructure.http_app import TestClient, client_for, purchase_body
from tests.stores import (
    POSTGRES_URL,
    postgres_reachable,
    postgres_required,
    postgres_schema,
    postgres_url,
    refuse_inserts,
)


def test_a_server_whose_store_answers_is_ready(ledger: CreditLedger) -> None:
    with client_for(ledger) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {
            "store": "ok",
            "projections": {
                "status": "ok",
                "projector": "inprocess",
                "projector_running": True,
                "head": 0,
                "position": 0,
                "lag": 0,
                "max_lag": 10_000,
            },
            "expiry": {
                "status": "ok",
                "running": True,
                "lag_seconds": 0.0,
                "max_lag_seconds": None,
                "recorded": 0,
                "last_error": None,
            },
        },
    }


def test_readiness_reports_the_projection_lag_and_refuses_above_the_bound(
    ledger: CreditLedger,
) -> None:
    # External projector that never runs: every event written stays behind.
    # Each create writes two events (the purchase's Initiated and its wallet's GrantAdded).
    with client_for(ledger, projector="external", max_projection_lag=2) as client:
        for key in ("lag-1", "lag-2"):
            created = client.post(
                "/v1/namespaces/acme/credit-purchases",
                json=purchase_body(),
                headers={"Idempotency-Key": key},
            )
            assert created.status_code == 201
            if key == "lag-1":
                one_behind = client.get("/readyz")
        two_behind = client.get("/readyz")
        scraped = client.get("/metrics").text
    assert one_behind.status_code == 200
    assert one_behind.json()["checks"]["projections"]["lag"] == 2
    assert one_behind.json()["checks"]["projections"]["projector_running"] is False
    assert two_behind.status_code == 503
    assert two_behind.json()["code"] == "not_ready"
    assert [e["code"] for e in two_behind.json()["errors"]] == ["projection_lag_too_high"]
    assert "creditledger_projection_lag_events 4.0" in scraped


def test_a_server_whose_in_process_projector_died_is_not_ready(ledger: CreditLedger) -> None:
    with client_for(ledger) as client:
        views = services_of_client(client).views
        assert views is not None
        views.stop()  # as if the thread had died
        response = client.get("/readyz")
    assert response.status_code == 503
    assert [e["code"] for e in response.json()["errors"]] == ["projector_stopped"]


def services_of_client(client: TestClient) -> Services:
    services = client.app.state.services  # type: ignore[attr-defined]
    assert isinstance(services, Services)
    return services


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


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])  # memory writes cannot fail
def test_a_server_whose_writes_fail_is_not_ready_until_one_succeeds(
    ledger: CreditLedger, store_url: str, backend: str
) -> None:
    events = "stored_events" if backend == "sqlite" else "creditledger_events"
    lift = refuse_inserts(store_url, events, "disk full (simulated)")
    with client_for(ledger) as client:
        refused = client.post(
            "/v1/namespaces/acme/credit-purchases",
            json=purchase_body(),
            headers={"Idempotency-Key": "refused-write"},
        )
        while_failing = client.get("/readyz")
        lift()
        created = client.post(
            "/v1/namespaces/acme/credit-purchases",
            json=purchase_body(),
            headers={"Idempotency-Key": "accepted-write"},
        )
        recovered = client.get("/readyz")

    assert refused.status_code == 503
    assert refused.json()["code"] == "store_unavailable"
    assert while_failing.status_code == 503
    assert [e["code"] for e in while_failing.json()["errors"]] == ["store_writes_failing"]
    assert "disk full (simulated)" in while_failing.json()["detail"]
    assert created.status_code == 201
    assert recovered.status_code == 200


def test_readiness_reports_how_long_a_due_expiry_has_waited_and_refuses_above_the_bound(
    ledger: CreditLedger,
) -> None:
    clock = ledger.clock
    assert isinstance(clock, FixedClock)
    with client_for(ledger, expiry_sweep=False) as client:
        created = client.post(
            "/v1/namespaces/acme/credit-purchases",
            json=purchase_body(expires_at=(START + timedelta(hours=1)).isoformat()),
        )
        assert created.status_code == 201
        assert client.get("/readyz").json()["checks"]["expiry"] == {"status": "not_in_this_process"}
    with client_for(ledger, expiry_sweep_interval=3600, max_expiry_lag=60) as client:
        sweeper = client.app.state.services.expiry  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while sweeper.last is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the pass at start, with nothing due yet
        assert sweeper.last is not None
        assert sweeper.recorded == 0
        # This app's read models start empty and catch up in their own thread; the sweep reads
        # due grants from them, so the purchase must be in them before the expiry is due.
        views = client.app.state.services.views  # type: ignore[attr-defined]
        assert views.read_models.wait_until(ledger.head_position(), timeout=30)
        # The next pass is an hour away: the expiry, due 90 s ago, waits.
        clock.set(START + timedelta(hours=1, seconds=90))
        waited = client.get("/readyz")
        scraped = client.get("/metrics").text
    assert waited.status_code == 503
    assert [e["code"] for e in waited.json()["errors"]] == ["expiry_lag_too_high"]
    assert "creditledger_expiry_lag_seconds 90.0" in scraped
