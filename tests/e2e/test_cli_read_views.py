"""``creditledger purchase list``, ``balances``, ``show`` and ``history`` as their users run them:
JSON into a pipe, a table on a terminal, and no value ever cut short in either.

The store is filled in-process (``populate``: five purchases, one second apart, from START);
only the commands under test run through the installed entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from creditledger.infrastructure.bootstrap import open_ledger
from tests.application.audit_support import Purchases, populate
from tests.clock import START, FixedClock
from tests.e2e.cli_support import ENTRY_POINT, TIMEOUT, on_terminal
from tests.e2e.http_support import HTTP_BACKENDS, store_url_for


@pytest.fixture(params=HTTP_BACKENDS)
def populated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Purchases]]:
    """A SQLite file or a PostgreSQL schema (each its own process' store) with five purchases."""
    with store_url_for(request.param, tmp_path) as url:
        clock = FixedClock()
        with open_ledger(url, clock=clock) as ledger:
            purchases = populate(ledger, clock)
        yield url, purchases


def piped(url: str, *args: str) -> Any:
    """``creditledger ARGS`` with stdout into a pipe: it must succeed and print JSON."""
    result = subprocess.run(
        [str(ENTRY_POINT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "CREDITLEDGER_DATABASE_URL": url},
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_purchase_list_pages_through_a_namespace_in_json_when_piped(
    populated: tuple[str, Purchases],
) -> None:
    url, purchases = populated

    everything = piped(url, "purchase", "list", "-n", "acme")
    first = piped(url, "purchase", "list", "-n", "acme", "--limit", "2")
    rest = piped(url, "purchase", "list", "-n", "acme", "--cursor", first["next_cursor"])
    of_a = piped(url, "purchase", "list", "-n", "acme", "--customer", "cust-a")

    acme = [str(purchases.a.id), str(purchases.c.id), str(purchases.d.id)]
    assert [item["id"] for item in everything["items"]] == acme
    assert everything["next_cursor"] is None
    assert [item["id"] for item in first["items"] + rest["items"]] == acme
    assert [item["id"] for item in of_a["items"]] == [str(purchases.a.id), str(purchases.d.id)]
    assert {item["status"] for item in everything["items"]} == {"final"}


def test_balances_are_printed_now_and_as_of_a_time_in_json_when_piped(
    populated: tuple[str, Purchases],
) -> None:
    url, _ = populated
    before_authorization = (START + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")

    now = piped(url, "balances", "cust-a", "-n", "acme")
    then = piped(url, "balances", "cust-a", "-n", "acme", "--as-of", before_authorization)

    def amounts(found: Any) -> dict[str, str]:
        return {line["account"]: line["balance"] for line in found["balances"]}

    zero = {line["account"]: "0.00" for line in now["balances"]}
    # cust-a: 100.12 credits at 0.5 (50.06 USD) authorized then settled, 30 at 0.5 (15.00 USD)
    # settled at once. Credits and cash each balance on their own side.
    assert amounts(now) == {
        **zero,
        "customer_fbo": "130.12",
        "brokerage_credits": "-130.12",
        "brokerage_cash": "65.06",
        "wash": "-65.06",
    }
    assert amounts(then) == {
        **zero,
        "customer_fbo": "100.12",
        "customer_receivable_open": "-100.12",
    }
    assert {line["account"]: line["unit"] for line in now["balances"]} == {
        "customer_fbo": "credits",
        "customer_receivable_open": "credits",
        "customer_receivable_authorized": "cash",
        "wash": "cash",
        "customer_accrued": "credits",
        "breakage": "credits",
        "brokerage_credits": "credits",
        "brokerage_cash": "cash",
    }
    assert piped(url, "balances", "nobody", "-n", "acme")["balances"] == []


def test_on_a_terminal_every_command_prints_a_table_with_whole_values(
    populated: tuple[str, Purchases],
) -> None:
    url, purchases = populated
    env = {**os.environ, "CREDITLEDGER_DATABASE_URL": url}
    purchase = str(purchases.a.id)

    for args, whole_values in [
        (("purchase", "list", "-n", "acme"), [purchase, str(purchases.d.id), "final"]),
        (
            ("show", purchase, "-n", "acme", "--version", "2"),
            [purchase, "active.payment.authorized"],
        ),
        (
            ("history", purchase, "-n", "acme"),
            [purchase, "PaymentAuthorized", "active.payment.authorized"],
        ),
        (
            ("balances", "cust-a", "-n", "acme"),
            ["customer_receivable_authorized", "130.12", "brokerage_cash", "cash", "credits"],
        ),
    ]:
        code, shown = on_terminal(*args, env=env)

        assert code == 0, shown
        assert "┃" in shown or "│" in shown, shown  # a table, not JSON
        assert not shown.lstrip().startswith("{"), shown
        for value in whole_values:
            assert value in shown, f"{value!r} cut short by {args}:\n{shown}"
        assert "…" not in shown, shown


def test_show_and_history_print_json_when_piped(populated: tuple[str, Purchases]) -> None:
    url, purchases = populated
    purchase = str(purchases.a.id)

    shown = piped(url, "show", purchase, "-n", "acme", "--version", "2")
    history = piped(url, "history", purchase, "-n", "acme")

    assert (shown["id"], shown["status"]) == (purchase, "active.payment.authorized")
    assert [entry["type"] for entry in history] == [
        "Initiated",
        "PaymentAuthorized",
        "PaymentSettled",
    ]
