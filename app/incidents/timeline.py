"""An incident's timeline: what the audit log says happened to the incident and to its
linked reports, and what people wrote into it, in time order.

Built with one query per source (the incident's events, its reports' events, the
written entries, the hidden items) and one for the names of the people involved, however
many reports and events there are. The linked reports' events are found through a
subquery (reports joined to incident_reports on the public id the audit log keeps), which
the audit index (subject_type, subject_id, id) answers. A page (build_page) is cut in
SQL with a keyset cursor, so showing the first 200 of 50,000 items fetches about 200.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, true

from app.audit.models import AuditEvent
from app.auth.models import User
from app.extensions import db
from app.incidents.models import (
    Incident,
    IncidentReport,
    TimelineEntry,
    TimelineHidden,
    TimelineSource,
)
from app.reports.models import Report

SYSTEM = "system"
REPORTER = "reporter"
FORMER_USER = "a former user"


@dataclass(frozen=True, slots=True)
class TimelineItem:
    at: datetime
    author: str  # a person's name, "system" (a rule or a sweep) or "reporter"
    kind: str  # a TimelineKind for written entries; for events see EVENT_KINDS
    text: str  # plain text, untrusted: escape it for the format it goes into
    source: TimelineSource
    source_id: int  # the AuditEvent's or the TimelineEntry's id
    hidden: bool
    subject: str  # the public id of the incident or the report it is about
    action: str | None = None  # the audit action; None for written entries

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (what a published version keeps)."""
        return {"at": self.at.isoformat(), "author": self.author, "kind": self.kind,
                "text": self.text, "source": str(self.source), "source_id": self.source_id,
                "hidden": self.hidden, "subject": self.subject, "action": self.action}


# The events a timeline shows, by subject, with the kind each is shown as. Others
# (tagging, routing, retrospective edits, entries' own audit events) are bookkeeping.
INCIDENT_EVENTS: dict[str, str] = {
    "incident.opened": "incident",
    "incident.updated": "incident",
    "incident.status_changed": "status",
    "incident.reports_linked": "link",
    "incident.report_unlinked": "link",
}
REPORT_EVENTS: dict[str, str] = {
    "report.status_changed": "status",
    "report.priority_changed": "priority",
    "report.assigned": "assignment",
    "report.note_added": "note",
    "report.replied": "reply",
    "report.reporter_answered": "reply",
    "report.merged": "merge",
    "report.duplicate_merged": "merge",
    "sla.at_risk": "sla",
    "sla.breached": "sla",
}
EVENT_KINDS = {**INCIDENT_EVENTS, **REPORT_EVENTS}

METRIC_NAMES = {"first_response": "first response", "next_update": "next update",
                "resolution": "resolution"}


def linked_public_ids(incident_id: int) -> Select[tuple[str]]:
    """The public ids of an incident's linked reports, as a subquery (never a list)."""
    return (select(Report.public_id)
            .join(IncidentReport, IncidentReport.report_id == Report.id)
            .where(IncidentReport.incident_id == incident_id))


@dataclass(frozen=True)
class Cursor:
    """Where a page of the timeline ended: its last item's time, source and id."""

    at: datetime
    source: TimelineSource
    source_id: int

    def encode(self) -> str:
        """URL-safe as it is: "2026-01-05T10:00:00Z~audit~123"."""
        at = self.at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return f"{at}~{self.source}~{self.source_id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """ValueError for anything that is not an encoded cursor."""
        at, source, source_id = text.split("~")
        instant = datetime.fromisoformat(at)
        if instant.tzinfo is None:
            raise ValueError("a cursor's time carries its offset")
        return cls(instant, TimelineSource(source), int(source_id))

    @classmethod
    def after(cls, item: TimelineItem) -> Cursor:
        return cls(item.at, item.source, item.source_id)


@dataclass(frozen=True)
class TimelinePage:
    items: list[TimelineItem]
    next: Cursor | None  # None on the last page


# What a report event's text needs, taken out of its JSON in SQL: decoding 50,000
# JSON documents in Python would cost more than the whole query.
_B, _A = AuditEvent.before, AuditEvent.after
_REPORT_COLUMNS = (
    AuditEvent.id, AuditEvent.at, AuditEvent.actor_type, AuditEvent.actor_id,
    AuditEvent.action, AuditEvent.subject_id,
    _B["status"].as_string(), _A["status"].as_string(),
    _B["priority"].as_string(), _A["priority"].as_string(),
    _A["assignee_id"].as_integer(), _A["duplicate"].as_string(),
    _A["metric"].as_string(), _A["state"].as_string(), _A["target_minutes"].as_integer(),
)


def _after_cursor(at_column: Any, id_column: Any, rank: int, cursor: Cursor | None) -> Any:
    """Rows strictly after the cursor in (at, source rank, id) order, for a source of
    this rank (audit events 0, written entries 1)."""
    if cursor is None:
        return true()
    cursor_rank = 0 if cursor.source == TimelineSource.AUDIT else 1
    if rank > cursor_rank:
        return at_column >= cursor.at
    if rank < cursor_rank:
        return at_column > cursor.at
    return or_(at_column > cursor.at, and_(at_column == cursor.at, id_column > cursor.source_id))


def build_timeline(incident: Incident, *, include_hidden: bool) -> list[TimelineItem]:
    """The incident's whole timeline, oldest first (by time, then events before entries,
    then id). Hidden items are left out, or kept and marked when `include_hidden`.
    Checks no permission: see service.timeline."""
    return build_page(incident, include_hidden=include_hidden).items


def build_page(incident: Incident, *, include_hidden: bool, limit: int | None = None,
               after: Cursor | None = None, own: bool = True,
               of_reports: bool = True) -> TimelinePage:
    """A page of the timeline: at most `limit` items (all when None) after the cursor.
    Five queries, whatever the number of reports and events: the incident's events, its
    reports' events, the written entries, the hidden items, the people's names. Without
    `own` the incident's events and written entries are left out; without `of_reports`,
    its reports' events."""
    hidden_audit = _hidden_ids(incident, TimelineSource.AUDIT)
    hidden_entries = _hidden_ids(incident, TimelineSource.ENTRY)
    fetch = None if limit is None else limit + 1
    db.session.flush()  # the queries below run on the connection, past the unit of work
    connection = db.session.connection()

    def page(query: Select[Any], at_column: Any, id_column: Any, rank: int,
             hidden: Select[Any]) -> Select[Any]:
        query = query.where(_after_cursor(at_column, id_column, rank, after))
        if not include_hidden:
            query = query.where(id_column.not_in(hidden))
        return query.order_by(at_column, id_column).limit(fetch)

    incident_events = [] if not own else connection.execute(page(
        select(AuditEvent.id, AuditEvent.at, AuditEvent.actor_type, AuditEvent.actor_id,
               AuditEvent.action, AuditEvent.subject_id, AuditEvent.before, AuditEvent.after)
        .where(*_incident_events(incident)),
        AuditEvent.at, AuditEvent.id, 0, hidden_audit)).all()
    if limit is None:
        report_query = page(select(*_REPORT_COLUMNS).where(*_report_events(incident)),
                            AuditEvent.at, AuditEvent.id, 0, hidden_audit)
    else:
        # The page is chosen on narrow rows (PostgreSQL then keeps only the top N while
        # sorting) and only its events are read whole.
        chosen = page(select(AuditEvent.id).where(*_report_events(incident)),
                      AuditEvent.at, AuditEvent.id, 0, hidden_audit)
        report_query = (select(*_REPORT_COLUMNS).where(AuditEvent.id.in_(chosen))
                        .order_by(AuditEvent.at, AuditEvent.id))
    report_events = connection.execute(report_query).all() if of_reports else []
    entries = [] if not own else connection.execute(page(
        select(TimelineEntry.id, TimelineEntry.at, TimelineEntry.author_id,
               TimelineEntry.kind, TimelineEntry.body)
        .where(TimelineEntry.incident_id == incident.id),
        TimelineEntry.at, TimelineEntry.id, 1, hidden_entries)).all()
    hidden: set[tuple[TimelineSource, int]] = set()
    if include_hidden:
        hidden = {(TimelineSource(source), source_id) for source, source_id in connection.execute(
            select(TimelineHidden.source, TimelineHidden.source_id)
            .where(TimelineHidden.incident_id == incident.id))}

    user_ids = {row[3] for row in incident_events if row[3] is not None}
    user_ids |= {row[3] for row in report_events if row[3] is not None}
    user_ids |= {row[10] for row in report_events if row[10] is not None}
    user_ids |= {row[2] for row in entries if row[2] is not None}
    names = _names(user_ids)

    # Who acted, by (actor_type, actor_id): the audit log's "user", "system", "reporter".
    authors: dict[tuple[str, int | None], str] = {
        ("user", user_id): name for user_id, name in names.items()}
    authors[("reporter", None)] = REPORTER

    def author(actor_type: str, actor_id: int | None) -> str:
        return authors.get((actor_type, actor_id)) or (
            SYSTEM if actor_id is None else FORMER_USER)

    audit, entry = TimelineSource.AUDIT, TimelineSource.ENTRY
    items: list[TimelineItem] = []
    for event_id, at, actor_type, actor_id, action, subject, before, after_ in incident_events:
        text = _describe_incident(action, before or {}, after_ or {})
        items.append(TimelineItem(at, author(actor_type, actor_id), INCIDENT_EVENTS[action],
                                  text, audit, event_id, (audit, event_id) in hidden, subject,
                                  action))
    for row in report_events:
        event_id, at, actor_type, actor_id, action, subject = row[:6]
        items.append(TimelineItem(at, author(actor_type, actor_id), REPORT_EVENTS[action],
                                  _describe_report(action, subject, row, names), audit,
                                  event_id, (audit, event_id) in hidden, subject, action))
    for entry_id, at, author_id, kind, body in entries:
        items.append(TimelineItem(at, names.get(author_id, FORMER_USER) if author_id
                                  else SYSTEM, str(kind), body, entry, entry_id,
                                  (entry, entry_id) in hidden, incident.public_id))
    # Three sorted runs: a stable sort of their concatenation merges them.
    items.sort(key=_order)
    if limit is not None and len(items) > limit:
        del items[limit:]
        return TimelinePage(items, Cursor.after(items[-1]))
    return TimelinePage(items, None)


def _hidden_ids(incident: Incident, source: TimelineSource) -> Select[tuple[int]]:
    return select(TimelineHidden.source_id).where(TimelineHidden.incident_id == incident.id,
                                                  TimelineHidden.source == source)


def _incident_events(incident: Incident) -> tuple[Any, ...]:
    return (AuditEvent.subject_type == "incident", AuditEvent.subject_id == incident.public_id,
            AuditEvent.action.in_(INCIDENT_EVENTS))


def _report_events(incident: Incident) -> tuple[Any, ...]:
    return (AuditEvent.subject_type == "report",
            AuditEvent.subject_id.in_(linked_public_ids(incident.id)),
            AuditEvent.action.in_(REPORT_EVENTS))


@dataclass(frozen=True)
class Listed:
    items: list[TimelineItem]  # in time order
    total: int  # items in the whole published view


def listed(incident: Incident, *, limit: int) -> Listed:
    """What a document shows of the published view (hidden items left out): at most
    `limit` items, the incident's own (its events and the written entries) first, then
    its reports' earliest events; in time order. Reads about `limit` rows, not the whole
    timeline, and counts the rest."""
    own = build_page(incident, include_hidden=False, limit=limit, of_reports=False).items
    theirs = [] if len(own) >= limit else build_page(
        incident, include_hidden=False, limit=limit - len(own), own=False).items
    return Listed(sorted(own + theirs, key=_order), published_count(incident))


def published_count(incident: Incident) -> int:
    """How many items the published view holds (the hidden ones left out)."""
    hidden_audit = _hidden_ids(incident, TimelineSource.AUDIT)
    counts = [
        select(func.count()).select_from(AuditEvent)
        .where(*_incident_events(incident), AuditEvent.id.not_in(hidden_audit)),
        select(func.count()).select_from(AuditEvent)
        .where(*_report_events(incident), AuditEvent.id.not_in(hidden_audit)),
        select(func.count()).select_from(TimelineEntry)
        .where(TimelineEntry.incident_id == incident.id,
               TimelineEntry.id.not_in(_hidden_ids(incident, TimelineSource.ENTRY))),
    ]
    return sum(db.session.scalar(query) or 0 for query in counts)


def _order(item: TimelineItem) -> tuple[datetime, bool, int]:
    return item.at, item.source is TimelineSource.ENTRY, item.source_id


def _names(user_ids: Iterable[int]) -> dict[int, str]:
    ids = set(user_ids)
    if not ids:
        return {}
    return dict(db.session.connection().execute(
        select(User.id, User.name).where(User.id.in_(ids))).all())


# --- what each event says ----------------------------------------------------------------


def _change(old: str | None, new: str | None) -> str:
    return f"{old or 'none'} → {new or 'none'}"


def _describe_incident(action: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    if action == "incident.opened":
        return f"Incident opened: {after.get('title', '')} ({after.get('severity', '?')})"
    if action == "incident.status_changed":
        return f"Status {_change(before.get('status'), after.get('status'))}"
    if action == "incident.reports_linked":
        reports = after.get("reports") or []
        return f"Report {reports[0]} linked" if len(reports) == 1 \
            else f"{len(reports)} reports linked"
    if action == "incident.report_unlinked":
        return f"Report {before.get('report', '?')} unlinked"
    fields = sorted(set(before) | set(after))
    return "Incident changed: " + ", ".join(f.replace("_", " ") for f in fields)


def _describe_report(action: str, subject: str, row: Any, names: dict[int, str]) -> str:
    (b_status, a_status, b_priority, a_priority, assignee, duplicate, metric, state,
     target) = row[6:15]
    if action == "report.status_changed":
        return f"{subject}: status {_change(b_status, a_status)}"
    if action == "report.priority_changed":
        return f"{subject}: priority {_change(b_priority, a_priority)}"
    if action == "report.assigned":
        if assignee is None:
            return f"{subject}: unassigned"
        return f"{subject}: assigned to {names.get(assignee, FORMER_USER)}"
    if action in ("sla.at_risk", "sla.breached"):
        what = METRIC_NAMES.get(metric or "", metric or "SLA")
        shown_target = f" ({target} min)" if target else ""
        outcome = "breached" if state == "breached" else "at risk"
        return f"{subject}: SLA {what} target{shown_target} {outcome}"
    if action == "report.duplicate_merged":
        return f"{subject}: {duplicate or 'a ticket'} merged into it as a duplicate"
    return _PLAIN[action].format(subject=subject)


_PLAIN = {
    "report.note_added": "{subject}: internal note added",
    "report.replied": "{subject}: public reply sent to the reporter",
    "report.reporter_answered": "{subject}: the reporter answered",
    "report.merged": "{subject}: merged into another ticket as a duplicate",
}
