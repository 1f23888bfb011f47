"""CORS for the public intake endpoint: only the origins a project configured.

A preflight carries no project key, so it is allowed when some active project accepts
the origin; the request itself is then checked against its own project's origins. An
origin that is not allowed gets 403 and no CORS headers at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Response, g, request

from app.core.errors import Forbidden
from app.projects.service import origin_allowed_anywhere

PREFLIGHT_MAX_AGE = 600


def _allow(response: Response, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.vary.add("Origin")


def preflight(*, methods: Iterable[str], headers: Iterable[str]) -> Response:
    origin = request.headers.get("Origin")
    if not origin or not origin_allowed_anywhere(origin):
        raise Forbidden("This origin may not send reports here.")
    response = Response(status=204)
    _allow(response, origin)
    response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
    response.headers["Access-Control-Allow-Headers"] = ", ".join(headers)
    response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return response


def allow_origin_checked() -> None:
    """Mark this request's origin as checked against its project."""
    g.cors_origin_allowed = True


def deny_origin() -> None:
    g.cors_origin_allowed = False


def add_cors_headers(response: Response) -> Response:
    """Let the calling page read the answer (errors included) if its origin is allowed."""
    origin = request.headers.get("Origin")
    if not origin:
        return response
    allowed = g.get("cors_origin_allowed")
    if allowed is None:  # answered before the project was known (401, 429, 413, …)
        allowed = origin_allowed_anywhere(origin)
    if allowed:
        _allow(response, origin)
        # The widget reads Retry-After on a 429 to know when to try again.
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    else:
        response.vary.add("Origin")
    return response
