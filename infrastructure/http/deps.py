"""What routes depend on, as ``Annotated`` aliases: the ledger, the metrics, request headers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPBearer

from creditledger.application.commands import IDEMPOTENCY_KEY_MAX_LENGTH
from creditledger.application.ledger import CreditLedger
from creditledger.application.readmodels import ReadModels
from creditledger.domain.errors import FieldError, ValidationFailedError
from creditledger.infrastructure.expiry.sweeper import SweepThread
from creditledger.infrastructure.http.auth import TokenRegistry
from creditledger.infrastructure.http.errors import ProblemError
from creditledger.infrastructure.http.event_feed import EventFeed
from creditledger.infrastructure.http.health import StoreProbe
from creditledger.infrastructure.http.metrics import HttpMetrics
from creditledger.infrastructure.projections.service import ReadModelService
from creditledger.infrastructure.relay.relay import RelayThread
from creditledger.infrastructure.relay.watch import StreamWatch
from creditledger.infrastructure.settings import ProjectorMode


@dataclass
class Services:
    """What one app serves with; the ledger arrives at startup when the app opens it itself."""

    tokens: TokenRegistry
    metrics: HttpMetrics
    probe: StoreProbe
    ledger: CreditLedger | None = None
    views: ReadModelService | None = None
    feed: EventFeed | None = None
    projector: ProjectorMode = ProjectorMode.INPROCESS
    max_projection_lag: int = 10_000
    read_your_writes_timeout: float = 5.0
    expiry: SweepThread | None = None
    """The expiry sweep in this process (``CREDITLEDGER_EXPIRY_SWEEP``); /readyz reports its lag."""
    max_expiry_lag: float | None = None
    relay: RelayThread | None = None
    """The in-process relay (``CREDITLEDGER_RELAY_IN_SERVER``), whose lag /readyz reports."""
    stream_watch: StreamWatch | None = None
    """The stream of a relay running elsewhere (``CREDITLEDGER_RELAY_WATCH``), read for /readyz."""
    max_relay_lag: int | None = None


def services_of(request: Request) -> Services:
    services = getattr(request.app.state, "services", None)
    if not isinstance(services, Services):  # pragma: no cover - apps come from create_app
        msg = "the app was not built by create_app"
        raise TypeError(msg)
    return services


# The dependencies are ``async`` only so that FastAPI calls them in the event loop: they do no
# I/O, and a sync dependency would cost a round trip to the threadpool on every request.


async def current_ledger(request: Request) -> CreditLedger:
    ledger = services_of(request).ledger
    if ledger is None:
        raise ProblemError("not_ready", "the ledger is not open (starting or stopping)")
    return ledger


async def current_metrics(request: Request) -> HttpMetrics:
    return services_of(request).metrics


async def current_feed(request: Request) -> EventFeed:
    feed = services_of(request).feed
    if feed is None:
        raise ProblemError("not_ready", "the ledger is not open (starting or stopping)")
    return feed


MinPositionQuery = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**63 - 1,
        description="Read your writes: answer only once the read models reflect this log "
        "position (the X-Position header of a command's response); 503 projection_behind if "
        "they do not within the server's timeout; 422 position_not_recorded beyond the log's "
        "end. The header X-Min-Position does the same.",
        examples=[42],
    ),
]
MinPositionHeader = Annotated[
    int | None,
    Header(
        alias="X-Min-Position",
        ge=0,
        le=2**63 - 1,
        description="Same as the query parameter min_position (the larger of the two applies).",
    ),
]


async def consistent_read_models(
    request: Request,
    min_position: MinPositionQuery = None,
    x_min_position: MinPositionHeader = None,
) -> ReadModels:
    """The read models, once they reflect the position the caller asked for (if any)."""
    services = services_of(request)
    views = services.views
    if views is None:
        raise ProblemError("not_ready", "the read models are not open (starting or stopping)")
    asked = [
        (p, field)
        for p, field in ((min_position, "min_position"), (x_min_position, "X-Min-Position"))
        if p is not None
    ]
    if asked:
        wanted, field = max(asked)
        timeout = services.read_your_writes_timeout
        # Both calls block on the store or the projector's signal: off the event loop.
        head = await anyio.to_thread.run_sync(views.read_models.head)
        if wanted > head:
            # No write has been answered with this position yet: waiting could not end well.
            raise ValidationFailedError(
                [FieldError(field, "position_not_recorded", f"the log ends at position {head}")]
            )
        reached = await anyio.to_thread.run_sync(views.read_models.wait_until, wanted, timeout)
        if not reached:
            raise ProblemError(
                "projection_behind",
                f"the read models did not reach position {wanted} within {timeout:g} seconds",
                headers={"Retry-After": "1"},
            )
    return views.read_models


LedgerDep = Annotated[CreditLedger, Depends(current_ledger)]
MetricsDep = Annotated[HttpMetrics, Depends(current_metrics)]
ReadModelsDep = Annotated[ReadModels, Depends(consistent_read_models)]
FeedDep = Annotated[EventFeed, Depends(current_feed)]

bearer_scheme = HTTPBearer(
    scheme_name="bearerAuth",
    description="A namespace's token (reads and writes that namespace) or the admin token "
    "(reads every namespace). Servers with no token configured run open.",
    auto_error=False,
)
"""Declares the scheme in OpenAPI; the check itself runs in ``gate.LedgerRoute``, before the
body is read, so an unauthenticated caller learns nothing about the body's rules."""

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Makes the request safe to retry: the same key with the same body returns "
        "the first answer (header Idempotent-Replayed: true); with another body, 409 "
        "idempotency_key_reused. Keys are kept forever, per purchase (per namespace for "
        "creates, per customer and currency for consumptions). Printable ASCII without spaces.",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        examples=["order-A-1"],
    ),
]

_ENTITY_TAG = r'(W/)?"[!#-~]*"'
IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='Apply only if the purchase is at this version: its ETag, e.g. "3". '
        "Otherwise 412 version_mismatch. One entity tag, or *.",
        pattern=rf"^[ \t]*(\*|{_ENTITY_TAG})[ \t]*$",
        examples=['"1"'],
    ),
]

_OUR_TAG = re.compile(r'[ \t]*"([1-9][0-9]{0,17})"[ \t]*')
NO_VERSION = 0
"""No purchase is ever at version 0: a tag that is not one of ours can never match."""


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header asks for; None when it asks for none (absent or *)."""
    if if_match is None or if_match.strip() == "*":
        return None
    ours = _OUR_TAG.fullmatch(if_match)
    # Weak tags never match (If-Match compares strongly), nor do tags we never issued.
    return int(ours.group(1)) if ours else NO_VERSION


def entity_tag(version: int) -> str:
    return f'"{version}"'
