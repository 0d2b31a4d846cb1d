"""``creditledger consume-credits``, ``purchase void``, ``credits`` and ``credit-history`` as their
users run them: JSON into a pipe, a table on a terminal, problems on stderr with the exit codes
of every command.

The grants are made in-process on the same store (a SQLite file or a PostgreSQL schema); only
the commands under test run through the installed entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from creditledger.infrastructure.bootstrap import open_ledger
from tests.application.builders import external_purchase
from tests.clock import FixedClock
from tests.e2e.cli_support import ENTRY_POINT, TIMEOUT, on_terminal
from tests.e2e.http_support import HTTP_BACKENDS, store_url_for


@dataclass(frozen=True)
class Credit:
    url: str
    expires_at: datetime
    """A month from now: the commands run on the real clock."""
    expiring: str
    """100.12 USD for cust-1, priority 1, expiring at expires_at."""
    lasting: str
    """100.12 USD for cust-1, priority 2, no expiry."""


@pytest.fixture(params=HTTP_BACKENDS)
def credit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Credit]:
    now = datetime.now(UTC)
    expires_at = (now + timedelta(days=30)).replace(microsecond=0)
    with store_url_for(request.param, tmp_path) as url:
        with open_ledger(url, clock=FixedClock(now)) as ledger:
            expiring = ledger.initiate(
                external_purchase(customer_id="cust-1", priority=1, expires_at=expires_at)
            ).purchase
            lasting = ledger.initiate(external_purchase(customer_id="cust-1", priority=2)).purchase
        yield Credit(url, expires_at, str(expiring.id), str(lasting.id))


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
    """``creditledger ARGS`` must exit ``code`` with a problem on stderr and nothing on stdout."""
    result = run(url, *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    problem: dict[str, Any] = json.loads(result.stderr)
    return problem


def test_consume_credits_draws_in_burn_down_order_and_replays_with_its_key(
    credit: Credit,
) -> None:
    args = ("consume-credits", "cust-1", "USD", "150", "-n", "acme")
    first = piped(credit.url, *args, "--reference", "usage-1", "-k", "use-1")
    again = piped(credit.url, *args, "--reference", "usage-1", "-k", "use-1")
    reused = refused(credit.url, 5, *args, "-k", "use-1")
    short = refused(credit.url, 5, *args)
    invalid = refused(credit.url, 3, "consume-credits", "cust-1", "usd", "1.5x", "-n", "acme")
    history = piped(credit.url, "credit-history", "cust-1", "-n", "acme", "--currency", "USD")

    assert first["allocations"] == [
        {"purchase_id": credit.expiring, "amount": "100.12"},
        {"purchase_id": credit.lasting, "amount": "49.88"},
    ]
    assert (first["amount"], first["balance_after"], first["reference"]) == (
        "150.00",
        "50.24",
        "usage-1",
    )
    assert again == first
    assert reused["code"] == "idempotency_key_reused"
    assert (short["code"], short["available"]) == ("insufficient_credit", "50.24")
    assert [(e["field"], e["code"]) for e in invalid["errors"]] == [
        ("currency", "invalid_currency"),
        ("amount", "not_a_decimal"),
    ]
    assert [entry["type"] for entry in history["items"]] == ["granted", "granted", "consumed"]


def test_a_voided_purchase_keeps_its_payment_and_its_credit_is_never_drawn_again(
    credit: Credit,
) -> None:
    voided = piped(
        credit.url, "purchase", "void", credit.expiring, "-n", "acme", "--reason", "mistake"
    )
    again = refused(credit.url, 5, "purchase", "void", credit.expiring, "-n", "acme")
    stale = refused(
        credit.url, 5, "purchase", "void", credit.lasting, "-n", "acme", "--if-version", "3"
    )
    missing = refused(
        credit.url, 4, "purchase", "void", "7f3c3b34-3d1c-4c55-9d0c-3a8f4f6f5f5f", "-n", "acme"
    )
    consumed = piped(credit.url, "consume-credits", "cust-1", "USD", "1", "-n", "acme")

    assert (voided["voided"], voided["remaining"], voided["status"]) == (
        "100.12",
        "0.00",
        "active.payment.pending",
    )
    assert voided["realizations"]["void"]["reason"] == "mistake"
    assert again["code"] == "nothing_to_void"
    assert stale["code"] == "version_mismatch"
    assert missing["code"] == "credit_purchase_not_found"
    assert consumed["allocations"] == [{"purchase_id": credit.lasting, "amount": "1.00"}]


def test_credits_and_their_history_as_of_a_time_and_a_page_at_a_time(credit: Credit) -> None:
    piped(credit.url, "consume-credits", "cust-1", "USD", "0.12", "-n", "acme")
    base = ("-n", "acme", "--currency", "USD")
    second_before = (credit.expires_at - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    at_expiry = credit.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    before = piped(credit.url, "credits", "cust-1", *base, "--as-of", second_before)
    after = piped(credit.url, "credits", "cust-1", *base, "--as-of", at_expiry)
    first = piped(credit.url, "credit-history", "cust-1", *base, "--limit", "2")
    rest = piped(credit.url, "credit-history", "cust-1", *base, "--after", "2")
    no_currency = run(credit.url, "credits", "cust-1", "-n", "acme")

    assert [(g["purchase_id"], g["remaining"]) for g in before["grants"]] == [
        (credit.expiring, "100.00"),
        (credit.lasting, "100.12"),
    ]
    assert [g["purchase_id"] for g in after["grants"]] == [credit.lasting]
    assert after["balance"] == "100.12"
    assert [e["sequence"] for e in first["items"]] == [1, 2]
    assert first["next_after"] == 2
    assert [(e["sequence"], e["type"], e["balance_after"]) for e in rest["items"]] == [
        (3, "consumed", "200.12")
    ]
    assert rest["next_after"] is None
    assert no_currency.returncode == 2


def test_on_a_terminal_the_credit_commands_print_tables_with_whole_values(
    credit: Credit,
) -> None:
    env = {**os.environ, "CREDITLEDGER_DATABASE_URL": credit.url}
    for args, whole_values in [
        (
            ("consume-credits", "cust-1", "USD", "150", "-n", "acme", "--reference", "usage-1"),
            [credit.expiring, credit.lasting, "49.88", "50.24", "usage-1"],
        ),
        (
            ("credits", "cust-1", "-n", "acme", "--currency", "USD"),
            [credit.lasting, "50.24", "100.12"],
        ),
        (
            ("credit-history", "cust-1", "-n", "acme", "--currency", "USD", "--limit", "2"),
            [credit.expiring, credit.lasting, "granted", "more: --after 2"],
        ),
        (
            ("purchase", "void", credit.lasting, "-n", "acme", "--reason", "mistake"),
            [credit.lasting, "49.88", "50.24", "mistake"],
        ),
    ]:
        code, shown = on_terminal(*args, env=env)

        assert code == 0, shown
        assert "┃" in shown or "│" in shown, shown  # a table, not JSON
        assert not shown.lstrip().startswith("{"), shown
        for value in whole_values:
            assert value in shown, f"{value!r} cut short by {args}:\n{shown}"
        assert "…" not in shown, shown
