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
    description="Every payment-backed purchase granted at or before as_of and not settled by "
    "then, with its stage at as_of (open: payment not authorized; authorized) and its age in "
    "whole seconds. Promotional credit is never owed.",
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
    summary="Payments settled per UTC day and currency",
    description="For each UTC day from `from` to `to` (both inclusive) and currency with a "
    "settlement: the amount paid (credit amount x cost basis, rounded to the currency), the "
    "credits settled and the number of settlements. Days without settlements are omitted.",
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
