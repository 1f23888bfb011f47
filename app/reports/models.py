from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User
from app.core.clock import now
from app.core.db import JSONType, StrEnumType, UTCDateTime
from app.extensions import db
from app.projects.models import Project


class Reason(StrEnum):
    """What the end user says went wrong (the choices the widget offers)."""

    HARMFUL_OR_OFFENSIVE = "harmful_or_offensive"
    INACCURATE = "inaccurate"
    BIASED = "biased"
    PRIVACY = "privacy"
    UNSAFE_ADVICE = "unsafe_advice"
    JAILBREAK = "jailbreak_or_prompt_injection"
    OTHER = "other"


class Status(StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    IN_PROGRESS = "in_progress"
    WAITING_ON_REPORTER = "waiting_on_reporter"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


class Priority(StrEnum):
    """P0 is the most urgent; the names sort in order of urgency."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class TaggingState(StrEnum):
    PENDING = "pending"  # not tagged yet, or the last attempt failed: the sweep retries
    TAGGED = "tagged"


# Indexes made only by migrations (PostgreSQL expression indexes that autogenerate cannot
# compare): migrations/env.py and the models-agree test leave them out of the comparison.
MIGRATION_ONLY_INDEXES = frozenset({"ix_reports_open_wording", "ix_reports_open_flagged_model"})


class Report(db.Model):
    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("project_id", "idempotency_key"),
        Index("ix_reports_received", "received_at", "id"),
        # The board's columns (see triage.service._column_order), unmerged tickets only:
        # open columns breached, then at risk first (sla_rank), then oldest first; closed
        # columns most recently closed first. With assignee_id included, the "unassigned"
        # filter is answered from the index too.
        Index("ix_reports_board_open", "status", "sla_rank", "priority", "received_at", "id",
              "assignee_id", postgresql_where=text("merged_into_id IS NULL"),
              sqlite_where=text("merged_into_id IS NULL")),
        # The board's "due soonest" order.
        Index("ix_reports_board_due", "status", "sla_due_at", "id",
              postgresql_where=text("merged_into_id IS NULL"),
              sqlite_where=text("merged_into_id IS NULL")),
        # ix_reports_board_closed needs DESC columns: declared after the class.
        Index("ix_reports_tagging_due", "tagging_state", "next_tagging_at"),
        Index("ix_reports_assignee_id", "assignee_id",
              postgresql_where=text("assignee_id IS NOT NULL"),
              sqlite_where=text("assignee_id IS NOT NULL")),
        Index("ix_reports_merged_into_id", "merged_into_id",
              postgresql_where=text("merged_into_id IS NOT NULL"),
              sqlite_where=text("merged_into_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    # Looked up through the unique (project_id, idempotency_key) index's leading column.
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    reason: Mapped[Reason] = mapped_column(StrEnumType(Reason, 32))
    description: Mapped[str] = mapped_column(Text, default="")
    # [{"role": "user"|"assistant"|"system"|"tool", "content": "..."}], bounded by the schema
    conversation: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)
    model_name: Mapped[str | None] = mapped_column(String(200))
    response_id: Mapped[str | None] = mapped_column(String(200), index=True)
    page_url: Mapped[str | None] = mapped_column(String(2048))
    locale: Mapped[str | None] = mapped_column(String(35))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    widget_version: Mapped[str | None] = mapped_column(String(32))
    # Host-supplied context (flat, bounded); shown to staff as untrusted data.
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # HMAC-SHA256 of the host's end-user id with a server-side pepper; never the raw id.
    # Shown and exported, never searched: not indexed (see migration 0009).
    end_user_hash: Mapped[str | None] = mapped_column(String(64))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_consent: Mapped[bool] = mapped_column(default=False)

    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # SHA-256 of the canonical request body: a reused key with another body is a conflict.
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    status_token_hash: Mapped[str] = mapped_column(String(64))

    status: Mapped[Status] = mapped_column(StrEnumType(Status, 32), default=Status.NEW)
    priority: Mapped[Priority] = mapped_column(StrEnumType(Priority, 2), default=Priority.P4)
    tagging_state: Mapped[TaggingState] = mapped_column(
        StrEnumType(TaggingState, 16), default=TaggingState.PENDING)
    tagging_attempts: Mapped[int] = mapped_column(default=0)
    tagging_error: Mapped[str | None] = mapped_column(String(500))
    next_tagging_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The flagged categories, most confident first: what a board card shows, written once
    # by tagging so a page of cards needs no tag rows.
    flagged_categories: Mapped[list[str]] = mapped_column(JSONType, default=list)

    # Both indexed where set only (ix_reports_assignee_id, ix_reports_merged_into_id in
    # __table_args__): a report arrives with neither.
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    # A duplicate points at the ticket that survives; its reporters see that one's status.
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("reports.id", ondelete="SET NULL"))
    # Kept by app.sla whenever a clock changes, so the board sorts and filters in SQL:
    # the soonest due instant of the running clocks, and 0 breached / 1 at risk / 2 else.
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_rank: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="2")

    project: Mapped[Project] = relationship()
    assignee: Mapped[User | None] = relationship()
    merged_into: Mapped[Report | None] = relationship(remote_side="Report.id")
    # Bounded (categories x classified fields), so an ordinary collection; list pages
    # load it with selectinload, one query per page.
    tags: Mapped[list[ModerationTag]] = relationship(
        back_populates="report", cascade="all, delete-orphan", passive_deletes=True,
        order_by="ModerationTag.id",
    )


Index("ix_reports_board_closed", Report.status, Report.priority, Report.updated_at.desc(),
      Report.id.desc(), Report.assignee_id, postgresql_where=text("merged_into_id IS NULL"),
      sqlite_where=text("merged_into_id IS NULL"))


class ModerationTag(db.Model):
    """One category score for one classified field of a report, from one backend."""

    __tablename__ = "moderation_tags"
    __table_args__ = (Index("ix_moderation_tags_category", "category", "flagged", "report_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(String(32))  # "description" or "conversation"
    category: Mapped[str] = mapped_column(String(64))
    score: Mapped[float]
    flagged: Mapped[bool]
    source: Mapped[str] = mapped_column(String(32))  # the backend: "local" or "openai"
    model: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    report: Mapped[Report] = relationship(back_populates="tags")


class CommentKind(StrEnum):
    NOTE = "note"  # internal: staff only
    REPLY = "reply"  # public: shown to the reporter on the status page
    REPORTER = "reporter"  # the reporter's own answer, sent from their status token


class ReportComment(db.Model):
    """A staff note on a report, or a public reply to its reporter."""

    __tablename__ = "report_comments"
    __table_args__ = (Index("ix_report_comments_report", "report_id", "kind", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[CommentKind] = mapped_column(StrEnumType(CommentKind, 8))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    author: Mapped[User | None] = relationship()
