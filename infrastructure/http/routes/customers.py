"""``/v1/namespaces/{namespace}/customers/{customer_id}/...``: per-customer ledger reads.

PHASE 2: ``GET .../customers/{customer_id}/balances?as_of=`` reads the balances projection; its
route is added to this router once the read models land. The router is already mounted, gated
(token, tenant) like every namespaced route.
"""

from __future__ import annotations

from fastapi import APIRouter, Security

from infrastructure.http.deps import bearer_scheme
from infrastructure.http.gate import LedgerRoute

router = APIRouter(
    prefix="/v1/namespaces/{namespace}/customers",
    tags=["ledger"],
    route_class=LedgerRoute,
    dependencies=[Security(bearer_scheme)],
)
