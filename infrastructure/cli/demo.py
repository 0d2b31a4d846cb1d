"""``creditledger demo``: one full lifecycle on the configured store, its history as a table."""

from __future__ import annotations

from uuid import uuid4

import typer
from rich.console import Console
from rich.table import Table

from creditledger.application.commands import (
    AuthorizePayment,
    InitiatePurchase,
    SettlementInput,
    SettlePayment,
)
from creditledger.infrastructure.cli.invocation import ledger_for


def demo(ctx: typer.Context) -> None:
    """Initiate, authorize and settle one external purchase, then print its history."""
    console = Console()
    with ledger_for(ctx) as ledger:
        purchase = ledger.initiate(
            InitiatePurchase(
                namespace="demo",
                customer_id="cust-1",
                currency="USD",
                credit_amount="100.123",
                cost_basis="0.5",
                settlement=SettlementInput(type="external"),
                feature_filters=["api_calls"],
                name="Top-up",
                idempotency_key=f"demo-{uuid4()}",
            )
        ).purchase
        console.print(f"initiated [bold]{purchase.id}[/]: {purchase.status}")
        authorized = ledger.authorize(
            AuthorizePayment(namespace="demo", purchase_id=purchase.id, external_reference="psp-1")
        ).purchase
        console.print(f"authorized: {authorized.status}")
        settled = ledger.settle(
            SettlePayment(namespace="demo", purchase_id=purchase.id, external_reference="psp-1")
        ).purchase
        console.print(
            f"settled: {settled.status}; credits {settled.credit_amount} {settled.currency}, "
            f"paid {settled.payment_amount} {settled.currency}"
        )
        table = Table(title=f"History of purchase {purchase.id}")
        for column in ("version", "type", "recorded_at", "status_after"):
            table.add_column(column)
        for entry in ledger.purchase_history("demo", purchase.id):
            table.add_row(
                str(entry.version), entry.type, entry.recorded_at.isoformat(), entry.status_after
            )
        console.print(table)
