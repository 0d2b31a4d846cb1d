"""``/healthz``, ``/readyz`` and ``/metrics``: for orchestrators and scrapers; no token needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from creditledger.domain.errors import FieldError
from creditledger.infrastructure.http.deps import Services, services_of
from creditledger.infrastructure.http.errors import ProblemError
from creditledger.infrastructure.http.openapi import problem_responses
from creditledger.infrastructure.http.schemas import Health, Readiness
from creditledger.infrastructure.settings import ProjectorMode

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Health, operation_id="health", summary="Liveness")
async def healthz() -> Health:
    """The process is up and serving; says nothing about the store (see /readyz)."""
    return Health(status="ok")


async def _projection_check(services: Services) -> tuple[dict[str, Any], list[FieldError]]:
    """The projections' report for /readyz, and what makes the server not ready, if anything."""
    state = await services.probe.projection(services.views)
    if isinstance(state, FieldError):
        return {"status": state.code}, [state]
    report: dict[str, Any] = {
        "projector": services.projector.value,
        "projector_running": state.projector_running,
        "head": state.head,
        "position": state.position,
        "lag": state.lag,
        "max_lag": services.max_projection_lag,
    }
    problems: list[FieldError] = []
    if services.projector is ProjectorMode.INPROCESS and not state.projector_running:
        problems.append(
            FieldError(
                "projections", "projector_stopped", "the in-process projector is not running"
            )
        )
    if state.lag > services.max_projection_lag:
        problems.append(
            FieldError(
                "projections",
                "projection_lag_too_high",
                f"the read models are {state.lag} events behind the log "
                f"(more than {services.max_projection_lag})",
            )
        )
    report["status"] = "ok" if not problems else problems[0].code
    services.metrics.observe_projection(state.head, state.position)
    return report, problems


@router.get(
    "/readyz",
    response_model=Readiness,
    operation_id="readiness",
    summary="Readiness: the store answers and the read models keep up",
    description="Ready when the store answers, the in-process projector (if configured) runs, "
    "and the read models are at most CREDITLEDGER_MAX_PROJECTION_LAG events behind the log. "
    "checks.projections reports head, position and lag either way.",
    responses=problem_responses("not_ready"),
)
async def readyz(request: Request) -> Readiness:
    services = services_of(request)
    problems = await services.probe.problems(services.ledger)
    projections: dict[str, Any] = {"status": "not_checked"}
    if not problems:
        projections, lagging = await _projection_check(services)
        problems.extend(lagging)
    if problems:
        detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
        raise ProblemError("not_ready", detail, errors=problems)
    return Readiness(status="ready", checks={"store": "ok", "projections": projections})


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition: creditledger_http_requests_total, "
            "creditledger_http_request_duration_seconds, creditledger_commands_total, "
            "creditledger_log_head, creditledger_projection_position, "
            "creditledger_projection_lag_events, and the process's own.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    services = services_of(request)
    # Read at scrape time, so the lag is current; a store that does not answer leaves the last
    # values (the scrape itself must not fail with it).
    state = await services.probe.projection(services.views)
    if not isinstance(state, FieldError):
        services.metrics.observe_projection(state.head, state.position)
    registry = services.metrics
    return Response(registry.exposition(), media_type=registry.content_type)
