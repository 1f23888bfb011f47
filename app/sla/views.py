"""Admin pages for SLA calendars and the projects' policies (admins: "sla:manage").

Thin, like the other admin pages: parse the form (app.sla.schemas), call one service
(app.sla.admin, which checks the role and audits through app.sla.policies), render or
redirect. A form that fails is shown again, status 422 (409 for a name in use), with each
message next to its field and everything typed kept.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.auth.models import User
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.moderation import CATEGORIES
from app.reports.models import Priority
from app.sla import admin, policies, present, schemas
from app.sla.models import DAYS

sla_admin = Blueprint("sla_admin", __name__, url_prefix="/admin/sla")

FIXABLE = (ValidationFailed, Conflict, NotFound)
Page = tuple[str, int]
# The service's field names, as the calendar form names them.
CALENDAR_FIELDS = {"week": "hours_mon", "extra_holidays": "extra_holidays",
                   "holiday_country": "holiday_country", "timezone": "timezone", "name": "name"}


@sla_admin.before_request
@login_required
def _signed_in() -> None:
    """Admin pages are for signed-in staff; the services check the admin role."""


def _actor() -> User:
    return current_user._get_current_object()


def _status(error: Exception) -> int:
    return 409 if isinstance(error, Conflict) else 422


def _service_errors(error: Exception, fields: dict[str, str]) -> dict[str, str]:
    """A service's refusal as a message per form field (the form's top otherwise)."""
    found: dict[str, str] = {}
    for name, messages in (getattr(error, "fields", None) or {}).items():
        text = " ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
        found[fields.get(name, "form")] = text
    return found or {"form": getattr(error, "message", str(error))}


@sla_admin.get("")
def index() -> Page:
    html = render_template("sla/admin.html", overview=admin.overview(actor=_actor()),
                           week_text=schemas.week_text)
    return html, 200


# --- calendars ---------------------------------------------------------------------------


def _calendar_page(calendar_id: int | None, status: int = 200, **context: Any) -> Page:
    actor = _actor()
    calendar = (policies.get_calendar(actor=actor, calendar_id=calendar_id)
                if calendar_id is not None else None)
    if calendar is None:
        policies.list_calendars(actor=actor)  # admins only, also for an empty form
    context.setdefault("form", schemas.calendar_raw(calendar))
    context.setdefault("errors", {})
    html = render_template(
        "sla/calendar.html", calendar=calendar, timezones=schemas.timezones(),
        countries=schemas.holiday_countries(), subdivisions=schemas.holiday_subdivisions(),
        days=DAYS, day_names=schemas.DAY_NAMES, **context)
    return html, status


@sla_admin.get("/calendars/new")
def new_calendar() -> Page:
    return _calendar_page(None)


@sla_admin.get("/calendars/<int:calendar_id>")
def calendar_page(calendar_id: int) -> Page:
    return _calendar_page(calendar_id)


def _save_calendar(calendar_id: int | None) -> Page | Response:
    form = schemas.parse_calendar(request.form)
    if form.errors:
        return _calendar_page(calendar_id, 422, form=form.raw, errors=form.errors)
    try:
        calendar = admin.save_calendar(actor=_actor(), calendar_id=calendar_id,
                                       values=form.values)
    except FIXABLE as error:
        if isinstance(error, NotFound) and calendar_id is not None:
            raise
        return _calendar_page(calendar_id, _status(error), form=form.raw,
                              errors=_service_errors(error, CALENDAR_FIELDS))
    flash(f"Calendar {calendar.name} saved. Clocks started or re-targeted from now on "
          "count in it; running clocks keep their due times.", "info")
    return redirect(url_for("sla_admin.index"), code=303)


@sla_admin.post("/calendars")
def create_calendar() -> Page | Response:
    return _save_calendar(None)


@sla_admin.post("/calendars/<int:calendar_id>")
def update_calendar(calendar_id: int) -> Page | Response:
    return _save_calendar(calendar_id)


# --- policies ------------------------------------------------------------------------------


def _policy_page(project_id: int, status: int = 200, **context: Any) -> Page:
    actor = _actor()
    project, policy = admin.project_policy(actor=actor, project_id=project_id)
    calendars = policies.list_calendars(actor=actor)
    if "form" not in context:
        raw, rows = schemas.policy_raw(policy, calendars[0].id if calendars else None)
        context.update(form=raw, category_rows=rows)
    context.setdefault("errors", {})
    html = render_template(
        "sla/policy.html", project=project, policy=policy, calendars=calendars,
        metrics=schemas.METRICS, priorities=list(Priority), categories=CATEGORIES,
        metric_label=present.metric_label, target_key=schemas.target_key, **context)
    return html, status


@sla_admin.get("/policies/<int:project_id>")
def policy_page(project_id: int) -> Page:
    return _policy_page(project_id)


@sla_admin.post("/policies/<int:project_id>")
def save_policy(project_id: int) -> Page | Response:
    actor = _actor()
    project, _ = admin.project_policy(actor=actor, project_id=project_id)
    calendar_ids = {c.id for c in policies.list_calendars(actor=actor)}
    form = schemas.parse_policy(request.form, calendar_ids)
    kept = {"form": form.raw, "category_rows": form.category_rows}
    if form.errors:
        return _policy_page(project_id, 422, errors=form.errors, **kept)
    try:
        admin.save_policy(actor=actor, project_id=project_id, settings=form.settings,
                          targets=form.targets, category_targets=form.category_targets)
    except FIXABLE as error:
        fields = {"calendar_id": "calendar_id", "at_risk_share": "at_risk_percent",
                  "oncall_email": "oncall_email"}
        return _policy_page(project_id, _status(error), errors=_service_errors(error, fields),
                            **kept)
    flash(f"SLA policy of {project.name} saved. New and re-targeted clocks use it; "
          "running clocks keep their due times.", "info")
    return redirect(url_for("sla_admin.policy_page", project_id=project_id), code=303)


@sla_admin.post("/policies/<int:project_id>/defaults")
def apply_defaults(project_id: int) -> Response:
    admin.apply_defaults(actor=_actor(), project_id=project_id)
    flash("Default policy applied: business hours Mon–Fri 09:00–17:00 UTC, P0 around the "
          "clock, and the default targets it did not have yet.", "info")
    return redirect(url_for("sla_admin.policy_page", project_id=project_id), code=303)
