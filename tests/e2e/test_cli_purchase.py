"""The ``creditledger`` command line, run as a user runs it: the installed entry point, a process.

Each run starts a Python process (about a second), so purchases a test only needs as a starting
point are made in-process on the same SQLite file, and only the commands under test go through
the command line.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from creditledger.infrastructure.bootstrap import open_ledger
from tests.application.builders import external_purchase

ENTRY_POINT = Path(sys.executable).with_name("creditledger")
TIMEOUT = 60


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


def creditledger(database_url: str, command_line: str) -> subprocess.CompletedProcess[str]:
    """Run ``creditledger <command_line>`` (split as a shell would) on the given store."""
    env = {**os.environ, "CREDITLEDGER_DATABASE_URL": database_url}
    return subprocess.run(
        [str(ENTRY_POINT), *shlex.split(command_line)],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


def succeeded(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_purchase_is_initiated_authorized_settled_and_inspected_as_json(
    database_url: str,
) -> None:
    initiated = succeeded(
        creditledger(
            database_url,
            "purchase initiate -n acme -c cust-1 --currency USD --credit-amount 100.123"
            " --cost-basis 0.5 --feature storage --feature api_calls --metadata order=A-1"
            " --idempotency-key order-1",
        )
    )
    purchase_id = initiated["id"]
    assert initiated["status"] == "active.payment.pending"
    assert initiated["credit_amount"] == "100.12"
    assert initiated["feature_filters"] == ["api_calls", "storage"]
    assert initiated["metadata"] == {"order": "A-1"}

    authorized = succeeded(
        creditledger(
            database_url,
            f"purchase authorize {purchase_id} -n acme --external-reference psp-1 --if-version 1",
        )
    )
    assert authorized["status"] == "active.payment.authorized"
    assert authorized["realizations"]["external_payment"]["amount"] == "50.06"

    settled = succeeded(creditledger(database_url, f"purchase settle {purchase_id} -n acme"))
    assert settled["status"] == "final"
    assert settled["version"] == 3

    at_version_1 = succeeded(
        creditledger(database_url, f"purchase show {purchase_id} -n acme --version 1")
    )
    assert at_version_1 == initiated

    history = succeeded(creditledger(database_url, f"purchase history {purchase_id} -n acme"))
    assert [(item["version"], item["type"], item["status_after"]) for item in history] == [
        (1, "Initiated", "active.payment.pending"),
        (2, "PaymentAuthorized", "active.payment.authorized"),
        (3, "PaymentSettled", "final"),
    ]


def test_an_invalid_purchase_exits_3_with_a_problem_listing_every_error(
    database_url: str,
) -> None:
    result = creditledger(
        database_url,
        "purchase initiate -n acme -c cust-1 --currency usd --credit-amount 0"
        " --cost-basis -1 --feature a --feature a",
    )

    assert result.returncode == 3
    assert result.stdout == ""
    problem = json.loads(result.stderr)
    assert problem["code"] == "validation_failed"
    assert [(error["field"], error["code"]) for error in problem["errors"]] == [
        ("currency", "invalid_currency"),
        ("credit_amount", "credit_amount_not_positive"),
        ("cost_basis", "cost_basis_not_positive"),
        ("feature_filters[1]", "duplicate_feature_key"),
    ]
    assert all(error["message"] for error in problem["errors"])


def test_showing_a_purchase_that_does_not_exist_exits_4(database_url: str) -> None:
    result = creditledger(database_url, f"purchase show {uuid4()} -n acme")

    assert result.returncode == 4
    assert json.loads(result.stderr)["code"] == "credit_purchase_not_found"


def test_authorizing_an_authorized_purchase_exits_5_and_changes_nothing(
    database_url: str,
) -> None:
    with open_ledger(database_url) as ledger:
        purchase = ledger.initiate(external_purchase(initial_status="authorized")).purchase

    result = creditledger(database_url, f"purchase authorize {purchase.id} -n acme")

    assert result.returncode == 5
    assert json.loads(result.stderr)["code"] == "payment_already_authorized"
    with open_ledger(database_url) as ledger:
        assert ledger.get_purchase(purchase.namespace, purchase.id) == purchase


def test_the_demo_runs_a_whole_lifecycle_and_exits_0(database_url: str) -> None:
    result = creditledger(database_url, "demo")

    assert result.returncode == 0, result.stderr
    assert "final" in result.stdout
    assert "PaymentSettled" in result.stdout
