"""SLA fixtures: a project with the default policy, tickets made at a frozen instant."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.core.clock import frozen, now
from app.extensions import db
from app.notify.models import Delivery, Webhook, WebhookKind
from app.projects.models import Project
from app.reports.models import Priority, Report, Status, TaggingState
from app.sla import policies
from app.sla import service as sla
from app.sla.models import Metric, SlaClock, SlaPolicy

# Monday 5 January 2026, 10:00 UTC: inside the default calendar's hours (09-17 UTC).
MONDAY = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant in January 2026, UTC (5 = Monday)."""
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def clock_at() -> Iterator[Callable[[datetime], None]]:
    """Time frozen at MONDAY; call it to move the frozen clock."""
    with frozen(MONDAY) as move_to:
        yield move_to


@pytest.fixture
def policy(project: Project, clock_at: Any) -> SlaPolicy:
    """The defaults: Mon-Fri 09:00-17:00 UTC; first response P0 15 min (around the
    clock), P1 1 h, P2 4 h, P3 1 day; self-harm 30 min; resolution P2 3 days …"""
    return policies.defaults(actor=None, project_id=project.id)


@pytest.fixture
def ticket(project: Project, policy: SlaPolicy) -> Callable[..., Report]:
    """A ticket received now (or at `received_at`), routed: its clocks started."""

    def make(*, priority: str = "P2", categories: Sequence[str] = (),
             received_at: datetime | None = None, status: Status = Status.NEW,
             assignee_id: int | None = None, route: bool = True,
             project_id: int | None = None) -> Report:
        received = received_at or now()
        report = Report(
            public_id=f"rep_sla{next(_numbers):06d}", project_id=project_id or project.id,
            reason="inaccurate", description="It said the Eiffel Tower is in Rome.",
            status_token_hash="0" * 64, status=status, priority=Priority(priority),
            flagged_categories=list(categories), received_at=received, updated_at=received,
            tagging_state=TaggingState.TAGGED if route else TaggingState.PENDING,
            assignee_id=assignee_id)
        db.session.add(report)
        db.session.flush()
        if route:
            sla.routed(report)
        db.session.commit()
        return report

    return make


def clock(report: Report, metric: Metric | str, sequence: int | None = None) -> SlaClock | None:
    """The ticket's clock of a metric as stored (next update: the latest, or `sequence`)."""
    db.session.expire_all()
    query = select(SlaClock).where(SlaClock.report_id == report.id,
                                   SlaClock.metric == Metric(metric))
    if sequence is not None:
        query = query.where(SlaClock.sequence == sequence)
    return db.session.scalar(query.order_by(SlaClock.sequence.desc()).limit(1))


def fresh(report: Report) -> Report:
    db.session.expire_all()
    return db.session.get(Report, report.id)


def history(report: Report, prefix: str = "sla.") -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.subject_type == "report",
                                 AuditEvent.subject_id == report.public_id,
                                 AuditEvent.action.startswith(prefix))
        .order_by(AuditEvent.id)))


def deliveries(event: str | None = None) -> list[Delivery]:
    query = select(Delivery).order_by(Delivery.id)
    if event:
        query = query.where(Delivery.event == event)
    return list(db.session.scalars(query))


def webhook(project: Project, kind: WebhookKind, url: str) -> Webhook:
    hook = Webhook(project_id=project.id, url=url, kind=kind, secret="s" * 32, active=True)
    db.session.add(hook)
    db.session.commit()
    return hook
