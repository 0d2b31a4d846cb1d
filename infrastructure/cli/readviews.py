"""``creditledger purchase list`` and ``creditledger balances``: the read models, from the shell.

Both read the read models after catching them up with the log in this process, so they answer
with every purchase written so far even when no server (and so no projector) is running.
JSON when stdout is not a terminal or with ``--json``; a table on a terminal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from creditledger.application.readmodels import DEFAULT_LIMIT, MAX_LIMIT, ReadModels
from creditledger.domain.status import PurchaseStatus
from creditledger.infrastructure.bootstrap import open_read_models
from creditledger.infrastructure.cli.invocation import ledger_for, print_json
from creditledger.infrastructure.cli.output import field_table, json_wanted, print_table, table
from creditledger.infrastructure.cli.purchase import Namespace
from creditledger.infrastructure.cli.purchase_tables import AsOf, Json


@contextmanager
def _caught_up_read_models(ctx: typer.Context) -> Iterator[ReadModels]:
    with ledger_for(ctx) as ledger, open_read_models(ledger, run_projector=False) as views:
        views.runner.catch_up()
        yield views.read_models


def list_purchases(
    ctx: typer.Context,
    *,
    namespace: Namespace,
    customer: Annotated[
        str | None, typer.Option("--customer", "-c", help="Only this customer's purchases.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only purchases in this status: " + ", ".join(PurchaseStatus) + "."),
    ] = None,
    limit: Annotated[
        int, typer.Option(help=f"Purchases per page, 1 to {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, typer.Option(help="The next_cursor a previous page printed.")
    ] = None,
    as_json: Json = False,
) -> None:
    """List purchases, oldest first, a page at a time (from the purchases read model)."""
    with _caught_up_read_models(ctx) as read_models:
        page = read_models.list_purchases(
            namespace, customer_id=customer, status=status, limit=limit, cursor=cursor
        )
    if json_wanted(as_json):
        print_json(page)
        return
    found = table(
        f"Purchases in {namespace} (log position {page.position})",
        "id",
        "customer",
        "credits",
        "settlement",
        "status",
        "created_at",
    )
    for view in page.items:
        found.add_row(
            str(view.id),
            view.customer_id,
            f"{view.credit_amount} {view.currency}",
            view.settlement.type.value,
            view.status,
            view.created_at.isoformat(),
        )
    print_table(found)
    if page.next_cursor is not None:
        typer.echo(f"more: --cursor {page.next_cursor}")


def balances(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer id.")],
    *,
    namespace: Namespace,
    as_of: AsOf = None,
    as_json: Json = False,
) -> None:
    """A customer's ledger balances per currency and account, now or as of a time; each account
    counts credits (face value) or cash (money), never both."""
    with _caught_up_read_models(ctx) as read_models:
        found = read_models.balances(namespace, customer, as_of)
    if json_wanted(as_json):
        print_json(found)
        return
    moment = found.as_of.isoformat() if found.as_of else "now"
    if not found.balances:
        print_table(field_table(f"Balances of {customer} ({moment})", [("balances", "none")]))
        return
    lines = table(
        f"Balances of {customer} in {namespace} ({moment})",
        "currency",
        "account",
        "unit",
        "balance",
    )
    for line in found.balances:
        lines.add_row(line.currency, line.account.value, line.unit.value, str(line.balance))
    print_table(lines)
