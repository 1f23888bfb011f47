"""Bearer-token authentication for the staff API.

Only the Authorization header counts here, never the session cookie: an API that
ignores cookies cannot be driven by a forged cross-site request.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request

from app.auth.models import User
from app.auth.service import authenticate_token
from app.core.errors import Unauthorized


def bearer_user() -> User | None:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return authenticate_token(raw.strip())


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Put the token's user in `g.api_user`, or answer 401 with WWW-Authenticate."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = bearer_user()
        if user is None:
            raise Unauthorized("Send a valid API token: 'Authorization: Bearer fdk_…'.",
                               headers={"WWW-Authenticate": 'Bearer realm="flagdesk"'})
        g.api_user = user
        return view(*args, **kwargs)

    return wrapper
