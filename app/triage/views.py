"""The board and the ticket page. Thin: parse, call one service, render or redirect."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.core.errors import ValidationFailed
from app.reports.models import Priority, Reason, Status
from app.triage import schemas, service

triage = Blueprint("triage", __name__)


@triage.before_request
@login_required
def _signed_in() -> None:
    """Every page here is for signed-in staff; the services check the role."""


def parse(schema: Any, data: Any) -> Any:
    try:
        return schema.load(data)
    except ValidationError as error:
        raise ValidationFailed("Some fields are missing or invalid.",
                               fields=error.normalized_messages()) from error


def _filters(query: str) -> service.BoardFilters:
    try:
        return schemas.board_filters(MultiDict(parse_qsl(query)))
    except ValidationError as error:
        raise ValidationFailed("Some filters are invalid.",
                               fields=error.normalized_messages()) from error


def _board_context(query: str) -> dict[str, Any]:
    actor = current_user._get_current_object()
    filters = _filters(query)
    return {
        "board": service.board(actor=actor, filters=filters),
        "filters": filters,
        "query": query,
        "views": service.saved_views(actor=actor),
        "staff": service.staff(actor=actor),
        "projects": service.projects(actor=actor),
        "categories": schemas.CATEGORIES,
        "priorities": list(Priority),
        "reasons": list(Reason),
        "statuses": list(Status),
        "can_triage": current_user.role != "viewer",
    }


@triage.get("/board")
def board_page() -> str:
    context = _board_context(request.query_string.decode())
    if request.headers.get("HX-Request"):
        return render_template("triage/_columns.html", **context)
    return render_template("triage/board.html", **context)


@triage.get("/board/arrivals")
def arrivals() -> Response:
    after = request.args.get("after", "0")
    if not after.isdigit():
        raise ValidationFailed("after must be a report number.", fields={"after": ["Invalid."]})
    count = service.arrivals_since(actor=current_user._get_current_object(),
                                   filters=_filters(request.query_string.decode()),
                                   after_id=int(after))
    return jsonify({"count": count})


def act(ids: list[str], action: str, value: str) -> int:
    """Apply one board action (move, dismiss, priority, assign) to tickets."""
    actor = current_user._get_current_object()
    if action == "move":
        return service.move(actor=actor, ids=ids, status=Status(value))
    if action == "dismiss":
        return service.move(actor=actor, ids=ids, status=Status.DISMISSED)
    if action == "priority":
        return service.set_priority(actor=actor, ids=ids, priority=Priority(value))
    assignee = actor.id if value == "me" else (int(value) if value else None)
    return service.assign(actor=actor, ids=ids, assignee_id=assignee)


@triage.post("/board/actions")
def board_action() -> Response | str:
    data = parse(schemas.BulkActionSchema(), {
        "ids": request.form.getlist("ids"), "action": request.form.get("action", ""),
        "value": request.form.get("value", "")})
    changed = act(data["ids"], data["action"], data["value"])
    back = request.form.get("back", "")
    if request.headers.get("HX-Request"):
        return render_template("triage/_columns.html", **_board_context(back))
    flash(f"Updated {changed} ticket{'s' if changed != 1 else ''}.", "info")
    return redirect(url_for("triage.board_page") + (f"?{back}" if back else ""))


@triage.post("/board/views")
def save_view() -> Response:
    query = request.form.get("query", "")
    service.save_view(actor=current_user._get_current_object(),
                      name=request.form.get("name", ""), query=query)
    flash("View saved.", "info")
    return redirect(url_for("triage.board_page") + (f"?{query}" if query else ""))


@triage.post("/settings/reveal-sensitive")
def reveal_setting() -> Response:
    reveal = request.form.get("reveal") == "on"
    service.set_reveal_sensitive(actor=current_user._get_current_object(), reveal=reveal)
    target = request.form.get("back", "")
    return redirect(target if target.startswith("/") and not target.startswith("//")
                    else url_for("triage.board_page"))


def board_url(**params: Any) -> str:
    """/board with the given filters (used by templates for chips and saved views)."""
    clean = {k: v for k, v in params.items() if v not in (None, "", [], ())}
    return url_for("triage.board_page") + (f"?{urlencode(clean, doseq=True)}" if clean else "")
