"""``/v1/namespaces/{namespace}/events``: the namespace's events in commit order, for consumers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Security

from creditledger.application.readmodels import DEFAULT_LIMIT, MAX_LIMIT
from creditledger.infrastructure.http.deps import FeedDep, bearer_scheme
from creditledger.infrastructure.http.event_feed import SCAN_FACTOR, FeedPage
from creditledger.infrastructure.http.gate import LedgerRoute
from creditledger.infrastructure.http.openapi import problem_responses
from creditledger.infrastructure.http.routes.purchases import NamespacePath

MAX_POSITION = 2**63 - 1
"""Positions are 64-bit (PostgreSQL bigserial); a larger one names nothing and is refused."""

router = APIRouter(
    prefix="/v1/namespaces/{namespace}/events",
    tags=["events"],
    route_class=LedgerRoute,
    dependencies=[Security(bearer_scheme)],
)


@router.get(
    "",
    response_model=FeedPage,
    operation_id="getEventFeed",
    summary="The namespace's events in commit order, after a position",
    description="Read straight from the event log (no projection lag). Positions are global "
    "and gap-free in commit order, so a consumer that resumes from the last position it saw "
    f"gets every event exactly once. One page scans at most {SCAN_FACTOR} x limit log entries; "
    "when it stops early (other namespaces' events) next_after is the last position scanned, "
    "possibly with fewer items than limit, even none. next_after is null once the end of the "
    "log is reached.",
    responses=problem_responses("unauthenticated", "not_found", "validation_failed"),
)
def event_feed(
    *,
    namespace: NamespacePath,
    feed: FeedDep,
    after: Annotated[
        int,
        Query(ge=0, le=MAX_POSITION, description="Events after this position (0: from the start)."),
    ] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Most items, 1 to {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT,
) -> FeedPage:
    return feed.page(namespace, after=after, limit=limit)
