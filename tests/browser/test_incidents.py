"""Incidents in a real browser: opening one from the board's bulk action (and the badges
that follow on the cards), accepting a similar-report suggestion on a ticket, writing,
signing off and publishing the retrospective; screenshots of the pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.auth.models import Role, User
from app.core.clock import now
from app.extensions import db
from app.incidents import service
from app.incidents.models import ActionItemStatus, Incident
from app.projects.models import Project
from app.projects.service import create_project
from app.reports.models import Priority, Report
from tests.browser.conftest import ARTIFACTS
from tests.conftest import ORIGIN
from tests.triage.test_board import make_report

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'


@pytest.fixture
def project(live_server) -> int:
    return live_server.run(lambda: create_project(name="Chat", origins=[ORIGIN]).id)


@pytest.fixture
def add(live_server, project) -> Callable[..., str]:
    """Store a report on the live server; returns its public id."""

    def add_report(**fields: Any) -> str:
        return live_server.run(lambda: make_report(db.session.get(Project, project),
                                                   **fields).public_id)

    return add_report


def as_user(user_id: int) -> User:
    return db.session.get(User, user_id)


def open_incident(live_server, lead_id: int, report_ids: list[str], **kwargs: Any) -> str:
    return live_server.run(lambda: service.open_incident(
        actor=as_user(lead_id), report_ids=report_ids, title=kwargs.pop("title", "Incident"),
        severity=kwargs.pop("severity", "SEV2"), **kwargs).public_id)


def incident_of(live_server, public_id: str) -> str | None:
    from app.incidents.links import incident_for_reports

    def find() -> str | None:
        report = db.session.scalar(select(Report).where(Report.public_id == public_id))
        badge = incident_for_reports([report.id]).get(report.id)
        return badge.public_id if badge else None

    return live_server.run(find)


def test_open_an_incident_from_the_board_and_see_the_badges(live_server, page, sign_in, add,
                                                            page_problems):
    first = add(priority=Priority.P1, description="Paris is in Spain, it said")
    second = add(priority=Priority.P2, description="It put Berlin in Austria")
    third = add(priority=Priority.P3, description="Unrelated")
    sign_in(Role.LEAD)
    bar = page.get_by_role("form", name="Act on the selected tickets")
    page.get_by_role("checkbox", name=f"Select {first}").check()
    page.get_by_role("checkbox", name=f"Select {second}").check()
    expect(bar).to_contain_text("2 tickets selected")
    bar.get_by_role("button", name="Open incident").click()

    page.wait_for_url("**/incidents/new?**")
    expect(page.get_by_role("heading", level=1)).to_have_text("Open an incident")
    for public_id in (first, second):
        expect(page.get_by_role("checkbox", name=public_id)).to_be_checked()
    expect(page.locator(".severity-option")).to_have_count(4)
    expect(page.locator(".severity-option").first).to_contain_text("Critical")
    page.get_by_label("Title").fill("Geography answers are wrong")
    page.get_by_role("radio", name="SEV2").check()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "incident-new.png"), full_page=True)
    page.get_by_role("button", name="Open incident").click()

    page.wait_for_url("**/incidents/inc_*")
    expect(page.get_by_role("status")).to_contain_text("opened")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Geography answers are wrong")
    expect(page.get_by_test_id("linked-count")).to_have_text("2")

    page.get_by_role("link", name="Board").click()
    for public_id in (first, second):
        badge = page.locator(f"#card-{public_id} .incident-badge")
        expect(badge).to_contain_text("Geography answers are wrong")
        expect(badge).to_contain_text("SEV2")
    expect(page.locator(f"#card-{third} .incident-badge")).to_have_count(0)
    assert incident_of(live_server, first) == incident_of(live_server, second) is not None
    page.locator(f"#card-{first} .incident-badge").click()
    page.wait_for_url("**/incidents/inc_*")
    assert page_problems.errors == []


def test_accept_a_suggestion_on_a_ticket(live_server, page, sign_in, add, page_problems):
    ticket = add(description="The answer put Paris in Spain", response_id="resp_geo_1")
    twin = add(description="Wrong country for a capital", response_id="resp_geo_1")
    other = add(description="Nothing alike at all", response_id="resp_other")
    lead = sign_in(Role.LEAD)
    incident = open_incident(live_server, lead.id, [ticket], title="Capitals in the wrong place")

    page.goto(live_server(f"/tickets/{ticket}"))
    panel = page.locator("#similar")
    suggestion = panel.locator(f'.suggestion[data-report="{twin}"]')  # loaded by htmx
    expect(suggestion).to_contain_text("Same response id resp_geo_1")
    expect(panel.locator(f'.suggestion[data-report="{other}"]')).to_have_count(0)
    assert incident_of(live_server, twin) is None  # suggested, not linked
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ticket-suggestions.png"), full_page=True)

    suggestion.get_by_role("button", name="Link to Capitals in the wrong place").click()
    page.wait_for_url(f"**/tickets/{ticket}*")
    expect(page.get_by_role("status")).to_have_text(f"Linked {twin} to {incident}.")
    expect(page.locator(f'#similar .suggestion[data-report="{twin}"]')).to_have_count(0)
    assert incident_of(live_server, twin) == incident

    page.goto(live_server(f"/tickets/{twin}"))
    expect(page.locator(".ticket-meta .incident-badge")).to_contain_text(
        "Capitals in the wrong place")
    assert page_problems.errors == []


def test_edit_sign_off_and_publish_the_retrospective(live_server, page, sign_in, add,
                                                     page_problems):
    reports = [add(description=HOSTILE if n == 0 else f"Wrong capital number {n}",
                   flagged=["hate"] if n % 3 == 0 else []) for n in range(12)]
    lead = sign_in(Role.LEAD, name="Lena Lead")
    incident = open_incident(live_server, lead.id, reports, title="Capitals in the wrong place")
    page.goto(live_server(f"/incidents/{incident}"))
    expect(page.get_by_test_id("linked-count")).to_have_text("12")

    page.get_by_role("textbox", name="Summary", exact=True).fill(
        "For two hours the assistant named **wrong capitals**.")
    page.get_by_role("textbox", name="Root cause", exact=True).fill(
        "- a fine-tune dropped the geography set")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_have_text("Retrospective saved.")
    expect(page.locator("#retro-title .retro-state")).to_contain_text("Draft")

    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_role("status")).to_have_text("Sent for review.")
    expect(page.get_by_role("button", name="Publish")).to_be_disabled()
    page.get_by_role("button", name="Sign off").click()
    expect(page.get_by_role("status")).to_have_text("Signed off.")
    expect(page.locator("#publish-help")).to_contain_text("Signed off by Lena Lead")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("status")).to_contain_text("Published")

    expect(page.locator("#retrospective textarea")).to_have_count(0)  # read-only now
    expect(page.locator("#retrospective .note-published")).to_contain_text("read-only")
    expect(page.locator("#retrospective strong").first).to_have_text("wrong capitals")
    page.get_by_role("link", name="Read the published retrospective").click()
    expect(page.locator(".read-only-note")).to_have_text("Published and read-only: version 1.")
    expect(page.locator("article.retrospective h1")).to_have_text(
        "Retrospective: Capitals in the wrong place")
    expect(page.locator("#section-summary strong")).to_have_text("wrong capitals")
    expect(page.locator("article textarea, article form")).to_have_count(0)
    assert page.evaluate("window.__pwned") is None
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "retrospective.png"), full_page=True)
    assert page_problems.errors == []


def test_a_screenshot_of_an_incident(live_server, page, sign_in, add):
    """The incident page as a lead sees it mid-incident (for the README)."""
    reports = [add(description=f"It said the capital of country {n} is wrong",
                   priority=[Priority.P1, Priority.P2, Priority.P3][n % 3],
                   flagged=["hate"] if n % 4 == 0 else [], model_name="gpt-geo-2")
               for n in range(14)]
    responder = live_server.user(Role.RESPONDER, name="Remy Okafor")
    lead = sign_in(Role.LEAD, name="Lena Lindqvist")

    def story() -> str:
        actor = as_user(lead.id)
        incident = service.open_incident(
            actor=actor, title="Geography answers name the wrong capitals", severity="SEV2",
            report_ids=reports, participant_ids=[responder.id],
            started_at=now() - timedelta(hours=2), detected_at=now() - timedelta(minutes=80))
        pid = incident.public_id
        service.set_status(actor=actor, incident_id=pid, status="identified")
        service.add_timeline_entry(actor=as_user(responder.id), incident_id=pid,
                                   body="Same wording in all reports since the 14:00 deploy.")
        service.add_timeline_entry(actor=actor, incident_id=pid, kind="decision",
                                   body="Roll back gpt-geo-2 to the previous fine-tune.")
        service.save_sections(actor=actor, incident_id=pid, sections={
            "summary": "After the 14:00 deploy the assistant named **wrong capitals** for "
                       "about two hours; 14 users reported it.",
            "root_cause": "The new fine-tune dropped the geography evaluation set."})
        service.add_action_item(actor=actor, incident_id=pid, owner_id=responder.id,
                                title="Add the geography set to the release gate",
                                status=ActionItemStatus.IN_PROGRESS,
                                link="https://tracker.example/GEO-12")
        return pid

    pid = live_server.run(story)
    page.set_viewport_size({"width": 1280, "height": 1100})
    page.goto(live_server(f"/incidents/{pid}"))
    expect(page.get_by_test_id("linked-count")).to_have_text("14")
    expect(page.locator("#facts-body")).to_contain_text("Time to detect")  # loaded by htmx
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "incident.png"))
    page.screenshot(path=str(ARTIFACTS / "incident-full.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.reload()
    expect(page.get_by_test_id("linked-count")).to_have_text("14")
    page.screenshot(path=str(ARTIFACTS / "incident-phone.png"))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.set_viewport_size({"width": 1280, "height": 1100})
    page.goto(live_server("/incidents"))
    expect(page.locator(".inc-table")).to_contain_text("Geography answers name the wrong")
    page.screenshot(path=str(ARTIFACTS / "incidents-list.png"), full_page=True)
    page.goto(live_server("/stats"))
    expect(page.get_by_test_id("incidents-total")).to_have_text("1")
    page.locator("#incident-stats").screenshot(path=str(ARTIFACTS / "stats-incidents.png"))
    assert live_server.run(lambda: db.session.scalar(
        select(Incident.title).where(Incident.public_id == pid))) is not None
