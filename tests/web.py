"""Helpers for tests that use the server-rendered pages with the test client: signing a
client in, and reading the CSRF token a page hands out (CSRF is on in the tests too)."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from app.auth.models import User

_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def sign_in(client: FlaskClient, user: User) -> FlaskClient:
    """Sign the client in as `user` (as flask-login's session would after /login)."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    return client


def csrf_token(client: FlaskClient) -> str:
    match = _CSRF.search(client.get("/").get_data(as_text=True))
    assert match, "the page has no CSRF token"
    return match.group(1)


def post_form(client: FlaskClient, url: str, data: dict[str, Any] | None = None,
              **kwargs: Any) -> Any:
    """POST a form with a valid CSRF token and a same-site Referer (Flask-WTF checks it
    over HTTPS, which the test app prefers), as the browser would."""
    headers = {"Referer": "https://flagdesk.test/", **kwargs.pop("headers", {})}
    return client.post(url, data={"csrf_token": csrf_token(client), **(data or {})},
                       headers=headers, **kwargs)
