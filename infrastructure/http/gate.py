"""The gate every namespaced route passes before FastAPI reads its parameters and body.

In this order, so that each refusal gives nothing away to a caller who should not get further:
who is calling (401), whether the path can name anything this caller may touch (404, or 403 for
the admin token writing), whether the body is JSON (415), whether it parses (422). The body-size
limit (413) runs earlier still, in the middleware. Only then does FastAPI validate the request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any
from uuid import UUID

import pydantic_core
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from creditledger.domain.errors import FieldError, ValidationFailedError
from creditledger.infrastructure.http.auth import Access, refusal
from creditledger.infrastructure.http.deps import services_of
from creditledger.infrastructure.http.errors import ProblemError
from creditledger.infrastructure.http.schemas import NAMESPACE_PATTERN

_NAMESPACE = re.compile(NAMESPACE_PATTERN)
_READ_METHODS = frozenset({"GET", "HEAD"})
_UNPARSED = object()


class StrictJsonRequest(Request):
    """A request whose JSON body is parsed once, strictly (RFC 8259: no NaN, no lone surrogate,
    bounded nesting), with a parse failure reported as a field problem of the body."""

    _parsed: Any = _UNPARSED

    async def json(self) -> Any:
        if self._parsed is _UNPARSED:
            body = await self.body()
            try:
                self._parsed = pydantic_core.from_json(body, allow_inf_nan=False)
            except ValueError as error:
                raise ValidationFailedError(
                    [FieldError("body", "json_invalid", f"the body is not valid JSON: {error}")]
                ) from None
        return self._parsed


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _not_found(request: Request, names_purchase: bool) -> ProblemError:
    """The 404 this route gives for anything missing, worded exactly as the ledger words it."""
    if not names_purchase:
        return ProblemError("not_found")
    raw = str(request.path_params.get("purchase_id", ""))
    try:
        shown = str(UUID(raw))
    except ValueError:
        shown = raw[:64]
    return ProblemError("credit_purchase_not_found", f"credit purchase {shown} not found")


class LedgerRoute(APIRoute):
    """A route under ``/v1/namespaces/{namespace}``: authenticated, tenant-checked, JSON-gated."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        access = Access.READ if (self.methods or set()) <= _READ_METHODS else Access.WRITE
        names_purchase = "{purchase_id}" in self.path
        takes_body = self.body_field is not None

        async def gated(original: Request) -> Response:
            request = StrictJsonRequest(original.scope, original.receive)
            principal = services_of(request).tokens.authenticate(
                request.headers.get("authorization")
            )
            namespace = str(request.path_params.get("namespace", ""))
            if not _NAMESPACE.fullmatch(namespace):
                raise _not_found(request, names_purchase)
            if not principal.may(access, namespace):
                raise refusal(principal, _not_found(request, names_purchase))
            if takes_body and await request.body():
                if not _is_json(request.headers.get("content-type")):
                    raise ProblemError(
                        "unsupported_media_type", "send the body as application/json"
                    )
                await request.json()
            return await handle(request)

        return gated
