"""Administering SLA calendars, policies and targets (the admin editor and `flask sla`).

Every change needs "sla:manage" (admins) and writes one AuditEvent; no actor means the
operator at the command line. Changes apply to clocks started or re-targeted afterwards:
running clocks keep the due instants they were given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.audit.service import record
from app.auth.models import User
from app.auth.service import require
from app.core.clock import now
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.moderation import CATEGORIES
from app.projects.models import Project
from app.reports.models import Priority
from app.sla import calendars
from app.sla.models import DAYS, Metric, SlaCalendar, SlaPolicy, SlaTarget

# Business time: 8 working hours make a day.
HOUR, DAY = 60, 8 * 60
MAX_TARGET_MINUTES = 60 * 24 * 60  # 60 days
DEFAULT_CALENDAR = "Business hours (UTC)"
DEFAULT_WEEK: dict[str, list[list[str]]] = {d: [["09:00", "17:00"]] for d in DAYS[:5]}
# (metric, priority, minutes): P0 counts around the clock, the rest in business hours.
DEFAULT_TARGETS: tuple[tuple[Metric, Priority, int], ...] = (
    (Metric.FIRST_RESPONSE, Priority.P0, 15),
    (Metric.FIRST_RESPONSE, Priority.P1, 1 * HOUR),
    (Metric.FIRST_RESPONSE, Priority.P2, 4 * HOUR),
    (Metric.FIRST_RESPONSE, Priority.P3, 1 * DAY),
    (Metric.FIRST_RESPONSE, Priority.P4, 3 * DAY),
    (Metric.NEXT_UPDATE, Priority.P0, 1 * HOUR),
    (Metric.NEXT_UPDATE, Priority.P1, 4 * HOUR),
    (Metric.NEXT_UPDATE, Priority.P2, 1 * DAY),
    (Metric.NEXT_UPDATE, Priority.P3, 2 * DAY),
    (Metric.NEXT_UPDATE, Priority.P4, 5 * DAY),
    (Metric.RESOLUTION, Priority.P0, 4 * HOUR),
    (Metric.RESOLUTION, Priority.P1, 1 * DAY),
    (Metric.RESOLUTION, Priority.P2, 3 * DAY),
    (Metric.RESOLUTION, Priority.P3, 5 * DAY),
    (Metric.RESOLUTION, Priority.P4, 10 * DAY),
)
# A person at risk must not wait for the priority's target.
DEFAULT_CATEGORY_TARGETS: tuple[tuple[Metric, str, int], ...] = (
    (Metric.FIRST_RESPONSE, "self-harm", 30),
)


def _check(actor: User | None) -> None:
    if actor is not None:
        require(actor, "sla:manage")


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


# --- calendars ---------------------------------------------------------------------------


def _calendar_settings(calendar: SlaCalendar) -> dict[str, Any]:
    return {"name": calendar.name, "timezone": calendar.timezone, "week": calendar.week,
            "holiday_country": calendar.holiday_country,
            "holiday_subdivision": calendar.holiday_subdivision,
            "extra_holidays": list(calendar.extra_holidays or [])}


def list_calendars(*, actor: User | None) -> list[SlaCalendar]:
    _check(actor)
    return list(db.session.scalars(select(SlaCalendar).order_by(SlaCalendar.name)))


def get_calendar(*, actor: User | None, calendar_id: int | None = None,
                 name: str | None = None) -> SlaCalendar:
    """A calendar by id or by name; NotFound otherwise."""
    _check(actor)
    calendar = (db.session.get(SlaCalendar, calendar_id) if calendar_id is not None else
                db.session.scalar(select(SlaCalendar).where(SlaCalendar.name == name)))
    if calendar is None:
        raise NotFound(f"No SLA calendar {calendar_id if calendar_id is not None else name!r}.")
    return calendar


def _clean(*, name: str, timezone: str, week: Mapping[str, Sequence[Sequence[str]]],
           holiday_country: str | None, holiday_subdivision: str | None,
           extra_holidays: Sequence[str]) -> dict[str, Any]:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise _invalid("name", "Name the calendar (at most 120 characters).")
    country = (holiday_country or "").strip().upper() or None
    subdivision = (holiday_subdivision or "").strip().upper() or None
    try:
        extra = sorted({date.fromisoformat(str(d).strip()).isoformat() for d in extra_holidays})
    except ValueError:
        raise _invalid("extra_holidays", "Holidays are dates as YYYY-MM-DD.") from None
    plain_week = {str(day): [[str(a), str(b)] for a, b in spans] for day, spans in week.items()
                  if spans}
    try:
        calendars.validate(timezone=timezone, week=plain_week, holiday_country=country,
                           holiday_subdivision=subdivision, extra_holidays=extra)
    except (ValueError, TypeError) as error:
        text = str(error).lower()
        field = ("timezone" if "timezone" in text else "holiday_country"
                 if any(w in text for w in ("country", "subdivision", "region")) else "week")
        raise _invalid(field, str(error)) from None
    return {"name": name, "timezone": timezone, "week": plain_week, "holiday_country": country,
            "holiday_subdivision": subdivision, "extra_holidays": extra}


def _unique_name(name: str, calendar_id: int | None) -> None:
    clash = db.session.scalar(select(SlaCalendar.id).where(SlaCalendar.name == name))
    if clash is not None and clash != calendar_id:
        raise Conflict(f"An SLA calendar named {name!r} exists already.")


def create_calendar(*, actor: User | None, name: str, timezone: str = "UTC",
                    week: Mapping[str, Sequence[Sequence[str]]] | None = None,
                    holiday_country: str | None = None, holiday_subdivision: str | None = None,
                    extra_holidays: Sequence[str] = ()) -> SlaCalendar:
    """A new calendar (Mon-Fri 09:00-17:00 unless `week` says otherwise)."""
    _check(actor)
    values = _clean(name=name, timezone=timezone, week=DEFAULT_WEEK if week is None else week,
                    holiday_country=holiday_country, holiday_subdivision=holiday_subdivision,
                    extra_holidays=extra_holidays)
    _unique_name(values["name"], None)
    current = now()
    calendar = SlaCalendar(**values, created_at=current, updated_at=current)
    db.session.add(calendar)
    db.session.flush()
    calendars.forget(calendar.id)
    record(action="sla.calendar_created", subject_type="sla_calendar", subject_id=calendar.id,
           actor=actor, after=_calendar_settings(calendar))
    db.session.commit()
    return calendar


def update_calendar(*, actor: User | None, calendar_id: int, name: str | None = None,
                    timezone: str | None = None,
                    week: Mapping[str, Sequence[Sequence[str]]] | None = None,
                    holiday_country: str | None = None, holiday_subdivision: str | None = None,
                    extra_holidays: Sequence[str] | None = None,
                    clear_holiday_country: bool = False) -> SlaCalendar:
    """Change the given settings of a calendar (None leaves one as it is)."""
    calendar = get_calendar(actor=actor, calendar_id=calendar_id)
    before = _calendar_settings(calendar)
    country = None if clear_holiday_country else (
        holiday_country if holiday_country is not None else calendar.holiday_country)
    subdivision = None if clear_holiday_country else (
        holiday_subdivision if holiday_subdivision is not None
        else calendar.holiday_subdivision)
    values = _clean(name=calendar.name if name is None else name,
                    timezone=calendar.timezone if timezone is None else timezone,
                    week=calendar.week if week is None else week, holiday_country=country,
                    holiday_subdivision=subdivision,
                    extra_holidays=calendar.extra_holidays if extra_holidays is None
                    else extra_holidays)
    _unique_name(values["name"], calendar.id)
    if values == before:
        return calendar
    for key, value in values.items():
        setattr(calendar, key, value)
    calendar.updated_at = now()
    calendars.forget(calendar.id)
    record(action="sla.calendar_updated", subject_type="sla_calendar", subject_id=calendar.id,
           actor=actor, before=before, after=values)
    db.session.commit()
    return calendar


def set_hours(*, actor: User | None, calendar_id: int, days: Sequence[str],
              spans: Sequence[Sequence[str]]) -> SlaCalendar:
    """Set the working spans of some weekdays (no spans: not a working day)."""
    calendar = get_calendar(actor=actor, calendar_id=calendar_id)
    unknown = [d for d in days if d not in DAYS]
    if unknown or not days:
        raise _invalid("days", f"Name days as {', '.join(DAYS)}.")
    week = {**calendar.week, **{d: [list(s) for s in spans] for d in days}}
    return update_calendar(actor=actor, calendar_id=calendar_id, week=week)


def add_holiday(*, actor: User | None, calendar_id: int, day: str) -> SlaCalendar:
    """Add a date the team does not work, on top of the public holidays."""
    calendar = get_calendar(actor=actor, calendar_id=calendar_id)
    return update_calendar(actor=actor, calendar_id=calendar_id,
                           extra_holidays=[*calendar.extra_holidays, day])


# --- policies and targets ---------------------------------------------------------------


def _project(project_id: int) -> Project:
    project = db.session.get(Project, project_id)
    if project is None:
        raise NotFound(f"No project {project_id}.")
    return project


def get_policy(*, actor: User | None, project_id: int) -> SlaPolicy | None:
    """The project's policy with its calendar and targets, or None if it has none."""
    _check(actor)
    _project(project_id)
    return db.session.scalar(
        select(SlaPolicy).where(SlaPolicy.project_id == project_id)
        .options(selectinload(SlaPolicy.targets), selectinload(SlaPolicy.calendar)))


def list_policies(*, actor: User | None) -> list[SlaPolicy]:
    _check(actor)
    return list(db.session.scalars(
        select(SlaPolicy).join(Project).order_by(Project.name)
        .options(selectinload(SlaPolicy.targets), selectinload(SlaPolicy.calendar),
                 selectinload(SlaPolicy.project))))


def _policy_settings(policy: SlaPolicy) -> dict[str, Any]:
    return {"calendar_id": policy.calendar_id, "at_risk_share": policy.at_risk_share,
            "p0_around_the_clock": policy.p0_around_the_clock,
            "oncall_email": policy.oncall_email}


def _email(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    local, _, domain = value.rpartition("@")
    if not local or "." not in domain or len(value) > 254 or any(c.isspace() for c in value):
        raise _invalid("oncall_email", "Not an e-mail address.")
    return value


_UNSET: Any = object()


def update_policy(*, actor: User | None, project_id: int, calendar_id: int | None = None,
                  at_risk_share: float | None = None, p0_around_the_clock: bool | None = None,
                  oncall_email: str | None = _UNSET) -> SlaPolicy:
    """Create or change the project's policy (a new one needs a calendar)."""
    _check(actor)
    _project(project_id)
    policy = get_policy(actor=actor, project_id=project_id)
    if calendar_id is not None:
        get_calendar(actor=actor, calendar_id=calendar_id)
    if at_risk_share is not None and not 0 < at_risk_share < 1:
        raise _invalid("at_risk_share", "The at-risk share is between 0 and 1, e.g. 0.75.")
    created = policy is None
    if policy is None:
        if calendar_id is None:
            raise _invalid("calendar_id", "Pick the calendar the policy counts time in.")
        current = now()
        policy = SlaPolicy(project_id=project_id, calendar_id=calendar_id, at_risk_share=0.75,
                           p0_around_the_clock=True, created_at=current, updated_at=current)
        db.session.add(policy)
    before = None if created else _policy_settings(policy)
    if calendar_id is not None:
        policy.calendar_id = calendar_id
    if at_risk_share is not None:
        policy.at_risk_share = float(at_risk_share)
    if p0_around_the_clock is not None:
        policy.p0_around_the_clock = p0_around_the_clock
    if oncall_email is not _UNSET:
        policy.oncall_email = _email(oncall_email)
    after = _policy_settings(policy)
    if after != before:
        policy.updated_at = now()
        db.session.flush()
        record(action="sla.policy_created" if created else "sla.policy_updated",
               subject_type="sla_policy", subject_id=policy.id, actor=actor, before=before,
               after={"project_id": project_id, **after})
    db.session.commit()
    db.session.refresh(policy)
    return policy


def set_target(*, actor: User | None, project_id: int, metric: Metric | str, minutes: int,
               priority: Priority | str | None = None, category: str | None = None) -> SlaTarget:
    """Set the minutes of calendar time for a metric, for a priority or for a flagged
    moderation category (which wins over the priority when both match)."""
    _check(actor)
    policy = get_policy(actor=actor, project_id=project_id)
    if policy is None:
        raise Conflict("The project has no SLA policy yet: create one (or run the defaults).")
    try:
        metric = Metric(metric)
    except ValueError:
        raise _invalid("metric", f"Metric is one of {', '.join(Metric)}.") from None
    if (priority is None) == (category is None):
        raise _invalid("priority", "Give either a priority or a category.")
    if priority is not None:
        try:
            priority = Priority(priority)
        except ValueError:
            raise _invalid("priority", "Priority is one of P0 to P4.") from None
    if category is not None and category not in CATEGORIES:
        raise _invalid("category", f"Unknown moderation category {category!r}.")
    if not isinstance(minutes, int) or not 0 < minutes <= MAX_TARGET_MINUTES:
        raise _invalid("minutes", f"Minutes between 1 and {MAX_TARGET_MINUTES} (60 days).")
    target = next((t for t in policy.targets if t.metric == metric and t.priority == priority
                   and t.category == category), None)
    before = None if target is None else {"minutes": target.minutes}
    if target is None:
        target = SlaTarget(metric=metric, priority=priority, category=category, minutes=minutes)
        policy.targets.append(target)
    elif target.minutes == minutes:
        return target
    target.minutes = minutes
    policy.updated_at = now()
    db.session.flush()
    record(action="sla.target_set", subject_type="sla_policy", subject_id=policy.id,
           actor=actor, before=before,
           after={"metric": str(metric), "priority": str(priority) if priority else None,
                  "category": category, "minutes": minutes})
    db.session.commit()
    return target


def remove_target(*, actor: User | None, project_id: int, target_id: int) -> None:
    """Remove a target: tickets started afterwards get no clock from it."""
    _check(actor)
    policy = get_policy(actor=actor, project_id=project_id)
    target = next((t for t in (policy.targets if policy else []) if t.id == target_id), None)
    if policy is None or target is None:
        raise NotFound(f"No SLA target {target_id} in project {project_id}'s policy.")
    record(action="sla.target_removed", subject_type="sla_policy", subject_id=policy.id,
           actor=actor, before={"metric": str(target.metric),
                                "priority": str(target.priority) if target.priority else None,
                                "category": target.category, "minutes": target.minutes})
    policy.targets.remove(target)
    policy.updated_at = now()
    db.session.commit()


def defaults(*, actor: User | None, project_id: int) -> SlaPolicy:
    """Give the project a sensible policy: the business-hours calendar (Mon-Fri
    09:00-17:00 UTC, created if missing), P0 around the clock, and every default target
    the policy does not have yet (existing targets are kept)."""
    _check(actor)
    _project(project_id)
    calendar = db.session.scalar(select(SlaCalendar).where(SlaCalendar.name == DEFAULT_CALENDAR))
    if calendar is None:
        calendar = create_calendar(actor=actor, name=DEFAULT_CALENDAR)
    policy = get_policy(actor=actor, project_id=project_id)
    if policy is None:
        policy = update_policy(actor=actor, project_id=project_id, calendar_id=calendar.id)
    have = {(t.metric, t.priority, t.category) for t in policy.targets}
    for metric, priority, minutes in DEFAULT_TARGETS:
        if (metric, priority, None) not in have:
            set_target(actor=actor, project_id=project_id, metric=metric, priority=priority,
                       minutes=minutes)
    for metric, category, minutes in DEFAULT_CATEGORY_TARGETS:
        if (metric, None, category) not in have:
            set_target(actor=actor, project_id=project_id, metric=metric, category=category,
                       minutes=minutes)
    return get_policy(actor=actor, project_id=project_id)  # type: ignore[return-value]

