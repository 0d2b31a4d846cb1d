"""An event the read-model store refuses never stops the projector silently (issue 16, point 1).

The store's refusal is real: a trigger on the purchases view refuses one customer's row, as
PostgreSQL's text columns refuse a NUL byte. The projector retries one event at a time, so
``/readyz``, ``/metrics`` and the log name the exact position; ``creditledger projections skip``
moves the read models past it, and they go on with the events after it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from creditledger.application.ledger import CreditLedger
from tests.application.builders import external_purchase
from tests.e2e.test_cli_purchase import ENTRY_POINT, TIMEOUT
from tests.infrastructure.http_app import client_for
from tests.stores import refuse_inserts

POISON = "poison-customer"
PATIENCE_SECONDS = 60.0


def _eventually(check: Callable[[], Any]) -> Any:
    """The first truthy answer of ``check``, polled (the projector retries with back-off)."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        answer = check()
        if answer:
            return answer
        time.sleep(0.05)
    pytest.fail("the condition never held")


def _stuck(response: httpx.Response) -> dict[str, Any] | None:
    if response.status_code != 503:
        return None
    codes = {error["code"]: error for error in response.json()["errors"]}
    stuck: dict[str, Any] | None = codes.get("projection_stuck")
    return stuck if stuck is not None and "stuck at position" in stuck["message"] else None


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])  # the memory views refuse nothing
def test_a_poison_event_is_reported_at_its_position_and_can_be_skipped(
    ledger: CreditLedger,
    store_url: str,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    caplog.set_level(logging.ERROR, logger="creditledger.infrastructure.projections.runner")
    with client_for(ledger, database_url=store_url) as client:
        lift = refuse_inserts(
            store_url,
            "readmodel_purchases",
            "the read-model store refuses this row",
            when=("customer_id", POISON),
        )
        request.addfinalizer(lift)  # the PostgreSQL schema outlives the test
        for customer in ("before", POISON, "after"):
            ledger.initiate(external_purchase(customer_id=customer))

        stuck = _eventually(lambda: _stuck(client.get("/readyz")))
        scraped = client.get("/metrics").text
        skipped = subprocess.run(
            # Each initiate writes two events (the Initiated and its GrantAdded): the poisoned
            # purchase's Initiated is at 3.
            [str(ENTRY_POINT), "projections", "skip", "3", "--json"],
            capture_output=True,
            text=True,
            env={**os.environ, "CREDITLEDGER_DATABASE_URL": store_url},
            timeout=TIMEOUT,
            check=False,
        )
        _eventually(lambda: client.get("/readyz").status_code == 200)
        # Ready means the projector is past the poison event, not that it has reached the head
        # (it clears the failure after the event past it, then applies the rest): read at the
        # log's head, as a client reads its own writes.
        head = ledger.recorder.max_notification_id()
        listed = client.get(
            "/v1/namespaces/acme/credit-purchases", params={"min_position": head}
        ).json()

    assert "stuck at position 3" in stuck["message"]
    assert "the read-model store refuses this row" in stuck["message"]
    assert "creditledger_projection_stuck_position 3.0" in scraped
    assert any("stuck at position 3" in record.getMessage() for record in caplog.records)
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout)["position"] == 3
    assert sorted(item["customer_id"] for item in listed["items"]) == ["after", "before"]


def _projections_run(store_url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENTRY_POINT), "projections", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "CREDITLEDGER_DATABASE_URL": store_url},
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_projections_run_names_a_poison_event_met_while_catching_up(
    ledger: CreditLedger, store_url: str, request: pytest.FixtureRequest
) -> None:
    # The read models exist (an empty catch-up makes them) before the store starts refusing.
    assert _projections_run(store_url, "run", "--until-caught-up").returncode == 0
    lift = refuse_inserts(
        store_url, "readmodel_purchases", "the store refuses this row", when=("customer_id", POISON)
    )
    request.addfinalizer(lift)  # the PostgreSQL schema outlives the test
    for customer in ("before", POISON, "after"):
        ledger.initiate(external_purchase(customer_id=customer))

    stuck = _projections_run(store_url, "run", "--until-caught-up")
    status = json.loads(_projections_run(store_url, "status", "--json").stdout)
    skipped = _projections_run(store_url, "skip", "3")  # each initiate: Initiated, GrantAdded
    resumed = _projections_run(store_url, "run", "--until-caught-up", "--json")

    assert stuck.returncode == 1
    problem = json.loads(stuck.stderr[stuck.stderr.index("{") :])
    assert problem["code"] == "projection_stuck"
    assert problem["position"] == 3
    assert "the store refuses this row" in problem["detail"]
    assert "creditledger projections skip 3" in problem["detail"]
    assert "Traceback" not in stuck.stderr
    assert {model["position"] for model in status["models"]} == {2}, status
    assert skipped.returncode == 0, skipped.stderr
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["position"] == 6
