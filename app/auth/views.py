"""Sign-in and sign-out for staff (flask-login sessions)."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_limiter import RateLimitExceeded
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from app.auth import service
from app.core.http import local_path
from app.extensions import limiter

auth_pages = Blueprint("auth", __name__)

THROTTLED = ("Too many failed sign-ins from here or for this account. "
             "Wait a few minutes, then try again.")


def _failed(response: Response) -> bool:
    return response.status_code == 401


def _login_email() -> str:
    return (request.form.get("email") or "").strip().lower()


def _safe_next(target: str | None) -> str:
    return local_path(target) or url_for("triage.board_page")


@auth_pages.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"], methods=["POST"],
               deduct_when=_failed)
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"], methods=["POST"],
               key_func=_login_email, deduct_when=_failed)
def login() -> Response | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    if request.method == "GET":
        return render_template("auth/login.html", email=""), 200
    user = service.sign_in(email=_login_email(), password=request.form.get("password", ""))
    if user is None:
        return render_template("auth/login.html", email=_login_email(),
                               error="That e-mail and password do not match."), 401
    login_user(user, remember=False)
    return redirect(_safe_next(request.args.get("next")))


@auth_pages.errorhandler(RateLimitExceeded)
def throttled(error: RateLimitExceeded) -> tuple[str, int, dict[str, str]]:
    """The sign-in form again, saying why it refuses and for how long."""
    current = limiter.current_limit
    wait = max(int(current.reset_at - time.time()), 1) if current else 60
    html = render_template("auth/login.html", email=_login_email(), error=THROTTLED)
    return html, 429, {"Retry-After": str(wait)}


@auth_pages.post("/logout")
@login_required
def logout() -> Response:
    logout_user()
    return redirect(url_for("auth.login"))
