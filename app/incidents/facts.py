"""The facts of a retrospective, computed from the data (never typed by a person):
times to detect, mitigate and resolve, the linked reports counted by reason, moderation
category, model and project, and the SLA outcomes of the linked tickets.

Four queries whatever the number of linked reports (10,000 in the benchmark), each an
aggregate over a subquery of the linked reports (never a list of ids, never a row per
report back to Python).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, true

from app.extensions import db
from app.incidents.models import Incident, IncidentReport
from app.projects.models import Project
from app.reports.models import Report
from app.sla.models import ClockState, Metric, SlaClock

OPEN_STATES = (ClockState.RUNNING, ClockState.AT_RISK, ClockState.PAUSED)


@dataclass(frozen=True)
class SlaOutcome:
    """The clocks of one metric over the linked tickets."""

    metric: str
    achieved: int = 0
    breached: int = 0
    open: int = 0  # still running, at risk or paused

    @property
    def decided(self) -> int:
        return self.achieved + self.breached

    @property
    def attainment(self) -> float | None:
        """Share achieved of the decided clocks (None when none is decided)."""
        return self.achieved / self.decided if self.decided else None


@dataclass(frozen=True)
class RetrospectiveFacts:
    started_at: datetime | None
    detected_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    linked_reports: int
    first_report_at: datetime | None
    last_report_at: datetime | None
    # Most frequent first (ties by name); a report flagged in several categories counts
    # in each.
    reports_by_reason: dict[str, int] = field(default_factory=dict)
    reports_by_category: dict[str, int] = field(default_factory=dict)
    reports_by_model: dict[str, int] = field(default_factory=dict)
    reports_by_project: dict[str, int] = field(default_factory=dict)
    unflagged_reports: int = 0
    # One per metric, in Metric order; metrics without clocks are left out.
    sla: list[SlaOutcome] = field(default_factory=list)
    tickets_breached: int = 0  # linked tickets with at least one breached clock
    participants: list[str] = field(default_factory=list)

    @property
    def time_to_detect(self) -> timedelta | None:
        return _between(self.started_at, self.detected_at)

    @property
    def time_to_mitigate(self) -> timedelta | None:
        return _between(self.started_at, self.mitigated_at)

    @property
    def time_to_resolve(self) -> timedelta | None:
        return _between(self.started_at, self.resolved_at)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values: instants as ISO strings, durations in whole seconds."""
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        def seconds(value: timedelta | None) -> int | None:
            return int(value.total_seconds()) if value is not None else None

        return {
            "started_at": iso(self.started_at), "detected_at": iso(self.detected_at),
            "mitigated_at": iso(self.mitigated_at), "resolved_at": iso(self.resolved_at),
            "time_to_detect_seconds": seconds(self.time_to_detect),
            "time_to_mitigate_seconds": seconds(self.time_to_mitigate),
            "time_to_resolve_seconds": seconds(self.time_to_resolve),
            "linked_reports": self.linked_reports,
            "first_report_at": iso(self.first_report_at),
            "last_report_at": iso(self.last_report_at),
            "reports_by_reason": dict(self.reports_by_reason),
            "reports_by_category": dict(self.reports_by_category),
            "reports_by_model": dict(self.reports_by_model),
            "reports_by_project": dict(self.reports_by_project),
            "unflagged_reports": self.unflagged_reports,
            "sla": [{"metric": o.metric, "achieved": o.achieved, "breached": o.breached,
                     "open": o.open} for o in self.sla],
            "tickets_breached": self.tickets_breached,
            "participants": list(self.participants),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrospectiveFacts:
        """The facts as a published version stored them (see as_dict)."""
        def instant(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None

        return cls(
            started_at=instant("started_at"), detected_at=instant("detected_at"),
            mitigated_at=instant("mitigated_at"), resolved_at=instant("resolved_at"),
            linked_reports=data["linked_reports"], first_report_at=instant("first_report_at"),
            last_report_at=instant("last_report_at"),
            reports_by_reason=dict(data["reports_by_reason"]),
            reports_by_category=dict(data["reports_by_category"]),
            reports_by_model=dict(data["reports_by_model"]),
            reports_by_project=dict(data["reports_by_project"]),
            unflagged_reports=data["unflagged_reports"],
            sla=[SlaOutcome(**o) for o in data["sla"]],
            tickets_breached=data["tickets_breached"],
            participants=list(data["participants"]))


def _between(start: datetime | None, end: datetime | None) -> timedelta | None:
    return end - start if start is not None and end is not None else None


def _ranked(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def linked_report_ids(incident_id: int) -> Any:
    """The internal ids of an incident's linked reports, as a subquery."""
    return select(IncidentReport.report_id).where(IncidentReport.incident_id == incident_id)


def facts(*, incident: Incident) -> RetrospectiveFacts:
    """The incident's facts as the data says now. Checks no permission (see
    service.incident_facts)."""
    linked = linked_report_ids(incident.id)

    by_reason: Counter[str] = Counter()
    by_model: Counter[str] = Counter()
    by_project: Counter[str] = Counter()
    unflagged = total = 0
    first = last = None
    # Counted in SQL: a few dozen groups come back, never one row per report.
    groups = db.session.execute(
        select(Report.reason, Report.model_name, Project.name, func.count(),
               func.min(Report.received_at), func.max(Report.received_at),
               func.sum(case((Report.flagged_categories == [], 1), else_=0)))
        .join(Project, Project.id == Report.project_id)
        .where(Report.id.in_(linked))
        .group_by(Report.reason, Report.model_name, Project.name))
    for reason, model, project, count, earliest, latest, empty in groups:
        total += count
        unflagged += empty or 0
        by_reason[str(reason)] += count
        by_model[model or "(unknown)"] += count
        by_project[project] += count
        first = earliest if first is None or earliest < first else first
        last = latest if last is None or latest > last else last

    # Each category in a report's flagged list, unnested where it is stored.
    unnest = (func.jsonb_array_elements_text if db.session.get_bind().dialect.name
              == "postgresql" else func.json_each)
    category = unnest(Report.flagged_categories).table_valued("value")
    by_category: Counter[str] = Counter(dict(db.session.execute(
        select(category.c.value, func.count(func.distinct(Report.id)))
        .select_from(Report).join(category, true())
        .where(Report.id.in_(linked))
        .group_by(category.c.value)).all()))

    counts: dict[tuple[str, str], int] = {
        (str(metric), str(state)): n for metric, state, n in db.session.execute(
            select(SlaClock.metric, SlaClock.state, func.count())
            .where(SlaClock.report_id.in_(linked))
            .group_by(SlaClock.metric, SlaClock.state))}
    outcomes = []
    for metric in Metric:
        achieved = counts.get((str(metric), str(ClockState.ACHIEVED)), 0)
        breached = counts.get((str(metric), str(ClockState.BREACHED)), 0)
        still_open = sum(counts.get((str(metric), str(s)), 0) for s in OPEN_STATES)
        if achieved or breached or still_open:
            outcomes.append(SlaOutcome(str(metric), achieved, breached, still_open))
    tickets_breached = db.session.scalar(
        select(func.count(func.distinct(SlaClock.report_id)))
        .where(SlaClock.report_id.in_(linked), SlaClock.state == ClockState.BREACHED)) or 0

    participants = sorted({u.name for u in incident.participants}
                          | ({incident.lead.name} if incident.lead else set()))
    return RetrospectiveFacts(
        started_at=incident.started_at, detected_at=incident.detected_at,
        mitigated_at=incident.mitigated_at, resolved_at=incident.resolved_at,
        linked_reports=total, first_report_at=first, last_report_at=last,
        reports_by_reason=_ranked(by_reason), reports_by_category=_ranked(by_category),
        reports_by_model=_ranked(by_model), reports_by_project=_ranked(by_project),
        unflagged_reports=unflagged, sla=outcomes, tickets_breached=tickets_breached,
        participants=participants)
