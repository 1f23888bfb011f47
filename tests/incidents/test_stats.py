"""Incident stats on /stats (app.incidents.stats): incidents by severity and month, mean
and 90th percentile time to detect, mitigate and resolve, reports per incident, and the
CSV, checked against numbers worked out by hand from known data.

Time is frozen at Monday 5 January 2026, 10:00 UTC; the page's default period is the 12
ISO weeks up to this one: Monday 20 October 2025 to Sunday 11 January 2026.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from app.auth.models import Role, User
from app.core.clock import frozen
from app.core.errors import Forbidden
from app.incidents import service, stats
from app.incidents.models import Incident
from app.projects.models import Project
from app.projects.service import create_project
from tests.incidents.factories import MONDAY, make_report
from tests.web import sign_in

START, END = date(2025, 10, 20), date(2026, 1, 11)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    with frozen(MONDAY):
        yield


@pytest.fixture
def lead(make_user) -> User:
    return make_user(Role.LEAD, name="Lena Lead")


def incident(lead: User, project: Project, severity: str, reports: int, *,
             started: datetime | None, detect: int | None = None, mitigate: int | None = None,
             resolve: int | None = None, title: str | None = None) -> Incident:
    """An incident with `reports` linked reports and its window given in minutes after
    the start."""
    linked = [make_report(project, received_at=started or MONDAY) for _ in range(reports)]

    def after(minutes: int | None) -> datetime | None:
        return started + timedelta(minutes=minutes) if started and minutes is not None else None

    opened = service.open_incident(
        actor=lead, title=title or f"{severity} incident", severity=severity,
        report_ids=[r.public_id for r in linked], started_at=started,
        detected_at=after(detect) or (None if started else MONDAY))
    if mitigate is not None or resolve is not None:
        service.update_incident(actor=lead, incident_id=opened.public_id,
                                mitigated_at=after(mitigate), resolved_at=after(resolve))
    return opened


@pytest.fixture
def known(lead, project) -> dict[str, Incident]:
    """A: SEV1 in December, detected in 10 min, mitigated in 1 h, resolved in 3 h, 3 reports.
    B: SEV2 in December, 30 min, 2 h, 5 h, 1 report. C: SEV2 in January, 20 min, still
    open, 2 reports. E: SEV3 with no start and no reports (counts from when it was opened,
    today). D: SEV4 in early October, before the period."""
    return {
        "A": incident(lead, project, "SEV1", 3, started=utc(2025, 12, 1, 10), detect=10,
                      mitigate=60, resolve=180),
        "B": incident(lead, project, "SEV2", 1, started=utc(2025, 12, 15, 8), detect=30,
                      mitigate=120, resolve=300),
        "C": incident(lead, project, "SEV2", 2, started=utc(2026, 1, 2, 0), detect=20),
        "E": incident(lead, project, "SEV3", 0, started=None),
        "D": incident(lead, project, "SEV4", 5, started=utc(2025, 10, 1, 9), detect=5,
                      mitigate=6, resolve=7),
    }


def test_counts_by_month_and_severity(lead, known):
    found = stats.incident_stats(actor=lead, start=START, end=END)
    assert found.months == ["2025-10", "2025-11", "2025-12", "2026-01"]
    assert found.counts == {("2025-12", "SEV1"): 1, ("2025-12", "SEV2"): 1,
                            ("2026-01", "SEV2"): 1, ("2026-01", "SEV3"): 1}
    assert found.total == 4  # D began before the period
    assert (found.month_total("2025-12"), found.severity_total("SEV2")) == (2, 2)


def test_mean_and_p90_of_the_times(lead, known):
    found = stats.incident_stats(actor=lead, start=START, end=END)
    detect, mitigate, resolve = (found.times[m] for m in ("detect", "mitigate", "resolve"))
    # detect: 600, 1800, 1200 s; nearest-rank p90 of three values is the largest
    assert (detect.count, detect.mean_seconds, detect.p90_seconds) == (3, 1200, 1800)
    # mitigate and resolve: A and B only (C is still open, E has no start)
    assert (mitigate.count, mitigate.mean_seconds, mitigate.p90_seconds) == (2, 5400, 7200)
    assert (resolve.count, resolve.mean_seconds, resolve.p90_seconds) == (2, 14400, 18000)


def test_reports_per_incident(lead, known):
    found = stats.incident_stats(actor=lead, start=START, end=END)
    # 3, 1, 2 and 0 reports
    assert found.reports == stats.ReportsPerIncident(incidents=4, reports=6, mean=1.5, p90=3,
                                                     most=3)


def test_the_period_and_project_narrow_it(lead, known, project):
    october = stats.incident_stats(actor=lead, start=date(2025, 10, 1), end=date(2025, 10, 31))
    assert october.counts == {("2025-10", "SEV4"): 1}
    assert october.times["resolve"].mean_seconds == 7 * 60
    other = create_project(name="Other", origins=["https://other.example"])
    alone = incident(lead, other, "SEV1", 2, started=utc(2025, 12, 24, 12), detect=1)
    found = stats.incident_stats(actor=lead, start=START, end=END, project_id=other.id)
    assert found.counts == {("2025-12", "SEV1"): 1}
    assert found.reports.reports == 2 and alone.public_id


def test_nothing_in_the_period(lead):
    found = stats.incident_stats(actor=lead, start=START, end=END)
    assert found.total == 0 and found.reports == stats.ReportsPerIncident()
    assert all(t.count == 0 and t.mean_seconds is None for t in found.times.values())


def test_only_leads_and_admins(make_user):
    for role in (Role.VIEWER, Role.RESPONDER):
        with pytest.raises(Forbidden):
            stats.incident_stats(actor=make_user(role), start=START, end=END)


def test_the_csv_lists_each_incident_formula_safe(lead, known, project):
    incident(lead, project, "SEV3", 1, started=utc(2026, 1, 3, 12), detect=90,
             title='=HYPERLINK("http://evil")')
    rows = list(csv.reader(io.StringIO(stats.incidents_csv(actor=lead, start=START, end=END))))
    assert rows[0] == list(stats.CSV_COLUMNS)
    by_id = {row[0]: row for row in rows[1:]}
    assert set(by_id) == {known[k].public_id for k in "ABCE"} | {
        row[0] for row in rows[1:] if row[1].startswith("'=")}
    a = by_id[known["A"].public_id]
    assert a[2:5] == ["SEV1", "investigating", "2025-12"]
    assert a[5] == "2025-12-01T10:00:00+00:00"
    assert a[9:13] == ["10.0", "60.0", "180.0", "3"]
    c = by_id[known["C"].public_id]
    assert c[9:13] == ["20.0", "", "", "2"]
    evil = next(row for row in rows[1:] if "HYPERLINK" in row[1])
    assert evil[1] == "'=HYPERLINK(\"http://evil\")"
    assert [row[0] for row in rows[1:]][:2] == [known["A"].public_id, known["B"].public_id]


def test_the_stats_page_has_the_incident_section(client, lead, known):
    sign_in(client, lead)
    page = client.get("/stats").get_data(as_text=True)
    assert 'id="incident-stats"' in page
    assert 'data-testid="incidents-total">4<' in page
    assert 'data-testid="incidents-detect-mean">20 min<' in page
    assert 'data-testid="incidents-detect-p90">30 min<' in page
    assert 'data-testid="incidents-resolve-mean">4 h 0 min<' in page
    assert 'data-testid="incidents-reports-mean">1.5<' in page
    assert "/stats/incidents.csv?from=2025-10-20&amp;to=2026-01-11" in page
    narrowed = client.get("/stats?from=2025-10-01&to=2025-10-31").get_data(as_text=True)
    assert 'data-testid="incidents-total">1<' in narrowed


def test_the_csv_download(client, lead, make_user, known):
    sign_in(client, lead)
    response = client.get("/stats/incidents.csv?from=2025-12-01&to=2025-12-31")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert ('filename="flagdesk-incidents-2025-12-01-to-2025-12-31.csv"'
            in response.headers["Content-Disposition"])
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 3  # header, A and B
    assert client.get("/stats/incidents.csv?from=2025-12-31&to=2025-12-01").status_code == 422
    sign_in(client, make_user(Role.RESPONDER))
    assert client.get("/stats/incidents.csv").status_code == 403
