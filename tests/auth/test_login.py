"""Signing in at /login: the session cookie, throttling, sign-out and `next`."""

from __future__ import annotations

import pytest

from app.auth.models import Role
from app.extensions import db
from tests.web import post_form

PASSWORD = "correct horse battery"


def sign_in(client, email, password=PASSWORD, next_=None, **kwargs):
    url = "/login" + (f"?next={next_}" if next_ is not None else "")
    return post_form(client, url, {"email": email, "password": password}, **kwargs)


def session_cookie(response) -> str:
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))


def test_the_sign_in_form(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'name="csrf_token"' in html
    assert 'autocomplete="username"' in html and 'autocomplete="current-password"' in html


def test_signing_in_sets_a_httponly_lax_session_cookie(client, make_user):
    user = make_user(Role.RESPONDER)
    response = sign_in(client, user.email.upper())  # e-mails are not case-sensitive
    assert response.status_code == 302
    assert response.headers["Location"] == "/board"
    cookie = session_cookie(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # this app is not configured for HTTPS-only cookies
    assert client.get("/board").status_code == 200


def test_over_https_the_session_cookie_is_secure(secondary_app, make_user):
    user = make_user(Role.RESPONDER)
    https = secondary_app(SESSION_COOKIE_SECURE=True)
    client = https.test_client()
    response = sign_in(client, user.email, base_url="https://flagdesk.test")
    assert response.status_code == 302
    cookie = session_cookie(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_wrong_password_is_refused_without_saying_which_part_is_wrong(client, make_user):
    user = make_user(Role.RESPONDER)
    wrong = sign_in(client, user.email, "not the password")
    unknown = sign_in(client, "nobody@example.com")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "That e-mail and password do not match." in response.get_data(as_text=True)
    assert f'value="{user.email}"' in wrong.get_data(as_text=True)  # no retyping
    assert client.get("/board").status_code == 302


def test_a_deactivated_user_cannot_sign_in(client, make_user):
    user = make_user(Role.ADMIN)
    user.active = False
    db.session.commit()
    assert sign_in(client, user.email).status_code == 401


def test_repeated_failures_for_an_account_are_throttled(client, make_user):
    user = make_user(Role.RESPONDER)
    for _ in range(5):  # LOGIN_LIMIT_PER_ACCOUNT: 5/minute
        assert sign_in(client, user.email, "wrong password").status_code == 401
    response = sign_in(client, user.email)  # even the right password waits now
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Too many failed sign-ins" in html and "Wait a few minutes" in html
    assert 'role="alert"' in html and "<form" in html
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert client.get("/board").status_code == 302


def test_repeated_failures_from_one_address_are_throttled(client, make_user):
    for n in range(10):  # LOGIN_LIMIT_PER_ADDRESS: 10/minute, whatever the account
        assert sign_in(client, f"guess{n}@example.com").status_code == 401
    user = make_user(Role.RESPONDER)
    assert sign_in(client, user.email).status_code == 429


def test_successful_sign_ins_are_not_counted(client, make_user):
    user = make_user(Role.RESPONDER)
    for _ in range(7):
        assert sign_in(client, user.email).status_code == 302
        assert post_form(client, "/logout").status_code == 302


def test_signing_out_ends_the_session(client, make_user):
    user = make_user(Role.RESPONDER)
    sign_in(client, user.email)
    response = post_form(client, "/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/board").status_code == 302


def test_signing_out_needs_the_csrf_token(client, make_user):
    user = make_user(Role.RESPONDER)
    sign_in(client, user.email)
    assert client.post("/logout").status_code == 400
    assert client.get("/board").status_code == 200


def test_signing_in_needs_the_csrf_token(client, make_user):
    user = make_user(Role.RESPONDER)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.get_data(as_text=True)


def test_next_leads_back_to_the_page_asked_for(client, make_user):
    user = make_user(Role.RESPONDER)
    response = sign_in(client, user.email, next_="/tickets/rep_abc%3Fx%3D1")
    assert response.headers["Location"] == "/tickets/rep_abc?x=1"


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/", "/\\evil.example", "/%5Cevil.example",
    "/%09/evil.example", "%2F%2Fevil.example", "javascript:alert(1)", "http:/evil.example",
    "///evil.example",
])
def test_next_never_leaves_the_site(client, make_user, target):
    user = make_user(Role.RESPONDER)
    response = sign_in(client, user.email, next_=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/board"


def test_a_signed_in_visit_to_login_goes_on(client, make_user):
    user = make_user(Role.RESPONDER)
    sign_in(client, user.email)
    response = client.get("/login?next=//evil.example")
    assert response.status_code == 302 and response.headers["Location"] == "/board"


def test_a_password_reset_signs_out_every_session_of_that_user(app, client, make_user):
    from app.auth import service as users

    admin = make_user(Role.ADMIN)
    user = make_user(Role.RESPONDER)
    other = make_user(Role.RESPONDER)
    other_client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    assert sign_in(other_client, other.email).status_code == 302
    assert client.get("/board").status_code == 200

    users.reset_password(actor=admin, user_id=user.id)

    response = client.get("/board")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert other_client.get("/board").status_code == 200  # nobody else is signed out
