"""Signing in and out in a real browser."""

from __future__ import annotations

from app.auth.models import Role
from tests.browser.conftest import PASSWORD


def test_sign_in_and_out(live_server, page, sign_in, page_problems):
    user = sign_in(Role.RESPONDER)
    assert page.get_by_text(user.name).is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(live_server("/login") + "*")
    page.goto(live_server("/board"))
    assert "/login" in page.url
    assert page_problems.errors == []


def test_a_wrong_password_is_refused(live_server, page):
    user = live_server.user(Role.VIEWER)
    page.goto(live_server("/login"))
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD + "x")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "That e-mail and password do not match."
    assert "/login" in page.url
