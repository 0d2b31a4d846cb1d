"""``creditledger history ID``, ``creditledger show ID`` and ``creditledger purchase void ID``: a
purchase for people or for scripts.

The same queries as ``purchase history`` and ``purchase show``: the same JSON when stdout is not
a terminal (or with ``--json``), a table on a terminal. ``purchase void`` answers the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table

from creditledger.application.commands import VoidPurchase
from creditledger.application.purchase_view import (
    HistoryEntry,
    LedgerReferenceView,
    PurchaseView,
)
from creditledger.infrastructure.cli.invocation import ledger_for, print_json
from creditledger.infrastructure.cli.output import field_table, json_wanted, print_table, table
from creditledger.infrastructure.cli.purchase import IfVersion, Key, Namespace

Json = Annotated[
    bool, typer.Option("--json", help="Print JSON on a terminal too (a pipe always gets JSON).")
]
PurchaseId = Annotated[UUID, typer.Argument(help="Purchase id.")]
TIME_FORMATS = ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"]
AsOf = Annotated[
    datetime | None,
    typer.Option(
        "--as-of", formats=TIME_FORMATS, help="As of this time, e.g. 2026-01-01T12:00:00Z."
    ),
]


def history(
    ctx: typer.Context, purchase_id: PurchaseId, namespace: Namespace, as_json: Json = False
) -> None:
    """Every event of a purchase, oldest first, with the status it left the purchase in."""
    with ledger_for(ctx) as ledger:
        entries = ledger.purchase_history(namespace, purchase_id)
    if json_wanted(as_json):
        print_json(entries)
        return
    print_table(_history_table(purchase_id, entries))


def show(
    ctx: typer.Context,
    purchase_id: PurchaseId,
    *,
    namespace: Namespace,
    as_of: AsOf = None,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="State at this version.")
    ] = None,
    as_json: Json = False,
) -> None:
    """A purchase now, as of a time (--as-of T), or at a version (--version N)."""
    if as_of is not None and version is not None:
        msg = "give --as-of or --version, not both"
        raise typer.BadParameter(msg)
    with ledger_for(ctx) as ledger:
        view = ledger.get_purchase(namespace, purchase_id, version=version, as_of=as_of)
    print_purchase(view, as_json=as_json)


def void(
    ctx: typer.Context,
    purchase_id: PurchaseId,
    *,
    namespace: Namespace,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, kept with the void.")] = None,
    idempotency_key: Key = None,
    if_version: IfVersion = None,
    as_json: Json = False,
) -> None:
    """Forfeit what remains of a purchase's credit (what was consumed stays consumed; the payment
    is untouched) and print the purchase."""
    with ledger_for(ctx) as ledger:
        command = VoidPurchase(
            namespace=namespace,
            purchase_id=purchase_id,
            reason=reason,
            idempotency_key=idempotency_key,
            expected_version=if_version,
        )
        view = ledger.void(command).purchase
    print_purchase(view, as_json=as_json)


def print_purchase(view: PurchaseView, *, as_json: bool) -> None:
    """The purchase as JSON into a pipe (or with ``--json``), as a table on a terminal."""
    if json_wanted(as_json):
        print_json(view)
        return
    print_table(_purchase_table(view))


def _history_table(purchase_id: UUID, entries: list[HistoryEntry]) -> Table:
    found = table(
        f"History of purchase {purchase_id}", "version", "type", "recorded_at", "status_after"
    )
    for entry in entries:
        found.add_row(
            str(entry.version), entry.type, entry.recorded_at.isoformat(), entry.status_after
        )
    return found


def _purchase_table(view: PurchaseView) -> Table:
    realizations = view.realizations
    grant = realizations.credit_grant
    payment = realizations.external_payment or realizations.invoice_payment
    granted = (
        "not yet (waits for its invoice)"
        if grant is None
        else f"{grant.transaction_group_id} at {grant.granted_at.isoformat()}"
    )
    rows = [
        ("namespace", view.namespace),
        ("customer", view.customer_id),
        ("status", f"{view.status} ({view.meta_status})"),
        ("credits", f"{view.credit_amount} {view.currency}"),
        ("cost basis", "-" if view.cost_basis is None else str(view.cost_basis)),
        ("settlement", view.settlement.type.value),
        ("credit grant", granted),
    ]
    invoice = realizations.invoice
    if invoice is not None:
        rows.append(
            (
                "invoice",
                f"{invoice.invoice_id} line {invoice.line_id} at {invoice.created_at.isoformat()}",
            )
        )
    if payment is not None:
        rows.append(("payment", f"{payment.status} {payment.amount} {view.currency}"))
        rows.append(("authorized", _reference(payment.authorized)))
        if payment.settled is not None:
            rows.append(("settled", _reference(payment.settled)))
    failure = realizations.payment_failure
    if failure is not None:
        rows.append(
            (
                "payment failed",
                f"{failure.transaction_group_id} at {failure.at.isoformat()} ({failure.reason}); "
                f"revoked {failure.revoked}, owed {failure.owed} {view.currency}",
            )
        )
    rows.append(("remaining", f"{view.remaining} {view.currency}"))
    rows += [
        (name, str(amount))
        for name, amount in (
            ("consumed", view.consumed),
            ("expired", view.expired),
            ("voided", view.voided),
            ("revoked", view.revoked),
            ("refunded", view.refunded),
        )
        if amount
    ]
    refunds = realizations.refunds
    if refunds is not None:
        rows.append(
            (
                "refunds",
                f"{refunds.count}: {refunds.amount} credits, {refunds.cash_amount} "
                f"{view.currency} returned; last {refunds.last_transaction_group_id} at "
                f"{refunds.last_at.isoformat()}",
            )
        )
    void = realizations.void
    if void is not None:
        why = f" ({void.reason})" if void.reason else ""
        rows.append(("void", f"{void.transaction_group_id} at {void.at.isoformat()}{why}"))
    expiry = realizations.expiry
    if expiry is not None:
        recorded = "" if expiry.recorded else " (not recorded yet)"
        rows.append(("expiry", f"{expiry.amount} at {expiry.at.isoformat()}{recorded}"))
    rows += [("created", view.created_at.isoformat()), ("updated", view.updated_at.isoformat())]
    return field_table(f"Purchase {view.id} (version {view.version})", rows)


def _reference(reference: LedgerReferenceView) -> str:
    return f"{reference.transaction_group_id} at {reference.at.isoformat()}"
