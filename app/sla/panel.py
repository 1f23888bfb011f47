"""Every SLA clock of one ticket, as the ticket page's SLA panel shows it.

Reads only: the clocks as stored (due instants, pauses, outcome), plus the calendar time
the panel shows beside them (used so far, left when a paused clock resumes), counted in
the clock's own calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app.auth.models import User
from app.auth.service import require
from app.core.clock import now
from app.extensions import db
from app.reports.models import Report
from app.sla import clock
from app.sla import service as sla
from app.sla.models import ClockState, Metric, SlaCalendar, SlaClock

ORDER = {Metric.FIRST_RESPONSE: 0, Metric.RESOLUTION: 1, Metric.NEXT_UPDATE: 2}


@dataclass(frozen=True)
class ClockDetail:
    """One clock with what a responder asks about it."""

    metric: Metric
    sequence: int
    state: ClockState
    priority: str
    category: str | None  # the flagged category whose target applies, or None
    target_minutes: int
    always_on: bool
    calendar_name: str | None
    started_at: datetime
    at_risk_at: datetime | None
    due_at: datetime | None  # None while paused
    paused_at: datetime | None  # an open pause began here
    stopped_at: datetime | None  # its event happened (response, update, resolution)
    breached_at: datetime | None
    paused_seconds: int  # calendar time of the closed pauses, plus the open one so far
    used_seconds: int  # calendar time counted so far (until the stop, or now)

    @property
    def left_seconds(self) -> int:
        """Calendar time left of the target (negative: over it)."""
        return self.target_minutes * 60 - self.used_seconds

    @property
    def live(self) -> bool:
        return self.state in (ClockState.RUNNING, ClockState.AT_RISK)


def _pauses(row: SlaClock) -> list[tuple[datetime, datetime | None]]:
    closed: list[tuple[datetime, datetime | None]] = [
        (datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in row.pauses or ()]
    if row.paused_at is not None:
        closed.append((row.paused_at, None))
    return closed


def ticket_clocks(*, actor: User, report: Report) -> list[ClockDetail]:
    """All clocks of the ticket (achieved, breached and every next-update clock too):
    first response, resolution, then next updates, newest first."""
    require(actor, "reports:read")
    at = now()
    rows = db.session.execute(
        select(SlaClock, SlaCalendar.name)
        .outerjoin(SlaCalendar, SlaCalendar.id == SlaClock.calendar_id)
        .where(SlaClock.report_id == report.id)).all()
    details = []
    for row, calendar_name in rows:
        until = row.stopped_at or at
        calendar = sla.calendar_of(row, until=until)
        pauses = _pauses(row)
        if row.stopped_at is not None and row.elapsed_seconds is not None:
            used = row.elapsed_seconds
        else:
            used = int(clock.elapsed(calendar, row.started_at, max(until, row.started_at),
                                     pauses).total_seconds())
        paused = row.paused_seconds
        if row.paused_at is not None and at > row.paused_at:
            paused += int(clock.between(calendar, row.paused_at, at) // timedelta(seconds=1))
        details.append(ClockDetail(
            metric=row.metric, sequence=row.sequence, state=row.state,
            priority=str(row.priority), category=row.category,
            target_minutes=row.target_minutes, always_on=row.always_on,
            calendar_name=None if row.always_on else calendar_name,
            started_at=row.started_at, at_risk_at=row.at_risk_at, due_at=row.due_at,
            paused_at=row.paused_at, stopped_at=row.stopped_at, breached_at=row.breached_at,
            paused_seconds=paused, used_seconds=used))
    details.sort(key=lambda d: (ORDER[d.metric], -d.sequence))
    return details
