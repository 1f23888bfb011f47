"""The SLA admin editor's use cases, built on app.sla.policies (which checks "sla:manage",
validates and audits every change).

A whole form is saved as the changes it makes: each calendar field, the policy's
settings, and each target set or removed is its own audited change. The forms are
validated in full before the first change (app.sla.schemas), so a form that fails
changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.auth.models import User
from app.auth.service import require
from app.projects import service as projects
from app.projects.models import Project
from app.reports.models import Priority
from app.sla import policies
from app.sla.models import Metric, SlaCalendar, SlaPolicy


@dataclass(frozen=True)
class Overview:
    calendars: list[SlaCalendar]
    policies: list[SlaPolicy]
    without_policy: list[Project]  # projects whose tickets get no clocks
    calendar_use: dict[int, int]  # calendar id -> policies counting in it


def overview(*, actor: User) -> Overview:
    """Calendars, the projects' policies, and the projects that have none."""
    require(actor, "sla:manage")
    calendars = policies.list_calendars(actor=actor)
    found = policies.list_policies(actor=actor)
    covered = {p.project_id for p in found}
    use: dict[int, int] = {}
    for policy in found:
        use[policy.calendar_id] = use.get(policy.calendar_id, 0) + 1
    return Overview(calendars=calendars, policies=found,
                    without_policy=[p for p in projects.list_projects(actor=actor)
                                    if p.id not in covered],
                    calendar_use=use)


def save_calendar(*, actor: User, calendar_id: int | None,
                  values: Mapping[str, Any]) -> SlaCalendar:
    """Create a calendar (no id) or change one to the given settings."""
    if calendar_id is None:
        return policies.create_calendar(
            actor=actor, name=values["name"], timezone=values["timezone"],
            week=values["week"], holiday_country=values["holiday_country"] or None,
            holiday_subdivision=values["holiday_subdivision"] or None,
            extra_holidays=values["extra_holidays"])
    return policies.update_calendar(
        actor=actor, calendar_id=calendar_id, name=values["name"],
        timezone=values["timezone"], week=values["week"],
        holiday_country=values["holiday_country"],
        holiday_subdivision=values["holiday_subdivision"],
        extra_holidays=values["extra_holidays"],
        clear_holiday_country=not values["holiday_country"])


def project_policy(*, actor: User, project_id: int) -> tuple[Project, SlaPolicy | None]:
    require(actor, "sla:manage")
    return (projects.get_project(actor=actor, project_id=project_id),
            policies.get_policy(actor=actor, project_id=project_id))


def save_policy(*, actor: User, project_id: int, settings: Mapping[str, Any],
                targets: Mapping[tuple[Metric, Priority], int],
                category_targets: Mapping[tuple[Metric, str], int]) -> SlaPolicy:
    """Make the project's policy say exactly this: its settings, a target for each
    (metric, priority) and (metric, category) given, and no other targets. Running
    clocks keep their due instants; new and re-targeted clocks use the new targets."""
    policy = policies.update_policy(actor=actor, project_id=project_id, **settings)
    wanted: dict[tuple[Metric, Priority | None, str | None], int] = {
        **{(m, p, None): minutes for (m, p), minutes in targets.items()},
        **{(m, None, c): minutes for (m, c), minutes in category_targets.items()}}
    have = {(t.metric, t.priority, t.category): t for t in policy.targets}
    for key, target in have.items():
        if key not in wanted:
            policies.remove_target(actor=actor, project_id=project_id, target_id=target.id)
    for (metric, priority, category), minutes in wanted.items():
        current = have.get((metric, priority, category))
        if current is None or current.minutes != minutes:
            policies.set_target(actor=actor, project_id=project_id, metric=metric,
                                minutes=minutes, priority=priority, category=category)
    return policies.get_policy(actor=actor, project_id=project_id)  # type: ignore[return-value]


def apply_defaults(*, actor: User, project_id: int) -> SlaPolicy:
    """Give a project the default policy (see app.sla.policies.defaults)."""
    require(actor, "sla:manage")
    return policies.defaults(actor=actor, project_id=project_id)
