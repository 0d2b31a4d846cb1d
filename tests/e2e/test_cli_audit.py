"""The auditor's commands, run as an auditor runs them: the installed ``creditledger`` entry point
in a subprocess, on a SQLite store.

Each run starts a Python process (about a second), so the ledger under audit is filled in-process
(``tests.application.audit_support.populate``: fifteen events, positions 1 to 15) and only the
commands under test go through the command line.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creditledger.infrastructure.audit.jobs import take_checkpoint
from creditledger.infrastructure.bootstrap import open_ledger
from tests.application.audit_support import (
    EVENT_COUNT,
    Purchases,
    event_index,
    export_lines,
    populate,
    populate_credit_changes,
    regrant,
    rehash,
    without_checkpoints,
)
from tests.clock import START, FixedClock
from tests.e2e.cli_support import on_terminal
from tests.stores import postgres_url, sqlite_bypassing_triggers, truncate_schema

ENTRY_POINT = Path(sys.executable).with_name("creditledger")
TIMEOUT = 60
VERIFY_FAILED = 6


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite"


@pytest.fixture
def purchases(database: Path) -> Iterator[Purchases]:
    clock = FixedClock()
    with open_ledger(f"sqlite:///{database}", clock=clock) as ledger:
        yield populate(ledger, clock)


def creditledger(
    database: Path | str, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command line on a SQLite file (a path) or any store (a URL), in ``cwd``."""
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    env = {**os.environ, "CREDITLEDGER_DATABASE_URL": url}
    return subprocess.run(
        [str(ENTRY_POINT), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )


def succeeded(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def failed_verification(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == VERIFY_FAILED, result.stderr
    return json.loads(result.stdout)


@pytest.mark.usefixtures("purchases")
def test_an_export_verifies_and_one_changed_byte_fails_naming_its_position(
    database: Path, tmp_path: Path
) -> None:
    export = tmp_path / "export.jsonl"
    exported = succeeded(creditledger(database, "audit", "export", str(export), "--json"))
    assert exported["events"] == EVENT_COUNT
    assert exported["last_position"] == EVENT_COUNT

    verified = creditledger(database, "audit", "verify", str(export))
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["ok"] is True  # piped: JSON, even without --json

    lines = export.read_text().splitlines()
    index = event_index(lines, 9)
    lines[index] = lines[index].replace('"credit_amount":"30.00"', '"credit_amount":"31.00"')
    export.write_text("\n".join(lines) + "\n")
    result = creditledger(database, "audit", "verify", str(export), "--json")
    report = failed_verification(result)
    assert report["ok"] is False
    assert (report["failure"]["code"], report["failure"]["position"]) == ("hash_mismatch", 9)
    assert "position 9" in result.stderr


@pytest.mark.usefixtures("purchases")
def test_a_checkpoint_catches_a_store_changed_before_a_fresh_export(
    database: Path, tmp_path: Path
) -> None:
    checkpoint = succeeded(creditledger(database, "audit", "checkpoint", "--json"))
    assert checkpoint["position"] == EVENT_COUNT

    with sqlite_bypassing_triggers(database) as connection:
        connection.execute(
            "UPDATE stored_events "
            "SET state = CAST(replace(state, '\"psp-a\"', '\"psp-z\"') AS BLOB) "
            "WHERE rowid = 5"  # A's authorization: a fact nothing else in the log repeats
        )
    export = tmp_path / "re-export.jsonl"
    succeeded(creditledger(database, "audit", "export", str(export), "--json"))
    report = failed_verification(creditledger(database, "audit", "verify", str(export), "--json"))
    assert (report["failure"]["code"], report["failure"]["position"]) == (
        "checkpoint_mismatch",
        EVENT_COUNT,
    )

    refused = creditledger(database, "audit", "checkpoint")
    assert refused.returncode == VERIFY_FAILED
    assert f"position {EVENT_COUNT}" in refused.stderr


@pytest.mark.usefixtures("purchases")
def test_verify_against_live_compares_every_purchase_and_balance_with_the_store(
    database: Path, tmp_path: Path
) -> None:
    export = tmp_path / "export.jsonl"
    with open_ledger(f"sqlite:///{database}") as ledger:
        export_lines(ledger, export)
    report = succeeded(
        creditledger(database, "audit", "verify", str(export), "--against-live", "--json")
    )
    assert report["live"]["purchases_compared"] == 5
    assert report["live"]["difference_count"] == 0
    assert {
        name: source["difference_count"] for name, source in report["live"]["sources"].items()
    } == {
        "read_models": 0,
        "event_store": 0,
    }


def test_verify_against_live_names_a_read_model_row_changed_by_hand(
    database: Path, purchases: Purchases, tmp_path: Path
) -> None:
    export = tmp_path / "export.jsonl"
    with open_ledger(f"sqlite:///{database}") as ledger:
        export_lines(ledger, export)
    # The first run catches the views up to the export's cut; then a row is edited by hand.
    succeeded(creditledger(database, "audit", "verify", str(export), "--against-live", "--json"))
    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE readmodel_purchases SET credit_amount = '80.00' WHERE created_position = 9"
        )
    result = creditledger(database, "audit", "verify", str(export), "--against-live", "--json")
    report = failed_verification(result)
    sources = report["live"]["sources"]
    assert sources["event_store"]["difference_count"] == 0
    first = sources["read_models"]["first_difference"]
    assert (first["key"], first["position"], first["live"]) == (
        str(purchases.d.id),
        9,
        {"credit_amount": "80.00"},
    )
    assert (
        f"at position 9: purchase {purchases.d.id} differs in credit_amount in the read models"
        in result.stderr
    )


def test_an_auditors_own_checkpoint_catches_a_forger_who_rewrote_the_chain(
    database: Path, tmp_path: Path
) -> None:
    clock = FixedClock()
    export = tmp_path / "export.jsonl"
    with open_ledger(f"sqlite:///{database}", clock=clock) as ledger:
        populate(ledger, clock)
        checkpoint = take_checkpoint(ledger, START)
        lines = export_lines(ledger, export)
    assert checkpoint is not None
    forged = without_checkpoints(rehash(regrant(lines, 9, 12, "80.00")))
    export.write_text("\n".join(forged) + "\n")

    held = f"{checkpoint.position}:{checkpoint.chain_hash}"
    result = creditledger(database, "audit", "verify", str(export), "--checkpoint", held, "--json")
    report = failed_verification(result)
    assert (report["failure"]["code"], report["failure"]["position"]) == (
        "checkpoint_mismatch",
        EVENT_COUNT,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def populated_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Purchases]:
    """A store with ``populate``'s purchases, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    else:
        schema: str = request.getfixturevalue("postgres_session_schema")
        truncate_schema(schema)
        url = postgres_url(schema)
    clock = FixedClock()
    with open_ledger(url, clock=clock) as ledger:
        purchases = populate(ledger, clock)
    return url, purchases


def test_history_and_show_print_a_purchase_now_at_a_version_and_as_of_a_time(
    populated_store: tuple[str, Purchases],
) -> None:
    url, purchases = populated_store
    purchase = str(purchases.a.id)
    table = creditledger(url, "history", purchase, "-n", "acme")
    assert table.returncode == 0, table.stderr
    for event_type in ("Initiated", "PaymentAuthorized", "PaymentSettled"):
        assert event_type in table.stdout

    first = succeeded(creditledger(url, "show", purchase, "-n", "acme", "--version", "1", "--json"))
    assert (first["version"], first["status"]) == (1, "active.payment.pending")
    # A was initiated at 12:00:00 and authorized at 12:00:02 (populate's clock).
    as_of = creditledger(url, "show", purchase, "-n", "acme", "--as-of", "2026-01-01T12:00:03Z")
    assert as_of.returncode == 0, as_of.stderr
    assert "active.payment.authorized" in as_of.stdout


def test_the_exit_codes_are_in_the_help() -> None:
    result = subprocess.run(
        [str(ENTRY_POINT), "audit", "--help"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0
    assert "6 verification failed" in result.stdout


def test_show_refuses_a_time_and_a_version_together_as_bad_usage(database: Path) -> None:
    purchase = "00000000-0000-0000-0000-000000000001"
    both = creditledger(
        database,
        "show",
        purchase,
        "-n",
        "acme",
        "--as-of",
        "2026-01-01T12:00:03Z",
        "--version",
        "1",
    )
    assert both.returncode == 2
    assert "not both" in both.stderr


@pytest.mark.usefixtures("purchases")
def test_a_failed_verification_on_a_terminal_says_failed_before_anything_else(
    database: Path, tmp_path: Path
) -> None:
    export = tmp_path / "export.jsonl"
    succeeded(creditledger(database, "audit", "export", str(export), "--json"))
    lines = export.read_text().splitlines()
    index = event_index(lines, 9)
    lines[index] = lines[index].replace('"credit_amount":"30.00"', '"credit_amount":"31.00"')
    export.write_text("\n".join(lines) + "\n")

    code, shown = on_terminal(
        "audit",
        "verify",
        str(export),
        env={**os.environ, "CREDITLEDGER_DATABASE_URL": f"sqlite:///{database}"},
    )

    assert code == VERIFY_FAILED
    first_line = shown.strip().splitlines()[0]
    assert first_line.startswith("FAILED"), shown
    assert "position 9" in first_line
    assert "verified" not in shown.replace("Verification: FAILED", "")


def test_invoices_failures_and_refunds_verify_against_live_and_a_forged_refund_fails(
    database: Path, tmp_path: Path
) -> None:
    clock = FixedClock()
    with open_ledger(f"sqlite:///{database}", clock=clock) as ledger:
        populate_credit_changes(ledger, clock)
    export = tmp_path / "export.jsonl"
    succeeded(creditledger(database, "audit", "export", str(export), "--json"))
    report = succeeded(
        creditledger(database, "audit", "verify", str(export), "--against-live", "--json")
    )
    assert report["export"]["format_version"] == 3
    assert (report["purchases"]["failed_payments"], report["purchases"]["owed_after_failures"]) == (
        4,
        {"USD": "70.00"},
    )
    assert report["live"]["difference_count"] == 0

    code, shown = on_terminal(
        "audit",
        "verify",
        str(export),
        env={**os.environ, "CREDITLEDGER_DATABASE_URL": f"sqlite:///{database}"},
    )
    assert code == 0, shown
    assert "4 (credit consumed and still owed: 70.00 USD)" in shown
    assert "brokerage_cash" in shown
    assert "cash" in shown.split("brokerage_cash", 1)[1].splitlines()[0]  # the unit column

    lines = export.read_text().splitlines()
    index = event_index(lines, 14)  # R's first refund: 20 credits, 10.00 returned
    lines[index] = lines[index].replace('"cash_amount":"10.00"', '"cash_amount":"12.00"')
    export.write_text("\n".join(rehash(lines)) + "\n")
    result = creditledger(database, "audit", "verify", str(export), "--json")
    failure = failed_verification(result)["failure"]
    assert (failure["code"], failure["position"]) == ("event_sequence_broken", 14)
    assert "returns the wrong amount" in failure["message"]
