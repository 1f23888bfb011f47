"""Incidents and their retrospectives: what leads do, each step checked and audited.

Every function takes the acting user, checks a permission, writes one AuditEvent per
change (subject_type "incident", subject_id the incident's public id) and commits once.

Who may do what (app.auth.service.PERMISSIONS):

* leads and admins ("incidents:manage"): everything here;
* responders ("incidents:read", "incidents:note"): read incidents, their timelines (the
  published view), facts, working retrospectives and action items; add notes (kind
  "note" only) to a timeline;
* viewers ("retrospectives:read"): published retrospective versions, and the action
  items of an incident that has one; nothing else.

The status walk (set_status):

    investigating → identified → monitoring → resolved → closed

* Any move among investigating, identified, monitoring and resolved is allowed, forward
  (steps may be skipped: a quick fix goes straight to resolved) or back (the problem came
  back). `closed` is reached only from `resolved`, and is final: a closed incident does not
  reopen (open a new one and say so in its timeline), and takes no more linked reports.
* Moving to monitoring sets mitigated_at (if unknown); to resolved sets resolved_at and,
  if unknown, mitigated_at to the same instant; each defaults to now or to the `at` given.
* Moving back clears what no longer holds: resolved_at when leaving resolved, and
  mitigated_at too when going back to investigating or identified. The audit event keeps
  the values cleared.

The retrospective (one per incident):

    draft → in review → published;  published → (reopen) draft of version + 1

* Sections are Markdown (SECTIONS). A section the model drafted is listed in
  `machine_written` until a person edits it (saves different text) or approves it as it is
  (`approve`); a retrospective with machine-written sections cannot go to review.
* Any lead or admin may sign off a version in review, its author included; publishing
  needs at least one sign-off of that version. Editing a retrospective in review sends it
  back to draft and drops that version's sign-offs (they were for other text).
* Publishing freezes the version (sections, computed facts, the published timeline) as a
  RetrospectiveVersion, readable for ever; the working copy becomes read-only (saving
  raises Conflict) until `reopen` starts the next version as a draft.
* Action items live beside the versions and stay editable after publishing: they are
  tracked long after the write-up.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.audit.models import AuditEvent
from app.audit.service import record
from app.auth.models import Role, User
from app.auth.service import PERMISSIONS, require
from app.core.clock import now
from app.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.incidents.facts import RetrospectiveFacts, facts
from app.incidents.models import (
    SECTIONS,
    ActionItem,
    ActionItemStatus,
    Incident,
    IncidentReport,
    IncidentStatus,
    Retrospective,
    RetrospectiveSignoff,
    RetrospectiveState,
    RetrospectiveVersion,
    Severity,
    TimelineEntry,
    TimelineHidden,
    TimelineKind,
    TimelineSource,
)
from app.incidents.schemas import (
    ENTRY_MAX,
    MAX_LINKED_PER_CALL,
    MAX_MODELS,
    MODEL_NAME_MAX,
    SECTION_MAX,
    TITLE_MAX,
    WINDOW,
    http_url_error,
    window_errors,
)
from app.incidents.timeline import (
    INCIDENT_EVENTS,
    REPORT_EVENTS,
    Cursor,
    TimelineItem,
    TimelinePage,
    build_page,
    build_timeline,
    linked_public_ids,
)
from app.projects.models import Project
from app.reports.models import Report


class _Unset:
    """A keyword left out of an update (None is a value: "no lead", "unknown")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()

STATUS_ORDER = list(IncidentStatus)
ACTIVE = (IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED, IncidentStatus.MONITORING)


def _new_public_id() -> str:
    return "inc_" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


def _plain(value: Any) -> Any:
    """A value as an audit event stores it."""
    if value is None or isinstance(value, bool | int | float | str) and \
            not isinstance(value, StrEnum):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _audit(incident: Incident, action: str, actor: User, *, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None) -> None:
    record(action=action, subject_type="incident", subject_id=incident.public_id, actor=actor,
           before={k: _plain(v) for k, v in before.items()} if before else None,
           after={k: _plain(v) for k, v in after.items()} if after else None)


def _may(actor: User, permission: str) -> bool:
    return Role(actor.role).at_least(PERMISSIONS[permission])


# --- finding and checking ------------------------------------------------------------------


def find(public_id: str) -> Incident:
    """The incident with this public id, or NotFound. Checks no permission."""
    incident = None if "\x00" in public_id else db.session.scalar(
        select(Incident).where(Incident.public_id == public_id))
    if incident is None:
        raise NotFound(f"No incident {public_id}.")
    return incident


def _title(title: str) -> str:
    title = (title or "").strip()
    if not title or len(title) > TITLE_MAX or "\x00" in title:
        raise ValidationFailed(f"Give a title of 1 to {TITLE_MAX} characters.",
                               fields={"title": [f"Required, at most {TITLE_MAX} characters."]})
    return title


def _severity(severity: Severity | str) -> Severity:
    try:
        return Severity(severity)
    except ValueError as error:
        raise ValidationFailed("Pick a severity.", fields={
            "severity": [f"One of {', '.join(Severity)}."]}) from error


def _status(status: IncidentStatus | str) -> IncidentStatus:
    try:
        return IncidentStatus(status)
    except ValueError as error:
        raise ValidationFailed("Pick a status.", fields={
            "status": [f"One of {', '.join(IncidentStatus)}."]}) from error


def _models(models: Iterable[str]) -> list[str]:
    cleaned = list(dict.fromkeys(m.strip() for m in models if m and m.strip()))
    if len(cleaned) > MAX_MODELS or any(len(m) > MODEL_NAME_MAX or "\x00" in m
                                        for m in cleaned):
        raise ValidationFailed("Too many or too long model names.", fields={
            "affected_models": [f"At most {MAX_MODELS}, each at most {MODEL_NAME_MAX} "
                                "characters."]})
    return cleaned


def _instant(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationFailed("Times need a timezone.", fields={name: ["Naive time."]})
    if value > now():
        raise ValidationFailed("That has not happened yet.", fields={name: ["In the future."]})
    return value


def _check_window(incident: Incident, changes: Mapping[str, Any] | None = None) -> None:
    """ValidationFailed if the window, with these changes, would be out of order."""
    errors = window_errors({name: (changes or {}).get(name, getattr(incident, name))
                            for name in WINDOW})
    if errors:
        raise ValidationFailed(
            "The impact window is out of order: started ≤ detected ≤ mitigated ≤ resolved.",
            fields=errors)


def _lead(lead_id: int | None) -> User | None:
    if lead_id is None:
        return None
    user = db.session.get(User, lead_id)
    if user is None or not user.active or not Role(user.role).at_least(Role.LEAD):
        raise ValidationFailed("The incident lead is an active lead or admin.",
                               fields={"lead_id": ["Not an active lead or admin."]})
    return user


def _participants(user_ids: Iterable[int]) -> list[User]:
    ids = set(user_ids)
    users = list(db.session.scalars(select(User).where(User.id.in_(ids)))) if ids else []
    if len(users) != len(ids) or any(
            not u.active or not Role(u.role).at_least(Role.RESPONDER) for u in users):
        raise ValidationFailed("Participants are active staff who can read incidents.",
                               fields={"participant_ids": ["Unknown or not staff."]})
    return sorted(users, key=lambda u: (u.name, u.id))


def _projects(project_ids: Iterable[int]) -> list[Project]:
    ids = set(project_ids)
    projects = list(db.session.scalars(select(Project).where(Project.id.in_(ids)))) if ids \
        else []
    if len(projects) != len(ids):
        raise ValidationFailed("Unknown project.", fields={"project_ids": ["Unknown."]})
    return sorted(projects, key=lambda p: (p.name, p.id))


# --- opening, editing, the status walk -----------------------------------------------------


def open_incident(*, actor: User, title: str, severity: Severity | str,
                  report_ids: Sequence[str] = (), lead_id: int | None | _Unset = UNSET,
                  participant_ids: Iterable[int] = (),
                  project_ids: Iterable[int] | None = None,
                  affected_models: Iterable[str] | None = None,
                  status: IncidentStatus | str = IncidentStatus.INVESTIGATING,
                  started_at: datetime | None = None, detected_at: datetime | None = None,
                  mitigated_at: datetime | None = None,
                  resolved_at: datetime | None = None) -> Incident:
    """Open an incident and link these reports (public ids) to it.

    Defaults: the lead is the actor; detected_at is now; started_at is when the earliest
    linked report arrived; the projects and models are those of the linked reports.
    A status past investigating sets the window as set_status would (never `closed`).
    Conflict if a report is in another incident already, NotFound for an unknown one."""
    require(actor, "incidents:manage")
    status = _status(status)
    if status == IncidentStatus.CLOSED:
        raise ValidationFailed("An incident opens before it can be closed.",
                               fields={"status": ["Not closed."]})
    reports = _reports_to_link(None, report_ids)
    current = now()
    incident = Incident(
        public_id=_new_public_id(), title=_title(title), severity=_severity(severity),
        status=IncidentStatus.INVESTIGATING,
        lead=_lead(actor.id if lead_id is UNSET else lead_id),
        affected_models=_models(affected_models if affected_models is not None
                                else sorted({r.model_name for r in reports if r.model_name})),
        started_at=_instant("started_at", started_at)
        or min((r.received_at for r in reports), default=None),
        detected_at=_instant("detected_at", detected_at) or current,
        mitigated_at=_instant("mitigated_at", mitigated_at),
        resolved_at=_instant("resolved_at", resolved_at),
        created_at=current, updated_at=current, created_by_id=actor.id)
    incident.participants = _participants(participant_ids)
    incident.projects = _projects(project_ids if project_ids is not None
                                  else {r.project_id for r in reports})
    for name, value in _walked(incident, status, current).items():
        setattr(incident, name, value)
    incident.status = status
    _check_window(incident)
    db.session.add(incident)
    db.session.flush()
    _audit(incident, "incident.opened", actor, after={
        "title": incident.title, "severity": incident.severity, "status": incident.status,
        "lead_id": incident.lead_id, "participant_ids": [u.id for u in incident.participants],
        "project_ids": [p.id for p in incident.projects],
        "affected_models": incident.affected_models,
        **{name: getattr(incident, name) for name in WINDOW}})
    _insert_links(incident, actor, reports)
    db.session.commit()
    return incident


def update_incident(*, actor: User, incident_id: str, title: str | _Unset = UNSET,
                    severity: Severity | str | _Unset = UNSET,
                    lead_id: int | None | _Unset = UNSET,
                    participant_ids: Iterable[int] | _Unset = UNSET,
                    project_ids: Iterable[int] | _Unset = UNSET,
                    affected_models: Iterable[str] | _Unset = UNSET,
                    started_at: datetime | None | _Unset = UNSET,
                    detected_at: datetime | None | _Unset = UNSET,
                    mitigated_at: datetime | None | _Unset = UNSET,
                    resolved_at: datetime | None | _Unset = UNSET) -> Incident:
    """Change what is given (left-out keywords stay as they are); one audit event with the
    fields that changed, none if nothing did. The status moves only through set_status.
    Closed incidents stay editable (their window is often corrected in the write-up)."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    # Everything is checked before anything is set, so a refusal leaves no half-change.
    values: dict[str, Any] = {}
    if title is not UNSET:
        values["title"] = _title(title)
    if severity is not UNSET:
        values["severity"] = _severity(severity)
    if affected_models is not UNSET:
        values["affected_models"] = _models(affected_models)
    for name, value in (("started_at", started_at), ("detected_at", detected_at),
                        ("mitigated_at", mitigated_at), ("resolved_at", resolved_at)):
        if value is not UNSET:
            values[name] = _instant(name, value)
    changed = {name: value for name, value in values.items()
               if getattr(incident, name) != value}
    _check_window(incident, changed)
    before: dict[str, Any] = {name: getattr(incident, name) for name in changed}
    after: dict[str, Any] = dict(changed)
    lead = UNSET
    if lead_id is not UNSET and lead_id != incident.lead_id:
        lead = _lead(lead_id)
        before["lead_id"], after["lead_id"] = incident.lead_id, lead_id
    users = projects = None
    if participant_ids is not UNSET:
        users = _participants(participant_ids)
        old = sorted(u.id for u in incident.participants)
        if old != sorted(u.id for u in users):
            before["participant_ids"], after["participant_ids"] = old, \
                sorted(u.id for u in users)
    if project_ids is not UNSET:
        projects = _projects(project_ids)
        old = sorted(p.id for p in incident.projects)
        if old != sorted(p.id for p in projects):
            before["project_ids"], after["project_ids"] = old, sorted(p.id for p in projects)
    if not after:
        return incident
    for name, value in changed.items():
        setattr(incident, name, value)
    if lead is not UNSET:
        incident.lead = lead
    if "participant_ids" in after:
        incident.participants = users
    if "project_ids" in after:
        incident.projects = projects
    incident.updated_at = now()
    _audit(incident, "incident.updated", actor, before=before, after=after)
    db.session.commit()
    return incident


def _walked(incident: Incident, status: IncidentStatus, at: datetime, *,
            back: bool = False) -> dict[str, datetime | None]:
    """The window's mitigated_at and resolved_at after moving to `status`: the instant
    the move implies filled in (if unknown) and, when moving back, those that no longer
    hold cleared."""
    mitigated, resolved = incident.mitigated_at, incident.resolved_at
    if status == IncidentStatus.MONITORING and mitigated is None:
        mitigated = at
    if status == IncidentStatus.RESOLVED:
        resolved = resolved or at
        mitigated = mitigated or resolved
    if back and status in ACTIVE:
        resolved = None
    if back and status in (IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED):
        mitigated = None
    return {"mitigated_at": mitigated, "resolved_at": resolved}


def set_status(*, actor: User, incident_id: str, status: IncidentStatus | str,
               at: datetime | None = None) -> Incident:
    """Move the incident along its walk (see the module docstring for the rules); `at` is
    when it happened (default now) and fills the window's instant the move implies.
    The same status again changes nothing."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    status = _status(status)
    if status == incident.status:
        return incident
    if incident.status == IncidentStatus.CLOSED:
        raise Conflict(f"{incident.public_id} is closed, and closed is final: open a new "
                       "incident if the problem is back.")
    if status == IncidentStatus.CLOSED and incident.status != IncidentStatus.RESOLVED:
        raise Conflict(f"{incident.public_id} is {incident.status}: resolve it before "
                       "closing it.")
    when = _instant("at", at) or now()
    # Going back from monitoring or resolved clears what the earlier move had set.
    window = _walked(incident, status, when,
                     back=STATUS_ORDER.index(status) < STATUS_ORDER.index(incident.status))
    _check_window(incident, window)
    after: dict[str, Any] = {"status": status}
    after.update({k: v for k, v in window.items() if getattr(incident, k) != v})
    before = {name: getattr(incident, name) for name in after}
    for name, value in after.items():
        setattr(incident, name, value)
    incident.updated_at = now()
    _audit(incident, "incident.status_changed", actor, before=before, after=after)
    db.session.commit()
    return incident


# --- linked reports --------------------------------------------------------------------------


@dataclass(frozen=True)
class _ReportRow:
    id: int
    public_id: str
    project_id: int
    model_name: str | None
    received_at: datetime


def _reports_to_link(incident: Incident | None, public_ids: Sequence[str]) -> list[_ReportRow]:
    """The reports named, none of them in another incident (Conflict naming each that
    is, and its incident) and none unknown (NotFound naming them); those already linked
    to `incident` are left out."""
    ids = list(dict.fromkeys(public_ids))
    if len(ids) > MAX_LINKED_PER_CALL:
        raise ValidationFailed(f"Link at most {MAX_LINKED_PER_CALL} reports at a time.",
                               fields={"report_ids": ["Too many."]})
    if not ids:
        return []
    rows = [_ReportRow(*row) for row in db.session.execute(
        select(Report.id, Report.public_id, Report.project_id, Report.model_name,
               Report.received_at).where(Report.public_id.in_(ids)))]
    missing = set(ids) - {r.public_id for r in rows}
    if missing:
        raise NotFound(f"No report {', '.join(sorted(missing))}.",
                       fields={"report_ids": sorted(missing)})
    taken = db.session.execute(
        select(Report.public_id, Incident.id, Incident.public_id, Incident.title)
        .join(IncidentReport, IncidentReport.report_id == Report.id)
        .join(Incident, Incident.id == IncidentReport.incident_id)
        .where(IncidentReport.report_id.in_([r.id for r in rows]))
        .order_by(Report.public_id)).all()
    elsewhere = [t for t in taken if incident is None or t[1] != incident.id]
    if elsewhere:
        shown = "; ".join(f"{report} is in incident {public_id} ({title})"
                          for report, _, public_id, title in elsewhere[:5])
        more = f" and {len(elsewhere) - 5} more" if len(elsewhere) > 5 else ""
        raise Conflict(f"A report belongs to one incident at most: {shown}{more}. Unlink "
                       "it there first.",
                       fields={"report_ids": {r: p for r, _, p, _ in elsewhere}})
    here = {t[0] for t in taken}
    return [r for r in rows if r.public_id not in here]


def _insert_links(incident: Incident, actor: User, reports: Sequence[_ReportRow]) -> None:
    if not reports:
        return
    current = now()
    try:
        with db.session.begin_nested():
            db.session.execute(insert(IncidentReport), [
                {"incident_id": incident.id, "report_id": r.id, "linked_at": current,
                 "linked_by_id": actor.id} for r in reports])
    except IntegrityError as error:
        raise Conflict("One of these reports was just linked to an incident by someone "
                       "else; reload and try again.") from error
    _audit(incident, "incident.reports_linked", actor,
           after={"reports": sorted(r.public_id for r in reports)})


def link_reports(*, actor: User, incident_id: str, report_ids: Sequence[str]) -> int:
    """Link these reports (public ids) to the incident; returns how many were newly
    linked (those already in it are skipped). Conflict if one is in another incident, or
    if the incident is closed."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    if incident.status == IncidentStatus.CLOSED:
        raise Conflict(f"{incident.public_id} is closed: it takes no more reports.")
    reports = _reports_to_link(incident, report_ids)
    if not reports:
        return 0
    _insert_links(incident, actor, reports)
    incident.updated_at = now()
    db.session.commit()
    return len(reports)


def unlink_report(*, actor: User, incident_id: str, report_id: str) -> None:
    """Take a report (public id) out of the incident. NotFound if it is not linked."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    if incident.status == IncidentStatus.CLOSED:
        raise Conflict(f"{incident.public_id} is closed: its reports stay as they are.")
    link = db.session.scalar(
        select(IncidentReport).join(Report, Report.id == IncidentReport.report_id)
        .where(IncidentReport.incident_id == incident.id, Report.public_id == report_id))
    if link is None:
        raise NotFound(f"{report_id} is not linked to {incident.public_id}.")
    db.session.delete(link)
    incident.updated_at = now()
    _audit(incident, "incident.report_unlinked", actor, before={"report": report_id})
    db.session.commit()


@dataclass(frozen=True)
class LinkedReports:
    reports: list[Report]  # one page, oldest first
    total: int


def linked_reports(*, actor: User, incident_id: str, limit: int = 100,
                   offset: int = 0) -> LinkedReports:
    """A page of the incident's linked reports (oldest first) and how many there are."""
    require(actor, "incidents:read")
    incident = find(incident_id)
    linked = select(IncidentReport.report_id).where(IncidentReport.incident_id == incident.id)
    total = db.session.scalar(select(func.count()).select_from(linked.subquery())) or 0
    reports = list(db.session.scalars(
        select(Report).where(Report.id.in_(linked))
        .order_by(Report.received_at, Report.id).limit(max(1, min(limit, 1000)))
        .offset(max(0, offset))))
    return LinkedReports(reports, total)


# --- reading incidents ---------------------------------------------------------------------


def get_incident(*, actor: User, incident_id: str) -> Incident:
    require(actor, "incidents:read")
    return find(incident_id)


@dataclass(frozen=True)
class IncidentRow:
    incident: Incident
    linked_reports: int


def list_incidents(*, actor: User, statuses: Collection[IncidentStatus | str] = (),
                   limit: int = 50, offset: int = 0) -> list[IncidentRow]:
    """Incidents, newest first, with their linked report counts (two queries)."""
    require(actor, "incidents:read")
    count = (select(func.count()).where(IncidentReport.incident_id == Incident.id)
             .correlate(Incident).scalar_subquery())
    query = select(Incident, count).options(selectinload(Incident.lead))
    if statuses:
        query = query.where(Incident.status.in_([_status(s) for s in statuses]))
    rows = db.session.execute(query.order_by(Incident.created_at.desc(), Incident.id.desc())
                              .limit(max(1, min(limit, 500))).offset(max(0, offset)))
    return [IncidentRow(incident, n) for incident, n in rows]


def timeline(*, actor: User, incident_id: str, include_hidden: bool = False
             ) -> list[TimelineItem]:
    """The incident's timeline (see app.incidents.timeline). Everyone who may read the
    incident sees the published view; the hidden items, marked, are for leads only."""
    require(actor, "incidents:manage" if include_hidden else "incidents:read")
    return build_timeline(find(incident_id), include_hidden=include_hidden)


def timeline_page(*, actor: User, incident_id: str, include_hidden: bool = False,
                  limit: int = 200, after: str | None = None) -> TimelinePage:
    """A page of the timeline, oldest first: at most `limit` items (1 to 1,000) after the
    cursor `after` (a previous page's `next.encode()`). For the incident page: the whole
    timeline of a large incident is 50,000 items."""
    require(actor, "incidents:manage" if include_hidden else "incidents:read")
    try:
        cursor = Cursor.decode(after) if after else None
    except ValueError as error:
        raise ValidationFailed("Not a timeline position.",
                               fields={"after": ["Invalid cursor."]}) from error
    if not 1 <= limit <= 1000:
        raise ValidationFailed("Ask for 1 to 1,000 items.", fields={"limit": ["1 to 1000."]})
    return build_page(find(incident_id), include_hidden=include_hidden, limit=limit,
                      after=cursor)


def incident_facts(*, actor: User, incident_id: str) -> RetrospectiveFacts:
    """The incident's facts as the data says now (see app.incidents.facts)."""
    require(actor, "incidents:read")
    return facts(incident=find(incident_id))


# --- the timeline: written entries and hidden items ----------------------------------------


def _entry_body(body: str) -> str:
    body = (body or "").strip()
    if not body or len(body) > ENTRY_MAX or "\x00" in body:
        raise ValidationFailed(f"Write between 1 and {ENTRY_MAX} characters.",
                               fields={"body": ["Empty or too long."]})
    return body


def _kind(kind: TimelineKind | str) -> TimelineKind:
    try:
        return TimelineKind(kind)
    except ValueError as error:
        raise ValidationFailed("Pick a kind.", fields={
            "kind": [f"One of {', '.join(TimelineKind)}."]}) from error


def add_timeline_entry(*, actor: User, incident_id: str, body: str,
                       kind: TimelineKind | str = TimelineKind.NOTE,
                       at: datetime | None = None) -> TimelineEntry:
    """Write an entry into the timeline, at `at` (when it happened; default now).
    Responders write notes; other kinds (decision, action, …) are for leads."""
    require(actor, "incidents:note")
    kind = _kind(kind)
    if kind != TimelineKind.NOTE:
        require(actor, "incidents:manage")
    incident = find(incident_id)
    entry = TimelineEntry(incident_id=incident.id, at=_instant("at", at) or now(),
                          author_id=actor.id, kind=kind, body=_entry_body(body))
    db.session.add(entry)
    db.session.flush()
    _audit(incident, "incident.timeline_entry_added", actor,
           after={"entry_id": entry.id, "kind": kind, "at": entry.at})
    db.session.commit()
    return entry


def update_timeline_entry(*, actor: User, incident_id: str, entry_id: int,
                          body: str | _Unset = UNSET, kind: TimelineKind | str | _Unset = UNSET,
                          at: datetime | _Unset = UNSET) -> TimelineEntry:
    """Correct a written entry (leads). The audit event keeps the text it had."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    entry = db.session.get(TimelineEntry, entry_id)
    if entry is None or entry.incident_id != incident.id:
        raise NotFound(f"No timeline entry {entry_id} in {incident.public_id}.")
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in (("body", None if body is UNSET else _entry_body(body)),
                        ("kind", None if kind is UNSET else _kind(kind)),
                        ("at", None if at is UNSET else _instant("at", at))):
        if value is not None and getattr(entry, name) != value:
            before[name], after[name] = getattr(entry, name), value
            setattr(entry, name, value)
    if after:
        _audit(incident, "incident.timeline_entry_changed", actor,
               before={"entry_id": entry.id, **before}, after={"entry_id": entry.id, **after})
        db.session.commit()
    return entry


def _in_timeline(incident: Incident, source: TimelineSource, source_id: int) -> bool:
    if source == TimelineSource.ENTRY:
        return db.session.scalar(select(TimelineEntry.id).where(
            TimelineEntry.id == source_id, TimelineEntry.incident_id == incident.id)) is not None
    return db.session.scalar(select(AuditEvent.id).where(
        AuditEvent.id == source_id,
        or_(and_(AuditEvent.subject_type == "incident",
                 AuditEvent.subject_id == incident.public_id,
                 AuditEvent.action.in_(INCIDENT_EVENTS)),
            and_(AuditEvent.subject_type == "report",
                 AuditEvent.subject_id.in_(linked_public_ids(incident.id)),
                 AuditEvent.action.in_(REPORT_EVENTS))))) is not None


def set_timeline_item_hidden(*, actor: User, incident_id: str, source: TimelineSource | str,
                             source_id: int, hidden: bool) -> bool:
    """Hide an item from the published timeline, or show it again (leads); nothing is
    deleted. Returns whether anything changed."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    try:
        source = TimelineSource(source)
    except ValueError as error:
        raise ValidationFailed("Unknown timeline source.",
                               fields={"source": ["audit or entry."]}) from error
    if not _in_timeline(incident, source, source_id):
        raise NotFound(f"No such item in the timeline of {incident.public_id}.")
    row = db.session.scalar(select(TimelineHidden).where(
        TimelineHidden.incident_id == incident.id, TimelineHidden.source == source,
        TimelineHidden.source_id == source_id))
    if (row is not None) == hidden:
        return False
    if hidden:
        db.session.add(TimelineHidden(incident_id=incident.id, source=source,
                                      source_id=source_id))
    else:
        db.session.delete(row)
    _audit(incident, "incident.timeline_item_hidden" if hidden
           else "incident.timeline_item_shown", actor,
           after={"source": source, "source_id": source_id})
    db.session.commit()
    return True


def hide_timeline_item(*, actor: User, incident_id: str, source: TimelineSource | str,
                       source_id: int) -> bool:
    return set_timeline_item_hidden(actor=actor, incident_id=incident_id, source=source,
                                    source_id=source_id, hidden=True)


def unhide_timeline_item(*, actor: User, incident_id: str, source: TimelineSource | str,
                         source_id: int) -> bool:
    return set_timeline_item_hidden(actor=actor, incident_id=incident_id, source=source,
                                    source_id=source_id, hidden=False)


# --- the retrospective ----------------------------------------------------------------------


def _sections(sections: Mapping[str, str]) -> dict[str, str]:
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValidationFailed("Unknown section.", fields={k: ["Unknown section."]
                                                           for k in sorted(unknown)})
    cleaned = {}
    for key, text in sections.items():
        text = (text or "").strip()
        if len(text) > SECTION_MAX or "\x00" in text:
            raise ValidationFailed(f"A section holds at most {SECTION_MAX} characters.",
                                   fields={key: ["Too long."]})
        cleaned[key] = text
    return cleaned


def get_retrospective(*, actor: User, incident_id: str) -> Retrospective | None:
    """The working copy (draft, in review or the latest published), or None if nobody
    has written one yet."""
    require(actor, "incidents:read")
    return find(incident_id).retrospective


def _working_copy(incident: Incident, actor: User) -> Retrospective:
    retrospective = incident.retrospective
    if retrospective is None:
        retrospective = Retrospective(incident=incident, state=RetrospectiveState.DRAFT,
                                      sections={}, machine_written=[], version=1,
                                      updated_at=now(), updated_by_id=actor.id)
        db.session.add(retrospective)
        db.session.flush()
    return retrospective


def _editable(retrospective: Retrospective) -> None:
    if retrospective.state == RetrospectiveState.PUBLISHED:
        raise Conflict(f"Version {retrospective.version} is published and read-only; start "
                       f"version {retrospective.version + 1} to change it.")


def save_sections(*, actor: User, incident_id: str, sections: Mapping[str, str],
                  approve: Collection[str] = ()) -> Retrospective:
    """Save the sections given (others stay as they are), creating the retrospective on
    first save. A machine-written section stops being one when its text is changed here
    or when it is named in `approve` (a person read it and accepts it as it is). Saving a
    retrospective in review with changed text sends it back to draft and drops that
    version's sign-offs. Conflict once published (see reopen)."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    cleaned = _sections(sections)
    unknown = set(approve) - set(SECTIONS)
    if unknown:
        raise ValidationFailed("Unknown section.", fields={"approve": sorted(unknown)})
    started = incident.retrospective is None
    retrospective = _working_copy(incident, actor)
    _editable(retrospective)
    changed = {k: v for k, v in cleaned.items() if retrospective.sections.get(k, "") != v}
    cleared = [k for k in retrospective.machine_written if k in changed or k in approve]
    if not changed and not cleared:
        if started:  # an empty first save still starts the write-up
            _audit(incident, "retrospective.started", actor, after={"version": 1})
            db.session.commit()
        return retrospective
    before: dict[str, Any] = {"sections": {k: retrospective.sections.get(k, "")
                                           for k in changed}}
    after: dict[str, Any] = {"sections": changed, "version": retrospective.version}
    if cleared:
        before["machine_written"] = list(retrospective.machine_written)
        retrospective.machine_written = [k for k in retrospective.machine_written
                                         if k not in cleared]
        after["machine_written"] = list(retrospective.machine_written)
    retrospective.sections = {**retrospective.sections, **changed}
    if changed and retrospective.state == RetrospectiveState.IN_REVIEW:
        before["state"], after["state"] = str(retrospective.state), "draft"
        retrospective.state = RetrospectiveState.DRAFT
        dropped = list(db.session.scalars(
            select(RetrospectiveSignoff.user_id).where(
                RetrospectiveSignoff.retrospective_id == retrospective.id,
                RetrospectiveSignoff.version == retrospective.version)))
        if dropped:
            db.session.execute(delete(RetrospectiveSignoff).where(
                RetrospectiveSignoff.retrospective_id == retrospective.id,
                RetrospectiveSignoff.version == retrospective.version))
            before["signed_off_by"], after["signed_off_by"] = sorted(dropped), []
    retrospective.updated_at = now()
    retrospective.updated_by_id = actor.id
    _audit(incident, "retrospective.saved", actor, before=before, after=after)
    db.session.commit()
    return retrospective


def save_machine_draft(*, actor: User, incident_id: str, sections: Mapping[str, str]
                       ) -> Retrospective:
    """Store sections drafted by the model, marked machine-written until a person edits
    or approves each (see save_sections). Drafts only."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    cleaned = _sections(sections)
    retrospective = _working_copy(incident, actor)
    _editable(retrospective)
    if retrospective.state != RetrospectiveState.DRAFT:
        raise Conflict("The retrospective is in review: a model draft goes into drafts only.")
    before = {"sections": {k: retrospective.sections.get(k, "") for k in cleaned},
              "machine_written": list(retrospective.machine_written)}
    retrospective.sections = {**retrospective.sections, **cleaned}
    retrospective.machine_written = [k for k in SECTIONS if k in cleaned
                                     or k in retrospective.machine_written]
    retrospective.updated_at = now()
    retrospective.updated_by_id = actor.id
    _audit(incident, "retrospective.machine_drafted", actor, before=before,
           after={"sections": cleaned, "machine_written": retrospective.machine_written,
                  "version": retrospective.version})
    db.session.commit()
    return retrospective


def _set_state(incident: Incident, retrospective: Retrospective, actor: User, action: str,
               state: RetrospectiveState, **extra: Any) -> None:
    _audit(incident, action, actor,
           before={"state": retrospective.state, "version": retrospective.version},
           after={"state": state, **extra})
    retrospective.state = state
    retrospective.updated_at = now()
    retrospective.updated_by_id = actor.id


def _existing(incident: Incident) -> Retrospective:
    if incident.retrospective is None:
        raise NotFound(f"{incident.public_id} has no retrospective yet.")
    return incident.retrospective


def submit_for_review(*, actor: User, incident_id: str) -> Retrospective:
    """Draft → in review. Needs a summary, and no section left as the model wrote it."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    retrospective = _existing(incident)
    if retrospective.state != RetrospectiveState.DRAFT:
        raise Conflict(f"The retrospective is {retrospective.state}, not a draft.")
    if not retrospective.sections.get("summary"):
        raise ValidationFailed("Write a summary before asking for review.",
                               fields={"summary": ["Required."]})
    if retrospective.machine_written:
        raise Conflict("A person must edit or approve the machine-written sections first: "
                       + ", ".join(retrospective.machine_written) + ".",
                       fields={"machine_written": list(retrospective.machine_written)})
    _set_state(incident, retrospective, actor, "retrospective.submitted",
               RetrospectiveState.IN_REVIEW, version=retrospective.version)
    db.session.commit()
    return retrospective


def sign_off(*, actor: User, incident_id: str) -> RetrospectiveSignoff:
    """Sign off the version in review (any lead or admin, its author included). Signing
    the same version twice changes nothing."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    retrospective = _existing(incident)
    if retrospective.state != RetrospectiveState.IN_REVIEW:
        raise Conflict(f"The retrospective is {retrospective.state}: sign-offs are for a "
                       "version in review.")
    existing = db.session.scalar(select(RetrospectiveSignoff).where(
        RetrospectiveSignoff.retrospective_id == retrospective.id,
        RetrospectiveSignoff.version == retrospective.version,
        RetrospectiveSignoff.user_id == actor.id))
    if existing is not None:
        return existing
    signoff = RetrospectiveSignoff(retrospective_id=retrospective.id,
                                   version=retrospective.version, user_id=actor.id,
                                   signed_at=now())
    db.session.add(signoff)
    _audit(incident, "retrospective.signed_off", actor,
           after={"version": retrospective.version, "user_id": actor.id})
    db.session.commit()
    return signoff


def signoffs(*, actor: User, incident_id: str, version: int | None = None
             ) -> list[RetrospectiveSignoff]:
    """Sign-offs of a version (default: the working copy's), oldest first."""
    require(actor, "incidents:read")
    retrospective = find(incident_id).retrospective
    if retrospective is None:
        return []
    return list(db.session.scalars(
        select(RetrospectiveSignoff).options(selectinload(RetrospectiveSignoff.user))
        .where(RetrospectiveSignoff.retrospective_id == retrospective.id,
               RetrospectiveSignoff.version == (version or retrospective.version))
        .order_by(RetrospectiveSignoff.signed_at, RetrospectiveSignoff.id)))


def publish(*, actor: User, incident_id: str) -> RetrospectiveVersion:
    """In review → published: the version is frozen with the facts and the published
    timeline (hidden items left out) as they are now. Needs at least one sign-off."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    retrospective = _existing(incident)
    if retrospective.state != RetrospectiveState.IN_REVIEW:
        raise Conflict(f"The retrospective is {retrospective.state}: only a version in "
                       "review is published.")
    signed = db.session.scalar(select(func.count()).where(
        RetrospectiveSignoff.retrospective_id == retrospective.id,
        RetrospectiveSignoff.version == retrospective.version)) or 0
    if not signed:
        raise Conflict("A reviewer (a lead or admin) must sign off before publishing.")
    published_at = now()
    version = RetrospectiveVersion(
        retrospective=retrospective, version=retrospective.version,
        sections={key: retrospective.sections.get(key, "") for key in SECTIONS},
        facts=facts(incident=incident).as_dict(),
        timeline=[item.as_dict() for item in build_timeline(incident, include_hidden=False)],
        published_at=published_at, published_by_id=actor.id)
    db.session.add(version)
    retrospective.published_at = published_at
    _set_state(incident, retrospective, actor, "retrospective.published",
               RetrospectiveState.PUBLISHED, version=retrospective.version, signoffs=signed)
    db.session.commit()
    return version


def reopen(*, actor: User, incident_id: str) -> Retrospective:
    """Back to draft: from review (same version, its sign-offs kept while the text is
    unchanged), or from published (a new version, version + 1, starting from the
    published text; the published versions stay as they are)."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    retrospective = _existing(incident)
    if retrospective.state == RetrospectiveState.DRAFT:
        return retrospective
    if retrospective.state == RetrospectiveState.PUBLISHED:
        _set_state(incident, retrospective, actor, "retrospective.reopened",
                   RetrospectiveState.DRAFT, version=retrospective.version + 1)
        retrospective.version += 1
    else:
        _set_state(incident, retrospective, actor, "retrospective.reopened",
                   RetrospectiveState.DRAFT, version=retrospective.version)
    db.session.commit()
    return retrospective


def _published_query() -> Any:
    return select(RetrospectiveVersion).options(
        selectinload(RetrospectiveVersion.retrospective).selectinload(Retrospective.incident),
        selectinload(RetrospectiveVersion.published_by))


def published_version(*, actor: User, incident_id: str, version: int | None = None
                      ) -> RetrospectiveVersion:
    """A published version (default: the latest); NotFound if there is none. Viewers
    may read these, and nothing else of the incident."""
    require(actor, "retrospectives:read")
    incident = find(incident_id)
    query = _published_query().join(Retrospective).where(
        Retrospective.incident_id == incident.id)
    if version is not None:
        query = query.where(RetrospectiveVersion.version == version)
    found = db.session.scalar(query.order_by(RetrospectiveVersion.version.desc()).limit(1))
    if found is None:
        raise NotFound(f"{incident.public_id} has no published retrospective"
                       + (f" version {version}." if version else "."))
    return found


def published_versions(*, actor: User, incident_id: str) -> list[RetrospectiveVersion]:
    """Every published version of the incident's retrospective, oldest first."""
    require(actor, "retrospectives:read")
    incident = find(incident_id)
    return list(db.session.scalars(_published_query().join(Retrospective).where(
        Retrospective.incident_id == incident.id).order_by(RetrospectiveVersion.version)))


def list_published(*, actor: User, published_from: datetime | None = None,
                   published_to: datetime | None = None, latest_only: bool = True
                   ) -> list[RetrospectiveVersion]:
    """Versions published in [from, to), oldest first; with `latest_only`, only the newest
    such version of each retrospective."""
    require(actor, "retrospectives:read")
    query = _published_query()
    if published_from is not None:
        query = query.where(RetrospectiveVersion.published_at >= published_from)
    if published_to is not None:
        query = query.where(RetrospectiveVersion.published_at < published_to)
    versions = list(db.session.scalars(
        query.order_by(RetrospectiveVersion.published_at, RetrospectiveVersion.id)))
    if latest_only:
        newest = {v.retrospective_id: v for v in versions}
        versions = [v for v in versions if newest[v.retrospective_id] is v]
    return versions


# --- action items ---------------------------------------------------------------------------


def _has_published(incident: Incident) -> bool:
    return db.session.scalar(select(RetrospectiveVersion.id).join(Retrospective).where(
        Retrospective.incident_id == incident.id).limit(1)) is not None


def action_items(*, actor: User, incident_id: str) -> list[ActionItem]:
    """The incident's action items, oldest first. Viewers see them once a retrospective
    version is published (they belong to it)."""
    require(actor, "retrospectives:read")
    incident = find(incident_id)
    if not _may(actor, "incidents:read") and not _has_published(incident):
        raise Forbidden("Action items are shown with the published retrospective.")
    return list(db.session.scalars(
        select(ActionItem).options(selectinload(ActionItem.owner))
        .where(ActionItem.incident_id == incident.id).order_by(ActionItem.id)))


def _owner(owner_id: int | None) -> int | None:
    if owner_id is None:
        return None
    user = db.session.get(User, owner_id)
    if user is None or not user.active or not Role(user.role).at_least(Role.RESPONDER):
        raise ValidationFailed("An action item's owner is active staff.",
                               fields={"owner_id": ["Not active staff."]})
    return user.id


def _link(link: str | None) -> str | None:
    link = (link or "").strip() or None
    if link is not None:
        error = http_url_error(link)
        if error:
            raise ValidationFailed("The link must be an http(s) URL.", fields={"link": [error]})
    return link


def _due(due_date: date | None) -> date | None:
    if due_date is not None and due_date < now().date():
        raise ValidationFailed("A due date is today or later.",
                               fields={"due_date": ["In the past."]})
    return due_date


def _item_status(status: ActionItemStatus | str) -> ActionItemStatus:
    try:
        return ActionItemStatus(status)
    except ValueError as error:
        raise ValidationFailed("Pick a status.", fields={
            "status": [f"One of {', '.join(ActionItemStatus)}."]}) from error


def add_action_item(*, actor: User, incident_id: str, title: str, owner_id: int | None = None,
                    due_date: date | None = None,
                    status: ActionItemStatus | str = ActionItemStatus.OPEN,
                    link: str | None = None) -> ActionItem:
    """Add an action item (a due date, when given, is today or later; a link is
    http(s))."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    current = now()
    item = ActionItem(incident_id=incident.id, title=_title(title), owner_id=_owner(owner_id),
                      due_date=_due(due_date), status=_item_status(status), link=_link(link),
                      created_at=current, updated_at=current)
    db.session.add(item)
    db.session.flush()
    _audit(incident, "action_item.added", actor, after={
        "item_id": item.id, "title": item.title, "owner_id": item.owner_id,
        "due_date": item.due_date, "status": item.status, "link": item.link})
    db.session.commit()
    return item


def _item(incident: Incident, item_id: int) -> ActionItem:
    item = db.session.get(ActionItem, item_id)
    if item is None or item.incident_id != incident.id:
        raise NotFound(f"No action item {item_id} in {incident.public_id}.")
    return item


def update_action_item(*, actor: User, incident_id: str, item_id: int,
                       title: str | _Unset = UNSET, owner_id: int | None | _Unset = UNSET,
                       due_date: date | None | _Unset = UNSET,
                       status: ActionItemStatus | str | _Unset = UNSET,
                       link: str | None | _Unset = UNSET) -> ActionItem:
    """Change what is given. A due date is refused in the past only when it changes (an
    overdue item keeps its date)."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    item = _item(incident, item_id)
    values: dict[str, Any] = {}
    if title is not UNSET:
        values["title"] = _title(title)
    if owner_id is not UNSET:
        values["owner_id"] = _owner(owner_id)
    if due_date is not UNSET:
        values["due_date"] = due_date if due_date == item.due_date else _due(due_date)
    if status is not UNSET:
        values["status"] = _item_status(status)
    if link is not UNSET:
        values["link"] = _link(link)
    changed = {k: v for k, v in values.items() if getattr(item, k) != v}
    if not changed:
        return item
    before = {k: getattr(item, k) for k in changed}
    for name, value in changed.items():
        setattr(item, name, value)
    item.updated_at = now()
    _audit(incident, "action_item.updated", actor, before={"item_id": item.id, **before},
           after={"item_id": item.id, **changed})
    db.session.commit()
    return item


def delete_action_item(*, actor: User, incident_id: str, item_id: int) -> None:
    """Remove an action item (the audit event keeps what it was)."""
    require(actor, "incidents:manage")
    incident = find(incident_id)
    item = _item(incident, item_id)
    _audit(incident, "action_item.deleted", actor, before={
        "item_id": item.id, "title": item.title, "owner_id": item.owner_id,
        "due_date": item.due_date, "status": item.status, "link": item.link})
    db.session.delete(item)
    db.session.commit()
