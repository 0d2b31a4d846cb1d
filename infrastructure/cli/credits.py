"""``creditledger consume-credits``, ``credits`` and ``credit-history``: a customer's credit.

The same commands and queries as the HTTP routes under ``/customers/{customer_id}/``, read from
the customer's credit wallet in the event log (no read model to catch up). JSON when stdout is
not a terminal or with ``--json``; a table on a terminal. Errors are problems on stderr with the
exit codes of every command (``insufficient_credit`` exits 5, with its ``available`` member).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from creditledger.application.commands import ConsumeCredits
from creditledger.application.credit_views import ConsumptionView, CreditEntry, CreditsView
from creditledger.application.readmodels import DEFAULT_LIMIT, MAX_LIMIT
from creditledger.domain.errors import FieldError, ValidationFailedError
from creditledger.infrastructure.cli.invocation import ledger_for, print_json
from creditledger.infrastructure.cli.output import field_table, json_wanted, print_table, table
from creditledger.infrastructure.cli.purchase import Key, Namespace
from creditledger.infrastructure.cli.purchase_tables import AsOf, Json

Customer = Annotated[str, typer.Argument(help="Customer id.")]
Currency = Annotated[
    str, typer.Option("--currency", help="ISO 4217 code: credit is kept per currency.")
]


def consume_credits(
    ctx: typer.Context,
    customer: Customer,
    currency: Annotated[str, typer.Argument(help="ISO 4217 code of the credit, e.g. USD.")],
    amount: Annotated[str, typer.Argument(help="Credits to spend, e.g. 12.5.")],
    *,
    namespace: Namespace,
    feature: Annotated[
        str | None,
        typer.Option(
            "--feature", help="The feature it pays for (only grants that allow it are drawn)."
        ),
    ] = None,
    reference: Annotated[
        str | None, typer.Option("--reference", help="Your usage record's id.")
    ] = None,
    idempotency_key: Key = None,
    as_json: Json = False,
) -> None:
    """Spend a customer's credit from its grants in burn-down order and print the consumption."""
    with ledger_for(ctx) as ledger:
        command = ConsumeCredits(
            namespace=namespace,
            customer_id=customer,
            currency=currency,
            amount=amount,
            feature_key=feature,
            usage_reference=reference,
            idempotency_key=idempotency_key,
        )
        outcome = ledger.consume(command)
    if json_wanted(as_json):
        print_json(outcome.consumption)
        return
    print_table(_consumption_table(outcome.consumption, replayed=outcome.replayed))


def credits(
    ctx: typer.Context,
    customer: Customer,
    *,
    namespace: Namespace,
    currency: Currency,
    as_of: AsOf = None,
    as_json: Json = False,
) -> None:
    """A customer's spendable grants in one currency, in burn-down order, now or as of a time."""
    with ledger_for(ctx) as ledger:
        found = ledger.customer_credits(namespace, customer, currency, as_of=as_of)
    if json_wanted(as_json):
        print_json(found)
        return
    print_table(_credits_table(found))


def credit_history(
    ctx: typer.Context,
    customer: Customer,
    *,
    namespace: Namespace,
    currency: Currency,
    after: Annotated[
        int, typer.Option("--after", min=0, help="Entries after this sequence number.")
    ] = 0,
    limit: Annotated[
        int, typer.Option("--limit", help=f"Entries per page, 1 to {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT,
    as_of: AsOf = None,
    as_json: Json = False,
) -> None:
    """A customer's credit history in one currency, oldest first, a page at a time."""
    with ledger_for(ctx) as ledger:
        if not 1 <= limit <= MAX_LIMIT:
            # As the HTTP API and `purchase list` say it: a problem, exit 3.
            raise ValidationFailedError(
                [FieldError("limit", "limit_out_of_range", f"must be 1 to {MAX_LIMIT}")]
            )
        entries = ledger.credit_history(
            namespace, customer, currency, after=after, limit=limit + 1, as_of=as_of
        )
    page, more = entries[:limit], len(entries) > limit
    next_after = page[-1].sequence if more else None
    if json_wanted(as_json):
        document: dict[str, Any] = {
            "items": [entry.model_dump(mode="json") for entry in page],
            "next_after": next_after,
        }
        print_json(document)
        return
    print_table(_history_table(customer, currency, page))
    if next_after is not None:
        typer.echo(f"more: --after {next_after}")


def _consumption_table(view: ConsumptionView, *, replayed: bool) -> Table:
    rows = [
        ("customer", view.customer_id),
        ("amount", f"{view.amount} {view.currency}"),
        ("feature", view.feature or "-"),
        ("reference", view.reference or "-"),
    ]
    rows += [(f"from {a.purchase_id}", str(a.amount)) for a in view.allocations]
    rows += [
        ("balance after", f"{view.balance_after} {view.currency}"),
        ("consumed at", view.consumed_at.isoformat()),
        ("sequence", str(view.sequence)),
    ]
    suffix = " (replayed: nothing new was written)" if replayed else ""
    return field_table(f"Consumption {view.id}{suffix}", rows)


def _credits_table(found: CreditsView) -> Table:
    title = (
        f"Credits of {found.customer_id} in {found.currency} as of {found.as_of.isoformat()}: "
        f"{found.balance}"
    )
    lines = table(title, "purchase", "remaining", "of", "priority", "expires_at", "features")
    for grant in found.grants:
        lines.add_row(
            str(grant.purchase_id),
            str(grant.remaining),
            str(grant.amount),
            str(grant.priority),
            grant.expires_at.isoformat() if grant.expires_at else "-",
            ", ".join(grant.feature_filters) or "any",
        )
    return lines


def _history_table(customer: str, currency: str, entries: list[CreditEntry]) -> Table:
    lines = table(
        f"Credit history of {customer} in {currency}",
        "#",
        "type",
        "amount",
        "before",
        "after",
        "purchase / consumption",
        "effective_at",
    )
    for entry in entries:
        concerns = entry.purchase_id or entry.consumption_id
        lines.add_row(
            str(entry.sequence),
            entry.type.value,
            str(entry.amount),
            str(entry.balance_before),
            str(entry.balance_after),
            str(concerns),
            entry.effective_at.isoformat(),
        )
    return lines
