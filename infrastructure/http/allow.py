"""The ``Allow`` header of a 405: every method the path has, not only one route's.

Starlette answers 405 from the first route whose path matched, with that route's methods only;
a path served by two routes (``GET`` lists purchases, ``POST`` creates one) would then advertise
only one. RFC 9110 section 15.5.6: the header lists the methods the target resource supports.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Match

METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """The methods some route of the app accepts on the request's path, as an ``Allow`` value.

    Each method is tried against the routes' own matching (the public ``matches``), so routes
    nested in included routers count as well.
    """
    routes: list[BaseRoute] = request.app.router.routes
    allowed = [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]
    return ", ".join(allowed)
