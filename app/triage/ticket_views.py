"""The ticket page: everything about one report, and what a responder does with it."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.reports.models import Priority, Status
from app.triage import schemas, service
from app.triage.views import act, parse

tickets = Blueprint("tickets", __name__)


@tickets.before_request
@login_required
def _signed_in() -> None:
    """Every page here is for signed-in staff; the services check the role."""


@tickets.get("/tickets/<public_id>")
def ticket_page(public_id: str) -> str:
    actor = current_user._get_current_object()
    return render_template(
        "triage/ticket.html", ticket=service.ticket(actor=actor, public_id=public_id),
        staff=service.staff(actor=actor), priorities=list(Priority), statuses=list(Status),
        can_triage=current_user.role != "viewer")


def _back_to_ticket(public_id: str, anchor: str = "") -> Response:
    return redirect(url_for("tickets.ticket_page", public_id=public_id) + anchor)


@tickets.post("/tickets/<public_id>/actions")
def ticket_action(public_id: str) -> Response:
    data = parse(schemas.BulkActionSchema(), {
        "ids": [public_id], "action": request.form.get("action", ""),
        "value": request.form.get("value", "")})
    act(data["ids"], data["action"], data["value"])
    return _back_to_ticket(public_id)


@tickets.post("/tickets/<public_id>/notes")
def add_note(public_id: str) -> Response:
    data = parse(schemas.CommentSchema(), {"body": request.form.get("body", "")})
    service.add_note(actor=current_user._get_current_object(), public_id=public_id,
                     body=data["body"])
    return _back_to_ticket(public_id, "#notes")


@tickets.post("/tickets/<public_id>/replies")
def reply(public_id: str) -> Response:
    data = parse(schemas.CommentSchema(), {"body": request.form.get("body", "")})
    service.reply(actor=current_user._get_current_object(), public_id=public_id,
                  body=data["body"])
    flash("Reply sent: the reporter sees it on their status page.", "info")
    return _back_to_ticket(public_id, "#replies")


@tickets.post("/tickets/<public_id>/merge")
def merge(public_id: str) -> Response:
    data = parse(schemas.MergeSchema(), {"into": request.form.get("into", "").strip()})
    survivor = service.merge(actor=current_user._get_current_object(),
                             duplicate_id=public_id, into_id=data["into"])
    flash(f"Merged {public_id} into {survivor.public_id}.", "info")
    return _back_to_ticket(survivor.public_id)
