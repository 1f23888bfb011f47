"""The /stats page and its CSV export: SLA attainment and MTTA/MTTR for leads.

Leads and admins ("stats:read"): the reports say how well the team keeps its promises,
which is a lead's question; responders and viewers see their clocks on the board. Every
figure is computed in SQL (app.sla.stats, and the weekly times below); Python only puts
the grouped rows side by side. Dates and ISO weeks are UTC, as app.sla.stats groups them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from app.auth.models import User
from app.auth.service import require
from app.extensions import db
from app.projects.models import Project
from app.reports.models import Report
from app.sla import stats
from app.sla.models import Metric, SlaClock
from app.sla.schemas import StatsFilters

Attainment, ResponseTimes = stats.Attainment, stats.ResponseTimes
# Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("week", "week_start", "project_id", "project", "metric", "priority", "achieved",
               "breached", "attainment_percent", "stopped", "median_minutes", "p90_minutes")


def window(filters: StatsFilters) -> tuple[datetime, datetime]:
    """[start, end) in UTC: from the first day's midnight to the midnight after the last."""
    return (datetime.combine(filters.start, time.min, tzinfo=UTC),
            datetime.combine(filters.end + timedelta(days=1), time.min, tzinfo=UTC))


def iso_weeks(start: date, end: date) -> list[str]:
    """Every ISO week ("2026-W02") that has a day in [start, end]."""
    weeks, day = [], start - timedelta(days=start.weekday())
    while day <= end:
        year, week, _ = day.isocalendar()
        weeks.append(f"{year}-W{week:02d}")
        day += timedelta(weeks=1)
    return weeks


@dataclass(frozen=True)
class SlaReport:
    filters: StatsFilters
    projects: dict[int, str]  # id -> name, of every project (the filter and the tables)
    overall: list[Attainment]  # per metric
    by_priority: list[Attainment]  # per metric and priority
    by_project: list[Attainment]  # per project and metric
    weekly: list[Attainment]  # per metric and ISO week
    weeks: list[str]  # the ISO weeks of the period, for the chart's axis
    times: list[ResponseTimes]  # MTTA / MTTR: per metric
    times_by_priority: list[ResponseTimes]  # per metric and priority

    def overall_for(self, metric: Metric) -> Attainment | None:
        return next((row for row in self.overall if row.metric == metric), None)

    def times_for(self, metric: Metric) -> ResponseTimes | None:
        return next((row for row in self.times if row.metric == metric), None)


def allowed(*, actor: User) -> None:
    """Raise unless the actor may read the reports (leads and admins)."""
    require(actor, "stats:read")


def projects(*, actor: User) -> dict[int, str]:
    require(actor, "stats:read")
    return dict(db.session.execute(select(Project.id, Project.name).order_by(Project.name)).all())


def sla_report(*, actor: User, filters: StatsFilters) -> SlaReport:
    """Attainment per metric, priority, project and week, and median and 90th percentile
    time to first response and to resolution, for clocks decided in the period."""
    require(actor, "stats:read")
    start, end = window(filters)
    scope: dict[str, Any] = {"actor": actor, "start": start, "end": end,
                             "project_id": filters.project_id}
    return SlaReport(
        filters=filters, projects=projects(actor=actor),
        overall=stats.attainment(**scope, by=("metric",)),
        by_priority=stats.attainment(**scope, by=("metric", "priority")),
        by_project=stats.attainment(**scope, by=("metric", "project")),
        weekly=stats.attainment(**scope, by=("metric", "week")),
        weeks=iso_weeks(filters.start, filters.end),
        times=stats.response_times(**scope, by=()),
        times_by_priority=stats.response_times(**scope, by=("priority",)))


# --- the CSV export ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Times:
    count: int
    median: int | None
    p90: int | None


def _weekly_times(start: datetime, end: datetime,
                  project_id: int | None) -> dict[tuple[str, int, str, str], _Times]:
    """Median and nearest-rank 90th percentile of the calendar time to first response and
    to resolution, per ISO week the clock stopped in, project, metric and priority."""
    query = stats.time_percentiles(
        {"week": stats.week_start(SlaClock.stopped_at), "project": Report.project_id,
         "metric": SlaClock.metric, "priority": SlaClock.priority},
        start=start, end=end, project_id=project_id)
    found = {}
    for row in db.session.execute(query).mappings():
        key = (stats.iso_week(row["week"]) or "", int(row["project"]), str(row["metric"]),
               str(row["priority"]))
        found[key] = _Times(int(row["n"]), row["median"], row["p90"])
    return found


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _minutes(seconds: int | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def _monday(week: str) -> str:
    return date.fromisocalendar(int(week[:4]), int(week[6:]), 1).isoformat() if week else ""


def csv_rows(*, actor: User, filters: StatsFilters) -> Iterator[list[str]]:
    """The export, header first: one row per ISO week, project, metric and priority with
    the clocks decided (attainment) and stopped (median and p90 minutes) in that week."""
    require(actor, "stats:read")
    start, end = window(filters)
    names = projects(actor=actor)
    decided = {(r.week or "", r.project_id or 0, str(r.metric), str(r.priority)): r
               for r in stats.attainment(actor=actor, start=start, end=end,
                                         project_id=filters.project_id,
                                         by=("metric", "priority", "project", "week"))}
    times = _weekly_times(start, end, filters.project_id)
    yield list(CSV_COLUMNS)
    for key in sorted(decided.keys() | times.keys(),
                      key=lambda k: (k[0], names.get(k[1], ""), k[1], k[2], k[3])):
        week, project_id, metric, priority = key
        row, took = decided.get(key), times.get(key)
        share = row.share if row is not None else None
        yield [_cell(v) for v in (
            week, _monday(week), project_id, names.get(project_id, ""), metric, priority,
            row.achieved if row else 0, row.breached if row else 0,
            "" if share is None else f"{share * 100:.1f}",
            took.count if took else 0, _minutes(took.median if took else None),
            _minutes(took.p90 if took else None))]


def csv_text(*, actor: User, filters: StatsFilters) -> str:
    """The export as one CSV document (RFC 4180 quoting, CRLF line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(csv_rows(actor=actor, filters=filters))
    return buffer.getvalue()
