"""``/v1/namespaces/{namespace}/customers/{customer_id}/...``: per-customer ledger reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Security

from creditledger.application.input_types import AwareTimestamp, StorableText
from creditledger.infrastructure.http.deps import ReadModelsDep, bearer_scheme
from creditledger.infrastructure.http.gate import LedgerRoute
from creditledger.infrastructure.http.openapi import problem_responses
from creditledger.infrastructure.http.routes.purchases import NamespacePath
from creditledger.infrastructure.http.schemas import BalanceEntry, CustomerBalances

router = APIRouter(
    prefix="/v1/namespaces/{namespace}/customers",
    tags=["ledger"],
    route_class=LedgerRoute,
    dependencies=[Security(bearer_scheme)],
)


@router.get(
    "/{customer_id}/balances",
    response_model=CustomerBalances,
    operation_id="getCustomerBalances",
    summary="A customer's ledger balances, per currency and account, now or as of a time",
    description="From the ledger read model: every account of every currency the customer has "
    "entries in, each with its unit. Credit accounts (customer_fbo, customer_receivable_open, "
    "customer_accrued, breakage, brokerage_credits) count credits at face value; cash accounts "
    "(customer_receivable_authorized, wash, brokerage_cash) count money: authorization "
    "re-denominates the receivable from credits to cash through the two brokerage accounts. "
    "Every transaction group sums to zero in each unit; never add balances of different "
    "units. A customer with no entries has an empty list.",
    responses=problem_responses(
        "unauthenticated", "not_found", "validation_failed", "projection_behind"
    ),
)
def customer_balances(
    *,
    namespace: NamespacePath,
    customer_id: Annotated[
        StorableText, Path(description="The customer's id.", examples=["cust-1"])
    ],
    read_models: ReadModelsDep,
    as_of: Annotated[
        AwareTimestamp | None,
        Query(
            description="Balances as they stood at this time, inclusive (RFC 3339 with an "
            "offset); absent: now."
        ),
    ] = None,
) -> CustomerBalances:
    found = read_models.balances(namespace, customer_id, as_of)
    return CustomerBalances(
        customer_id=found.customer_id,
        as_of=found.as_of,
        position=found.position,
        balances=[
            BalanceEntry(
                currency=line.currency, account=line.account, unit=line.unit, balance=line.balance
            )
            for line in found.balances
        ],
    )
