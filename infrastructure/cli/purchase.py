"""``creditledger purchase ...``: initiate, authorize, settle, show and history, printing JSON
(``invoice``, ``fail``, ``refund`` and ``void`` print tables on a terminal: payment_outcomes.py,
purchase_tables.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import typer

from creditledger.application.commands import (
    AuthorizePayment,
    InitiatePurchase,
    SettlementInput,
    SettlePayment,
)
from creditledger.infrastructure.cli.imports import import_file
from creditledger.infrastructure.cli.invocation import EXIT_CODES_HELP, ledger_for, print_json

purchase_app = typer.Typer(
    help="Initiate, invoice, authorize, settle, fail, refund, void and inspect credit purchases. "
    f"{EXIT_CODES_HELP}",
    no_args_is_help=True,
)

Namespace = Annotated[str, typer.Option("--namespace", "-n", help="Tenant namespace.")]
Key = Annotated[
    str | None, typer.Option("--idempotency-key", "-k", help="Retry-safe key for this command.")
]
Reference = Annotated[
    str | None, typer.Option("--external-reference", help="The payment provider's reference.")
]
IfVersion = Annotated[
    int | None, typer.Option("--if-version", help="Apply only if the purchase is at this version.")
]


def _metadata(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator:
            msg = f"metadata must be KEY=VALUE, got {pair!r}"
            raise typer.BadParameter(msg)
        labels[key] = value
    return labels


@purchase_app.command("initiate")
def initiate(
    ctx: typer.Context,
    *,
    namespace: Namespace,
    customer: Annotated[str, typer.Option("--customer", "-c", help="Customer id.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code of the credits, e.g. USD.")],
    credit_amount: Annotated[str, typer.Option(help="Credits to grant, e.g. 100.12.")],
    settlement: Annotated[
        str, typer.Option(help="external, invoice (granted by `purchase invoice`) or promotional.")
    ] = "external",
    cost_basis: Annotated[
        str | None, typer.Option(help="Price per credit (external and invoice purchases).")
    ] = None,
    initial_status: Annotated[
        str | None, typer.Option(help="External only: created, authorized or settled.")
    ] = None,
    priority: Annotated[int | None, typer.Option(help="Consumption priority, 1..32767.")] = None,
    expires_at: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%dT%H:%M:%S%z"], help="Expiry, e.g. 2027-01-01T00:00:00Z."),
    ] = None,
    feature: Annotated[
        list[str] | None, typer.Option("--feature", help="Feature key filter (repeatable).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    metadata: Annotated[
        list[str] | None, typer.Option("--metadata", help="KEY=VALUE label (repeatable).")
    ] = None,
    idempotency_key: Key = None,
) -> None:
    """Grant credits to a customer and print the purchase."""
    with ledger_for(ctx) as ledger:
        command = InitiatePurchase(
            namespace=namespace,
            customer_id=customer,
            currency=currency,
            credit_amount=credit_amount,
            cost_basis=cost_basis,
            settlement=SettlementInput(type=settlement, initial_status=initial_status),
            priority=priority,
            expires_at=expires_at,
            feature_filters=feature or [],
            name=name,
            metadata=_metadata(metadata or []),
            idempotency_key=idempotency_key,
        )
        print_json(ledger.initiate(command).purchase)


def payment(
    ctx: typer.Context,
    purchase_id: Annotated[UUID, typer.Argument(help="Purchase id.")],
    *,
    namespace: Namespace,
    external_reference: Reference = None,
    idempotency_key: Key = None,
    if_version: IfVersion = None,
) -> None:
    # One function serves `authorize` and `settle`: the command's name says which.
    kind = AuthorizePayment if ctx.info_name == "authorize" else SettlePayment
    command = kind(
        namespace=namespace,
        purchase_id=purchase_id,
        external_reference=external_reference,
        idempotency_key=idempotency_key,
        expected_version=if_version,
    )
    with ledger_for(ctx) as ledger:
        if isinstance(command, AuthorizePayment):
            print_json(ledger.authorize(command).purchase)
        else:
            print_json(ledger.settle(command).purchase)


purchase_app.command("authorize", help="Record that the external payment was authorized.")(payment)
purchase_app.command(
    "settle", help="Record that the external payment settled (authorizing it first if needed)."
)(payment)


@purchase_app.command("show")
def show(
    ctx: typer.Context,
    purchase_id: Annotated[UUID, typer.Argument(help="Purchase id.")],
    namespace: Namespace,
    version: Annotated[int | None, typer.Option(help="State at this version.")] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"],
            help="State as of this time, e.g. 2026-01-01T12:00:00Z.",
        ),
    ] = None,
) -> None:
    """Print a purchase: now, at a version, or as of a time."""
    with ledger_for(ctx) as ledger:
        print_json(ledger.get_purchase(namespace, purchase_id, version=version, as_of=as_of))


@purchase_app.command("history")
def history(
    ctx: typer.Context,
    purchase_id: Annotated[UUID, typer.Argument(help="Purchase id.")],
    namespace: Namespace,
) -> None:
    """Print every event of a purchase, oldest first, with the status after each."""
    with ledger_for(ctx) as ledger:
        print_json(ledger.purchase_history(namespace, purchase_id))


purchase_app.command("import")(import_file)
