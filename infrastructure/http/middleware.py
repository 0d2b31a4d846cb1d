"""ASGI middleware: the request id, metrics and log line of every request, and the body limit.

Both are plain ASGI (not ``BaseHTTPMiddleware``): they see every message, add nothing to the
threadpool, and keep the route's context variables.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditledger.infrastructure.http.errors import HTTP_TITLES, problem_response
from creditledger.infrastructure.http.logging import FIELDS, REQUEST_ID
from creditledger.infrastructure.http.metrics import UNMATCHED_ROUTE, HttpMetrics

REQUEST_ID_HEADER = "X-Request-Id"
_ACCEPTED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
"""A caller's own request id is echoed only if it is short and plain (it goes into logs)."""

access_logger = logging.getLogger("creditledger.http.access")
error_logger = logging.getLogger("creditledger.http")


class ObservationMiddleware:
    """Gives each request an id (the caller's ``X-Request-Id`` or a new one), echoes it, times the
    request, counts it by route template and status, and logs one JSON line when it ends.

    It is also the last resort: an error nothing else handled becomes a 500 problem document
    here, with the request id, instead of a bare text page.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = (
            offered if offered and _ACCEPTED_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        )
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_logger.exception("unhandled error")
            if response_started:
                raise
            code = "internal_error"
            response = problem_response(code, HTTP_TITLES[code], "an unexpected error occurred")
            await response(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            method = scope["method"]
            self.metrics.observe_request(method, route, status, seconds)
            access_logger.info(
                "%s %s %s",
                method,
                scope["path"],
                status,
                extra={
                    FIELDS: {
                        "method": method,
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                    }
                },
            )
            REQUEST_ID.reset(token)


class RequestBodyTooLargeError(HTTPException):
    """Raised while the body is read, once it exceeds the limit (handled as a 413 problem)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimitMiddleware:
    """Refuses bodies larger than the limit: at once when ``Content-Length`` says so, otherwise
    as soon as the bytes read exceed it (a chunked upload cannot get past it either)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            code = "request_too_large"
            detail = f"the request body is larger than {self.max_bytes} bytes"
            await problem_response(code, HTTP_TITLES[code], detail)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestBodyTooLargeError(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)
