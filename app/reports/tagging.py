"""Tagging: classify a stored report with the moderation backend, then route it.

Runs off the request path (a Celery task, or in process after the response) and from
the sweep. A report is claimed with a lease before the backend is called, so two workers
never tag it twice, and a worker that dies leaves it to the next sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update

from app.audit.service import record
from app.core.clock import now
from app.extensions import db
from app.moderation import Classification, ModerationUnavailable, Moderator
from app.reports.models import ModerationTag, Report, TaggingState
from app.reports.routing import route
from app.reports.signals import report_routed

LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=1)
MAX_CONVERSATION_CHARS = 16_000


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … up to an hour between attempts on a failing backend."""
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def texts_to_classify(report: Report) -> dict[str, str]:
    """The fields that are classified, by name: the user's words and the excerpt."""
    texts = {}
    if report.description:
        texts["description"] = report.description
    if report.conversation:
        joined = "\n".join(f"{t['role']}: {t['content']}" for t in report.conversation)
        texts["conversation"] = joined[:MAX_CONVERSATION_CHARS]
    return texts


def _claim(report_id: int) -> bool:
    """Take the lease on a pending report whose turn has come; False if another has it."""
    current = now()
    result = db.session.execute(
        update(Report)
        .where(Report.id == report_id, Report.tagging_state == TaggingState.PENDING,
               or_(Report.next_tagging_at.is_(None), Report.next_tagging_at <= current))
        .values(tagging_attempts=Report.tagging_attempts + 1, next_tagging_at=current + LEASE,
                tagging_error=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def _store(report: Report, fields: list[str], results: list[Classification]) -> None:
    scores: dict[str, float] = {}
    flagged: set[str] = set()
    for field, result in zip(fields, results, strict=True):
        for category, score in result.scores.items():
            report.tags.append(ModerationTag(
                field=field, category=category, score=float(score),
                flagged=category in result.flagged, source=result.backend, model=result.model))
            scores[category] = max(scores.get(category, 0.0), float(score))
        flagged |= result.flagged
    backend = results[0].backend if results else None
    model = results[0].model if results else None
    routed = route(reason=report.reason, scores=scores, flagged=flagged,
                   rules=report.project.routing_rules)
    before = str(report.priority)
    report.priority = routed.priority
    report.flagged_categories = sorted(flagged, key=lambda c: (-scores.get(c, 0.0), c))
    report.tagging_state = TaggingState.TAGGED
    report.tagging_error = None
    report.next_tagging_at = None
    report.tagged_at = now()
    record(action="report.tagged", subject_type="report", subject_id=report.public_id,
           after={"backend": backend, "model": model, "flagged": sorted(flagged),
                  "fields": fields})
    record(action="report.routed", subject_type="report", subject_id=report.public_id,
           before={"priority": before},
           after={"priority": str(routed.priority), "rule": routed.matched})
    # SLA clocks start here (in this transaction), with the priority and tags just set.
    report_routed.send(report)


def tag_report(*, report_id: int, moderator: Moderator) -> bool:
    """Tag and route one report. True if it is tagged now; False if it was not due,
    someone else holds it, or the backend failed (it stays pending, retried later)."""
    if not _claim(report_id):
        return False
    report = db.session.get(Report, report_id)
    if report is None:
        return False
    texts = texts_to_classify(report)
    try:
        results = moderator.classify(list(texts.values())) if texts else []
    except ModerationUnavailable as error:
        report.tagging_error = str(error)[:500]
        report.next_tagging_at = now() + backoff(report.tagging_attempts)
        record(action="report.tagging_failed", subject_type="report",
               subject_id=report.public_id,
               after={"error": report.tagging_error, "attempts": report.tagging_attempts,
                      "retry_at": report.next_tagging_at.isoformat()})
        db.session.commit()
        return False
    _store(report, list(texts), results)
    db.session.commit()
    return True


def due_for_tagging(*, limit: int = 100) -> list[int]:
    """Ids of pending reports whose turn has come, oldest first."""
    query = select(Report.id).where(
        Report.tagging_state == TaggingState.PENDING,
        or_(Report.next_tagging_at.is_(None), Report.next_tagging_at <= now()))
    return list(db.session.scalars(query.order_by(Report.id).limit(limit)))


@dataclass(frozen=True)
class SweepResult:
    tagged: int
    still_pending: int


def sweep_untagged(*, moderator: Moderator, limit: int = 100,
                   include_waiting: bool = False) -> SweepResult:
    """Tag what intake's own attempt missed: failed, lost or never-dispatched reports."""
    if include_waiting:
        # An operator asked to retry now: bring forward the reports waiting out a backoff
        # after a failure (those with an error), not the ones a worker holds a lease on.
        db.session.execute(
            update(Report)
            .where(Report.tagging_state == TaggingState.PENDING,
                   Report.tagging_error.is_not(None))
            .values(next_tagging_at=None).execution_options(synchronize_session=False))
        db.session.commit()
    ids = due_for_tagging(limit=limit)
    tagged = sum(tag_report(report_id=i, moderator=moderator) for i in ids)
    return SweepResult(tagged=tagged, still_pending=len(ids) - tagged)
