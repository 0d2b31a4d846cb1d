"""``/v1/namespaces/{namespace}/customers/{customer_id}/...``: spending credit, and what is left.

Consumptions, the spendable grants and the credit history are read from the customer's credit
wallet in the event log itself (one aggregate per customer and currency), not from a read model:
they are exact the moment a command is answered, and need no ``min_position``.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, Security

from creditledger.application.credit_views import ConsumptionView, CreditsView
from creditledger.application.errors import StoreUnavailableError
from creditledger.application.input_types import AwareTimestamp, StorableText
from creditledger.application.ledger import ConsumptionOutcome
from creditledger.application.readmodels import DEFAULT_LIMIT, MAX_LIMIT
from creditledger.infrastructure.http.deps import (
    IdempotencyKeyHeader,
    LedgerDep,
    MetricsDep,
    bearer_scheme,
)
from creditledger.infrastructure.http.gate import LedgerRoute
from creditledger.infrastructure.http.openapi import consumption_response, problem_responses
from creditledger.infrastructure.http.routes.purchases import NamespacePath
from creditledger.infrastructure.http.schemas import ConsumptionCreate, CreditHistoryPage

MAX_SEQUENCE = 2**63 - 1
"""Sequence numbers are a wallet's versions; a larger one names nothing and is refused."""

router = APIRouter(
    prefix="/v1/namespaces/{namespace}/customers",
    tags=["credits"],
    route_class=LedgerRoute,
    dependencies=[Security(bearer_scheme)],
)

CustomerPath = Annotated[StorableText, Path(description="The customer's id.", examples=["cust-1"])]
CurrencyQuery = Annotated[
    str,
    Query(
        description="ISO 4217 code (required: credit is kept per currency and never mixed; "
        "invalid_currency otherwise).",
        json_schema_extra={"pattern": "^[A-Z]{3}$"},
        examples=["USD"],
    ),
]
AsOfQuery = Annotated[
    AwareTimestamp | None,
    Query(
        description="As it stood at this time, inclusive (RFC 3339 with an offset); absent: now.",
    ),
]

_READ_ERRORS = ("unauthenticated", "not_found", "validation_failed", "store_unavailable")
_CONSUME_ERRORS = (
    "unauthenticated",
    "forbidden",
    "not_found",
    "request_too_large",
    "unsupported_media_type",
    "validation_failed",
    "insufficient_credit",
    "idempotency_key_reused",
    "concurrent_modification",
    "store_unavailable",
)


@router.post(
    "/{customer_id}/consumptions",
    status_code=201,
    response_model=ConsumptionView,
    operation_id="consumeCredits",
    summary="Spend a customer's credit",
    description="Draws the amount from the customer's grants in this currency that are "
    "spendable now (granted, not voided, not expired, feature filters matching), in burn-down "
    "order: priority ascending, then expires_at ascending (no expiry last), then grant time, "
    "then purchase id. Expiries due by now are recorded first. Credit is spendable from the "
    "grant on, before payment. If the spendable total is short: 409 insufficient_credit, with "
    "what is available in the problem's available member; nothing is written.",
    responses={
        201: consumption_response("Created: the consumption and how it was drawn."),
        200: {
            **consumption_response(
                "A replay: the same Idempotency-Key and body as an earlier consumption, "
                "answered with that consumption (Idempotent-Replayed: true); nothing new was "
                "written."
            ),
            "model": ConsumptionView,
        },
        **problem_responses(*_CONSUME_ERRORS),
    },
)
def consume(
    *,
    namespace: NamespacePath,
    customer_id: CustomerPath,
    body: Annotated[ConsumptionCreate, Body()],
    ledger: LedgerDep,
    metrics: MetricsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    command = body.command(namespace, customer_id, idempotency_key)
    outcome = metrics.run_command("consume", lambda: ledger.consume(command), _outcome)
    headers: dict[str, str] = {}
    position = outcome.position
    if position is None:
        # A replay wrote nothing: the log's head is at or past the original write.
        with contextlib.suppress(StoreUnavailableError):
            position = ledger.head_position()
    if position is not None:
        headers["X-Position"] = str(position)
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        outcome.consumption.model_dump_json(),
        status_code=200 if outcome.replayed else 201,
        headers=headers,
        media_type="application/json",
    )


def _outcome(outcome: ConsumptionOutcome) -> str:
    return "replayed" if outcome.replayed else "created"


@router.get(
    "/{customer_id}/credits",
    response_model=CreditsView,
    operation_id="getCustomerCredits",
    summary="A customer's spendable grants in one currency, in burn-down order",
    description="Each grant with credit left at that time, in the order consumptions draw from "
    "them, with what remains; balance is their total (whatever their feature filters). An "
    "expiry due by as_of counts whether or not it was recorded yet. A customer without credit "
    "in the currency has no grants and a zero balance.",
    responses=problem_responses(*_READ_ERRORS),
)
def customer_credits(
    *,
    namespace: NamespacePath,
    customer_id: CustomerPath,
    currency: CurrencyQuery,
    ledger: LedgerDep,
    as_of: AsOfQuery = None,
) -> CreditsView:
    return ledger.customer_credits(namespace, customer_id, currency, as_of=as_of)


@router.get(
    "/{customer_id}/credit-history",
    response_model=CreditHistoryPage,
    operation_id="getCustomerCreditHistory",
    summary="A customer's credit history in one currency, oldest first, a page at a time",
    description="Every change to the customer's credit in the currency, in the order it was "
    "recorded: granted, consumed, expired, voided, each with its amount, the balance before and "
    "after it, its sequence number (1, 2, ... per customer and currency), the purchase (or, for "
    "a consumption, the consumption and its allocations) it concerns, when it takes effect "
    "(effective_at: an expiry at its grant's expires_at) and when it was recorded. as_of keeps "
    "the entries recorded by then.",
    responses=problem_responses(*_READ_ERRORS),
)
def customer_credit_history(
    *,
    namespace: NamespacePath,
    customer_id: CustomerPath,
    currency: CurrencyQuery,
    ledger: LedgerDep,
    after: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_SEQUENCE,
            description="Entries after this sequence number (0: from the start).",
        ),
    ] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Most items, 1 to {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT,
    as_of: AsOfQuery = None,
) -> CreditHistoryPage:
    # One more than asked says whether a next page exists without a second read.
    entries = ledger.credit_history(
        namespace, customer_id, currency, after=after, limit=limit + 1, as_of=as_of
    )
    page = entries[:limit]
    more = len(entries) > limit
    return CreditHistoryPage(items=page, next_after=page[-1].sequence if more else None)
