"""The ticket page in a real browser: triage, notes, a public reply that reaches the
reporter's status page, blurred content, merging, and hostile report text."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.auth.models import Role
from app.extensions import db
from app.projects.service import create_project
from app.reports.models import Report, TaggingState
from app.reports.service import submit_report
from app.triage import service
from tests.conftest import ORIGIN, TEST_PEPPER, TEST_SECRET, ScriptedModerator, report_body

PAYLOADS = ('<script>window.__pwned=1</script>', '<img src=x onerror="window.__pwned=1">',
            '"><svg onload=window.__pwned=1>')
HOSTILE = " ".join(PAYLOADS)


@pytest.fixture
def project_key(live_server) -> str:
    return live_server.run(lambda: create_project(name="Chat", origins=[ORIGIN]).public_key)


def report(page, live_server, key: str, **overrides: Any) -> dict[str, Any]:
    """Send a report through the intake API, as the widget does; returns the receipt."""
    response = page.request.post(live_server("/api/v1/reports"), data=report_body(**overrides),
                                 headers={"X-Project-Key": key})
    assert response.status == 201, response.text()
    return response.json()


def wait_until_tagged(live_server, public_id: str) -> None:
    """In-process tagging runs once the intake response is sent; wait for it to land."""
    def state() -> str:
        return live_server.run(lambda: db.session.scalar(
            select(Report.tagging_state).where(Report.public_id == public_id)))

    deadline = time.monotonic() + 10
    while state() != TaggingState.TAGGED:
        assert time.monotonic() < deadline, "the report was not tagged in time"
        time.sleep(0.05)


def no_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_responder_works_a_ticket_and_the_reporter_sees_the_reply(
        live_server, page, sign_in, page_problems, project_key):
    me = sign_in(Role.RESPONDER)
    receipt = report(page, live_server, project_key, description="It said Paris is in Spain.")
    page.goto(live_server(f"/tickets/{receipt['id']}"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(receipt["id"])
    expect(page.locator(".description")).to_have_text("It said Paris is in Spain.")
    expect(page.locator(".turn-assistant .bubble")).to_have_text(
        "The Eiffel Tower is in Rome, Italy.")

    page.get_by_label("Status", exact=True).select_option("in_progress")
    page.get_by_role("button", name="Set status").click()
    expect(page.get_by_role("status")).to_have_text("Status set to in progress.")
    expect(page.locator(".ticket-meta .status-pill")).to_have_text("In progress")

    page.get_by_role("button", name="Assign to me").click()
    expect(page.get_by_role("status")).to_have_text("Assigned to you.")
    expect(page.locator(".ticket-meta")).to_contain_text(f"Assigned to {me.name}")
    expect(page.get_by_role("button", name="Assign to me")).to_have_count(0)

    page.get_by_label("Add an internal note").fill("Known bug in geo facts; see INC-12.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#notes .comment-body")).to_have_text(
        "Known bug in geo facts; see INC-12.")

    reply_box = page.get_by_label("Public reply (visible to the reporter)")
    reply_box.fill("Thank you! We have fixed this answer.\nIt should be right now.")
    page.get_by_role("button", name="Send public reply").click()
    expect(page.get_by_role("status")).to_contain_text("the reporter sees it")

    history = page.locator("#history")
    expect(history).to_contain_text("Status changed")
    expect(history).to_contain_text(f"{me.name} · Assignee changed")
    expect(history).to_contain_text("Public reply sent")

    page.goto(receipt["status_page_url"])
    expect(page.locator(".status-now .status-pill")).to_have_text("In progress")
    expect(page.locator(".reply-body")).to_have_text(
        "Thank you! We have fixed this answer.\nIt should be right now.")
    expect(page.get_by_text("Known bug")).to_have_count(0)  # notes stay internal
    assert page_problems.errors == []


def test_flagged_content_is_blurred_until_revealed(live_server, page, sign_in, page_problems,
                                                   project_key):
    sign_in(Role.RESPONDER)
    original = live_server.app.extensions["flagdesk.moderator"]
    live_server.app.extensions["flagdesk.moderator"] = ScriptedModerator(
        {"NSFW": {"sexual": 0.96}, "HURT": {"self-harm": 0.91}})
    try:
        receipt = report(page, live_server, project_key, description="NSFW words here",
                         conversation=[{"role": "user", "content": "I want to HURT myself"}])
        wait_until_tagged(live_server, receipt["id"])
    finally:
        live_server.app.extensions["flagdesk.moderator"] = original

    page.goto(live_server(f"/tickets/{receipt['id']}"))
    boxes = page.locator(".sensitive")
    expect(boxes).to_have_count(2)
    description, conversation = boxes.nth(0), boxes.nth(1)
    for box in (description, conversation):
        expect(box).to_have_attribute("data-revealed", "false")
        expect(box.locator(".sensitive-body")).to_have_css("filter", "blur(7px)")
    expect(page.locator("#moderation .flag")).to_have_count(2)

    show = page.get_by_role("button", name="Show description (flagged: sexual, self-harm)")
    show.click()
    expect(description).to_have_attribute("data-revealed", "true")
    expect(description.locator(".sensitive-body")).to_have_css("filter", "none")
    expect(page.get_by_role("button", name="Hide description")).to_be_visible()
    expect(conversation).to_have_attribute("data-revealed", "false")

    page.keyboard.press("r")  # not everything shown yet: show everything
    expect(conversation).to_have_attribute("data-revealed", "true")
    expect(description).to_have_attribute("data-revealed", "true")
    page.keyboard.press("r")  # all shown: hide all
    expect(page.locator('.sensitive[data-revealed="false"]')).to_have_count(2)

    # Typing an "r" into a form is typing, not a shortcut.
    page.get_by_label("Add an internal note").press("r")
    expect(page.locator('.sensitive[data-revealed="false"]')).to_have_count(2)

    page.get_by_label("Always show flagged content unblurred").check()
    page.get_by_role("button", name="Save preference").click()
    page.wait_for_url(live_server(f"/tickets/{receipt['id']}"))
    expect(page.locator('.sensitive[data-revealed="true"]')).to_have_count(2)
    assert page_problems.errors == []


def test_merging_a_duplicate_shows_the_survivors_status_to_its_reporter(
        live_server, page, sign_in, page_problems, project_key):
    sign_in(Role.RESPONDER)
    survivor = report(page, live_server, project_key, description="Rome again")
    duplicate = report(page, live_server, project_key, description="Also Rome")
    page.goto(live_server(f"/tickets/{duplicate['id']}"))

    merge_box = page.get_by_label("Merge this ticket into")
    merge_box.fill(duplicate["id"])
    page.get_by_role("button", name="Merge", exact=True).click()
    expect(page.locator("#merge-error")).to_have_text(
        "Not merged: A ticket cannot be merged into itself.")
    merge_box = page.get_by_label("Merge this ticket into")
    expect(merge_box).to_have_value(duplicate["id"])
    merge_box.fill("rep_doesnotexist")
    page.get_by_role("button", name="Merge", exact=True).click()
    expect(page.locator("#merge-error")).to_have_text(
        "Not merged: No report rep_doesnotexist.")

    page.get_by_label("Merge this ticket into").fill(survivor["id"])
    page.get_by_role("button", name="Merge", exact=True).click()
    page.wait_for_url(live_server(f"/tickets/{survivor['id']}"))
    expect(page.get_by_role("status")).to_have_text(
        f"Merged {duplicate['id']} into {survivor['id']}.")
    duplicates = page.locator(".banner-duplicates")
    expect(duplicates).to_contain_text("1 duplicate merged into this ticket")

    page.get_by_label("Status", exact=True).select_option("resolved")
    page.get_by_role("button", name="Set status").click()
    expect(page.locator(".ticket-meta .status-pill")).to_have_text("Resolved")

    duplicates.get_by_role("link", name=duplicate["id"]).click()
    expect(page.locator(".banner-merged")).to_contain_text(f"Merged into {survivor['id']}")
    page.locator(".banner-merged").get_by_role("link", name=survivor["id"]).click()
    page.wait_for_url(live_server(f"/tickets/{survivor['id']}"))

    page.goto(duplicate["status_page_url"])
    expect(page.locator(".status-now .status-pill")).to_have_text("Resolved")
    # The two refused merges answer 422 (the page again, with the error), which Chromium
    # logs as a failed load; anything else would be a real problem.
    refused = "the server responded with a status of 422"
    assert [e for e in page_problems.errors if refused not in e] == []
    assert len(page_problems.errors) == 2


def test_hostile_report_text_is_shown_literally_and_never_runs(live_server, page, sign_in,
                                                               page_problems, project_key):
    me = sign_in(Role.RESPONDER)
    metadata = {"plan": HOSTILE, PAYLOADS[2]: PAYLOADS[1]}

    def store() -> tuple[str, str]:
        from app.auth.models import User
        from app.projects.service import active_project_by_key

        receipt = submit_report(
            project=active_project_by_key(project_key), idempotency_key=None,
            pepper=TEST_PEPPER, secret=TEST_SECRET, data={
                "reason": "harmful_or_offensive", "description": HOSTILE,
                "conversation": [{"role": "user", "content": PAYLOADS[0]},
                                 {"role": "assistant", "content": PAYLOADS[1]},
                                 {"role": PAYLOADS[2], "content": PAYLOADS[2]}],
                "model": PAYLOADS[2], "response_id": PAYLOADS[1],
                "page_url": "javascript:window.__pwned=1", "locale": PAYLOADS[0],
                "user_agent": HOSTILE, "widget_version": "1.0", "metadata": metadata,
                "contact_email": None, "contact_consent": False})
        service.add_note(actor=db.session.get(User, me.id), public_id=receipt.public_id,
                         body=HOSTILE)
        return receipt.public_id, receipt.status_token

    public_id, token = live_server.run(store)
    page.goto(live_server(f"/tickets/{public_id}"))
    expect(page.locator(".description")).to_have_text(HOSTILE)
    expect(page.locator(".bubble")).to_have_text(list(PAYLOADS))
    expect(page.locator("#notes .comment-body")).to_have_text(HOSTILE)
    details = page.locator("#details")
    expect(details).to_contain_text("javascript:window.__pwned=1")
    expect(details).to_contain_text(PAYLOADS[2])
    expect(page.locator("a[href^='javascript' i]")).to_have_count(0)
    expect(page.locator(".metadata dd").first).to_have_text(PAYLOADS[1])
    expect(page.locator("svg, img:not([src^='data:'])")).to_have_count(0)

    page.get_by_label("Public reply (visible to the reporter)").fill(f"Re: {HOSTILE}")
    page.get_by_role("button", name="Send public reply").click()
    expect(page.locator("#replies .comment-body")).to_have_text(f"Re: {HOSTILE}")
    assert page.evaluate("typeof window.__pwned") == "undefined"

    page.goto(live_server(f"/status/{public_id}?token={token}"))
    expect(page.locator(".reply-body")).to_have_text(f"Re: {HOSTILE}")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page_problems.errors == []


@pytest.mark.parametrize("width", [1280, 390])
def test_the_ticket_page_fits_the_screen(live_server, page, sign_in, page_problems,
                                          project_key, width):
    sign_in(Role.RESPONDER)
    receipt = report(page, live_server, project_key,
                     description="A long line " + "x" * 400, page_url="https://chat.example.com/"
                     + "segment/" * 60)
    page.set_viewport_size({"width": width, "height": 844 if width < 500 else 800})
    page.goto(live_server(f"/tickets/{receipt['id']}"))
    expect(page.get_by_role("button", name="Assign to me")).to_be_visible()
    assert no_overflow(page)
    # The first control is reachable by keyboard and shows where the focus is.
    page.get_by_label("Status", exact=True).focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    if width < 500:  # one column: the triage controls come before the report
        triage_top = page.locator("#triage").bounding_box()["y"]
        assert triage_top < page.locator("#report").bounding_box()["y"]
    assert re.search(r"rep_", page.title())
    assert page_problems.errors == []
