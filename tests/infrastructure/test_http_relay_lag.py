"""With the relay in the server's process, /readyz and /metrics report how far the stream lags."""

from __future__ import annotations

import time

import pytest

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.relay.broker import NatsServerProcess
from tests.infrastructure.http_app import TestClient, client_for, purchase_body
from tests.infrastructure.relay_support import (
    assert_stream_equals_log,
    catch_up_with_relay,
    unique_spec,
)


def relay_check(client: TestClient) -> dict[str, object]:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    found: dict[str, object] = ready.json()["checks"]["relay"]
    return found


def _create_three_purchases(client: TestClient) -> None:
    for key in ("one", "two", "three"):
        created = client.post(
            "/v1/namespaces/acme/credit-purchases",
            json=purchase_body(),
            headers={"Idempotency-Key": key},
        )
        assert created.status_code == 201


def test_the_in_server_relay_publishes_writes_and_readiness_reports_its_lag(
    ledger: CreditLedger, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    with client_for(
        ledger,
        relay_in_server=True,
        nats_url=nats_broker.url,
        relay_stream=spec.name,
        relay_subject_prefix=spec.subject_prefix,
    ) as client:
        _create_three_purchases(client)
        deadline = time.monotonic() + 20
        while (check := relay_check(client))["lag"] != 0:
            assert time.monotonic() < deadline, check
            time.sleep(0.05)
        scraped = client.get("/metrics").text
    # Each create writes 2 events: the purchase's and the grant in the customer's wallet.
    assert check == {"status": "ok", "running": True, "position": 6, "lag": 0, "max_lag": None}
    assert "creditledger_relay_lag_events 0.0" in scraped
    assert "creditledger_relay_position 6.0" in scraped
    assert assert_stream_equals_log(nats_broker.url, spec, ledger) == 6


@pytest.mark.parametrize("mode", ["relay_in_server", "relay_watch"])
def test_a_broker_that_does_not_answer_makes_the_server_unready_above_the_bound(
    ledger: CreditLedger, mode: str
) -> None:
    # In the server's process or elsewhere, a relay whose broker is gone is as far behind as
    # the whole log.
    with client_for(
        ledger, nats_url="nats://127.0.0.1:9", max_relay_lag=0, **{mode: True}
    ) as client:
        created = client.post(
            "/v1/namespaces/acme/credit-purchases",
            json=purchase_body(),
            headers={"Idempotency-Key": "k"},
        )
        assert created.status_code == 201
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert [error["code"] for error in ready.json()["errors"]] == ["relay_lag_too_high"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])  # the relay process shares the store
def test_a_server_watching_the_stream_reports_the_lag_of_a_relay_running_elsewhere(
    ledger: CreditLedger, store_url: str, nats_broker: NatsServerProcess
) -> None:
    spec = unique_spec()
    with client_for(
        ledger,
        database_url=store_url,
        relay_watch=True,
        nats_url=nats_broker.url,
        relay_stream=spec.name,
        relay_subject_prefix=spec.subject_prefix,
    ) as client:
        _create_three_purchases(client)
        before = relay_check(client)
        catch_up_with_relay(
            nats_broker.url, spec, store_url
        )  # `creditledger relay`, its own process
        after = relay_check(client)
        scraped = client.get("/metrics").text
    assert before["position"] is None
    assert before["lag"] == 6  # 2 events per create: the purchase's and the wallet's grant
    assert spec.name in str(before["problem"])  # no stream yet: said, not fatal by default
    assert after == {
        "stream": spec.name,
        "position": 6,
        "lag": 0,
        "max_lag": None,
        "status": "ok",
    }
    assert "creditledger_relay_lag_events 0.0" in scraped
    assert "creditledger_relay_position 6.0" in scraped
