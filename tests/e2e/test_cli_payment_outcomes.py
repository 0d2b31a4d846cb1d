"""``creditledger purchase invoice``, ``fail`` and ``refund`` as their users run them: the purchase
as JSON into a pipe and as a table on a terminal, replays by ``-k``, refusals on stderr with their
exit codes and nothing written.

The purchases are made in-process on the same store (a SQLite file or a PostgreSQL schema); only
the commands under test run through the installed entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from creditledger.application.commands import SettlementInput
from creditledger.infrastructure.bootstrap import open_ledger
from tests.application.builders import consume, external_purchase
from tests.clock import FixedClock
from tests.e2e.cli_support import ENTRY_POINT, TIMEOUT, on_terminal
from tests.e2e.http_support import HTTP_BACKENDS, store_url_for

ABSENT = "7f3c3b34-3d1c-4c55-9d0c-3a8f4f6f5f5f"


@dataclass(frozen=True)
class Purchases:
    url: str
    invoiced: str
    """100.12 USD at 0.5 for cust-1, billed on an invoice: nothing granted yet."""
    pending: str
    """100.12 USD at 0.5 for cust-2, of which 30 consumed, payment pending."""
    settled: str
    """100.12 USD at 0.5 for cust-3, of which 20 consumed, payment settled."""


@pytest.fixture(params=HTTP_BACKENDS)
def purchases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Purchases]:
    with store_url_for(request.param, tmp_path) as url:
        with open_ledger(url, clock=FixedClock(datetime.now(UTC))) as ledger:
            invoiced = ledger.initiate(
                external_purchase(customer_id="cust-1", settlement=SettlementInput(type="invoice"))
            ).purchase
            pending = ledger.initiate(external_purchase(customer_id="cust-2")).purchase
            ledger.consume(consume("30", customer_id="cust-2", feature_key=None))
            settled = ledger.initiate(
                external_purchase(customer_id="cust-3", initial_status="settled")
            ).purchase
            ledger.consume(consume("20", customer_id="cust-3", feature_key=None))
        yield Purchases(url, str(invoiced.id), str(pending.id), str(settled.id))


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENTRY_POINT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "CREDITLEDGER_DATABASE_URL": url},
        timeout=TIMEOUT,
        check=False,
    )


def piped(url: str, *args: str) -> Any:
    """``creditledger ARGS`` into a pipe: it must succeed and print JSON."""
    result = run(url, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def refused(url: str, code: int, *args: str) -> dict[str, Any]:
    """``creditledger purchase ARGS`` must exit ``code`` with a problem on stderr and nothing on
    stdout (each test ends by reading the whole history: a refusal wrote nothing)."""
    result = run(url, "purchase", *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    problem: dict[str, Any] = json.loads(result.stderr)
    return problem


def history(url: str, purchase: str) -> list[str]:
    """The purchase's event types, oldest first."""
    return [entry["type"] for entry in piped(url, "history", purchase, "-n", "acme")]


def test_an_invoice_grants_the_credit_once_and_replays_with_its_key(purchases: Purchases) -> None:
    url, purchase = purchases.url, purchases.invoiced
    invoice = ("purchase", "invoice", purchase, "-n", "acme", "--invoice-id", "inv-7")
    early = refused(url, 5, "authorize", purchase, "-n", "acme")
    assert early["code"] == "invoice_not_created"

    first = piped(url, *invoice, "--line-id", "line-1", "-k", "inv-key", "--if-version", "1")
    replay = piped(url, *invoice, "--line-id", "line-1", "-k", "inv-key", "--if-version", "1")
    assert first == replay
    assert (first["status"], first["remaining"], first["version"]) == (
        "active.payment.pending",
        "100.12",
        2,
    )
    assert first["realizations"]["invoice"]["invoice_id"] == "inv-7"
    assert first["realizations"]["invoice"]["line_id"] == "line-1"
    again = refused(
        url, 5, "invoice", purchase, "-n", "acme", "--invoice-id", "x", "--line-id", "y"
    )
    assert again["code"] == "invoice_already_created"
    reused = refused(
        url,
        5,
        "invoice",
        purchase,
        "-n",
        "acme",
        "--invoice-id",
        "x",
        "--line-id",
        "y",
        "-k",
        "inv-key",
    )
    assert reused["code"] == "idempotency_key_reused"
    absent = run(
        url, "purchase", "invoice", ABSENT, "-n", "acme", "--invoice-id", "x", "--line-id", "y"
    )
    assert absent.returncode == 4
    assert json.loads(absent.stderr)["code"] == "credit_purchase_not_found"
    assert history(url, purchase) == ["Initiated", "InvoiceCreated"]


def test_a_failure_takes_back_the_unconsumed_credit_and_every_later_command_is_refused(
    purchases: Purchases,
) -> None:
    url, purchase = purchases.url, purchases.pending
    missing_reason = run(url, "purchase", "fail", purchase, "-n", "acme")
    assert missing_reason.returncode == 2  # --reason is required: a usage error
    stale = refused(
        url,
        5,
        "fail",
        purchase,
        "-n",
        "acme",
        "--reason",
        "declined",
        "--if-version",
        "7",
    )
    assert stale["code"] == "version_mismatch"
    too_long = refused(url, 3, "fail", purchase, "-n", "acme", "--reason", "x" * 257)
    assert too_long["code"] == "validation_failed"

    failed = piped(
        url,
        "purchase",
        "fail",
        purchase,
        "-n",
        "acme",
        "--reason",
        "declined",
        "--external-reference",
        "psp-9",
        "-k",
        "fail-key",
    )
    assert (failed["status"], failed["revoked"], failed["consumed"]) == (
        "final.payment_failed",
        "70.12",
        "30.00",
    )
    failure = failed["realizations"]["payment_failure"]
    assert (failure["owed"], failure["reason"], failure["external_reference"]) == (
        "30.00",
        "declined",
        "psp-9",
    )
    assert (
        piped(
            url,
            "purchase",
            "fail",
            purchase,
            "-n",
            "acme",
            "--reason",
            "declined",
            "--external-reference",
            "psp-9",
            "-k",
            "fail-key",
        )
        == failed
    )
    for late in (("settle", purchase), ("refund", purchase), ("fail", purchase, "--reason", "x")):
        problem = refused(url, 5, *late, "-n", "acme")
        assert problem["code"] == "payment_already_failed"
    assert history(url, purchase) == ["Initiated", "PaymentFailed"]


def test_refunds_take_back_part_then_the_rest_and_say_what_remains(purchases: Purchases) -> None:
    url, purchase = purchases.url, purchases.settled
    unsettled = refused(url, 5, "refund", purchases.pending, "-n", "acme")
    assert unsettled["code"] == "payment_not_settled"
    too_much = refused(url, 5, "refund", purchase, "-n", "acme", "--amount", "80.13")
    assert (too_much["code"], too_much["remaining"]) == ("refund_exceeds_remaining", "80.12")
    zero = refused(url, 3, "refund", purchase, "-n", "acme", "--amount", "0")
    assert [error["code"] for error in zero["errors"]] == ["amount_not_positive"]

    partial = ("purchase", "refund", purchase, "-n", "acme", "--amount", "30", "-k", "r-1")
    first = piped(url, *partial, "--reason", "asked")
    assert piped(url, *partial, "--reason", "asked") == first
    assert (first["refunded"], first["remaining"]) == ("30.00", "50.12")
    assert first["realizations"]["refunds"]["cash_amount"] == "15.00"
    rest = piped(url, "purchase", "refund", purchase, "-n", "acme")
    assert (rest["refunded"], rest["remaining"], rest["status"]) == ("80.12", "0.00", "final")
    assert rest["realizations"]["refunds"]["count"] == 2
    assert rest["realizations"]["refunds"]["cash_amount"] == "40.06"
    nothing = refused(url, 5, "refund", purchase, "-n", "acme")
    assert nothing["code"] == "nothing_to_refund"
    assert history(url, purchase) == [
        "Initiated",
        "PaymentAuthorized",
        "PaymentSettled",
        "PaymentRefunded",
        "PaymentRefunded",
    ]
    assert history(url, purchases.pending) == ["Initiated"]


def test_on_a_terminal_the_payment_commands_print_the_purchase_as_a_table(
    purchases: Purchases,
) -> None:
    env = {**os.environ, "CREDITLEDGER_DATABASE_URL": purchases.url}
    invoiced, pending, settled = purchases.invoiced, purchases.pending, purchases.settled
    for args, whole_values in [
        (
            (
                "purchase",
                "invoice",
                invoiced,
                "-n",
                "acme",
                "--invoice-id",
                "inv-2026-0042",
                "--line-id",
                "line-1",
            ),
            [invoiced, "inv-2026-0042", "line-1", "active.payment.pending"],
        ),
        (
            ("purchase", "fail", pending, "-n", "acme", "--reason", "card declined"),
            [pending, "final.payment_failed", "card declined", "revoked 70.12", "owed 30.00"],
        ),
        (
            ("purchase", "refund", settled, "-n", "acme", "--amount", "10"),
            [settled, "1: 10.00 credits, 5.00 USD returned", "70.12"],
        ),
        (("show", settled, "-n", "acme"), [settled, "refunds", "10.00"]),
    ]:
        code, shown = on_terminal(*args, env=env)

        assert code == 0, shown
        assert "┃" in shown or "│" in shown, shown  # a table, not JSON
        assert not shown.lstrip().startswith("{"), shown
        for value in whole_values:
            assert value in shown, f"{value!r} cut short by {args}:\n{shown}"
        assert "…" not in shown, shown
