"""What the incident pages show, gathered for the views (helper I6d's): each function
checks the reader's permission, reads through the service where it offers the read, and
otherwise runs its own bounded queries (the list's filters, the form's choices, the
reports a form was opened with). Nothing here changes anything.

The incident page must stay fast with 10,000 linked reports and 50,000 timeline events
(bench/incidents.py): it shows counts and the first page of each, never everything; the
facts, which aggregate every linked report, come in a request of their own (htmx).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.auth.models import Role, User
from app.auth.service import PERMISSIONS, require
from app.extensions import db
from app.incidents import service, similar
from app.incidents.links import IncidentBadge, incident_for_reports
from app.incidents.models import (
    ActionItem,
    Incident,
    IncidentReport,
    IncidentStatus,
    Retrospective,
    RetrospectiveSignoff,
    RetrospectiveState,
    RetrospectiveVersion,
    Severity,
)
from app.incidents.timeline import TimelinePage
from app.projects.models import Project
from app.reports.models import Report
from app.reports.service import find as find_report

PER_PAGE = 50  # incidents in the list
REPORTS_SHOWN = 25  # linked reports on the incident page (the rest a page away)
REPORTS_PER_PAGE = 100  # on the linked reports page
TIMELINE_SHOWN = 50  # timeline items on the incident page
TIMELINE_PER_PAGE = 200  # on the timeline page
PRESELECTED_MAX = 200  # reports a "new incident" form is opened with (the board's bulk bar)


def may(actor: User, permission: str) -> bool:
    """Whether the actor's role allows this permission (for what a page offers)."""
    return Role(actor.role).at_least(PERMISSIONS[permission])


def viewer_zone(actor: User) -> tzinfo:
    """The reader's own timezone (User.timezone), UTC if unknown."""
    try:
        return ZoneInfo(actor.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


# --- the list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListedIncident:
    incident: Incident
    linked_reports: int
    retrospective: RetrospectiveState | None
    retrospective_version: int | None


@dataclass(frozen=True)
class IncidentList:
    rows: list[ListedIncident]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def incident_list(*, actor: User, statuses: Collection[IncidentStatus] = (),
                  severities: Collection[Severity] = (), page: int = 1,
                  per_page: int = PER_PAGE) -> IncidentList:
    """Incidents, newest first, filtered by status and severity, one page at a time, with
    their linked report counts and retrospective state (three queries)."""
    require(actor, "incidents:read")
    conditions = []
    if statuses:
        conditions.append(Incident.status.in_(list(statuses)))
    if severities:
        conditions.append(Incident.severity.in_(list(severities)))
    total = db.session.scalar(select(func.count()).select_from(Incident).where(*conditions)) or 0
    linked = (select(func.count()).where(IncidentReport.incident_id == Incident.id)
              .correlate(Incident).scalar_subquery())
    page = max(1, page)
    rows = db.session.execute(
        select(Incident, linked, Retrospective.state, Retrospective.version)
        .outerjoin(Retrospective, Retrospective.incident_id == Incident.id)
        .options(selectinload(Incident.lead))
        .where(*conditions)
        .order_by(Incident.created_at.desc(), Incident.id.desc())
        .limit(per_page).offset((page - 1) * per_page))
    return IncidentList([ListedIncident(incident, count or 0, state, version)
                         for incident, count, state, version in rows], total, page, per_page)


# --- the form --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormChoices:
    leads: list[User]  # who may lead: active leads and admins
    staff: list[User]  # who may take part: active responders, leads and admins
    projects: list[Project]


def form_choices(*, actor: User) -> FormChoices:
    """The people and projects an incident form offers (leads only)."""
    require(actor, "incidents:manage")
    staff = list(db.session.scalars(
        select(User).where(User.active.is_(True), User.role != Role.VIEWER)
        .order_by(User.name, User.id)))
    leads = [u for u in staff if Role(u.role).at_least(Role.LEAD)]
    projects = list(db.session.scalars(select(Project).order_by(Project.name, Project.id)))
    return FormChoices(leads, staff, projects)


@dataclass(frozen=True)
class Preselected:
    report: Report
    incident: IncidentBadge | None  # the incident it is already in, if any


def preselected_reports(*, actor: User, public_ids: Sequence[str]) -> tuple[list[Preselected],
                                                                            list[str]]:
    """The reports a "new incident" form was opened with (in the order given), and the ids
    that name no report. Two queries."""
    require(actor, "incidents:manage")
    ids = list(dict.fromkeys(i for i in public_ids if i and "\x00" not in i))[:PRESELECTED_MAX]
    if not ids:
        return [], []
    found = {r.public_id: r for r in db.session.scalars(
        select(Report).where(Report.public_id.in_(ids)))}
    badges = incident_for_reports(r.id for r in found.values())
    return ([Preselected(found[i], badges.get(found[i].id)) for i in ids if i in found],
            [i for i in ids if i not in found])


# --- the incident page -----------------------------------------------------------------------


@dataclass
class IncidentPage:
    incident: Incident
    can_manage: bool
    can_note: bool
    reports: service.LinkedReports  # the first REPORTS_SHOWN and the total
    timeline: TimelinePage  # the first TIMELINE_SHOWN items (hidden ones too, for leads)
    retrospective: Retrospective | None
    signoffs: list[RetrospectiveSignoff]
    versions: list[RetrospectiveVersion]
    action_items: list[ActionItem]
    choices: FormChoices | None  # for leads' forms
    actor_id: int
    moves: list[IncidentStatus] = field(default_factory=list)  # where the status may go

    @property
    def state(self) -> RetrospectiveState | None:
        return self.retrospective.state if self.retrospective else None

    @property
    def signed_by_actor(self) -> bool:
        return any(s.user_id == self.actor_id for s in self.signoffs)


def linked_page(incident: Incident, *, limit: int, offset: int = 0) -> service.LinkedReports:
    """A page of the incident's linked reports in the order they arrived (report ids follow
    arrival: intake numbers them as it stores them), and how many there are. Three small
    queries, however many reports are linked. Checks no permission: the callers have read
    the incident through the service.

    Not service.linked_reports: its `ORDER BY received_at LIMIT n` over the reports table
    lets PostgreSQL walk the whole received_at index hoping to meet a linked report early,
    over a second when they are the recent 10,000 of a million reports; and sorting them by
    received_at at all reads 10,000 report rows per page (bench/incidents.py). The link
    table's index (incident_id, report_id) gives this order as it is stored."""
    of_incident = IncidentReport.incident_id == incident.id
    total = db.session.scalar(select(func.count()).select_from(IncidentReport)
                              .where(of_incident)) or 0
    chosen = list(db.session.scalars(
        select(IncidentReport.report_id).where(of_incident)
        .order_by(IncidentReport.report_id).limit(limit).offset(offset)))
    reports = sorted(db.session.scalars(select(Report).where(Report.id.in_(chosen))),
                     key=lambda report: report.id) if chosen else []
    return service.LinkedReports(reports, total)


def moves(status: IncidentStatus) -> list[IncidentStatus]:
    """The statuses an incident may move to from `status` (see service.set_status)."""
    if status == IncidentStatus.CLOSED:
        return []
    allowed = [s for s in IncidentStatus if s != status and s != IncidentStatus.CLOSED]
    if status == IncidentStatus.RESOLVED:
        allowed.append(IncidentStatus.CLOSED)
    return allowed


def incident_page(*, actor: User, incident_id: str) -> IncidentPage:
    """Everything the incident page shows, each part bounded (see the module docstring)."""
    incident = service.get_incident(actor=actor, incident_id=incident_id)
    manage = may(actor, "incidents:manage")
    retrospective = incident.retrospective
    page = IncidentPage(
        incident=incident, can_manage=manage, can_note=may(actor, "incidents:note"),
        reports=linked_page(incident, limit=REPORTS_SHOWN),
        timeline=service.timeline_page(actor=actor, incident_id=incident_id,
                                       include_hidden=manage, limit=TIMELINE_SHOWN),
        retrospective=retrospective,
        signoffs=service.signoffs(actor=actor, incident_id=incident_id)
        if retrospective else [],
        versions=service.published_versions(actor=actor, incident_id=incident_id)
        if retrospective else [],
        action_items=service.action_items(actor=actor, incident_id=incident_id),
        choices=form_choices(actor=actor) if manage else None, actor_id=actor.id,
        moves=moves(incident.status) if manage else [])
    return page


def report_page(*, actor: User, incident_id: str, page: int = 1
                ) -> tuple[Incident, service.LinkedReports]:
    """A page of the incident's linked reports (REPORTS_PER_PAGE each)."""
    incident = service.get_incident(actor=actor, incident_id=incident_id)
    return incident, linked_page(incident, limit=REPORTS_PER_PAGE,
                                 offset=(max(1, page) - 1) * REPORTS_PER_PAGE)


def timeline_page(*, actor: User, incident_id: str, after: str | None = None
                  ) -> tuple[Incident, TimelinePage]:
    """A page of the timeline (TIMELINE_PER_PAGE items after the cursor); leads see the
    hidden items, marked."""
    incident = service.get_incident(actor=actor, incident_id=incident_id)
    return incident, service.timeline_page(
        actor=actor, incident_id=incident_id, include_hidden=may(actor, "incidents:manage"),
        limit=TIMELINE_PER_PAGE, after=after)


# --- published retrospectives -----------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    version: RetrospectiveVersion
    incident: Incident


def published_list(*, actor: User) -> list[Published]:
    """The latest published version of every retrospective, newest first (viewers' list)."""
    versions = service.list_published(actor=actor, latest_only=True)
    return [Published(v, v.retrospective.incident)
            for v in sorted(versions, key=lambda v: (v.published_at, v.id), reverse=True)]


def draft_version(incident: Incident) -> int | None:
    """The working copy's version number when it is not published (what a lead previews)."""
    retrospective = incident.retrospective
    if retrospective is None or retrospective.state == RetrospectiveState.PUBLISHED:
        return None
    return retrospective.version


def window(incident: Incident) -> list[tuple[str, datetime | None]]:
    """The impact window, labelled, in order."""
    return [("Started", incident.started_at), ("Detected", incident.detected_at),
            ("Mitigated", incident.mitigated_at), ("Resolved", incident.resolved_at)]


# --- the ticket page's suggestions -----------------------------------------------------------


@dataclass(frozen=True)
class SimilarPanel:
    ticket: Report
    incident: IncidentBadge | None  # the incident the ticket is in, if any
    suggestions: similar.Suggestions
    can_manage: bool

    @property
    def empty(self) -> bool:
        return not self.suggestions.reports and not self.suggestions.incidents


def similar_panel(*, actor: User, public_id: str, limit: int = 10) -> SimilarPanel:
    """The suggestions for one ticket (app.incidents.similar) and the incident the ticket
    is in, for the panel on the ticket page. Links nothing."""
    suggestions = similar.similar_to(actor=actor, public_id=public_id, limit=limit)
    ticket = find_report(public_id)  # similar_to found it a moment ago
    return SimilarPanel(ticket, incident_for_reports([ticket.id]).get(ticket.id), suggestions,
                        may(actor, "incidents:manage"))
