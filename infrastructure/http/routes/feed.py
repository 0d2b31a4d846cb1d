"""``/v1/namespaces/{namespace}/events``: the namespace's events in commit order, for consumers.

PHASE 2: ``GET .../events?after=<position>&limit=`` (items with their gap-free ``position``, and
``next_after``) is added to this router with the read models and the in-process projector.
"""

from __future__ import annotations

from fastapi import APIRouter, Security

from infrastructure.http.deps import bearer_scheme
from infrastructure.http.gate import LedgerRoute

router = APIRouter(
    prefix="/v1/namespaces/{namespace}/events",
    tags=["events"],
    route_class=LedgerRoute,
    dependencies=[Security(bearer_scheme)],
)
