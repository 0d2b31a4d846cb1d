"""Every error as ``application/problem+json`` (RFC 9457), from one table of codes and statuses.

The domain and application raise typed errors with stable codes; the HTTP shell raises its own few
(``unauthenticated``, ``not_found``...). Both become the same problem document:

    {"type": "/v1/problems/<code>", "title", "status", "code", "detail", "errors": [...],
     "request_id"}

``errors`` is always present (empty unless the input had problems); ``request_id`` repeats the
``X-Request-Id`` response header so a problem pasted into a ticket can be found in the logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from creditledger.domain.errors import (
    FieldError,
    InsufficientCreditError,
    LedgerError,
    RefundExceedsRemainingError,
    ValidationFailedError,
)
from creditledger.domain.text import printable_field
from creditledger.infrastructure.http.allow import allowed_methods
from creditledger.infrastructure.http.logging import REQUEST_ID

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "/v1/problems/"

logger = logging.getLogger("creditledger.http")

STATUS_BY_CODE: dict[str, int] = {
    "validation_failed": 422,
    "payment_already_authorized": 409,
    "payment_already_settled": 409,
    "cannot_settle_not_authorized_payment": 409,
    "invalid_transition": 409,
    # Payment failure, invoices and refunds: the purchase's state refuses the command.
    "payment_already_failed": 409,
    "payment_not_settled": 409,
    "invoice_already_created": 409,
    "invoice_not_created": 409,
    "idempotency_key_reused": 409,
    "concurrent_modification": 409,
    # The customer's credit refuses the command (what remains, and whether it is granted).
    "insufficient_credit": 409,
    "credit_grant_expired": 409,
    "nothing_to_void": 409,
    "credits_not_granted": 409,
    "nothing_to_refund": 409,
    "refund_exceeds_remaining": 409,
    "version_mismatch": 412,
    "credit_purchase_not_found": 404,
    "not_found": 404,
    "unauthenticated": 401,
    "forbidden": 403,
    "method_not_allowed": 405,
    "request_too_large": 413,
    "unsupported_media_type": 415,
    "bad_request": 400,
    "store_unavailable": 503,
    "not_ready": 503,
    "projection_behind": 503,
    # A history or a view that does not add up is corruption or a bug, never the caller's
    # doing: a server error, logged with its traceback.
    "event_sequence_broken": 500,
    "projection_failed": 500,
    # Raised by the consumer kit on another machine, never by a request; listed so that the
    # table stays complete.
    "stream_hole": 500,
    "internal_error": 500,
}
"""The HTTP status of every problem code: each code of a ``LedgerError`` of the domain and the
application (tests/infrastructure/test_http_error_statuses.py checks that none is missing), then
the codes the HTTP shell raises itself. An unknown code is a server error (500)."""

HTTP_TITLES: dict[str, str] = {
    "validation_failed": "Validation failed",
    "not_found": "Not found",
    "credit_purchase_not_found": "Credit purchase not found",
    "unauthenticated": "Unauthenticated",
    "forbidden": "Forbidden",
    "method_not_allowed": "Method not allowed",
    "request_too_large": "Request body too large",
    "unsupported_media_type": "Unsupported media type",
    "bad_request": "Bad request",
    "store_unavailable": "Store unavailable",
    "not_ready": "Not ready",
    "projection_behind": "Read models behind",
    "internal_error": "Internal error",
}
"""Titles of the codes the HTTP shell raises itself (ledger errors carry their own)."""

_CODE_BY_HTTP_STATUS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


class ProblemError(Exception):
    """A problem the HTTP shell itself reports (not found, unauthenticated, unsupported type...)."""

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[FieldError] = (),
    ) -> None:
        self.code = code
        self.title = HTTP_TITLES.get(code, code.replace("_", " ").capitalize())
        self.detail = detail or self.title
        self.headers = dict(headers or {})
        self.errors = tuple(errors)
        super().__init__(self.detail)


def status_of(code: str) -> int:
    return STATUS_BY_CODE.get(code, 500)


def problem_response(
    code: str,
    title: str,
    detail: str,
    *,
    errors: Iterable[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    members: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """The problem document; ``members`` are the extension members of its code (RFC 9457 3.2),
    such as ``available`` for ``insufficient_credit`` and ``remaining`` for
    ``refund_exceeds_remaining``."""
    status = status_of(code)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
        "errors": [error.as_dict() for error in errors],
        **(members or {}),
    }
    request_id = REQUEST_ID.get()
    if request_id is not None:
        body["request_id"] = request_id
    response_headers = dict(headers or {})
    if status == 503:
        response_headers.setdefault("Retry-After", "1")
    return JSONResponse(
        body, status_code=status, headers=response_headers, media_type=PROBLEM_MEDIA_TYPE
    )


def field_name(location: Sequence[int | str]) -> str:
    """A pydantic error location as the domain names fields: ``settlement.type``, ``tags[0]``.

    The leading ``body``/``query``/``path``/``header`` is dropped: the field names are unique
    across them (headers keep their HTTP spelling, such as ``Idempotency-Key``).
    """
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    if not parts:
        return "body"
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    # A dict key in the location is the caller's text, possibly not even encodable.
    return printable_field(name) or "body"


def field_errors(items: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    """pydantic's error dicts as the domain's field errors: every one of them, in order."""
    return [
        FieldError(field_name(item.get("loc", ())), str(item["type"]), str(item["msg"]))
        for item in items
    ]


def validation_problem(errors: Sequence[FieldError]) -> JSONResponse:
    error = ValidationFailedError(list(errors))
    return problem_response(error.code, error.title, error.detail, errors=error.errors)


# -- handlers ------------------------------------------------------------------------------------


async def _on_ledger_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, LedgerError):  # pragma: no cover - registered for LedgerError only
        raise exc
    errors = exc.errors if isinstance(exc, ValidationFailedError) else ()
    if status_of(exc.code) >= 500:
        logger.error("ledger error %s: %s", exc.code, exc.detail, exc_info=exc)
    return problem_response(exc.code, exc.title, exc.detail, errors=errors, members=members_of(exc))


def members_of(error: LedgerError) -> dict[str, Any]:
    """What a problem of this error carries beyond the standard members: a client that is
    refused credit learns how much it may spend (or refund) without parsing the detail."""
    if isinstance(error, InsufficientCreditError):
        return {"available": error.available}
    if isinstance(error, RefundExceedsRemainingError):
        return {"remaining": error.remaining}
    return {}


async def _on_problem(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ProblemError):  # pragma: no cover - registered for ProblemError only
        raise exc
    return problem_response(exc.code, exc.title, exc.detail, errors=exc.errors, headers=exc.headers)


async def _on_request_validation(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover - registered for it only
        raise exc
    return validation_problem(field_errors(exc.errors()))


async def _on_model_validation(_request: Request, exc: Exception) -> Response:
    # A command model refused what the request model let through: same contract, same shape.
    if not isinstance(exc, ValidationError):  # pragma: no cover - registered for it only
        raise exc
    return validation_problem(field_errors(exc.errors()))


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registered for it only
        raise exc
    code = _CODE_BY_HTTP_STATUS.get(exc.status_code)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    if code is None:
        logger.error("unexpected HTTP %s: %s", exc.status_code, exc.detail)
        code = "internal_error"
    detail = exc.detail if isinstance(exc.detail, str) and code != "internal_error" else None
    return problem_response(code, HTTP_TITLES[code], detail or HTTP_TITLES[code], headers=headers)


async def _on_store_error(_request: Request, exc: Exception) -> Response:
    # The store's own failure, outside what the application already translates: retryable.
    logger.error("store error: %s", exc, exc_info=exc)
    code = "store_unavailable"
    return problem_response(code, HTTP_TITLES[code], "the event store could not be reached")


def install_problem_handlers(app: FastAPI) -> None:
    """Register one handler per kind of error; each answers with a problem document."""
    app.add_exception_handler(LedgerError, _on_ledger_error)
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(ValidationError, _on_model_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(PersistenceError, _on_store_error)
