"""``/healthz``, ``/readyz`` and ``/metrics``: for orchestrators and scrapers; no token needed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from infrastructure.http.deps import services_of
from infrastructure.http.errors import ProblemError
from infrastructure.http.openapi import problem_responses
from infrastructure.http.schemas import Health, Readiness

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Health, operation_id="health", summary="Liveness")
async def healthz() -> Health:
    """The process is up and serving; says nothing about the store (see /readyz)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    operation_id="readiness",
    summary="Readiness: the store answers",
    responses=problem_responses("not_ready"),
)
async def readyz(request: Request) -> Readiness:
    services = services_of(request)
    problems = await services.probe.problems(services.ledger)
    # The projection lag joins these checks when the read models land.
    if problems:
        detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
        raise ProblemError("not_ready", detail, errors=problems)
    return Readiness(status="ready", checks={"store": "ok"})


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition: creditledger_http_requests_total, "
            "creditledger_http_request_duration_seconds, creditledger_commands_total, and the "
            "process's own.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    registry = services_of(request).metrics
    return Response(registry.exposition(), media_type=registry.content_type)
