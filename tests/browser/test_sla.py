"""SLA clocks in a real browser: badges on the board's cards (at risk and breached said in
words), breached then at risk first in a column, "Due soonest" chosen in the filter bar
reorders the column and stays in the URL, and the ticket page's SLA panel.

Time is frozen (app.core.clock.frozen) for the test and the live server alike: the badges'
"time left" and the sweep read the same instant. Nothing here sleeps."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from app.auth.models import Role
from app.core.clock import frozen
from app.extensions import db
from app.projects.models import Project
from app.projects.service import create_project
from app.reports.models import Priority
from app.sla import policies, sweep
from app.sla import service as sla
from tests.browser.test_board import card, no_csp_violation
from tests.conftest import ORIGIN
from tests.triage.test_board import make_report

MONDAY = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # inside the default hours, 09-17 UTC


def at(hour: int, minute: int = 0) -> datetime:
    return MONDAY.replace(hour=hour, minute=minute)


@pytest.fixture
def clock() -> Iterator[Any]:
    with frozen(MONDAY) as move_to:
        yield move_to


@pytest.fixture
def tickets(live_server, clock) -> dict[str, str]:
    """On the live server at Monday 13:30 UTC, in the default policy's project: a P1
    whose first response breached at 11:00, a P2 at risk (due 14:00), and a P0 received
    at 13:25 (due 13:40)."""

    def setup() -> dict[str, str]:
        project = create_project(name="Chat", origins=[ORIGIN])
        policies.defaults(actor=None, project_id=project.id)

        def add(priority: Priority, description: str) -> str:
            report = make_report(db.session.get(Project, project.id), priority=priority,
                                 description=description)
            sla.routed(report)
            db.session.commit()
            return report.public_id

        found = {"breached": add(Priority.P1, "Breached one"),
                 "at_risk": add(Priority.P2, "At risk one")}
        clock(at(13, 25))
        found["running"] = add(Priority.P0, "Fresh P0")
        clock(at(13, 30))
        sweep.run()
        return found

    return live_server.run(setup)


def column_ids(page, status: str) -> list[str]:
    return page.locator(f'.column[data-status="{status}"] .card').evaluate_all(
        "cards => cards.map(c => c.dataset.id)")


def fact(clock, term: str):
    """The value beside a term of a clock's facts (<dt>Due</dt><dd>…</dd>)."""
    return clock.locator(f'dt:text-is("{term}") + dd')


def test_badges_default_order_and_due_soonest(live_server, page, sign_in, tickets,
                                              page_problems):
    sign_in(Role.RESPONDER)
    new = page.locator('.column[data-status="new"] .card')
    expect(new).to_have_count(3)
    # Breached first, then at risk, though the P0 is the highest priority.
    assert column_ids(page, "new") == [tickets["breached"], tickets["at_risk"],
                                       tickets["running"]]

    breached = card(page, tickets["breached"]).locator(".sla-badge.sla-breached")
    expect(breached).to_have_text(re.compile(r"Breached\s*:?\s*First response · 2h 30m over"))
    expect(breached.locator(".sla-state")).to_be_visible()
    at_risk = card(page, tickets["at_risk"]).locator(".sla-badge.sla-at_risk")
    expect(at_risk).to_have_text(re.compile(r"At risk\s*:?\s*First response · 30m left"))
    expect(at_risk).to_be_visible()
    expect(card(page, tickets["running"]).locator(".sla-badge").first).to_have_text(
        "First response · 10m left")
    # Colour is not the only signal: the two states look different and say so in words.
    colours = [badge.evaluate("b => getComputedStyle(b).backgroundColor")
               for badge in (breached, at_risk)]
    assert colours[0] != colours[1]

    page.get_by_label("Order").select_option(label="Due soonest")
    page.wait_for_url(re.compile(r"/board\?sort=due$"))
    expect(page.get_by_label("Order")).to_have_value("due")
    expect(new.first).to_have_attribute("data-id", tickets["running"])
    assert column_ids(page, "new") == [tickets["running"], tickets["at_risk"],
                                       tickets["breached"]]
    # The order is part of the view: reloading the address keeps it.
    page.goto(page.url)
    expect(new.first).to_have_attribute("data-id", tickets["running"])
    assert no_csp_violation(page_problems)


def test_the_ticket_page_shows_every_clock(live_server, page, sign_in, tickets, page_problems):
    sign_in(Role.RESPONDER)
    card(page, tickets["breached"]).get_by_role("link", name=tickets["breached"]).click()
    page.wait_for_url(re.compile(rf"/tickets/{tickets['breached']}$"))
    panel = page.get_by_role("region", name="SLA")
    clocks = panel.locator(".sla-clock")
    expect(clocks).to_have_count(2)
    first, resolution = clocks.nth(0), clocks.nth(1)
    expect(first.get_by_role("heading")).to_have_text("First response Breached")
    expect(fact(first, "Target")).to_have_text("1h (P1)")
    expect(fact(first, "Counts")).to_have_text("Working hours of Business hours (UTC)")
    expect(fact(first, "Due")).to_have_text("2026-01-05 11:00 UTC")
    expect(fact(first, "Time")).to_have_text("2h 30m over")
    expect(resolution.get_by_role("heading")).to_have_text("Resolution Running")
    expect(fact(resolution, "Due")).to_have_text("2026-01-06 10:00 UTC")
    expect(fact(resolution, "Time")).to_have_text("20h left (4h 30m of working time left)")
    history = page.locator("#history")
    expect(history).to_contain_text("SLA breached")
    expect(history).to_contain_text("First response: the 1h target ran out 2026-01-05 11:00 UTC")
    assert no_csp_violation(page_problems)


def test_the_calendar_form_offers_the_chosen_countrys_regions(live_server, page, sign_in,
                                                              page_problems):
    sign_in(Role.ADMIN)
    page.goto(live_server("/admin/sla"))
    page.get_by_role("link", name="New calendar").click()
    page.get_by_label("Name").fill("Munich support")
    page.get_by_label("Timezone").select_option("Europe/Berlin")
    region = page.get_by_label("Region")
    expect(region).to_be_disabled()  # no country: no regions
    page.get_by_label("Public holidays of").select_option("DE")
    expect(region).to_be_enabled()
    visible = region.locator("optgroup:not([hidden]) option").evaluate_all(
        "options => options.map(o => o.value)")
    assert "BY" in visible and "ENG" not in visible
    region.select_option("BY")
    page.get_by_label("Saturday").fill("22:00-06:00")
    page.get_by_role("button", name="Create calendar").click()
    page.wait_for_url(live_server("/admin/sla"))
    expect(page.get_by_role("status")).to_contain_text("Calendar Munich support saved.")
    row = page.get_by_role("row", name=re.compile("Munich support"))
    expect(row).to_contain_text("Mon–Fri 09:00-17:00; Sat 22:00-06:00")
    expect(row).to_contain_text("DE-BY")
    assert no_csp_violation(page_problems)


def test_stats_draw_the_chart_without_breaking_the_csp(live_server, page, sign_in, tickets,
                                                       page_problems):
    sign_in(Role.LEAD)
    page.get_by_role("link", name="Stats").click()
    page.wait_for_url(re.compile(r"/stats$"))
    expect(page.get_by_role("img", name="SLA attainment per ISO week and metric")).to_be_visible()
    # The P1's first response breached on Monday: that week's bar is at 0%.
    expect(page.locator("#weekly-table")).to_contain_text("2026-W02")
    expect(page.locator('[data-metric="first_response"]')).to_have_text("0.0%")
    assert no_csp_violation(page_problems)


@pytest.mark.parametrize("path", ["/admin/sla", "/admin/sla/calendars/new", "/admin/sla/policy",
                                  "/stats"])
def test_the_sla_pages_fit_a_phone(live_server, page, sign_in, tickets, page_problems, path):
    sign_in(Role.ADMIN)
    if path == "/admin/sla/policy":
        project_id = live_server.run(lambda: db.session.query(Project.id).scalar())
        path = f"/admin/sla/policies/{project_id}"
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server(path))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page_problems.errors == []
