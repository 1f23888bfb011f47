"""SLA reports: attainment, and time to first response (MTTA) and to resolution (MTTR).

Computed in SQL on both databases. A clock counts once it is decided: achieved or
breached, in the week (ISO, UTC) it was decided. Times are calendar time as the clock
counts it (business hours, pauses excluded), stored on the clock when it stops; a
percentile is the nearest-rank one (the smallest value with at least that share of the
values at or below it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, literal_column, select

from app.auth.models import User
from app.auth.service import require
from app.core.errors import ValidationFailed
from app.extensions import db
from app.reports.models import Report
from app.sla.models import ClockState, Metric, SlaClock

GROUPS = ("metric", "priority", "project", "week")


@dataclass(frozen=True)
class Attainment:
    """Kept promises in one group: achieved / (achieved + breached)."""

    metric: Metric | None
    priority: str | None
    project_id: int | None
    week: str | None  # ISO week, "2026-W03"
    achieved: int
    breached: int

    @property
    def decided(self) -> int:
        return self.achieved + self.breached

    @property
    def share(self) -> float | None:
        return self.achieved / self.decided if self.decided else None


@dataclass(frozen=True)
class ResponseTimes:
    """Calendar seconds from start to stop of one metric's clocks in a group."""

    metric: Metric
    priority: str | None
    project_id: int | None
    count: int
    median_seconds: int | None
    p90_seconds: int | None


def week_start(column: Any) -> Any:
    """The Monday (UTC) of the week an instant lies in, as SQL."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date(func.date_trunc("week", func.timezone("UTC", column)))
    return func.date(column, "-6 days", "weekday 1")


def iso_week(value: Any) -> str | None:
    if value is None:
        return None
    day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _groups(by: Sequence[str]) -> list[str]:
    unknown = [g for g in by if g not in GROUPS]
    if unknown:
        raise ValidationFailed(f"Group by {', '.join(GROUPS)}.", fields={"by": unknown})
    return [g for g in GROUPS if g in by]


def attainment(*, actor: User, start: datetime, end: datetime, project_id: int | None = None,
               by: Sequence[str] = ("metric", "priority")) -> list[Attainment]:
    """Achieved and breached clocks decided in [start, end), grouped by `by` (any of
    metric, priority, project, week), in group order."""
    require(actor, "reports:read")
    groups = _groups(by)
    columns = {"metric": SlaClock.metric, "priority": SlaClock.priority,
               "project": Report.project_id, "week": week_start(SlaClock.outcome_at)}
    chosen = [columns[g].label(g) for g in groups]
    achieved = func.sum(case((SlaClock.state == ClockState.ACHIEVED, 1), else_=0))
    breached = func.sum(case((SlaClock.state == ClockState.BREACHED, 1), else_=0))
    query = (select(*chosen, achieved.label("achieved"), breached.label("breached"))
             .join(Report, Report.id == SlaClock.report_id)
             .where(SlaClock.state.in_([ClockState.ACHIEVED, ClockState.BREACHED]),
                    SlaClock.outcome_at >= start, SlaClock.outcome_at < end))
    if project_id is not None:
        query = query.where(Report.project_id == project_id)
    if chosen:
        query = query.group_by(*[columns[g] for g in groups]).order_by(*chosen)
    rows = []
    for row in db.session.execute(query).mappings():
        if not (row["achieved"] or row["breached"]):
            continue
        rows.append(Attainment(
            metric=Metric(row["metric"]) if "metric" in row else None,
            priority=str(row["priority"]) if "priority" in row else None,
            project_id=row["project"] if "project" in row else None,
            week=iso_week(row["week"]) if "week" in row else None,
            achieved=int(row["achieved"]), breached=int(row["breached"])))
    return rows


def response_times(*, actor: User, start: datetime, end: datetime,
                   project_id: int | None = None,
                   by: Sequence[str] = ("metric",)) -> list[ResponseTimes]:
    """Median and 90th percentile of the calendar time to first response (MTTA) and to
    resolution (MTTR), over clocks stopped in [start, end), grouped by metric and
    optionally priority and project."""
    require(actor, "reports:read")
    groups = [g for g in _groups(["metric", *by]) if g != "week"]
    columns = {"metric": SlaClock.metric, "priority": SlaClock.priority,
               "project": Report.project_id}
    query = time_percentiles({g: columns[g] for g in groups}, start=start, end=end,
                             project_id=project_id)
    query = query.order_by(*[query.selected_columns[g] for g in groups])
    found = []
    for row in db.session.execute(query).mappings():
        found.append(ResponseTimes(
            metric=Metric(row["metric"]),
            priority=str(row["priority"]) if "priority" in row else None,
            project_id=row["project"] if "project" in row else None,
            count=int(row["n"]),
            median_seconds=None if row["median"] is None else int(row["median"]),
            p90_seconds=None if row["p90"] is None else int(row["p90"])))
    return found


def time_percentiles(groups: dict[str, Any], *, start: datetime, end: datetime,
                     project_id: int | None) -> Select:
    """Count, median and nearest-rank 90th percentile of the calendar time to first
    response and to resolution (clocks stopped in [start, end)), per `groups` (label ->
    column expression): a query selecting the labels, "n", "median" and "p90"."""
    partition = list(groups.values())
    value = SlaClock.elapsed_seconds
    ranked = (select(*[column.label(label) for label, column in groups.items()],
                     value.label("v"),
                     func.row_number().over(partition_by=partition, order_by=value).label("rn"),
                     func.count().over(partition_by=partition).label("n"))
              .join(Report, Report.id == SlaClock.report_id)
              .where(SlaClock.metric.in_([Metric.FIRST_RESPONSE, Metric.RESOLUTION]),
                     SlaClock.stopped_at >= start, SlaClock.stopped_at < end,
                     value.is_not(None)))
    if project_id is not None:
        ranked = ranked.where(Report.project_id == project_id)
    r = ranked.subquery()
    two, ten, nine = literal_column("2"), literal_column("10"), literal_column("9")
    keys = [r.c[label] for label in groups]
    return (select(*keys, func.max(r.c.n).label("n"),
                   func.min(case((r.c.rn * two >= r.c.n, r.c.v))).label("median"),
                   func.min(case((r.c.rn * ten >= r.c.n * nine, r.c.v))).label("p90"))
            .group_by(*keys))


def weeks(end: datetime, count: int = 12) -> tuple[datetime, datetime]:
    """[start, end) covering the `count` ISO weeks up to the one holding `end` (UTC)."""
    monday = (end - timedelta(days=end.weekday())).replace(hour=0, minute=0, second=0,
                                                            microsecond=0)
    return monday - timedelta(weeks=count - 1), monday + timedelta(weeks=1)
