"""Sign-in and sign-out for staff (flask-login sessions)."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from app.auth import service
from app.core import ratelimit
from app.core.http import local_path

auth_pages = Blueprint("auth", __name__)

THROTTLED = ("Too many failed sign-ins from here or for this account. "
             "Wait a few minutes, then try again.")


def _login_email() -> str:
    return (request.form.get("email") or "").strip().lower()


def _safe_next(target: str | None) -> str:
    return local_path(target) or url_for("triage.board_page")


@auth_pages.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    if request.method == "GET":
        return render_template("auth/login.html", email=""), 200
    # Only failed attempts count, per address and per account; once either is used up the
    # form refuses (before checking the password) until the window ends.
    limits = _login_limits()
    waits = [wait for args in limits if (wait := ratelimit.exhausted(*args)) is not None]
    if waits:
        html = render_template("auth/login.html", email=_login_email(), error=THROTTLED)
        return html, 429, {"Retry-After": str(max(waits))}
    user = service.sign_in(email=_login_email(), password=request.form.get("password", ""))
    if user is None:
        for args in limits:
            ratelimit.count(*args)
        return render_template("auth/login.html", email=_login_email(),
                               error="That e-mail and password do not match."), 401
    login_user(user, remember=False)
    return redirect(_safe_next(request.args.get("next")))


def _login_limits() -> list[tuple[str, str, str]]:
    config = current_app.config
    return [(config["LOGIN_LIMIT_PER_ADDRESS"], "login-address", ratelimit.client_address()),
            (config["LOGIN_LIMIT_PER_ACCOUNT"], "login-account", _login_email())]


@auth_pages.post("/logout")
@login_required
def logout() -> Response:
    logout_user()
    return redirect(url_for("auth.login"))
