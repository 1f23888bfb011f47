"""Incident statistics for /stats (leads): incidents by severity and month, the mean and
90th percentile of the time to detect, mitigate and resolve, and linked reports per
incident; and the same incidents as CSV.

Computed in SQL on both databases. An incident counts in the period, and in the month
(UTC), in which it began: its `started_at`, or when it was opened if that is unknown.
Durations run from `started_at` to `detected_at`, `mitigated_at` and `resolved_at`, over the
incidents for which both are known. A percentile is the nearest-rank one (the smallest
value with at least that share of the values at or below it), as app.sla.stats does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    select,
    union_all,
)

from app.auth.models import User
from app.auth.service import require
from app.core.clock import now
from app.core.errors import ValidationFailed
from app.extensions import db
from app.incidents.export import neutralise_cell
from app.incidents.models import Incident, IncidentReport, Severity, incident_projects
from app.sla import stats as sla_stats
from app.sla.schemas import parse_stats

DEFAULT_WEEKS = 12  # the period /stats shows when none is asked for (as app.sla's page)
METRICS = ("detect", "mitigate", "resolve")
METRIC_LABELS = {"detect": "Time to detect", "mitigate": "Time to mitigate",
                 "resolve": "Time to resolve"}
CSV_COLUMNS = ("incident", "title", "severity", "status", "month", "started_at", "detected_at",
               "mitigated_at", "resolved_at", "time_to_detect_minutes",
               "time_to_mitigate_minutes", "time_to_resolve_minutes", "linked_reports")


@dataclass(frozen=True)
class Spread:
    """One duration over the incidents where it is known, in seconds."""

    count: int = 0
    mean_seconds: float | None = None
    p90_seconds: float | None = None


@dataclass(frozen=True)
class ReportsPerIncident:
    incidents: int = 0
    reports: int = 0
    mean: float | None = None
    p90: int | None = None
    most: int | None = None


@dataclass(frozen=True)
class IncidentStats:
    start: date
    end: date
    project_id: int | None
    months: list[str]  # "2026-01", every month with a day in the period
    counts: dict[tuple[str, str], int]  # (month, severity) -> incidents
    times: dict[str, Spread]  # METRICS -> spread
    reports: ReportsPerIncident

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, month: str, severity: str) -> int:
        return self.counts.get((month, str(severity)), 0)

    def month_total(self, month: str) -> int:
        return sum(n for (m, _), n in self.counts.items() if m == month)

    def severity_total(self, severity: str) -> int:
        return sum(n for (_, s), n in self.counts.items() if s == str(severity))


def _postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _began() -> Any:
    return func.coalesce(Incident.started_at, Incident.created_at)


def _month(column: Any) -> Any:
    if _postgresql():
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _seconds(start: Any, end: Any) -> Any:
    """end - start in seconds, as SQL (a float)."""
    if _postgresql():
        return cast(func.extract("epoch", end - start), Float)
    # Whole seconds: julianday() arithmetic would leave float noise in the means.
    return (cast(func.strftime("%s", end), Integer)
            - cast(func.strftime("%s", start), Integer)) * 1.0


def window(start: date, end: date) -> tuple[datetime, datetime]:
    """[start, end] as UTC instants: from the first day's midnight to the next after the
    last."""
    return (datetime.combine(start, time.min, tzinfo=UTC),
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC))


def months(start: date, end: date) -> list[str]:
    found, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def _in_period(start: date, end: date, project_id: int | None) -> list[Any]:
    since, until = window(start, end)
    conditions = [_began() >= since, _began() < until]
    if project_id is not None:
        conditions.append(exists().where(incident_projects.c.incident_id == Incident.id,
                                         incident_projects.c.project_id == project_id))
    return conditions


def _allowed(actor: User) -> None:
    require(actor, "stats:read")
    require(actor, "incidents:read")


def incident_stats(*, actor: User, start: date, end: date,
                   project_id: int | None = None) -> IncidentStats:
    """The incidents that began from `start` to `end` (UTC days, inclusive), optionally
    only those affecting a project. Three queries."""
    _allowed(actor)
    where = _in_period(start, end, project_id)
    month = _month(_began())
    counts = {(str(m), str(s)): int(n) for m, s, n in db.session.execute(
        select(month, Incident.severity, func.count()).where(*where)
        .group_by(month, Incident.severity))}

    ends = {"detect": Incident.detected_at, "mitigate": Incident.mitigated_at,
            "resolve": Incident.resolved_at}
    values = union_all(*(
        select(literal(metric).label("metric"),
               _seconds(Incident.started_at, column).label("v"))
        .where(*where, Incident.started_at.is_not(None), column.is_not(None))
        for metric, column in ends.items())).subquery()
    ranked = select(values.c.metric, values.c.v,
                    func.row_number().over(partition_by=values.c.metric,
                                           order_by=values.c.v).label("rn"),
                    func.count().over(partition_by=values.c.metric).label("n")).subquery()
    ten, nine = literal_column("10"), literal_column("9")
    times = {metric: Spread() for metric in METRICS}
    for metric, n, mean, p90 in db.session.execute(
            select(ranked.c.metric, func.max(ranked.c.n), func.avg(ranked.c.v),
                   func.min(case((ranked.c.rn * ten >= ranked.c.n * nine, ranked.c.v))))
            .group_by(ranked.c.metric)):
        times[str(metric)] = Spread(int(n), float(mean), float(p90))

    per = (select(Incident.id.label("incident_id"),
                  func.count(IncidentReport.id).label("reports"))
           .outerjoin(IncidentReport, IncidentReport.incident_id == Incident.id)
           .where(*where).group_by(Incident.id)).subquery()
    ranked_reports = select(per.c.reports,
                            func.row_number().over(order_by=per.c.reports).label("rn"),
                            func.count().over().label("n")).subquery()
    r = ranked_reports.c
    row = db.session.execute(select(
        func.max(r.n), func.sum(r.reports), func.avg(r.reports), func.max(r.reports),
        func.min(case((r.rn * ten >= r.n * nine, r.reports))))).one()
    n, total, mean, most, p90 = row
    reports = ReportsPerIncident(int(n), int(total), float(mean), int(most), int(p90)) if n \
        else ReportsPerIncident()
    return IncidentStats(start, end, project_id, months(start, end), counts, times, reports)


def parse_period(args: Mapping[str, str]) -> dict[str, Any]:
    """?from=&to=&project= as /stats reads them (the same defaults), as keywords for
    incident_stats and incidents_csv; ValidationFailed when they do not parse."""
    start, end = sla_stats.weeks(now(), DEFAULT_WEEKS)
    filters, errors = parse_stats(args, default_start=start.date(),
                                  default_end=(end - timedelta(days=1)).date())
    if filters is None:
        raise ValidationFailed("Some filters are invalid.",
                               fields={k: [v] for k, v in errors.items()})
    return {"start": filters.start, "end": filters.end, "project_id": filters.project_id}


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def csv_rows(*, actor: User, start: date, end: date, project_id: int | None = None
             ) -> Iterator[list[str]]:
    """Header, then one row per incident that began in the period, oldest first."""
    _allowed(actor)
    yield list(CSV_COLUMNS)
    linked = (select(func.count()).where(IncidentReport.incident_id == Incident.id)
              .correlate(Incident).scalar_subquery())
    seconds = [_seconds(Incident.started_at, column) for column in
               (Incident.detected_at, Incident.mitigated_at, Incident.resolved_at)]
    rows = db.session.execute(
        select(Incident.public_id, Incident.title, Incident.severity, Incident.status,
               _month(_began()), Incident.started_at, Incident.detected_at,
               Incident.mitigated_at, Incident.resolved_at, *seconds, linked)
        .where(*_in_period(start, end, project_id))
        .order_by(_began(), Incident.id))
    for (public_id, title, severity, status, month, started, detected, mitigated, resolved,
         detect, mitigate, resolve, reports) in rows:
        yield [public_id, title, str(severity), str(status), str(month), _iso(started),
               _iso(detected), _iso(mitigated), _iso(resolved), _minutes(detect),
               _minutes(mitigate), _minutes(resolve), str(reports)]


def incidents_csv(*, actor: User, start: date, end: date, project_id: int | None = None) -> str:
    """The CSV document: RFC 4180 quoting, CRLF line ends, every cell that a spreadsheet
    would run as a formula (= + - @ TAB CR first) prefixed with '."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in csv_rows(actor=actor, start=start, end=end, project_id=project_id):
        writer.writerow([neutralise_cell(cell) for cell in row])
    return buffer.getvalue()


SEVERITIES = [str(s) for s in Severity]
