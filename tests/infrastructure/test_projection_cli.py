"""``creditledger projections ...``: run, status, verify (exit 6 on a difference) and rebuild."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.cli.app import app
from creditledger.infrastructure.cli.invocation import ExitCode
from creditledger.infrastructure.projections import operations
from tests.readmodels_support import authorize, initiate, settle
from tests.stores import POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def cli(store_url: str, *arguments: str) -> Any:
    return CliRunner().invoke(app, ["--database-url", store_url, "projections", *arguments])


def tamper(ledger: CreditLedger, statement: str) -> None:
    """Change a live view behind the projector's back, as a bug or a hand edit would."""
    if ledger.env.get("PERSISTENCE_MODULE", "").endswith("sqlite"):
        with sqlite3.connect(ledger.env["SQLITE_DBNAME"]) as connection:
            connection.execute(statement)
    else:
        with psycopg.connect(POSTGRES_URL) as connection:
            connection.execute(f'SET search_path TO "{ledger.env["POSTGRES_SCHEMA"]}"')
            connection.execute(statement)


def test_the_projector_catches_up_and_status_shows_no_lag(
    ledger: CreditLedger, store_url: str
) -> None:
    settle(ledger, authorize(ledger, initiate(ledger)))
    before = cli(store_url, "status", "--json")
    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout)["caught_up"] is False
    assert {model["lag"] for model in json.loads(before.stdout)["models"]} == {
        4
    }  # Initiated, GrantAdded, PaymentAuthorized, PaymentSettled

    run = cli(store_url, "run", "--until-caught-up", "--json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout) == {
        "applied_while_catching_up": 4,
        "caught_up_apart": [],
        "position": 4,
    }

    after = json.loads(cli(store_url, "status", "--json").stdout)
    assert after["caught_up"] is True
    assert {(m["position"], m["lag"], m["lag_seconds"]) for m in after["models"]} == {(4, 0, None)}


def test_run_until_caught_up_on_postgresql_catches_the_ledger_up_in_a_second_process(
    ledger: CreditLedger, store_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for customer in ("cust-1", "cust-2", "cust-3"):
        settle(ledger, authorize(ledger, initiate(ledger, customer=customer)))
    # However short the log: the second process is what this test is about.
    monkeypatch.setattr(operations, "APART_FROM_EVENTS", 0)

    run = cli(store_url, "run", "--until-caught-up", "--json")

    assert run.exit_code == 0, run.output
    apart = ["ledger"] if backend == "postgres" else []
    assert json.loads(run.stdout) == {
        "applied_while_catching_up": 12,
        "caught_up_apart": apart,
        "position": 12,
    }
    assert ("by a second process" in run.stderr) is (backend == "postgres")
    assert cli(store_url, "verify").exit_code == 0


def test_verify_finds_a_tampered_view_and_a_rebuild_repairs_it(
    ledger: CreditLedger, store_url: str
) -> None:
    initiate(ledger, amount="10")
    assert cli(store_url, "run", "--until-caught-up").exit_code == 0
    assert cli(store_url, "verify").exit_code == 0

    tamper(
        ledger, "UPDATE readmodel_ledger_accounts SET balance = '11' WHERE account = 'customer_fbo'"
    )
    failed = cli(store_url, "verify", "--json")
    assert failed.exit_code == ExitCode.VERIFY_FAILED
    report = json.loads(failed.stdout)
    assert report["ok"] is False
    assert [(d["table"], d["key"]) for d in report["first_differences"]] == [
        ("accounts", "acme/cust-1/USD/customer_fbo")
    ]

    rebuilt = cli(store_url, "rebuild", "ledger", "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["rebuilt"][0]["position"] == 2  # Initiated and its GrantAdded
    assert cli(store_url, "verify").exit_code == 0


def test_verify_finds_a_missing_row(ledger: CreditLedger, store_url: str) -> None:
    initiate(ledger)
    initiate(ledger, customer="cust-2")
    assert cli(store_url, "run", "--until-caught-up").exit_code == 0
    tamper(ledger, "DELETE FROM readmodel_purchases WHERE customer_id = 'cust-2'")
    failed = cli(store_url, "verify", "--json")
    assert failed.exit_code == ExitCode.VERIFY_FAILED
    [difference] = json.loads(failed.stdout)["first_differences"]
    assert difference["live"] is None
    assert difference["rebuilt"]["customer_id"] == "cust-2"


def test_rebuild_all_rebuilds_every_model(ledger: CreditLedger, store_url: str) -> None:
    settle(ledger, authorize(ledger, initiate(ledger, amount="10")))
    authorize(ledger, initiate(ledger, customer="cust-2"))
    assert cli(store_url, "run", "--until-caught-up").exit_code == 0
    # Every model's live view damaged: only a rebuild that swaps each one in repairs them all.
    for statement in (
        "DELETE FROM readmodel_purchases",
        "DELETE FROM readmodel_ledger_entries",
        "DELETE FROM readmodel_receivables",
        "DELETE FROM readmodel_settled_revenue",
    ):
        tamper(ledger, statement)
    assert cli(store_url, "verify").exit_code == ExitCode.VERIFY_FAILED

    rebuilt = cli(store_url, "rebuild", "all", "--json")

    assert rebuilt.exit_code == 0, rebuilt.output
    reports = json.loads(rebuilt.stdout)["rebuilt"]
    assert [item["model"] for item in reports] == [
        "purchases",
        "ledger",
        "receivables",
        "settled_revenue",
    ]
    assert len({(item["position"], item["events"]) for item in reports}) == 1  # one pass
    assert cli(store_url, "verify").exit_code == 0


def test_rebuilding_an_unknown_model_is_a_usage_error(store_url: str) -> None:
    assert cli(store_url, "rebuild", "nonsense").exit_code == ExitCode.USAGE


def test_views_written_under_another_definition_are_rebuilt_from_the_log_on_start(
    ledger: CreditLedger, store_url: str
) -> None:
    # A store from an older release: views of another meaning (the ledger booked cash in credit
    # units before issue 13) and no record of their definition. Starting the projector must not
    # apply new events on top of them: the views start again from zero and catch up.
    settle(ledger, authorize(ledger, initiate(ledger, amount="10")))
    assert cli(store_url, "run", "--until-caught-up").exit_code == 0
    tamper(ledger, "UPDATE readmodel_ledger_accounts SET balance = '-10' WHERE account = 'wash'")
    tamper(ledger, "DROP TABLE readmodel_definitions")

    run = cli(store_url, "run", "--until-caught-up", "--json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["applied_while_catching_up"] == 4  # every model from zero
    assert cli(store_url, "verify").exit_code == 0

    # Once defined, a restart keeps the views as they are (a hand edit now stays, for verify).
    tamper(ledger, "UPDATE readmodel_ledger_accounts SET balance = '-10' WHERE account = 'wash'")
    again = cli(store_url, "run", "--until-caught-up", "--json")
    assert json.loads(again.stdout)["applied_while_catching_up"] == 0
    assert cli(store_url, "verify").exit_code == ExitCode.VERIFY_FAILED
