"""``/v1/namespaces/{namespace}/reports/...``: receivables and settled revenue."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Security

from creditledger.application.input_types import AwareTimestamp
from creditledger.application.readmodels import Receivables, SettledRevenue
from creditledger.infrastructure.http.deps import ReadModelsDep, bearer_scheme
from creditledger.infrastructure.http.gate import LedgerRoute
from creditledger.infrastructure.http.openapi import problem_responses
from creditledger.infrastructure.http.routes.purchases import NamespacePath

router = APIRouter(
    prefix="/v1/namespaces/{namespace}/reports",
    tags=["reports"],
    route_class=LedgerRoute,
    dependencies=[Security(bearer_scheme)],
)

_ERRORS = ("unauthenticated", "not_found", "validation_failed", "projection_behind")


@router.get(
    "/receivables",
    response_model=Receivables,
    operation_id="getReceivables",
    summary="What customers owe: receivables open at a time, oldest first",
    description="Every payment-backed purchase granted at or before as_of (an invoice "
    "purchase's: when its invoice was created) and not settled by then, with its stage at "
    "as_of (open: payment not authorized; authorized; failed: the payment failed and the credit "
    "consumed before the failure is still owed), owed (the payment, or after a failure the "
    "money for the consumed credit), and its age in whole seconds. A failure with nothing "
    "consumed owes nothing: the receivable closes. Promotional credit is never owed.",
    responses=problem_responses(*_ERRORS),
)
def receivables(
    *,
    namespace: NamespacePath,
    read_models: ReadModelsDep,
    as_of: Annotated[
        AwareTimestamp | None,
        Query(description="The moment, inclusive (RFC 3339 with an offset); absent: now."),
    ] = None,
) -> Receivables:
    return read_models.receivables(namespace, as_of)


@router.get(
    "/settled-revenue",
    response_model=SettledRevenue,
    operation_id="getSettledRevenue",
    summary="Payments settled and refunded per UTC day and currency",
    description="For each UTC day from `from` to `to` (both inclusive) and currency with a "
    "settlement or a refund: the amount paid (credit amount x cost basis, rounded to the "
    "currency), the credits settled and the number of settlements; the money refunded that "
    "day (of payments settled that day or earlier) and the number of refunds; and net (amount "
    "- refunded). A refund is booked on its own day, so a past day's report never changes. "
    "Days with neither are omitted.",
    responses=problem_responses(*_ERRORS),
)
def settled_revenue(
    *,
    namespace: NamespacePath,
    read_models: ReadModelsDep,
    from_: Annotated[
        date, Query(alias="from", description="First UTC day (YYYY-MM-DD), inclusive.")
    ],
    to: Annotated[date, Query(description="Last UTC day (YYYY-MM-DD), inclusive.")],
    currency: Annotated[
        str | None,
        Query(description="Only this ISO 4217 currency.", pattern="^[A-Z]{3}$", examples=["USD"]),
    ] = None,
) -> SettledRevenue:
    return read_models.settled_revenue(namespace, from_, to, currency)
