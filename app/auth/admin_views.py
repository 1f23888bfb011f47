"""Admin pages: staff users and projects (allowed origins, public key rotation).

Thin: each handler parses the form, calls one service (which checks the admin role and
writes the audit event) and renders or redirects. A form that fails is shown again with
its error and what was typed; a one-line action that fails says why in a flash message.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.auth import service as users
from app.auth.models import Role, User
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.projects import service as projects

admin = Blueprint("admin", __name__, url_prefix="/admin")

# Errors a person can fix by changing what they typed; anything else (403) stays an error.
FIXABLE = (ValidationFailed, Conflict, NotFound)
# Pages that show a password or a fresh key must not be kept by the browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}

Page = tuple[str, int, dict[str, str]]


@admin.before_request
@login_required
def _signed_in() -> None:
    """Admin pages are for signed-in staff; the services check the admin role."""


def _actor() -> User:
    return current_user._get_current_object()


def _status(error: Exception) -> int:
    return 409 if isinstance(error, Conflict) else 422


# --- users ---------------------------------------------------------------------------


def _users_page(status: int = 200, **context: Any) -> Page:
    context.setdefault("form", {"role": Role.RESPONDER.value})
    html = render_template("admin/users.html", users=users.list_users(actor=_actor()),
                           roles=list(Role), **context)
    return html, status, NO_STORE


@admin.get("/users")
def users_page() -> Page:
    return _users_page()


@admin.post("/users")
def create_user() -> Page:
    form = {k: request.form.get(k, "").strip() for k in ("email", "name", "role")}
    try:
        user, password = users.create_user(email=form["email"], name=form["name"],
                                           role=form["role"], actor=_actor())
    except FIXABLE as error:
        return _users_page(_status(error), form=form, create_error=error.message)
    return _users_page(201, password_for=user, password=password, created=True)


def _flag(name: str) -> bool:
    return request.form.get(name, "") in {"1", "true", "on", "yes"}


@admin.post("/users/<int:user_id>/role")
def change_role(user_id: int) -> Response:
    try:
        user = users.change_role(actor=_actor(), user_id=user_id,
                                 role=request.form.get("role", ""))
        flash(f"{user.name} is now {user.role}.", "info")
    except FIXABLE as error:
        flash(f"Role not changed: {error.message}", "error")
    return redirect(url_for("admin.users_page"), code=303)


@admin.post("/users/<int:user_id>/active")
def set_user_active(user_id: int) -> Response:
    active = _flag("active")
    try:
        user = users.set_user_active(actor=_actor(), user_id=user_id, active=active)
        flash(f"{user.name} is {'active again' if active else 'deactivated'}.", "info")
    except FIXABLE as error:
        flash(f"Not changed: {error.message}", "error")
    return redirect(url_for("admin.users_page"), code=303)


@admin.post("/users/<int:user_id>/password")
def reset_password(user_id: int) -> Page | Response:
    try:
        user, password = users.reset_password(actor=_actor(), user_id=user_id)
    except FIXABLE as error:
        flash(f"Password not reset: {error.message}", "error")
        return redirect(url_for("admin.users_page"), code=303)
    return _users_page(password_for=user, password=password, created=False)


# --- projects ------------------------------------------------------------------------


def _lines(name: str) -> list[str]:
    return request.form.get(name, "").splitlines()


def _projects_page(status: int = 200, **context: Any) -> Page:
    context.setdefault("form", {"name": "", "origins": ""})
    context.setdefault("errors", {})
    html = render_template("admin/projects.html",
                           projects=projects.list_projects(actor=_actor()), **context)
    return html, status, NO_STORE


@admin.get("/projects")
def projects_page() -> Page:
    return _projects_page()


@admin.post("/projects")
def create_project() -> Page | Response:
    form = {"name": request.form.get("name", ""), "origins": request.form.get("origins", "")}
    try:
        project = projects.create_project(name=form["name"], origins=_lines("origins"),
                                          actor=_actor())
    except FIXABLE as error:
        return _projects_page(_status(error), form=form, errors=error.fields or {},
                             create_error=error.message)
    flash(f"Project {project.name} created. Put its key in the widget.", "info")
    return redirect(url_for("admin.project_page", project_id=project.id), code=303)


def _project_page(project_id: int, status: int = 200, **context: Any) -> Page:
    project = projects.get_project(actor=_actor(), project_id=project_id)
    context.setdefault("form", {"name": project.name,
                                "origins": "\n".join(project.allowed_origins)})
    context.setdefault("errors", {})
    html = render_template("admin/project.html", project=project, **context)
    return html, status, NO_STORE


@admin.get("/projects/<int:project_id>")
def project_page(project_id: int) -> Page:
    return _project_page(project_id)


@admin.post("/projects/<int:project_id>")
def update_project(project_id: int) -> Page | Response:
    form = {"name": request.form.get("name", ""), "origins": request.form.get("origins", "")}
    try:
        projects.update_project(actor=_actor(), project_id=project_id, name=form["name"],
                                origins=_lines("origins"))
    except FIXABLE as error:
        return _project_page(project_id, _status(error), form=form,
                             errors=error.fields or {}, edit_error=error.message)
    flash("Project saved.", "info")
    return redirect(url_for("admin.project_page", project_id=project_id), code=303)


@admin.post("/projects/<int:project_id>/active")
def set_project_active(project_id: int) -> Response:
    active = _flag("active")
    project = projects.set_project_active(actor=_actor(), project_id=project_id, active=active)
    flash(f"{project.name} {'accepts reports again' if active else 'no longer accepts reports'}.",
          "info")
    return redirect(url_for("admin.project_page", project_id=project_id), code=303)


@admin.post("/projects/<int:project_id>/rotate-key")
def rotate_key(project_id: int) -> Page | Response:
    if request.form.get("confirm") != "yes":
        return _project_page(project_id, 422, rotate_error=(
            "Not rotated: tick the box to confirm that the old key stops working now."))
    project = projects.rotate_key(actor=_actor(), project_id=project_id)
    flash("New key issued. The old key no longer works: put the new one in the widget.",
          "info")
    return redirect(url_for("admin.project_page", project_id=project.id, rotated=1), code=303)
