"""The ticket page's SLA panel (every clock: state, target, due instant in the reader's
zone, time left or over, paused time) and the SLA events in the ticket's history."""

from __future__ import annotations

import re

import pytest

from app.auth.models import Role
from app.extensions import db
from app.reports.models import Priority, Status
from app.sla import sweep
from app.triage import service as triage
from tests.sla.conftest import at
from tests.web import sign_in


@pytest.fixture
def responder(client, make_user):
    user = make_user(Role.RESPONDER, name="Rita Responder")
    sign_in(client, user)
    return user


def text(markup: str) -> str:
    """What a screen reader says: tags and aria-hidden parts dropped, spaces collapsed."""
    markup = re.sub(r'<span aria-hidden="true">.*?</span>', "", markup)
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())


def panel(client, public_id: str) -> list[str]:
    """Each clock of the SLA panel as one line of text."""
    response = client.get(f"/tickets/{public_id}")
    assert response.status_code == 200
    section = re.search(r'<section class="panel panel-sla".*?</section>',
                        response.get_data(as_text=True), re.S)
    assert section, "no SLA panel"
    return [text(item) for item in re.findall(r'<li class="sla-clock[^"]*">(.*?)</li>',
                                              section.group(0), re.S)]


def history(client, public_id: str) -> list[str]:
    page = client.get(f"/tickets/{public_id}").get_data(as_text=True)
    section = re.search(r'<ol class="history">(.*?)</ol>', page, re.S)
    assert section
    return [text(item) for item in re.findall(r"<li>(.*?)</li>", section.group(1), re.S)]


def test_the_panel_lists_every_clock_achieved_and_paused_ones_too(
        client, responder, ticket, clock_at):
    clock_at(at(5, 10))
    report = ticket(priority="P2")
    clock_at(at(5, 10, 30))
    triage.reply(actor=responder, public_id=report.public_id, body="Looking into it.")
    clock_at(at(5, 11))
    triage.move(actor=responder, ids=[report.public_id], status=Status.WAITING_ON_REPORTER)
    clock_at(at(5, 12))
    counts = "Counts Working hours of Business hours (UTC)"
    assert panel(client, report.public_id) == [
        f"First response Achieved Target 4h (P2) {counts} Due 2026-01-05 14:00 UTC "
        "Time met in 30m Paused —",
        f"Resolution Paused Target 24h (P2) {counts} Due not while paused "
        "Time paused (23h of working time left when it resumes) Paused 1h",
        f"Next update Paused Target 8h (P2) {counts} Due not while paused "
        "Time paused (7h 30m of working time left when it resumes) Paused 1h",
    ]


def test_a_breached_clock_shows_time_over_in_the_readers_zone(
        client, make_user, ticket, clock_at):
    reader = make_user(Role.VIEWER)
    reader.timezone = "America/New_York"
    db.session.commit()
    sign_in(client, reader)
    clock_at(at(5, 10))
    report = ticket(priority="P1", categories=["self-harm"])
    clock_at(at(5, 11, 15))
    sweep.run()
    lines = panel(client, report.public_id)
    # The self-harm target (30 min) wins over P1's hour: due 10:30 UTC, 05:30 in New York.
    assert lines[0] == ("First response Breached Target 30m (self-harm) Counts Working "
                        "hours of Business hours (UTC) Due 2026-01-05 05:30 EST Time 45m "
                        "over Paused —")
    assert lines[1].startswith("Resolution Running Target 8h (P1)")
    assert "Due 2026-01-06 05:00 EST Time 22h left (6h 45m of working time left)" in lines[1]


def test_p0_clocks_count_around_the_clock(client, responder, ticket, clock_at):
    clock_at(at(5, 10))
    report = ticket(priority="P0")
    clock_at(at(5, 10, 12))
    sweep.run()
    first = panel(client, report.public_id)[0]
    assert first == ("First response At risk Target 15m (P0) Counts Around the clock "
                     "Due 2026-01-05 10:15 UTC Time 3m left Paused —")


def test_a_ticket_without_a_policy_says_why_it_has_no_clocks(client, responder, project):
    from tests.triage.test_board import make_report

    report = make_report(project)
    assert panel(client, report.public_id) == []
    page = client.get(f"/tickets/{report.public_id}").get_data(as_text=True)
    assert "No SLA clocks: the project has no SLA policy" in page


def test_retargeting_at_risk_and_breach_read_well_in_the_history(
        client, responder, ticket, clock_at):
    clock_at(at(5, 10))
    report = ticket(priority="P2")
    clock_at(at(5, 10, 30))
    triage.set_priority(actor=responder, ids=[report.public_id], priority=Priority.P1)
    clock_at(at(5, 10, 50))
    sweep.run()
    clock_at(at(5, 11, 30))
    sweep.run()
    rows = [row for row in history(client, report.public_id) if "SLA" in row]
    assert rows == [
        "2026-01-05 10:30 UTC Rita Responder · SLA target changed: 4h (P2) to 1h (P1) "
        "(First response, counted from receipt: due 2026-01-05 11:00 UTC)",
        "2026-01-05 10:30 UTC Rita Responder · SLA target changed: 24h (P2) to 8h (P1) "
        "(Resolution, counted from receipt: due 2026-01-06 10:00 UTC)",
        "2026-01-05 10:50 UTC Flagdesk · SLA at risk (First response: due 2026-01-05 11:00 UTC)",
        "2026-01-05 11:30 UTC Flagdesk · SLA breached (First response: the 1h target ran out "
        "2026-01-05 11:00 UTC)",
    ]


def test_a_merged_duplicates_withdrawn_clocks_are_explained(
        client, responder, ticket, clock_at):
    clock_at(at(5, 10))
    survivor, duplicate = ticket(), ticket()
    triage.merge(actor=responder, duplicate_id=duplicate.public_id, into_id=survivor.public_id)
    rows = [row for row in history(client, duplicate.public_id) if "SLA" in row]
    assert rows == ["2026-01-05 10:00 UTC Rita Responder · SLA clock withdrawn "
                    "(Resolution: merged into another ticket)"]

