"""The root ``creditledger`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from creditledger.infrastructure.cli.audit import audit_app
from creditledger.infrastructure.cli.credits import consume_credits, credit_history, credits
from creditledger.infrastructure.cli.demo import demo
from creditledger.infrastructure.cli.expiry import expiry_app
from creditledger.infrastructure.cli.invocation import EXIT_CODES_HELP, state
from creditledger.infrastructure.cli.payment_outcomes import fail, invoice, refund
from creditledger.infrastructure.cli.projections import projections_app
from creditledger.infrastructure.cli.purchase import purchase_app
from creditledger.infrastructure.cli.purchase_tables import history, show, void
from creditledger.infrastructure.cli.readviews import balances, list_purchases
from creditledger.infrastructure.cli.relay import consume, relay
from creditledger.infrastructure.cli.serve import serve

app = typer.Typer(
    name="creditledger",
    help=f"Event-sourced ledger for prepaid credit purchases. {EXIT_CODES_HELP}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="CREDITLEDGER_DATABASE_URL",
            help="memory://, sqlite:///path or postgresql://user@host/db "
            "(default sqlite:///./var/creditledger.sqlite).",
        ),
    ] = None,
) -> None:
    state(ctx).database_url = database_url


purchase_app.command("list")(list_purchases)
purchase_app.command("void")(void)
purchase_app.command("invoice")(invoice)
purchase_app.command("fail")(fail)
purchase_app.command("refund")(refund)
app.add_typer(purchase_app, name="purchase")
app.add_typer(projections_app, name="projections")
app.command("demo")(demo)
app.command("serve")(serve)
app.add_typer(audit_app, name="audit")
app.add_typer(expiry_app, name="expiry")
app.command("history")(history)
app.command("show")(show)
app.command("relay")(relay)
app.command("consume")(consume)
app.command("balances")(balances)
# `consume` is the stream's example consumer (relay.py); spending credit is `consume-credits`.
app.command("consume-credits")(consume_credits)
app.command("credits")(credits)
app.command("credit-history")(credit_history)


def main() -> None:
    app()
