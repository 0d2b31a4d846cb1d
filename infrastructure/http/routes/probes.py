"""``/healthz``, ``/readyz`` and ``/metrics``: for orchestrators and scrapers; no token needed."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request, Response

from creditledger.domain.errors import FieldError, LedgerError
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
    if services.projector is ProjectorMode.INPROCESS and state.failure is not None:
        failure = state.failure
        at = "at" if failure.exact else "in the batch from"
        problems.append(
            FieldError(
                "projections",
                "projection_stuck",
                f"the read models are stuck {at} position {failure.position}: {failure.error} "
                "(retried; 'creditledger projections skip POSITION' moves past it)",
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
    services.metrics.observe_projection(state.head, state.position, state.stuck_at)
    return report, problems


async def _relay_check(services: Services, head: int) -> tuple[dict[str, Any], list[FieldError]]:
    """How far the stream is behind the log: from the in-process relay, or read from the stream
    when the relay runs elsewhere (``CREDITLEDGER_RELAY_WATCH``)."""
    report: dict[str, Any]
    if services.relay is not None:
        relayed = services.relay.relayed
        report = {"running": services.relay.running}
    elif services.stream_watch is not None:
        found = await services.stream_watch.relayed()
        relayed = found.position
        report = {"stream": services.stream_watch.spec.name}
        if found.problem is not None:
            report["problem"] = found.problem
    else:
        return {"status": "not_in_this_process"}, []
    lag = head - (relayed or 0)
    report |= {"position": relayed, "lag": lag, "max_lag": services.max_relay_lag}
    services.metrics.observe_relay(head, relayed or 0)
    problems = []
    if services.max_relay_lag is not None and lag > services.max_relay_lag:
        problems.append(
            FieldError(
                "relay",
                "relay_lag_too_high",
                f"the stream is {lag} events behind the log (more than {services.max_relay_lag})",
            )
        )
    report["status"] = "ok" if not problems else problems[0].code
    return report, problems


async def _expiry_check(services: Services) -> tuple[dict[str, Any], list[FieldError]]:
    """How long the oldest due expiry has waited to be recorded by this process's sweep."""
    sweep = services.expiry
    if sweep is None:
        return {"status": "not_in_this_process"}, []
    try:
        lag = await anyio.to_thread.run_sync(sweep.sweep.lag_seconds)
    except LedgerError as error:
        problem = FieldError("expiry", "expiry_lag_unknown", str(error))
        return {"status": problem.code}, []
    services.metrics.observe_expiry(lag, sweep.recorded)
    report: dict[str, Any] = {
        "running": sweep.running,
        "lag_seconds": lag,
        "max_lag_seconds": services.max_expiry_lag,
        "recorded": sweep.recorded,
        "last_error": sweep.last_error,
    }
    problems = []
    if services.max_expiry_lag is not None and lag > services.max_expiry_lag:
        problems.append(
            FieldError(
                "expiry",
                "expiry_lag_too_high",
                f"a due credit expiry has waited {lag:.1f} s to be recorded "
                f"(more than {services.max_expiry_lag})",
            )
        )
    report["status"] = "ok" if not problems else problems[0].code
    return report, problems


@router.get(
    "/readyz",
    response_model=Readiness,
    operation_id="readiness",
    summary="Readiness: the store answers and the read models keep up",
    description="Ready when the store answers, the in-process projector (if configured) runs, "
    "and the read models are at most CREDITLEDGER_MAX_PROJECTION_LAG events behind the log. "
    "checks.projections reports head, position and lag either way; checks.expiry reports how "
    "long the oldest due credit expiry has waited to be recorded (not ready above "
    "CREDITLEDGER_MAX_EXPIRY_LAG seconds, when set).",
    responses=problem_responses("not_ready"),
)
async def readyz(request: Request) -> Readiness:
    services = services_of(request)
    problems = await services.probe.problems(services.ledger)
    projections: dict[str, Any] = {"status": "not_checked"}
    relay: dict[str, Any] = {"status": "not_checked"}
    expiry: dict[str, Any] = {"status": "not_checked"}
    if not problems:
        projections, lagging = await _projection_check(services)
        problems.extend(lagging)
        if "head" in projections:
            relay, relay_lagging = await _relay_check(services, projections["head"])
            problems.extend(relay_lagging)
        expiry, expiry_lagging = await _expiry_check(services)
        problems.extend(expiry_lagging)
    if problems:
        detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
        raise ProblemError("not_ready", detail, errors=problems)
    checks = {"store": "ok", "projections": projections, "expiry": expiry}
    if services.relay is not None or services.stream_watch is not None:
        checks["relay"] = relay
    return Readiness(status="ready", checks=checks)


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
        services.metrics.observe_projection(state.head, state.position, state.stuck_at)
        await _relay_check(services, state.head)
    registry = services.metrics
    return Response(registry.exposition(), media_type=registry.content_type)
