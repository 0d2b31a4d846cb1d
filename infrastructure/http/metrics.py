"""Prometheus metrics of one app: requests, their latency, and command outcomes by code.

Each app has its own registry (never the process-wide default), so two apps in one process, as in
tests, never share or clash over counters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from creditledger.domain.errors import LedgerError

T = TypeVar("T")

UNMATCHED_ROUTE = "unmatched"
"""The route label of requests no route matched: paths are never labels (unbounded values)."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """The instruments the HTTP shell updates, and their text exposition."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "creditledger_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "creditledger_http_request_duration_seconds",
            "Time from receiving a request to sending the end of its response.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.commands = Counter(
            "creditledger_commands",
            "Commands handled by the ledger, by command and outcome: created, applied, "
            "replayed, or the error code that refused them.",
            ("command", "outcome"),
            registry=self.registry,
        )

        self.log_head = Gauge(
            "creditledger_log_head",
            "Position of the last event recorded in the log (at the last scrape or probe).",
            registry=self.registry,
        )
        self.projection_position = Gauge(
            "creditledger_projection_position",
            "Position every read model has reached.",
            registry=self.registry,
        )
        self.projection_lag = Gauge(
            "creditledger_projection_lag_events",
            "Events recorded that the read models have not applied yet (head - position).",
            registry=self.registry,
        )
        self.projection_stuck_position = Gauge(
            "creditledger_projection_stuck_position",
            "Position of the event the read-model store keeps refusing (0: none); see "
            "'creditledger projections skip'.",
            registry=self.registry,
        )
        self.relay_position = Gauge(
            "creditledger_relay_position",
            "Log position the NATS stream holds up to (in-process relay only).",
            registry=self.registry,
        )
        self.relay_lag = Gauge(
            "creditledger_relay_lag_events",
            "Events recorded that the in-process relay has not published yet (head - position).",
            registry=self.registry,
        )

        self.expiry_lag = Gauge(
            "creditledger_expiry_lag_seconds",
            "How long the oldest due credit expiry has waited to be recorded (0: none waits).",
            registry=self.registry,
        )
        self.expiries_recorded = Gauge(
            "creditledger_expiries_recorded",
            "Credit expiries the in-process sweep has recorded since the server started.",
            registry=self.registry,
        )

    def observe_expiry(self, lag_seconds: float, recorded: int) -> None:
        self.expiry_lag.set(lag_seconds)
        self.expiries_recorded.set(recorded)

    def observe_relay(self, head: int, relayed: int) -> None:
        self.relay_position.set(relayed)
        self.relay_lag.set(max(head - relayed, 0))

    def observe_projection(self, head: int, position: int, stuck_at: int = 0) -> None:
        self.log_head.set(head)
        self.projection_position.set(position)
        self.projection_lag.set(max(head - position, 0))
        self.projection_stuck_position.set(stuck_at)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def run_command(self, command: str, handle: Callable[[], T], outcome: Callable[[T], str]) -> T:
        """Run a command handler, counting its outcome, or the code of the error it raised."""
        try:
            result = handle()
        except LedgerError as error:
            self.commands.labels(command, error.code).inc()
            raise
        self.commands.labels(command, outcome(result)).inc()
        return result

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
