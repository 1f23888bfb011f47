"""Admin pages: staff users and projects (allowed origins, public key rotation)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from app.auth.service import require

admin = Blueprint("admin", __name__, url_prefix="/admin")


@admin.before_request
@login_required
def _signed_in() -> None:
    """Admin pages are for signed-in staff; the services check the admin role."""


@admin.get("/users")
def users_page() -> str:
    require(current_user._get_current_object(), "admin")
    return render_template("admin/users.html")
