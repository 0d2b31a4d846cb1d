"""``creditledger purchase invoice|fail|refund ID``: how a payment turns out, from the shell.

The same commands as ``POST .../invoice``, ``.../fail`` and ``.../refund``, with the options of
``purchase void``: an idempotency key, ``--if-version``, and the purchase as JSON into a pipe (or
with ``--json``), as a table on a terminal. Refusals print their problem on stderr and exit 5
(``refund_exceeds_remaining`` with its ``remaining``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from creditledger.application.commands import CreateInvoice, FailPayment, RefundPayment
from creditledger.infrastructure.cli.invocation import ledger_for
from creditledger.infrastructure.cli.purchase import IfVersion, Key, Namespace, Reference
from creditledger.infrastructure.cli.purchase_tables import Json, PurchaseId, print_purchase


def invoice(
    ctx: typer.Context,
    purchase_id: PurchaseId,
    *,
    namespace: Namespace,
    invoice_id: Annotated[str, typer.Option("--invoice-id", help="Your invoice's id.")],
    line_id: Annotated[
        str, typer.Option("--line-id", help="The invoice line that bills the purchase.")
    ],
    idempotency_key: Key = None,
    if_version: IfVersion = None,
    as_json: Json = False,
) -> None:
    """Record the invoice of an invoice purchase: its credits are granted now (authorize when
    the invoice is approved, settle when it is paid)."""
    # Built inside: a refused shape is a problem on stderr with exit code 3, as a refusal.
    with ledger_for(ctx) as ledger:
        command = CreateInvoice(
            namespace=namespace,
            purchase_id=purchase_id,
            invoice_id=invoice_id,
            line_id=line_id,
            idempotency_key=idempotency_key,
            expected_version=if_version,
        )
        view = ledger.create_invoice(command).purchase
    print_purchase(view, as_json=as_json)


def fail(
    ctx: typer.Context,
    purchase_id: PurchaseId,
    *,
    namespace: Namespace,
    reason: Annotated[str, typer.Option("--reason", help="Why the payment failed.")],
    external_reference: Reference = None,
    idempotency_key: Key = None,
    if_version: IfVersion = None,
    as_json: Json = False,
) -> None:
    """Record that the payment failed (before settlement): what remains of the credit is taken
    back, what was consumed stays owed."""
    with ledger_for(ctx) as ledger:
        command = FailPayment(
            namespace=namespace,
            purchase_id=purchase_id,
            reason=reason,
            external_reference=external_reference,
            idempotency_key=idempotency_key,
            expected_version=if_version,
        )
        view = ledger.fail_payment(command).purchase
    print_purchase(view, as_json=as_json)


def refund(
    ctx: typer.Context,
    purchase_id: PurchaseId,
    *,
    namespace: Namespace,
    amount: Annotated[
        str | None,
        typer.Option(
            "--amount", help="Credits to refund, e.g. 10.00 (default: everything that remains)."
        ),
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, kept with it.")] = None,
    external_reference: Reference = None,
    idempotency_key: Key = None,
    if_version: IfVersion = None,
    as_json: Json = False,
) -> None:
    """Give back part or all of a settled payment: the credits are taken back and the money
    they were paid for is returned (see realizations.refunds)."""
    with ledger_for(ctx) as ledger:
        command = RefundPayment(
            namespace=namespace,
            purchase_id=purchase_id,
            amount=amount,
            reason=reason,
            external_reference=external_reference,
            idempotency_key=idempotency_key,
            expected_version=if_version,
        )
        view = ledger.refund(command).purchase
    print_purchase(view, as_json=as_json)
