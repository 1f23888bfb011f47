"""flask sla …: the sweep, calendars and policies from the command line."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.core.errors import AppError
from app.extensions import db
from app.projects.models import Project
from app.reports.models import Priority
from app.sla import policies, sweep
from app.sla.models import DAYS, Metric

sla = AppGroup("sla", help="SLA clocks: the sweep, calendars, policies and targets.")
calendars_group = AppGroup("calendars", help="Working-hours calendars.")
policy_group = AppGroup("policy", help="A project's SLA policy and targets.")
sla.add_command(calendars_group)
sla.add_command(policy_group)


def _errors_as_messages(command: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AppError as error:
            details = "; ".join(f"{k}: {', '.join(map(str, v))}" if isinstance(v, list) else
                                f"{k}: {v}" for k, v in error.fields.items())
            raise click.ClickException(error.message + (f" ({details})" if details and
                                                        details not in error.message
                                                        else "")) from error

    return run


def _project(ref: str) -> Project:
    """A project by id or by exact name."""
    project = (db.session.get(Project, int(ref)) if ref.isdigit() else
               db.session.scalar(select(Project).where(Project.name == ref)))
    if project is None:
        raise click.ClickException(f"No project {ref!r} (give its id or exact name).")
    return project


def _calendar_id(ref: str) -> int:
    calendar = policies.get_calendar(actor=None, calendar_id=int(ref)) if ref.isdigit() else \
        policies.get_calendar(actor=None, name=ref)
    return calendar.id


@sla.command("sweep")
@click.option("--now", "at", default=None,
              help="Judge the clocks as of this ISO instant (default: now).")
@_errors_as_messages
def sweep_command(at: str | None) -> None:
    """Move due clocks to at risk or breached and queue the escalations (once)."""
    instant = None
    if at:
        try:
            instant = datetime.fromisoformat(at)
        except ValueError:
            raise click.BadParameter("an ISO instant with its offset, e.g. "
                                     "2026-01-05T09:00:00+00:00", param_hint="--now") from None
        if instant.tzinfo is None:
            raise click.BadParameter("give the offset, e.g. +00:00", param_hint="--now")
    result = sweep.run(now=instant)
    click.echo(f"at risk {result.at_risk}, breached {result.breached}, notifications "
               f"{result.deliveries}, clocks started for {result.started} unrouted tickets"
               + (f", {result.skipped} tickets busy (next run)" if result.skipped else ""))


# --- calendars ---------------------------------------------------------------------------

_SPAN = re.compile(r"^(\d\d:\d\d)-(\d\d:\d\d)$")


def _days(text: str) -> list[str]:
    """"mon-fri", "sat,sun", "wed" → the day keys."""
    days: list[str] = []
    for part in text.lower().split(","):
        first, _, last = part.strip().partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise click.BadParameter(f"{part!r}: use {', '.join(DAYS)}, a range like mon-fri, "
                                     "or a list like sat,sun", param_hint="DAYS")
        lo, hi = DAYS.index(first), DAYS.index(last or first)
        days += DAYS[lo:hi + 1] if lo <= hi else [*DAYS[lo:], *DAYS[:hi + 1]]
    return days


def _spans(texts: tuple[str, ...]) -> list[list[str]]:
    spans = []
    for text in texts:
        match = _SPAN.match(text.strip())
        if match is None:
            raise click.BadParameter(f"{text!r}: a span is HH:MM-HH:MM, e.g. 09:00-17:00",
                                     param_hint="SPANS")
        spans.append([match[1], match[2]])
    return spans


def _describe_week(week: dict[str, list[list[str]]]) -> str:
    return ", ".join(f"{d} {' '.join(f'{a}-{b}' for a, b in week[d])}" for d in DAYS
                     if week.get(d)) or "no hours"


@calendars_group.command("list")
@_errors_as_messages
def list_calendars() -> None:
    """Every calendar: zone, hours, holidays."""
    for calendar in policies.list_calendars(actor=None):
        region = "-".join(filter(None, [calendar.holiday_country,
                                        calendar.holiday_subdivision])) or "none"
        click.echo(f"{calendar.id}  {calendar.name}  [{calendar.timezone}]  "
                   f"{_describe_week(calendar.week)}; public holidays: {region}; "
                   f"own dates: {', '.join(calendar.extra_holidays) or 'none'}")


@calendars_group.command("add")
@click.argument("name")
@click.option("--timezone", default="UTC", show_default=True, help="An IANA zone.")
@click.option("--hours", "hours", multiple=True, metavar="DAYS=SPANS",
              help="e.g. mon-fri=09:00-17:00 or sat=10:00-14:00 (repeatable; default "
                   "mon-fri=09:00-17:00).")
@click.option("--country", default=None, help="Public holidays of this country (ISO code).")
@click.option("--subdivision", default=None, help="… and of this region (e.g. BY).")
@_errors_as_messages
def add_calendar(name: str, timezone: str, hours: tuple[str, ...], country: str | None,
                 subdivision: str | None) -> None:
    """Create a calendar."""
    week = None
    if hours:
        week = {}
        for item in hours:
            days, _, spans = item.partition("=")
            for day in _days(days):
                week[day] = _spans(tuple(spans.split()))
    calendar = policies.create_calendar(actor=None, name=name, timezone=timezone, week=week,
                                        holiday_country=country,
                                        holiday_subdivision=subdivision)
    click.echo(f"Created calendar {calendar.id} {calendar.name!r}: "
               f"{_describe_week(calendar.week)} [{calendar.timezone}]")


@calendars_group.command("set-hours")
@click.argument("calendar")
@click.argument("days")
@click.argument("spans", nargs=-1)
@_errors_as_messages
def set_hours(calendar: str, days: str, spans: tuple[str, ...]) -> None:
    """Set DAYS (mon-fri, sat,sun, wed …) of CALENDAR (id or name) to SPANS
    (09:00-12:00 13:00-17:00; none: not a working day; 22:00-06:00 runs past midnight)."""
    updated = policies.set_hours(actor=None, calendar_id=_calendar_id(calendar),
                                 days=_days(days), spans=_spans(spans))
    click.echo(f"{updated.name}: {_describe_week(updated.week)}")


@calendars_group.command("add-holiday")
@click.argument("calendar")
@click.argument("day")
@_errors_as_messages
def add_holiday(calendar: str, day: str) -> None:
    """Add DAY (YYYY-MM-DD) as a day off to CALENDAR (id or name)."""
    updated = policies.add_holiday(actor=None, calendar_id=_calendar_id(calendar), day=day)
    click.echo(f"{updated.name}: own dates {', '.join(updated.extra_holidays)}")


# --- policies ----------------------------------------------------------------------------


def _minutes(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if hours and rest else f"{hours} h" if hours else f"{rest} min"


@policy_group.command("show")
@click.argument("project")
@_errors_as_messages
def show_policy(project: str) -> None:
    """The policy of PROJECT (id or name) and its targets."""
    found = _project(project)
    policy = policies.get_policy(actor=None, project_id=found.id)
    if policy is None:
        click.echo(f"{found.name}: no SLA policy (flask sla defaults {found.id} creates one)")
        return
    click.echo(f"{found.name}: calendar {policy.calendar.name!r} [{policy.calendar.timezone}], "
               f"at risk at {policy.at_risk_share:.0%}, P0 around the clock: "
               f"{'yes' if policy.p0_around_the_clock else 'no'}, on call: "
               f"{policy.oncall_email or '-'}")
    order = {m: i for i, m in enumerate(Metric)}
    for target in sorted(policy.targets, key=lambda t: (order[t.metric], t.category or "",
                                                        t.priority or "")):
        scope = f"category {target.category}" if target.category else str(target.priority)
        click.echo(f"  {target.id:>4}  {target.metric:<15} {scope:<22} "
                   f"{_minutes(target.minutes)}")


@policy_group.command("set")
@click.argument("project")
@click.option("--calendar", default=None, help="Calendar id or name.")
@click.option("--at-risk-share", type=float, default=None, help="e.g. 0.75")
@click.option("--p0-around-the-clock/--p0-business-hours", default=None)
@click.option("--oncall", default=None, help="On-call e-mail ('' to clear).")
@_errors_as_messages
def set_policy(project: str, calendar: str | None, at_risk_share: float | None,
               p0_around_the_clock: bool | None, oncall: str | None) -> None:
    """Create or change PROJECT's policy."""
    found = _project(project)
    kwargs: dict[str, Any] = {}
    if oncall is not None:
        kwargs["oncall_email"] = oncall
    policies.update_policy(actor=None, project_id=found.id,
                           calendar_id=_calendar_id(calendar) if calendar else None,
                           at_risk_share=at_risk_share,
                           p0_around_the_clock=p0_around_the_clock, **kwargs)
    click.echo(f"Updated the SLA policy of {found.name}.")


@policy_group.command("set-target")
@click.argument("project")
@click.option("--metric", required=True, type=click.Choice([m.value for m in Metric]))
@click.option("--priority", type=click.Choice([p.value for p in Priority]), default=None)
@click.option("--category", default=None, help="A moderation category (wins over priority).")
@click.option("--minutes", required=True, type=int, help="Calendar minutes.")
@_errors_as_messages
def set_target(project: str, metric: str, priority: str | None, category: str | None,
               minutes: int) -> None:
    """Set a target of PROJECT's policy, for a priority or a category."""
    found = _project(project)
    policies.set_target(actor=None, project_id=found.id, metric=metric, priority=priority,
                        category=category, minutes=minutes)
    scope = f"category {category}" if category else priority
    click.echo(f"{found.name}: {metric} for {scope}: {_minutes(minutes)}")


@sla.command("defaults")
@click.argument("project")
@_errors_as_messages
def defaults(project: str) -> None:
    """Give PROJECT the default policy: Mon-Fri 09:00-17:00 UTC, P0 around the clock,
    targets per priority (existing targets are kept)."""
    found = _project(project)
    policy = policies.defaults(actor=None, project_id=found.id)
    click.echo(f"{found.name}: SLA policy with calendar {policy.calendar.name!r} and "
               f"{len(policy.targets)} targets (flask sla policy show {found.id})")
