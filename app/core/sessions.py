"""The signed-cookie session, opened for the pages only."""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

API_PREFIX = "/api/"


class PagesOnlySessionInterface(SecureCookieSessionInterface):
    """The JSON API authenticates by project key or bearer token and reads no cookie, so
    its requests get Flask's null session: no signature checked on the way in, nothing
    saved on the way out, and a session cookie sent to the API can change nothing there
    (writing to the null session is an error). Opening the session was about 3% of an
    intake request's CPU (bench/intake.py)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(API_PREFIX):
            return None  # Flask substitutes its null session
        return super().open_session(app, request)
