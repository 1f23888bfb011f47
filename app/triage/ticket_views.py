"""The ticket page: everything about one report, and what a responder does with it.

A form that fails (an empty note, an unknown ticket to merge into) shows the page again
with the error next to that form and the draft kept; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.auth.service import PERMISSIONS
from app.core.clock import now
from app.core.errors import AppError, Conflict, NotFound, ValidationFailed
from app.incidents.links import incident_for_reports
from app.reports.models import Priority, Status
from app.sla import panel, present
from app.triage import schemas, service
from app.triage.views import act, parse

tickets = Blueprint("tickets", __name__)

# Errors a person can fix by changing what they typed; anything else (403) stays an error.
FIXABLE = (ValidationFailed, Conflict, NotFound)
TOO_LONG_OR_EMPTY = f"write between 1 and {service.MAX_COMMENT:,} characters"
PARSE_FAILED = "Some fields are missing or invalid."  # what triage.views.parse raises

ACTIONS = {
    "report.received": "Report received",
    "report.tagged": "Tagged by moderation",
    "report.tagging_failed": "Moderation failed (retried later)",
    "report.routed": "Priority set by routing",
    "report.status_changed": "Status changed",
    "report.priority_changed": "Priority changed",
    "report.assigned": "Assignee changed",
    "report.note_added": "Internal note added",
    "report.replied": "Public reply sent",
    "report.merged": "Merged as a duplicate",
    "report.duplicate_merged": "Duplicate merged in",
    "sla.retargeted": "SLA target changed",
    "sla.at_risk": "SLA at risk",
    "sla.breached": "SLA breached",
    "sla.withdrawn": "SLA clock withdrawn",
}
ACTORS = {"system": "Flagdesk", "reporter": "Reporter"}


@tickets.before_request
@login_required
def _signed_in() -> None:
    """Every page here is for signed-in staff; the services check the role."""


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    actor: str
    action: str
    before: str | None = None
    after: str | None = None
    detail: str | None = None


def _value(key: str, value: Any, ticket: service.Ticket) -> str:
    if value is None:
        return "nobody" if key == "assignee_id" else "—"
    if key == "assignee_id":
        return ticket.people.get(value, f"user {value}")
    if key == "merged_into_id":
        return ticket.ticket_ids.get(value, f"ticket {value}")
    if key == "status":
        return str(value).replace("_", " ").capitalize()
    return str(value)


def _detail(event: AuditEvent) -> str | None:
    after = event.after or {}
    if event.action == "report.received":
        reason = str(after.get("reason", "")).replace("_or_", " or ").replace("_", " ")
        return f"{reason}, {after.get('priority')}"
    if event.action == "report.tagged":
        flagged = ", ".join(after.get("flagged") or []) or "nothing flagged"
        return f"{flagged} ({after.get('backend')}, {after.get('model')})"
    if event.action == "report.tagging_failed":
        return str(after.get("error", ""))
    if event.action == "report.duplicate_merged":
        return str(after.get("duplicate", ""))
    if event.action == "report.routed" and after.get("rule"):
        return f"rule: {after['rule']}"
    return None


def _instant(value: Any, zone: Any) -> str:
    """A stored ISO instant in the reader's zone ("—" when there is none)."""
    if not value:
        return "—"
    return datetime.fromisoformat(str(value)).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _target(facts: dict[str, Any]) -> str:
    """A target and where it came from: "4h (P2)", "30m (self-harm, around the clock)"."""
    source = facts.get("category") or facts.get("priority") or "?"
    counted = ", around the clock" if facts.get("always_on") else ""
    return f"{present.target(facts.get('target_minutes') or 0)} ({source}{counted})"


def _sla_change(event: AuditEvent, zone: Any) -> tuple[str | None, str | None, str | None]:
    """(before, after, detail) of an SLA event, in words."""
    before, after = event.before or {}, event.after or {}
    facts = after if "metric" in after else before
    metric = present.metric_label(facts.get("metric", ""), facts.get("sequence") or 0)
    if event.action == "sla.retargeted":
        start = "the reply" if facts.get("metric") == "next_update" else "receipt"
        return (_target(before), _target(after),
                f"{metric}, counted from {start}: due {_instant(after.get('due_at'), zone)}")
    if event.action == "sla.at_risk":
        return None, None, f"{metric}: due {_instant(after.get('due_at'), zone)}"
    if event.action == "sla.breached":
        late = "; found after the fact, nobody was paged" if after.get("late") else ""
        return None, None, (f"{metric}: the {present.target(after.get('target_minutes') or 0)}"
                            f" target ran out {_instant(after.get('due_at'), zone)}{late}")
    if event.action == "sla.withdrawn":
        reason = str(after.get("reason") or "")
        reason = "merged into another ticket" if reason == "merged" else reason
        return None, None, f"{metric}: {reason}" if reason else metric
    return None, None, None


def history_rows(ticket: service.Ticket, zone: Any) -> list[HistoryRow]:
    """The audit events in words: when (in the reader's zone), who, what, before → after."""
    rows = []
    for event in ticket.history:
        before, after = event.before or {}, event.after or {}
        if event.action.startswith("sla."):
            old, new, detail = _sla_change(event, zone)
        else:
            changed = next((k for k in ("status", "priority", "assignee_id", "merged_into_id")
                            if k in before), None)
            old = _value(changed, before.get(changed), ticket) if changed else None
            new = _value(changed, after.get(changed), ticket) if changed else None
            detail = _detail(event)
        if event.actor_type == "user":
            actor = ticket.people.get(event.actor_id or 0, "a former user")
        else:
            actor = ACTORS.get(event.actor_type, event.actor_type)
        rows.append(HistoryRow(
            at=event.at.astimezone(zone), actor=actor,
            action=ACTIONS.get(event.action,
                               event.action.rpartition(".")[2].replace("_", " ").capitalize()),
            before=old, after=new, detail=detail))
    return rows


def _page(public_id: str, *, status: int = 200, errors: dict[str, str] | None = None,
          drafts: dict[str, str] | None = None) -> tuple[str, int]:
    actor = current_user._get_current_object()
    ticket = service.ticket(actor=actor, public_id=public_id)
    zone = service.actor_zone(actor)
    can_triage = Role(actor.role).at_least(Role.RESPONDER)
    report_id = ticket.report.id
    html = render_template(
        "triage/ticket.html", ticket=ticket, history=history_rows(ticket, zone),
        staff=service.staff(actor=actor) if can_triage else [],
        priorities=list(Priority), statuses=list(Status), can_triage=can_triage,
        sensitive_categories=[c for c in ticket.report.flagged_categories or []
                              if service.is_sensitive([c])],
        sla_clocks=[present.panel_row(c, now())
                    for c in panel.ticket_clocks(actor=actor, report=ticket.report)],
        local=_local(zone), max_comment=service.MAX_COMMENT,
        # The incident it is in (the badge) and what the reader may do about incidents
        # (the suggestions panel comes from the incidents pages, loaded by htmx).
        incident=incident_for_reports([report_id]).get(report_id),
        can_read_incidents=Role(actor.role).at_least(PERMISSIONS["incidents:read"]),
        can_open_incident=Role(actor.role).at_least(PERMISSIONS["incidents:manage"]),
        errors=errors or {}, drafts=drafts or {})
    return html, status


def _local(zone: Any) -> Callable[[datetime], str]:
    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    return local


@tickets.get("/tickets/<public_id>")
def ticket_page(public_id: str) -> tuple[str, int]:
    return _page(public_id)


def _back_to_ticket(public_id: str, anchor: str = "") -> Response:
    return redirect(url_for("tickets.ticket_page", public_id=public_id) + anchor, code=303)


def _explain(error: AppError, fallback: str | None = None) -> str:
    """The service's own message; for a form that did not parse, the fallback or the
    first field's message."""
    if not isinstance(error, ValidationFailed) or error.message != PARSE_FAILED:
        return error.message
    if fallback:
        return fallback
    if "action" in error.fields:
        return "Unknown action."
    messages = [m for ms in error.fields.values() for m in (ms if isinstance(ms, list) else [ms])
                if isinstance(m, str)]
    return messages[0] if messages else "Invalid value."


def _status(error: AppError) -> int:
    # The page itself exists (it is shown again); only what was typed is wrong.
    return 409 if isinstance(error, Conflict) else 422


def _done(action: str, value: str, changed: int) -> str:
    if not changed:
        return "Nothing to change."
    if action == "move":
        return f"Status set to {value.replace('_', ' ')}."
    if action == "dismiss":
        return "Ticket dismissed."
    if action == "priority":
        return f"Priority set to {value}."
    return "Assigned to you." if value == "me" else (
        "Assignee changed." if value else "Ticket unassigned.")


@tickets.post("/tickets/<public_id>/actions")
def ticket_action(public_id: str) -> Response | tuple[str, int]:
    try:
        data = parse(schemas.BulkActionSchema(), {
            "ids": [public_id], "action": request.form.get("action", ""),
            "value": request.form.get("value", "")})
        changed = act(data["ids"], data["action"], data["value"])
    except FIXABLE as error:
        return _page(public_id, status=_status(error),
                     errors={"actions": f"Nothing changed: {_explain(error)}"})
    flash(_done(data["action"], data["value"], changed), "info")
    return _back_to_ticket(public_id)


def _comment(public_id: str, kind: str, post: Callable[..., Any]) -> Response | tuple[str, int]:
    body = request.form.get("body", "")
    try:
        data = parse(schemas.CommentSchema(), {"body": body})
        post(actor=current_user._get_current_object(), public_id=public_id, body=data["body"])
    except FIXABLE as error:
        what = "The note was not saved" if kind == "note" else "The reply was not sent"
        message = error.message if isinstance(error, NotFound) else TOO_LONG_OR_EMPTY
        return _page(public_id, status=_status(error), errors={kind: f"{what}: {message}."},
                     drafts={kind: body})
    if kind == "note":
        flash("Internal note added.", "info")
        return _back_to_ticket(public_id, "#notes")
    flash("Reply sent: the reporter sees it on their status page.", "info")
    return _back_to_ticket(public_id, "#replies")


@tickets.post("/tickets/<public_id>/notes")
def add_note(public_id: str) -> Response | tuple[str, int]:
    return _comment(public_id, "note", service.add_note)


@tickets.post("/tickets/<public_id>/replies")
def reply(public_id: str) -> Response | tuple[str, int]:
    return _comment(public_id, "reply", service.reply)


@tickets.post("/tickets/<public_id>/merge")
def merge(public_id: str) -> Response | tuple[str, int]:
    into = request.form.get("into", "").strip()
    try:
        data = parse(schemas.MergeSchema(), {"into": into})
        survivor = service.merge(actor=current_user._get_current_object(),
                                 duplicate_id=public_id, into_id=data["into"])
    except FIXABLE as error:
        fallback = "give the id of the ticket that stays, e.g. rep_…"
        return _page(public_id, status=_status(error),
                     errors={"merge": f"Not merged: {_explain(error, fallback)}"},
                     drafts={"merge": into})
    flash(f"Merged {public_id} into {survivor.public_id}.", "info")
    return _back_to_ticket(survivor.public_id)
