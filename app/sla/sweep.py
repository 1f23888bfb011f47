"""The SLA sweep: `flask sla sweep`, the Celery beat task, the embedded server's thread.

One run, one transaction: start the clocks of tickets tagging never reached, then move
every due clock to at risk or breached (set-based, see transitions.py), escalate, commit.
Safe to run twice at once: each transition happens, and is escalated, exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select

from app.core.clock import now as current_time
from app.extensions import db
from app.reports.models import Report, Status, TaggingState
from app.sla import service, transitions
from app.sla.models import SlaClock, SlaPolicy

# A report not routed after this long (moderation down) gets its clocks anyway, with the
# priority it has; routing re-targets them when it happens.
UNROUTED_GRACE = timedelta(minutes=5)
START_LIMIT = 500  # per run; the rest next time
OPEN = (Status.NEW, Status.TRIAGED, Status.IN_PROGRESS, Status.WAITING_ON_REPORTER)


@dataclass(frozen=True)
class SweepResult:
    started: int  # tickets that got their clocks from the sweep
    at_risk: int
    breached: int
    deliveries: int  # notifications queued
    skipped: int  # tickets busy in another transaction: the next run takes them


def unrouted_without_clocks(*, at: datetime, limit: int = START_LIMIT) -> list[int]:
    """Open tickets older than the grace period that tagging has not routed yet and that
    have no clock, in projects with a policy (found through the tagging index)."""
    query = (select(Report.id)
             .where(Report.tagging_state == TaggingState.PENDING,
                    Report.received_at <= at - UNROUTED_GRACE, Report.status.in_(OPEN),
                    Report.merged_into_id.is_(None),
                    exists().where(SlaPolicy.project_id == Report.project_id),
                    ~exists().where(SlaClock.report_id == Report.id))
             .order_by(Report.id).limit(limit))
    return list(db.session.scalars(query))


def run(*, now: datetime | None = None, start_limit: int = START_LIMIT) -> SweepResult:
    """Sweep once as of `now` (default: the current time) and commit."""
    at = now or current_time()
    started = 0
    for report_id in unrouted_without_clocks(at=at, limit=start_limit):
        report = db.session.get(Report, report_id)
        if report is not None:
            service.start(report)
            started += 1
    outcome = transitions.apply(at=at)
    db.session.commit()
    return SweepResult(started=started, at_risk=outcome.at_risk, breached=outcome.breached,
                       deliveries=outcome.deliveries, skipped=outcome.skipped)
