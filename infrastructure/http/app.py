"""The app factory: settings (and optionally an open ledger) in, a FastAPI app out.

Nothing happens at import. ``create_app`` builds the app; the ledger is opened when the server
starts (the lifespan's startup), then its read models (with the projector thread, unless
``CREDITLEDGER_PROJECTOR=external``). At shutdown, after uvicorn has finished every request in
flight, the projector stops and the read models close, then the ledger closes, so no
acknowledged write is lost and the projector never reads a closed store. A ledger passed in
stays the caller's: the app uses it and leaves it open (its read models are still the app's).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI

from creditledger.application.clock import Clock
from creditledger.application.ledger import CreditLedger
from creditledger.infrastructure.bootstrap import open_ledger, open_read_models
from creditledger.infrastructure.expiry.sweeper import SweepThread
from creditledger.infrastructure.http.auth import TokenRegistry
from creditledger.infrastructure.http.deps import Services
from creditledger.infrastructure.http.docs_ui import install_docs
from creditledger.infrastructure.http.errors import install_problem_handlers
from creditledger.infrastructure.http.event_feed import EventFeed
from creditledger.infrastructure.http.health import StoreProbe
from creditledger.infrastructure.http.logging import FIELDS
from creditledger.infrastructure.http.metrics import HttpMetrics
from creditledger.infrastructure.http.middleware import BodyLimitMiddleware, ObservationMiddleware
from creditledger.infrastructure.http.openapi import API_VERSION, TITLE, build_openapi
from creditledger.infrastructure.http.routes import (
    credits,
    customers,
    feed,
    probes,
    purchases,
    reports,
)
from creditledger.infrastructure.relay.relay import start_relay_thread
from creditledger.infrastructure.relay.stream import stream_spec
from creditledger.infrastructure.relay.watch import StreamWatch
from creditledger.infrastructure.settings import ProjectorMode, Settings

logger = logging.getLogger("creditledger.http")


class LedgerAPI(FastAPI):
    """FastAPI, with the problem schema added to the OpenAPI document it serves."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = build_openapi(self.routes)
        return self.openapi_schema


def create_app(
    settings: Settings | None = None,
    ledger: CreditLedger | None = None,
    *,
    clock: Clock | None = None,
) -> FastAPI:
    """The HTTP API over the configured ledger (or over ``ledger``, which the caller closes)."""
    settings = settings or Settings()
    services = Services(
        tokens=TokenRegistry.from_settings(settings),
        metrics=HttpMetrics(),
        probe=StoreProbe(),
        ledger=ledger,
        projector=settings.projector,
        max_projection_lag=settings.max_projection_lag,
        read_your_writes_timeout=settings.read_your_writes_timeout,
        max_relay_lag=settings.max_relay_lag,
        max_expiry_lag=settings.max_expiry_lag,
    )
    owns_ledger = ledger is None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        _log_token_mode(services.tokens)
        if owns_ledger:
            services.ledger = await anyio.to_thread.run_sync(
                lambda: open_ledger(settings=settings, clock=clock)
            )
            logger.info(
                "ledger open",
                extra={
                    FIELDS: {
                        "store": settings.store.kind,
                        "location": settings.store.describe(),
                    }
                },
            )
        opened_ledger = services.ledger
        if opened_ledger is None:  # pragma: no cover - set just above or by the caller
            msg = "no ledger to serve"
            raise RuntimeError(msg)
        run_projector = settings.projector is ProjectorMode.INPROCESS
        try:
            services.views = await anyio.to_thread.run_sync(
                lambda: open_read_models(opened_ledger, run_projector=run_projector)
            )
        except BaseException:
            if owns_ledger:
                services.ledger = None
                await anyio.to_thread.run_sync(opened_ledger.close)
            raise
        services.feed = EventFeed(opened_ledger)
        logger.info("read models open", extra={FIELDS: {"projector": settings.projector.value}})
        if settings.expiry_sweep:
            services.expiry = SweepThread(
                opened_ledger,
                services.views.database,
                interval=settings.expiry_sweep_interval,
            )
            services.expiry.start()
        if settings.relay_in_server:
            services.relay = start_relay_thread(opened_ledger, services.views.database, settings)
        elif settings.relay_watch:
            services.stream_watch = StreamWatch(settings.nats_url, stream_spec(settings))
        try:
            yield
        finally:
            await _close_services(services, owns_ledger=owns_ledger)

    app = LedgerAPI(
        title=TITLE,
        version=API_VERSION,
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN: install_docs serves it
        redoc_url=None,
        # Metrics go to Prometheus and logs to JSON lines; FastAPI's own OpenTelemetry hooks
        # would otherwise look for a configured provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = services
    install_problem_handlers(app)
    install_docs(app)
    # Added last is outermost: observation wraps everything, including the body limit's 413.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(ObservationMiddleware, metrics=services.metrics)
    for router in (
        purchases.router,
        customers.router,
        credits.router,
        reports.router,
        feed.router,
        probes.router,
    ):
        app.include_router(router)
    return app


def _log_token_mode(tokens: TokenRegistry) -> None:
    if tokens.open:
        logger.warning(
            "no API token configured (CREDITLEDGER_API_KEYS, CREDITLEDGER_ADMIN_TOKEN): the "
            "HTTP API is open to anyone who can reach it; use this for local development only"
        )
    else:
        logger.info("bearer tokens configured", extra={FIELDS: {"namespaces": tokens.namespaces}})


async def _close_services(services: Services, *, owns_ledger: bool) -> None:
    """Stop what the lifespan started, readers before the store they read."""
    services.feed = None
    expiry, services.expiry = services.expiry, None
    if expiry is not None:
        await anyio.to_thread.run_sync(expiry.stop)
    relay, services.relay = services.relay, None
    if relay is not None:
        await anyio.to_thread.run_sync(relay.stop)
    watch, services.stream_watch = services.stream_watch, None
    if watch is not None:
        await watch.close()
    views, services.views = services.views, None
    if views is not None:
        # Before the ledger: the projector thread reads the store the ledger closes.
        await anyio.to_thread.run_sync(views.close)
        logger.info("read models closed")
    if owns_ledger and services.ledger is not None:
        opened, services.ledger = services.ledger, None
        # uvicorn has finished every request in flight by now: closing drains the
        # ledger's writer, so whatever was acknowledged is durable.
        await anyio.to_thread.run_sync(opened.close)
        logger.info("ledger closed")
