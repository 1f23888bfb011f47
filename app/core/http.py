"""Request guards and helpers shared by endpoints."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import request

from app.core.errors import PayloadTooLarge, UnsupportedMediaType


def json_only(*, max_bytes: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Refuse a body that is not JSON (415) or is larger than `max_bytes` (413) before
    anything parses it; a chunked body is cut off at the same size while it is read."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if request.mimetype != "application/json":
                raise UnsupportedMediaType(
                    "Send the report as JSON with 'Content-Type: application/json'.")
            if request.content_length is not None and request.content_length > max_bytes:
                raise PayloadTooLarge(f"The body is larger than {max_bytes // 1024} KiB.")
            request.max_content_length = max_bytes
            # Read (and cache) the body here, so an oversized chunked body is a 413 from
            # werkzeug's limit rather than a parse error further down.
            request.get_data(cache=True)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def local_path(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None: redirecting anywhere a request
    names would make our pages a phishing aid. Browsers read a backslash as a slash and
    drop tabs and newlines, so "/\\evil.example" or "/\\t/evil.example" leave the site and
    are refused too."""
    if (not target or not target.startswith("/") or target.startswith("//")
            or "\\" in target or not target.isprintable()
            or any(c.isspace() for c in target)):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None
