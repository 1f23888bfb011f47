"""Admin pages: webhooks (add, rotate the secret, remove) and the deliveries outbox.

Thin, like the other admin pages: parse the form, call one service (which checks the
admin role and writes the audit event), render or redirect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.auth.models import User
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.notify import service
from app.notify.models import DeliveryStatus, WebhookKind
from app.projects import service as projects

notify_admin = Blueprint("notify", __name__, url_prefix="/admin")

FIXABLE = (ValidationFailed, Conflict, NotFound)
# A page that shows a signing secret must not be kept by the browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}

Page = tuple[str, int, dict[str, str]]


@notify_admin.before_request
@login_required
def _signed_in() -> None:
    """Admin pages are for signed-in staff; the services check the admin role."""


def _actor() -> User:
    return current_user._get_current_object()


def local_time(instant: datetime | None) -> str:
    """The instant in the viewer's timezone, e.g. "2026-01-05 10:03 CET"; "" for None."""
    if instant is None:
        return ""
    try:
        zone = ZoneInfo(current_user.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


@notify_admin.context_processor
def _helpers() -> dict[str, Any]:
    return {"local_time": local_time}


# --- webhooks ------------------------------------------------------------------------


def _webhooks_page(status: int = 200, **context: Any) -> Page:
    actor = _actor()
    context.setdefault("form", {"kind": WebhookKind.ESCALATION.value})
    html = render_template("notify/webhooks.html",
                           webhooks=service.webhooks(actor=actor),
                           projects=projects.list_projects(actor=actor),
                           kinds=list(WebhookKind), **context)
    return html, status, NO_STORE


@notify_admin.get("/webhooks")
def webhooks_page() -> Page:
    return _webhooks_page()


@notify_admin.post("/webhooks")
def create_webhook() -> Page:
    form = {k: request.form.get(k, "").strip()
            for k in ("project_id", "url", "kind", "description")}
    project_id = int(form["project_id"]) if form["project_id"].isdigit() else 0
    try:
        webhook, secret = service.create_webhook(
            actor=_actor(), project_id=project_id, url=form["url"], kind=form["kind"],
            description=form["description"])
    except FIXABLE as error:
        status = 409 if isinstance(error, Conflict) else 422
        return _webhooks_page(status, form=form, create_error=error.message)
    return _webhooks_page(201, secret_for=webhook, secret=secret, created=True)


@notify_admin.post("/webhooks/<int:webhook_id>/rotate")
def rotate_secret(webhook_id: int) -> Page | Response:
    if request.form.get("confirm") != "yes":
        return _webhooks_page(422, action_error=(
            "Secret not rotated: tick the box to confirm that the old secret stops working "
            "now."))
    try:
        secret = service.rotate_secret(actor=_actor(), webhook_id=webhook_id)
    except NotFound as error:
        flash(f"Secret not rotated: {error.message}", "error")
        return redirect(url_for("notify.webhooks_page"), code=303)
    webhook = service.get_webhook(actor=_actor(), webhook_id=webhook_id)
    return _webhooks_page(secret_for=webhook, secret=secret, created=False)


@notify_admin.post("/webhooks/<int:webhook_id>/delete")
def delete_webhook(webhook_id: int) -> Page | Response:
    if request.form.get("confirm") != "yes":
        return _webhooks_page(422, action_error=(
            "Not removed: tick the box to confirm that this receiver gets nothing more."))
    try:
        service.delete_webhook(actor=_actor(), webhook_id=webhook_id)
        flash("Webhook removed. Its past deliveries stay listed under Deliveries.", "info")
    except NotFound as error:
        flash(f"Not removed: {error.message}", "error")
    return redirect(url_for("notify.webhooks_page"), code=303)


# --- deliveries ----------------------------------------------------------------------


@notify_admin.get("/deliveries")
def deliveries_page() -> Page:
    status = request.args.get("status", "")
    if status not in {s.value for s in DeliveryStatus}:
        status = ""
    html = render_template("notify/deliveries.html",
                           deliveries=service.deliveries(actor=_actor(), status=status or None),
                           status=status, statuses=list(DeliveryStatus))
    return html, 200, {}
