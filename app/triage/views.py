"""The board: parse, call one service, render or redirect. (The ticket page is in
ticket_views.py and reuses `act` and `parse` from here.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from app.auth.models import Role, User
from app.auth.service import PERMISSIONS
from app.core.clock import now
from app.core.errors import ValidationFailed
from app.core.http import local_path
from app.incidents.links import incident_for_reports
from app.reports.models import Priority, Reason, Status
from app.sla import present
from app.triage import schemas, service

triage = Blueprint("triage", __name__)

# How often an open board asks whether new reports have arrived.


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


# --- presentation helpers for the board's templates ------------------------------------


def age(instant: datetime) -> str:
    """How long ago, in the one unit a glance needs: "now", "5 min", "3 h", "2 d"."""
    seconds = max((now() - instant).total_seconds(), 0)
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def local_time(instant: datetime, viewer: User) -> str:
    """The instant in the viewer's own timezone, e.g. "2026-01-05 10:03 CET"."""
    return instant.astimezone(service.actor_zone(viewer)).strftime("%Y-%m-%d %H:%M %Z")


def sla_badges(clocks: list[Any], status: str) -> list[present.Badge]:
    """A card's SLA badges as of now: time left or over, breached and at risk first."""
    return present.badges(clocks, now(), open_ticket=status in service.OPEN)


@triage.context_processor
def _helpers() -> dict[str, Any]:
    return {"age": age, "local_time": local_time, "sla_badges": sla_badges}


# --- the board -------------------------------------------------------------------------


def _query(filters: service.BoardFilters) -> str:
    return urlencode(filters.query_pairs())


def _filters(query: str) -> service.BoardFilters:
    try:
        return schemas.board_filters(MultiDict(parse_qsl(query, keep_blank_values=True)))
    except ValidationError as error:
        raise ValidationFailed("Some filters are invalid.",
                               fields=error.normalized_messages()) from error


def _canonical(query: str) -> str | None:
    try:
        return _query(_filters(query))
    except ValidationFailed:
        return None


def _flat(messages: Any) -> str:
    """marshmallow's nested messages ({"priority": {0: ["…"]}}) as one line of text."""
    if isinstance(messages, dict):
        return "; ".join(_flat(m) for m in messages.values())
    if isinstance(messages, list | tuple):
        return " ".join(_flat(m) for m in messages)
    return str(messages)


def _board_context(filters: service.BoardFilters | None, raw: MultiDict) -> dict[str, Any]:
    """What board.html and _columns.html need; `filters` is None when the URL's filters
    did not parse (the page then shows the errors instead of columns)."""
    actor = current_user._get_current_object()
    query = _query(filters) if filters is not None else ""
    board = service.board(actor=actor, filters=filters) if filters is not None else None
    role = Role(actor.role)
    return {
        "board": board,
        # Which incident each card's report is in: one query for the whole page.
        "incident_badges": incident_for_reports(
            card.report.id for column in board.columns for card in column.cards)
        if board is not None else {},
        "can_read_incidents": role.at_least(PERMISSIONS["incidents:read"]),
        "can_open_incident": role.at_least(PERMISSIONS["incidents:manage"]),
        "filters": filters,
        "form": raw,
        "query": query,
        "views": [(name, view_query, _canonical(view_query) == query)
                  for name, view_query in service.saved_views(actor=actor)],
        "staff": service.staff(actor=actor),
        "projects": service.projects(actor=actor),
        "categories": schemas.CATEGORIES,
        "priorities": list(Priority),
        "reasons": list(Reason),
        "statuses": list(Status),
        "sorts": schemas.SORTS,
        "can_triage": current_user.role != "viewer",
        "reveal_default": bool(current_user.reveal_sensitive),
        "poll_ms": current_app.config["BOARD_POLL_MS"],
    }


@triage.get("/board")
def board_page() -> tuple[str, int] | str:
    if request.headers.get("HX-Request"):
        filters = _filters(request.query_string.decode())
        return render_template("triage/_columns.html", **_board_context(filters, request.args))
    try:
        filters = schemas.board_filters(request.args)
    except ValidationError as error:
        context = _board_context(None, request.args)
        errors = {name: _flat(m) for name, m in error.normalized_messages().items()}
        return render_template("triage/board.html", filter_errors=errors, **context), 422
    return render_template("triage/board.html", **_board_context(filters, request.args))


@triage.get("/board/arrivals")
def arrivals() -> Response:
    after = request.args.get("after", "0")
    if not schemas.ID_PATTERN.match(after):
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


def _updated(changed: int) -> str:
    return f"Updated {changed} ticket{'s' if changed != 1 else ''}."


@triage.post("/board/actions")
def board_action() -> Response | str:
    """One action on many tickets. The value comes in `value`, or (from the bulk bar, whose
    buttons each pick an action) in the field named after the action."""
    action = request.form.get("action", "")
    data = parse(schemas.BulkActionSchema(), {
        "ids": request.form.getlist("ids"), "action": action,
        "value": request.form.get("value", request.form.get(action, ""))})
    if data["action"] == "incident":
        return _to_new_incident(data["ids"])
    back = request.form.get("back", "")
    filters = _filters(back)  # before acting: a bad return address must change nothing
    changed = act(data["ids"], data["action"], data["value"])
    if request.headers.get("HX-Request"):
        response = Response(render_template("triage/_columns.html",
                                            **_board_context(filters, MultiDict())))
        response.headers["X-Board-Message"] = _updated(changed)
        return response
    flash(_updated(changed), "info")
    return redirect(board_url(filters))


def _to_new_incident(ids: list[str]) -> Response:
    """The selected tickets go to the new-incident form, preselected (it checks that the
    reader may open incidents). htmx follows HX-Redirect with a full page load."""
    target = url_for("incidents.new_page", report=ids)
    if request.headers.get("HX-Request"):
        return Response(status=204, headers={"HX-Redirect": target})
    return redirect(target, code=303)


@triage.post("/board/views")
def save_view() -> Response:
    filters = _filters(request.form.get("query", ""))
    service.save_view(actor=current_user._get_current_object(),
                      name=request.form.get("name", ""), query=_query(filters))
    flash("View saved.", "info")
    return redirect(board_url(filters))


@triage.post("/settings/reveal-sensitive")
def reveal_setting() -> Response:
    reveal = request.form.get("reveal") == "on"
    service.set_reveal_sensitive(actor=current_user._get_current_object(), reveal=reveal)
    return redirect(local_path(request.form.get("back")) or url_for("triage.board_page"))


def board_url(filters: service.BoardFilters | None = None) -> str:
    """/board with the given filters."""
    query = _query(filters) if filters is not None else ""
    return url_for("triage.board_page") + (f"?{query}" if query else "")
