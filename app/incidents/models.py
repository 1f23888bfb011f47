"""Incidents, their linked reports, timelines, retrospectives and action items.

An incident links many reports (10,000 in the benchmark), so `Incident.links` is a
write-only collection: read it with `db.session.scalars(incident.links.select())` or,
better, through the service (`linked_report_ids(incident_id)` is a subquery).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Session, WriteOnlyMapped, mapped_column, relationship

from app.auth.models import User
from app.core.clock import now
from app.core.db import JSONType, StrEnumType, UTCDateTime
from app.extensions import db
from app.projects.models import Project
from app.reports.models import Report


class Severity(StrEnum):
    """SEV1 is the worst; the names sort in order of severity."""

    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"


# What each severity means: shown next to the choice in the form.
SEVERITY_MEANINGS: dict[Severity, str] = {
    Severity.SEV1: "Critical: harmful or unsafe output reaching many users, a privacy leak, "
                   "or the product unusable. All hands, now, around the clock.",
    Severity.SEV2: "Major: a serious failure for a large group of users or a sensitive "
                   "category (self-harm, minors), with no workaround. Work on it today.",
    Severity.SEV3: "Minor: a visible failure for some users or in one feature, with a "
                   "workaround or limited reach. Work on it in working hours.",
    Severity.SEV4: "Low: a small or cosmetic problem, few users affected. Track and fix in "
                   "the normal course of work.",
}


class IncidentStatus(StrEnum):
    """In order; `closed` is final (see service.set_status for the moves allowed)."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TimelineKind(StrEnum):
    NOTE = "note"
    ACTION = "action"
    DECISION = "decision"
    COMMUNICATION = "communication"
    DETECTION = "detection"
    MITIGATION = "mitigation"


class TimelineSource(StrEnum):
    AUDIT = "audit"  # an AuditEvent (of the incident or of a linked report)
    ENTRY = "entry"  # a TimelineEntry written by a person


class RetrospectiveState(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"


class ActionItemStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    WONT_DO = "wont_do"


# The retrospective's editable sections, in the order a reader meets them.
SECTIONS: tuple[str, ...] = (
    "summary", "impact", "root_cause", "contributing_factors", "detection",
    "response_recovery", "went_well", "went_poorly", "got_lucky", "lessons",
)

SECTION_TITLES: dict[str, str] = {
    "summary": "Summary",
    "impact": "Impact",
    "root_cause": "Root cause",
    "contributing_factors": "Contributing factors",
    "detection": "Detection",
    "response_recovery": "Response and recovery",
    "went_well": "What went well",
    "went_poorly": "What went poorly",
    "got_lucky": "Where we got lucky",
    "lessons": "Lessons learned",
}


incident_participants = Table(
    "incident_participants", db.metadata,
    Column("incident_id", ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True,
           index=True),
)

incident_projects = Table(
    "incident_projects", db.metadata,
    Column("incident_id", ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True,
           index=True),
)


class Incident(db.Model):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_status_created", "status", "created_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)  # "inc_" + base32
    title: Mapped[str] = mapped_column(String(200))
    severity: Mapped[Severity] = mapped_column(StrEnumType(Severity, 8))
    status: Mapped[IncidentStatus] = mapped_column(
        StrEnumType(IncidentStatus, 16), default=IncidentStatus.INVESTIGATING)
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    affected_models: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # The impact window (UTC); each may be unknown.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mitigated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    lead: Mapped[User | None] = relationship(foreign_keys=[lead_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    participants: Mapped[list[User]] = relationship(
        secondary=incident_participants, order_by="User.name")
    projects: Mapped[list[Project]] = relationship(
        secondary=incident_projects, order_by="Project.name")
    # Large: never loaded whole by accident (see the module docstring).
    links: WriteOnlyMapped[IncidentReport] = relationship(
        back_populates="incident", cascade="all, delete-orphan", passive_deletes=True,
        order_by="IncidentReport.id")
    retrospective: Mapped[Retrospective | None] = relationship(
        back_populates="incident", cascade="all, delete-orphan", passive_deletes=True)

    @property
    def open(self) -> bool:
        """Still being worked on: not resolved or closed."""
        return self.status not in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)


class IncidentReport(db.Model):
    """A report linked to an incident; a report belongs to at most one incident."""

    __tablename__ = "incident_reports"
    __table_args__ = (Index("ix_incident_reports_incident", "incident_id", "report_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), unique=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    incident: Mapped[Incident] = relationship(back_populates="links")
    report: Mapped[Report] = relationship()


class TimelineEntry(db.Model):
    """Something a person writes into the timeline (what the audit log cannot know)."""

    __tablename__ = "timeline_entries"
    __table_args__ = (Index("ix_timeline_entries_incident", "incident_id", "at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it happened
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[TimelineKind] = mapped_column(StrEnumType(TimelineKind, 16))
    body: Mapped[str] = mapped_column(Text)  # Markdown
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    author: Mapped[User | None] = relationship()


class TimelineHidden(db.Model):
    """An item hidden from the published timeline; nothing is deleted."""

    __tablename__ = "timeline_hidden"
    __table_args__ = (UniqueConstraint("incident_id", "source", "source_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    source: Mapped[TimelineSource] = mapped_column(StrEnumType(TimelineSource, 8))
    source_id: Mapped[int]


class Retrospective(db.Model):
    """The working copy of an incident's write-up.

    `version` is the number of the version this working copy is (1 until the first
    publish); once published, editing again makes it version + 1, a draft. The published
    versions are kept as RetrospectiveVersion rows and stay readable.
    """

    __tablename__ = "retrospectives"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), unique=True)
    state: Mapped[RetrospectiveState] = mapped_column(
        StrEnumType(RetrospectiveState, 16), default=RetrospectiveState.DRAFT)
    # {section key: Markdown}, keys from SECTIONS.
    sections: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    # Section keys still as the model drafted them (no person has edited or approved them).
    machine_written: Mapped[list[str]] = mapped_column(JSONType, default=list)
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the latest publish

    incident: Mapped[Incident] = relationship(back_populates="retrospective")
    versions: Mapped[list[RetrospectiveVersion]] = relationship(
        back_populates="retrospective", cascade="all, delete-orphan", passive_deletes=True,
        order_by="RetrospectiveVersion.version")


class RetrospectiveVersion(db.Model):
    """A published version, frozen: its sections, facts and timeline as published."""

    __tablename__ = "retrospective_versions"
    __table_args__ = (UniqueConstraint("retrospective_id", "version"),
                      Index("ix_retrospective_versions_published", "published_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    retrospective_id: Mapped[int] = mapped_column(
        ForeignKey("retrospectives.id", ondelete="CASCADE"))
    version: Mapped[int]
    sections: Mapped[dict[str, str]] = mapped_column(JSONType)
    facts: Mapped[dict[str, Any]] = mapped_column(JSONType)  # RetrospectiveFacts.as_dict()
    timeline: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)  # TimelineItem.as_dict()
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))

    retrospective: Mapped[Retrospective] = relationship(back_populates="versions")
    published_by: Mapped[User | None] = relationship()


class RetrospectiveSignoff(db.Model):
    """A reviewer's sign-off on one version of a retrospective."""

    __tablename__ = "retrospective_signoffs"
    __table_args__ = (UniqueConstraint("retrospective_id", "version", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    retrospective_id: Mapped[int] = mapped_column(
        ForeignKey("retrospectives.id", ondelete="CASCADE"))
    version: Mapped[int]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    user: Mapped[User] = relationship()


class ActionItem(db.Model):
    __tablename__ = "action_items"
    __table_args__ = (Index("ix_action_items_incident", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    due_date: Mapped[date | None]
    status: Mapped[ActionItemStatus] = mapped_column(
        StrEnumType(ActionItemStatus, 16), default=ActionItemStatus.OPEN)
    link: Mapped[str | None] = mapped_column(String(2000))  # http(s) only (schemas, service)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    owner: Mapped[User | None] = relationship()


@event.listens_for(Session, "before_flush")
def _refuse_published_changes(session: Session, flush_context: object, instances: object) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, RetrospectiveVersion) and (obj in session.deleted
                                                     or session.is_modified(obj)):
            raise RuntimeError("a published retrospective version is read-only")
