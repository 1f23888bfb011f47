"""/stats and /stats/sla.csv: attainment per metric, priority, project and ISO week, MTTA
and MTTR (median, 90th percentile), an inline SVG chart with a table of the same numbers,
date and project filters, and a CSV export safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

import pytest

from app.auth.models import Role
from app.extensions import db
from app.projects.models import Project
from app.projects.service import create_project
from app.sla.models import ClockState, Metric, SlaClock
from tests.sla.conftest import at
from tests.web import sign_in

EVIL = '=HYPERLINK("http://evil.example","<script>alert(1)</script>")'
JANUARY = "from=2026-01-01&to=2026-01-31"


@pytest.fixture
def known(ticket, project, clock_at) -> Project:
    """Decided clocks in two weeks of January 2026; one in a project with a hostile name.
    Returns that project."""
    evil = create_project(name=EVIL, origins=[])

    def add(metric: str, priority: str, state: str, outcome: datetime, elapsed: int | None,
            project_id: int | None = None) -> None:
        report = ticket(priority=priority, route=False, project_id=project_id)
        db.session.add(SlaClock(
            report_id=report.id, metric=Metric(metric), state=ClockState(state),
            priority=priority, target_minutes=60, started_at=at(5, 9), pauses=[],
            paused_seconds=0, outcome_at=outcome, stopped_at=outcome, elapsed_seconds=elapsed,
            breached_at=outcome if state == "breached" else None, updated_at=at(5, 9)))
        db.session.commit()

    # 2026-W02: first responses, P1 two of three kept, P2 one of one.
    add("first_response", "P1", "achieved", at(6, 10), 600)
    add("first_response", "P1", "achieved", at(6, 11), 1200)
    add("first_response", "P1", "breached", at(7, 10), 4000)
    add("first_response", "P2", "achieved", at(8, 10), 300)
    # 2026-W03: a next update and a resolution kept; a resolution breached elsewhere.
    add("next_update", "P2", "achieved", at(13, 10), 900)
    add("resolution", "P2", "achieved", at(12, 10), 10000)
    add("resolution", "P2", "breached", at(14, 10), 30000, project_id=evil.id)
    return evil


@pytest.fixture
def lead(client, make_user):
    user = make_user(Role.LEAD)
    sign_in(client, user)
    return user


def html(response: Any) -> str:
    return response.get_data(as_text=True)


def tile(page: str, key: str) -> str:
    found = re.search(rf'data-(?:metric|testid)="{key}">([^<]*)<', page)
    assert found, key
    return found.group(1)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.RESPONDER])
def test_stats_are_for_leads_and_admins(client, make_user, role, known):
    sign_in(client, make_user(role))
    assert client.get("/stats").status_code == 403
    assert client.get("/stats/sla.csv").status_code == 403
    assert client.get("/stats/sla.csv?from=nonsense").status_code == 403
    assert 'href="/stats"' not in html(client.get("/board"))


def test_leads_and_admins_find_the_page_in_the_main_nav(client, make_user):
    for role in (Role.LEAD, Role.ADMIN):
        sign_in(client, make_user(role))
        assert re.search(r'<a href="/stats"\s*>Stats</a>', html(client.get("/board")))


def test_attainment_and_response_times(client, lead, known):
    response = client.get(f"/stats?{JANUARY}")
    assert response.status_code == 200
    page = html(response)
    assert tile(page, "first_response") == "75.0%"  # 3 of 4
    assert tile(page, "next_update") == "100.0%"
    assert tile(page, "resolution") == "50.0%"
    # MTTA over 300, 600, 1200, 4000 s; MTTR over 10000, 30000 s (nearest rank).
    assert tile(page, "mtta") == "10m" and "90th percentile 1h 6m; 4 tickets" in page
    assert tile(page, "mttr") == "2h 46m" and "90th percentile 8h 20m; 2 tickets" in page
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(P\d)</td><td class=\"num\">(\d+)</td>"
                      r"<td class=\"num\">(\d+)</td><td class=\"num\">([^<]+)</td></tr>", page)
    assert rows == [("First response", "P1", "2", "1", "66.7%"),
                    ("First response", "P2", "1", "0", "100.0%"),
                    ("Next update", "P2", "1", "0", "100.0%"),
                    ("Resolution", "P2", "1", "1", "50.0%")]


def test_the_chart_is_inline_svg_with_a_table_of_the_same_numbers(client, lead, known):
    page = html(client.get(f"/stats?{JANUARY}"))
    svg = re.search(r"<svg class=\"chart\".*?</svg>", page, re.S).group(0)
    assert 'role="img"' in svg and "<title id=\"chart-title\">" in svg
    bars = re.findall(r'<rect class="bar bar-([a-z_]+)"[^>]*data-percent="(\d+)"><title>'
                      r"([^<]+)</title>", svg)
    assert bars == [
        ("first_response", "75", "2026-W02 · First response: 75% (3 of 4 kept)"),
        ("next_update", "100", "2026-W03 · Next update: 100% (1 of 1 kept)"),
        ("resolution", "50", "2026-W03 · Resolution: 50% (1 of 2 kept)"),
    ]
    assert "style=" not in svg  # the CSP allows no inline style: classes only
    weeks = re.findall(r"<tr><th scope=\"row\">(2026-W\d\d)</th>", page)
    assert weeks == ["2026-W01", "2026-W02", "2026-W03", "2026-W04", "2026-W05"]
    assert re.search(r"2026-W02</th>\s*<td class=\"num\">75.0% <span class=\"muted\">"
                     r"\(3/4\)</span>", page)


def test_the_project_filter_narrows_everything(client, lead, known):
    page = html(client.get(f"/stats?{JANUARY}&project={known.id}"))
    assert tile(page, "resolution") == "0.0%"
    assert tile(page, "first_response") == "—"
    assert re.search(rf'<option value="{known.id}"\s+selected>', page)


def test_project_names_are_escaped(client, lead, known):
    page = html(client.get(f"/stats?{JANUARY}"))
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_default_period_is_the_last_twelve_iso_weeks(client, lead, known, clock_at):
    clock_at(at(14, 12))
    page = html(client.get("/stats"))
    assert 'value="2025-10-27"' in page and 'value="2026-01-18"' in page
    assert tile(page, "first_response") == "75.0%"


@pytest.mark.parametrize(("query", "field", "message"), [
    ("from=2026-13-01&to=2026-01-31", "from", "A date as YYYY-MM-DD."),
    ("from=2026-02-01&to=2026-01-01", "from", "The start is after the end."),
    ("from=2024-01-01&to=2026-01-01", "from", "At most 366 days at once."),
    ("project=first", "project", "Pick a project from the list."),
])
def test_bad_filters_are_shown_again_with_what_was_typed(client, lead, known, query, field,
                                                         message):
    response = client.get(f"/stats?{query}")
    assert response.status_code == 422
    page = html(response)
    assert f'<p class="error field-error" id="err-{field}">{message}</p>' in page
    typed = dict(pair.split("=") for pair in query.split("&"))
    for key, value in typed.items():
        if key != "project":
            assert f'value="{value}"' in page
    assert '<svg class="chart"' not in page
    csv_response = client.get(f"/stats/sla.csv?{query}")
    assert csv_response.status_code == 422
    assert message in html(csv_response)


def test_the_csv_export(client, lead, known, project):
    response = client.get(f"/stats/sla.csv?{JANUARY}")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="flagdesk-sla-2026-01-01-to-2026-01-31.csv"')
    rows = list(csv.reader(io.StringIO(html(response))))
    chat, evil = str(project.id), str(known.id)
    assert rows == [
        ["week", "week_start", "project_id", "project", "metric", "priority", "achieved",
         "breached", "attainment_percent", "stopped", "median_minutes", "p90_minutes"],
        ["2026-W02", "2026-01-05", chat, "Chat", "first_response", "P1", "2", "1", "66.7",
         "3", "20.0", "66.7"],
        ["2026-W02", "2026-01-05", chat, "Chat", "first_response", "P2", "1", "0", "100.0",
         "1", "5.0", "5.0"],
        ["2026-W03", "2026-01-12", evil, "'" + EVIL, "resolution", "P2", "0", "1", "0.0",
         "1", "500.0", "500.0"],
        ["2026-W03", "2026-01-12", chat, "Chat", "next_update", "P2", "1", "0", "100.0",
         "0", "", ""],
        ["2026-W03", "2026-01-12", chat, "Chat", "resolution", "P2", "1", "0", "100.0",
         "1", "166.7", "166.7"],
    ]
    # RFC 4180: quotes doubled inside a quoted field, CRLF line ends.
    assert '"\'=HYPERLINK(""http://evil.example"",""<script>alert(1)</script>"")"' in \
        html(response)
    assert html(response).endswith("\r\n")


def test_the_csv_follows_the_project_filter(client, lead, known):
    rows = list(csv.reader(io.StringIO(html(client.get(
        f"/stats/sla.csv?{JANUARY}&project={known.id}")))))
    assert [row[3] for row in rows[1:]] == ["'" + EVIL]


@pytest.mark.parametrize("name", ["+1 555", "-2+3", "@SUM(A1)", "=1+1"])
def test_no_csv_cell_starts_a_formula(client, lead, ticket, clock_at, name):
    other = create_project(name=name, origins=[])
    report = ticket(priority="P2", route=False, project_id=other.id)
    db.session.add(SlaClock(
        report_id=report.id, metric=Metric.FIRST_RESPONSE, state=ClockState.ACHIEVED,
        priority="P2", target_minutes=60, started_at=at(5, 9), pauses=[], paused_seconds=0,
        outcome_at=at(5, 9, 30), stopped_at=at(5, 9, 30), elapsed_seconds=1800,
        updated_at=at(5, 9)))
    db.session.commit()
    rows = list(csv.reader(io.StringIO(html(client.get(f"/stats/sla.csv?{JANUARY}")))))
    assert rows[1][3] == "'" + name


def test_an_empty_period_says_so(client, lead, known):
    page = html(client.get("/stats?from=2025-06-01&to=2025-06-30"))
    assert "No clock was decided in this period" in page
    assert tile(page, "first_response") == "—" and tile(page, "mtta") == "—"
    rows = list(csv.reader(io.StringIO(html(client.get(
        "/stats/sla.csv?from=2025-06-01&to=2025-06-30")))))
    assert len(rows) == 1  # the header
