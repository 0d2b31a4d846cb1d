"""What routes depend on, as ``Annotated`` aliases: the ledger, the metrics, request headers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPBearer

from application.commands import IDEMPOTENCY_KEY_MAX_LENGTH
from application.ledger import CreditLedger
from infrastructure.http.auth import TokenRegistry
from infrastructure.http.errors import ProblemError
from infrastructure.http.health import StoreProbe
from infrastructure.http.metrics import HttpMetrics


@dataclass
class Services:
    """What one app serves with; the ledger arrives at startup when the app opens it itself."""

    tokens: TokenRegistry
    metrics: HttpMetrics
    probe: StoreProbe
    ledger: CreditLedger | None = None


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


LedgerDep = Annotated[CreditLedger, Depends(current_ledger)]
MetricsDep = Annotated[HttpMetrics, Depends(current_metrics)]

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
        "creates). Printable ASCII without spaces.",
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
