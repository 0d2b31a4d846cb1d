"""``/v1/namespaces/{namespace}/reports/...``: receivables and settled revenue.

PHASE 2: ``GET .../reports/receivables`` and ``GET .../reports/settled-revenue?from=&to=&currency=``
read the report projections; their routes are added to this router once the read models land.
"""

from __future__ import annotations

from fastapi import APIRouter, Security

from infrastructure.http.deps import bearer_scheme
from infrastructure.http.gate import LedgerRoute

router = APIRouter(
    prefix="/v1/namespaces/{namespace}/reports",
    tags=["reports"],
    route_class=LedgerRoute,
    dependencies=[Security(bearer_scheme)],
)
