"""SLA policies, calendars, targets and the per-ticket clocks.

A clock stores its due instants (at_risk_at, due_at) so that the sweep and the board
find what is due with an index, never by computing business hours in a query.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import now
from app.core.db import JSONType, StrEnumType, UTCDateTime
from app.extensions import db
from app.projects.models import Project
from app.reports.models import Priority, Report

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Metric(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_UPDATE = "next_update"
    RESOLUTION = "resolution"


class ClockState(StrEnum):
    RUNNING = "running"
    AT_RISK = "at_risk"
    PAUSED = "paused"
    BREACHED = "breached"  # final
    ACHIEVED = "achieved"  # final (a resolution clock reopens with its ticket)


class SlaCalendar(db.Model):
    """Working hours in a timezone, minus public holidays and the team's own dates."""

    __tablename__ = "sla_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # {"mon": [["09:00", "17:00"]], ...}; a day left out has no working hours.
    week: Mapped[dict[str, list[list[str]]]] = mapped_column(JSONType, default=dict)
    holiday_country: Mapped[str | None] = mapped_column(String(8))
    holiday_subdivision: Mapped[str | None] = mapped_column(String(16))
    # ISO dates ("2026-12-24") the team does not work, on top of the public holidays.
    extra_holidays: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class SlaPolicy(db.Model):
    """A project's promises: a calendar, the at-risk share, targets, who is on call."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        CheckConstraint("at_risk_share > 0 AND at_risk_share < 1", name="at_risk_share"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), unique=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("sla_calendars.id"), index=True)
    at_risk_share: Mapped[float] = mapped_column(default=0.75)
    # P0 clocks count every minute, nights and holidays included.
    p0_around_the_clock: Mapped[bool] = mapped_column(default=True)
    oncall_email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    project: Mapped[Project] = relationship()
    calendar: Mapped[SlaCalendar] = relationship()
    targets: Mapped[list[SlaTarget]] = relationship(
        back_populates="policy", cascade="all, delete-orphan", passive_deletes=True,
        order_by="SlaTarget.id")


class SlaTarget(db.Model):
    """Minutes of calendar time for one metric, for a priority or for a flagged
    moderation category (exactly one of the two)."""

    __tablename__ = "sla_targets"
    __table_args__ = (
        CheckConstraint("(priority IS NULL) <> (category IS NULL)", name="priority_or_category"),
        CheckConstraint("minutes > 0", name="minutes_positive"),
        # One target per metric and priority, and per metric and category.
        Index("ux_sla_targets_priority", "policy_id", "metric", "priority", unique=True,
              postgresql_where=text("category IS NULL"), sqlite_where=text("category IS NULL")),
        Index("ux_sla_targets_category", "policy_id", "metric", "category", unique=True,
              postgresql_where=text("priority IS NULL"), sqlite_where=text("priority IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("sla_policies.id", ondelete="CASCADE"))
    metric: Mapped[Metric] = mapped_column(StrEnumType(Metric, 16))
    priority: Mapped[Priority | None] = mapped_column(StrEnumType(Priority, 2))
    category: Mapped[str | None] = mapped_column(String(64))
    minutes: Mapped[int]

    policy: Mapped[SlaPolicy] = relationship(back_populates="targets")


class SlaClock(db.Model):
    """One metric of one ticket (next_update: one per public reply, numbered)."""

    __tablename__ = "sla_clocks"
    __table_args__ = (
        UniqueConstraint("report_id", "metric", "sequence"),
        # What the sweep looks for, each an index range scan over the live clocks only.
        Index("ix_sla_clocks_at_risk_due", "at_risk_at",
              postgresql_where=text("state = 'running'"), sqlite_where=text("state = 'running'")),
        Index("ix_sla_clocks_breach_due", "due_at",
              postgresql_where=text("state IN ('running', 'at_risk')"),
              sqlite_where=text("state IN ('running', 'at_risk')")),
        # The attainment and MTTA/MTTR reports read decided clocks by when they were decided.
        Index("ix_sla_clocks_outcome", "metric", "outcome_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    metric: Mapped[Metric] = mapped_column(StrEnumType(Metric, 16))
    sequence: Mapped[int] = mapped_column(default=0)  # next_update: 1, 2, … per reply
    state: Mapped[ClockState] = mapped_column(StrEnumType(ClockState, 16),
                                              default=ClockState.RUNNING)
    # The target in force and where it came from (the ticket's priority, or a category).
    priority: Mapped[Priority] = mapped_column(StrEnumType(Priority, 2))
    category: Mapped[str | None] = mapped_column(String(64))
    target_minutes: Mapped[int]
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_policies.id", ondelete="SET NULL"))
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_calendars.id", ondelete="SET NULL"))
    always_on: Mapped[bool] = mapped_column(default=False)  # counted around the clock

    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    at_risk_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # NULL while paused
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Closed pauses as [[start, end], ...] ISO instants, and their calendar seconds.
    pauses: Mapped[list[list[str]]] = mapped_column(JSONType, default=list)
    paused_seconds: Mapped[int] = mapped_column(default=0)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When it became achieved or breached (what the weekly reports group by).
    outcome_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Calendar seconds from start to stop, pauses excluded (MTTA, MTTR).
    elapsed_seconds: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    report: Mapped[Report] = relationship()

    @property
    def live(self) -> bool:
        """Still counting: running or at risk."""
        return self.state in (ClockState.RUNNING, ClockState.AT_RISK)

    @property
    def final(self) -> bool:
        return self.state in (ClockState.ACHIEVED, ClockState.BREACHED)

    def describe(self) -> dict[str, Any]:
        """The clock as plain values, for audit events and notifications."""
        return {"metric": str(self.metric), "sequence": self.sequence,
                "state": str(self.state), "priority": str(self.priority),
                "category": self.category, "target_minutes": self.target_minutes,
                "due_at": self.due_at.isoformat() if self.due_at else None}
