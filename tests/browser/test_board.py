"""The triage board in a real browser: filters in the URL, moving cards by keyboard and by
drag and drop, bulk actions, the shortcut help, new reports arriving without a reload,
blurred content, hostile report text, the viewer's read-only board and a phone's width."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.auth.models import Role, User
from app.extensions import db
from app.projects.service import create_project
from app.reports.models import Priority, Report, Status, TaggingState
from tests.browser.conftest import ARTIFACTS, PASSWORD
from tests.conftest import ORIGIN, ScriptedModerator, report_body
from tests.triage.test_board import make_report

PAYLOADS = ("<script>window.__pwned=1</script>", '<img src=x onerror="window.__pwned=1">',
            '"><svg onload=window.__pwned=1>')
HOSTILE = " ".join(PAYLOADS)


@pytest.fixture
def project(live_server) -> dict[str, Any]:
    return live_server.run(lambda: (lambda p: {"id": p.id, "key": p.public_key})(
        create_project(name="Chat", origins=[ORIGIN])))


@pytest.fixture
def add(live_server, project) -> Callable[..., str]:
    """Store a report on the live server (fields as tests.triage.test_board.make_report)."""

    def add_report(**fields: Any) -> str:
        def store() -> str:
            from app.projects.models import Project

            return make_report(db.session.get(Project, project["id"]), **fields).public_id

        return live_server.run(store)

    return add_report


@pytest.fixture
def moderator(live_server) -> Iterator[ScriptedModerator]:
    """Deterministic in-process tagging for reports sent through the intake API."""
    original = live_server.app.extensions["flagdesk.moderator"]
    scripted = ScriptedModerator({"NSFW": {"sexual": 0.95}, "HURT": {"self-harm": 0.9}})
    live_server.app.extensions["flagdesk.moderator"] = scripted
    yield scripted
    live_server.app.extensions["flagdesk.moderator"] = original


@pytest.fixture
def fast_polling(live_server, monkeypatch) -> None:
    monkeypatch.setitem(live_server.app.config, "BOARD_POLL_MS", 300)


def intake(page, live_server, project, **overrides: Any) -> str:
    """Send a report through the intake API, as the widget does; returns its id."""
    response = page.request.post(live_server("/api/v1/reports"), data=report_body(**overrides),
                                 headers={"X-Project-Key": project["key"], "Origin": ORIGIN})
    assert response.status == 201, response.text()
    return response.json()["id"]


def stored(live_server, public_id: str) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        report = db.session.scalar(select(Report).where(Report.public_id == public_id))
        return {"status": str(report.status), "priority": str(report.priority),
                "assignee_id": report.assignee_id, "tagging": str(report.tagging_state)}

    return live_server.run(read)


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the condition did not become true in time"
        time.sleep(0.05)


def card(page, public_id: str):
    return page.locator(f"#card-{public_id}")


def in_column(page, status: str, public_id: str):
    return page.locator(f'.column[data-status="{status}"] #card-{public_id}')


def settled(page) -> None:
    """Wait until the board has put in the columns an action sent back (and given focus
    back): the board is aria-busy until then."""
    expect(page.locator("#board")).not_to_have_attribute("aria-busy", "true")


# What sticks out past the right edge of the window (the page must not scroll sideways).
WIDER_THAN_THE_WINDOW = """() => Array.from(document.querySelectorAll("body *"))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
               && !e.closest("#columns"))
  .map(e => e.tagName + "." + e.className)"""


def no_csp_violation(page_problems) -> bool:
    return not [e for e in page_problems.errors if "Content Security Policy" in e]


def test_filters_live_in_the_url_and_narrow_the_board(live_server, page, sign_in, add,
                                                      page_problems):
    p0 = add(priority=Priority.P0, description="zero")
    p1 = add(priority=Priority.P1, description="one")
    p3 = add(priority=Priority.P3, description="three")
    sign_in(Role.RESPONDER)
    for public_id in (p0, p1, p3):
        expect(card(page, public_id)).to_be_visible()

    page.locator("label.chip", has_text="P0").click()  # a choice applies itself
    page.wait_for_url(re.compile(r"/board\?priority=P0$"))
    expect(card(page, p0)).to_be_visible()
    expect(page.locator(".card")).to_have_count(1)

    page.locator("label.chip", has_text="P1").click()
    page.wait_for_url(re.compile(r"/board\?priority=P0&priority=P1$"))
    expect(page.locator(".card")).to_have_count(2)
    expect(card(page, p3)).to_have_count(0)

    # the URL is the view: opening it afresh shows the same board
    page.goto(page.url)
    expect(page.locator(".card")).to_have_count(2)
    expect(page.get_by_role("checkbox", name="P0")).to_be_checked()

    page.get_by_label("Search descriptions").fill("thr")
    page.get_by_label("Search descriptions").press("Enter")
    page.wait_for_url(re.compile(r"q=thr"))
    expect(page.locator(".card")).to_have_count(0)

    # saved views: save this one, then the built-in ones
    page.goto(live_server("/board?priority=P1"))
    page.get_by_text("Save view…").click()
    page.get_by_label("Name for the current filters").fill("Just P1")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("link", name="Just P1")).to_have_attribute("aria-current", "page")
    page.get_by_role("link", name="Unassigned P0–P1").click()
    page.wait_for_url(re.compile(r"assignee=none"))
    expect(page.locator(".card")).to_have_count(2)

    page.goto(live_server("/board?priority=P9"))
    expect(page.get_by_text("Some filters are invalid")).to_be_visible()
    expect(page.locator("#err-priority")).to_contain_text("Must be one of")
    assert no_csp_violation(page_problems)


def test_keyboard_moves_focus_and_acts_on_the_focused_card(live_server, page, sign_in, add,
                                                            page_problems):
    urgent = add(priority=Priority.P0)
    later = add(priority=Priority.P2)
    elsewhere = add(priority=Priority.P1, status=Status.TRIAGED)
    me = sign_in(Role.RESPONDER)

    page.keyboard.press("j")
    expect(card(page, urgent)).to_be_focused()
    page.keyboard.press("j")
    expect(card(page, later)).to_be_focused()
    page.keyboard.press("j")  # down the column, then on to the next one
    expect(card(page, elsewhere)).to_be_focused()
    page.keyboard.press("k")
    expect(card(page, later)).to_be_focused()
    page.keyboard.press("l")
    expect(card(page, elsewhere)).to_be_focused()
    page.keyboard.press("h")
    expect(card(page, urgent)).to_be_focused()

    # m opens the move menu; a digit picks the column
    page.keyboard.press("m")
    menu = page.get_by_role("dialog", name="Move to…")
    expect(menu).to_be_visible()
    page.keyboard.press("3")
    settled(page)
    expect(menu).to_be_hidden()
    expect(in_column(page, "in_progress", urgent)).to_be_visible()
    expect(card(page, urgent)).to_be_focused()  # focus follows the card
    assert stored(live_server, urgent)["status"] == "in_progress"
    expect(page.get_by_role("status")).to_have_text("Updated 1 ticket.")

    page.keyboard.press("1")
    settled(page)
    expect(card(page, urgent).locator(".priority")).to_have_text("P1")
    page.keyboard.press("a")
    settled(page)
    expect(card(page, urgent).locator(".card-assignee")).to_have_text(me.name)
    assert stored(live_server, urgent) | {"tagging": None} == {
        "status": "in_progress", "priority": "P1", "assignee_id": me.id, "tagging": None}

    page.keyboard.press("e")
    settled(page)
    expect(in_column(page, "dismissed", urgent)).to_be_visible()
    expect(card(page, urgent)).to_be_focused()
    assert stored(live_server, urgent)["status"] == "dismissed"

    # Enter opens the ticket page
    card(page, later).focus()
    page.keyboard.press("Enter")
    page.wait_for_url(live_server(f"/tickets/{later}"))
    assert no_csp_violation(page_problems) and page_problems.errors == []


def test_shortcuts_do_not_fire_while_typing(live_server, page, sign_in, add):
    target = add(priority=Priority.P2)
    sign_in(Role.RESPONDER)
    search = page.get_by_label("Search descriptions")
    search.click()
    page.keyboard.type("jk?e0")
    expect(search).to_have_value("jk?e0")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert stored(live_server, target)["priority"] == "P2"
    page.get_by_label("Assignee").focus()
    page.keyboard.press("e")
    assert stored(live_server, target)["status"] == "new"
    # / goes to the search box from anywhere on the board
    card(page, target).focus()
    page.keyboard.press("/")
    expect(search).to_be_focused()


def test_drag_a_card_to_another_column(live_server, page, sign_in, add, page_problems):
    moving = add(priority=Priority.P1)
    staying = add(priority=Priority.P2)
    sign_in(Role.RESPONDER)
    page.drag_and_drop(f"#card-{moving}", '.column[data-status="waiting_on_reporter"]')
    settled(page)
    expect(in_column(page, "waiting_on_reporter", moving)).to_be_visible()
    eventually(lambda: stored(live_server, moving)["status"] == "waiting_on_reporter")
    assert stored(live_server, staying)["status"] == "new"
    expect(in_column(page, "new", staying)).to_be_visible()

    # dragging a selected card takes the whole selection along
    third = add(priority=Priority.P3)
    page.reload()
    page.get_by_role("checkbox", name=f"Select {staying}").check()
    page.get_by_role("checkbox", name=f"Select {third}").check()
    page.drag_and_drop(f"#card-{third}", '.column[data-status="resolved"]')
    settled(page)
    expect(in_column(page, "resolved", staying)).to_be_visible()
    expect(in_column(page, "resolved", third)).to_be_visible()
    assert {stored(live_server, i)["status"] for i in (staying, third)} == {"resolved"}
    assert page_problems.errors == []


def test_bulk_assign_several_cards_to_a_responder(live_server, page, sign_in, add,
                                                  page_problems):
    ids = [add(priority=Priority.P2) for _ in range(3)]
    sam = live_server.user(Role.RESPONDER, name="Sam Lee")
    sign_in(Role.RESPONDER)
    bar = page.get_by_role("form", name="Act on the selected tickets")
    expect(bar).to_be_hidden()
    page.get_by_role("checkbox", name=f"Select {ids[0]}").check()
    page.get_by_role("checkbox", name=f"Select {ids[2]}").check()
    expect(bar).to_be_visible()
    expect(bar).to_contain_text("2 tickets selected")
    bar.get_by_label("Assign to").select_option(label="Sam Lee")
    bar.get_by_role("button", name="Assign").click()
    settled(page)
    expect(page.get_by_role("status")).to_have_text("Updated 2 tickets.")
    expect(bar).to_be_hidden()  # the selection is spent
    for public_id, assignee in zip(ids, [sam.id, None, sam.id], strict=True):
        assert stored(live_server, public_id)["assignee_id"] == assignee
    expect(card(page, ids[0]).locator(".card-assignee")).to_have_text("Sam Lee")

    # by keyboard: x selects, a digit re-prioritises every selected card in one request
    card(page, ids[0]).focus()
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(bar).to_contain_text("2 tickets selected")
    page.keyboard.press("0")
    settled(page)
    expect(page.get_by_role("status")).to_have_text("Updated 2 tickets.")
    assert [stored(live_server, i)["priority"] for i in ids] == ["P0", "P0", "P2"]

    # Shift+A: assign the focused card to someone, through the bulk bar's list
    card(page, ids[2]).focus()
    page.keyboard.press("Shift+A")
    expect(bar.get_by_label("Assign to")).to_be_focused()
    expect(bar).to_contain_text("1 ticket selected")
    page.keyboard.press("Escape")  # leaves the list alone; Tab on to the button
    bar.get_by_label("Assign to").select_option(label="Sam Lee")
    bar.get_by_label("Assign to").press("Tab")
    page.keyboard.press("Enter")
    settled(page)
    expect(card(page, ids[2]).locator(".card-assignee")).to_have_text("Sam Lee")
    assert stored(live_server, ids[2])["assignee_id"] == sam.id
    assert page_problems.errors == []


def test_a_refused_action_says_why_and_changes_nothing(live_server, page, sign_in, add):
    ticket = add(priority=Priority.P2)
    sam = live_server.user(Role.RESPONDER, name="Sam Lee")
    sign_in(Role.RESPONDER)
    page.get_by_role("checkbox", name=f"Select {ticket}").check()
    bar = page.get_by_role("form", name="Act on the selected tickets")
    bar.get_by_label("Assign to").select_option(label="Sam Lee")

    def leave() -> None:  # Sam leaves while the page is open
        db.session.get(User, sam.id).active = False
        db.session.commit()

    live_server.run(leave)
    bar.get_by_role("button", name="Assign").click()
    settled(page)
    expect(page.get_by_role("alert")).to_contain_text(
        "Tickets go to active staff who can triage.")
    expect(page.get_by_role("checkbox", name=f"Select {ticket}")).to_be_checked()
    assert stored(live_server, ticket)["assignee_id"] is None


def test_question_mark_opens_the_shortcut_help(live_server, page, sign_in, add):
    add()
    sign_in(Role.RESPONDER)
    page.keyboard.press("j")
    focused = page.locator(".card").first
    page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_dialog).to_be_visible()
    for text in ("Next card", "Assign to me", "Set priority P0", "Move to a column", "Dismiss",
                 "Reveal or hide", "Select or unselect"):
        expect(help_dialog).to_contain_text(text)
    assert page.evaluate("document.querySelector('#help-dialog').contains("
                         "document.activeElement)")
    page.keyboard.press("j")  # shortcuts wait while the dialog is open
    expect(help_dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()
    expect(focused).to_be_focused()
    page.get_by_role("button", name="Shortcuts").click()
    expect(help_dialog).to_be_visible()
    help_dialog.get_by_role("button", name="Close").click()
    expect(help_dialog).to_be_hidden()


def test_a_new_report_appears_without_a_reload(live_server, page, sign_in, project, moderator,
                                               fast_polling, add, page_problems):
    first = add(priority=Priority.P3)
    sign_in(Role.RESPONDER)
    expect(page.locator(".card")).to_have_count(1)
    page.keyboard.press("j")
    page.get_by_role("checkbox", name=f"Select {first}").check()
    page.evaluate("window.__samePage = true")

    fresh = intake(page, live_server, project, description="It invented a citation.")
    expect(card(page, fresh)).to_be_visible()
    expect(card(page, fresh)).to_contain_text("It invented a citation.")
    expect(page.get_by_role("status")).to_have_text("1 new report.")
    assert page.evaluate("window.__samePage") is True  # no reload happened
    # what the person had is kept: the selection
    expect(page.get_by_role("checkbox", name=f"Select {first}")).to_be_checked()

    # a report that does not match the filters does not show up
    page.goto(live_server("/board?reason=privacy"))
    page.evaluate("window.__samePage = true")
    intake(page, live_server, project, description="Not about privacy.")
    private = intake(page, live_server, project, reason="privacy", description="My e-mail.")
    expect(card(page, private)).to_be_visible()
    expect(page.locator(".card")).to_have_count(1)
    assert page.evaluate("window.__samePage") is True
    assert page_problems.errors == []


def test_polling_pauses_while_the_tab_is_hidden(live_server, page, sign_in, project, moderator,
                                                fast_polling):
    sign_in(Role.RESPONDER)
    asked: list[str] = []
    page.on("request", lambda r: "/board/arrivals" in r.url and asked.append(r.url))
    page.wait_for_event("request", lambda r: "/board/arrivals" in r.url)
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {value: true, configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    page.wait_for_timeout(200)  # let a request already in flight finish
    before = len(asked)
    fresh = intake(page, live_server, project, description="While nobody looked.")
    page.wait_for_timeout(1000)  # more than three polling intervals
    assert len(asked) == before
    expect(card(page, fresh)).to_have_count(0)
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {value: false, configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    expect(card(page, fresh)).to_be_visible()  # asks at once on coming back


def test_flagged_content_is_blurred_until_revealed(live_server, page, sign_in, add,
                                                   page_problems):
    sexual = add(flagged=["sexual"], priority=Priority.P1, description="explicit words")
    self_harm = add(flagged=["self-harm"], priority=Priority.P2, description="painful words")
    plain = add(flagged=["harassment"], priority=Priority.P3, description="rude words")
    sign_in(Role.RESPONDER)

    def blurred(public_id: str) -> bool:
        return page.evaluate(
            "id => { const b = document.querySelector('#card-' + id + ' .sensitive-body');"
            " return !!b && getComputedStyle(b).filter.includes('blur'); }", public_id)

    assert blurred(sexual) and blurred(self_harm) and not blurred(plain)
    expect(card(page, plain)).to_contain_text("rude words")

    card(page, sexual).get_by_role("button", name=re.compile("Show text")).click()
    assert not blurred(sexual)
    expect(card(page, sexual).get_by_role("button", name="Hide text")).to_be_visible()

    card(page, self_harm).focus()
    page.keyboard.press("r")
    assert not blurred(self_harm)
    page.keyboard.press("r")
    assert blurred(self_harm)
    assert page_problems.errors == []


def test_the_reveal_preference_changes_the_default(live_server, page, sign_in, add):
    flagged = add(flagged=["violence/graphic"], description="gore")
    me = sign_in(Role.RESPONDER)
    box = page.get_by_label("Show flagged content unblurred")
    expect(card(page, flagged).locator(".sensitive")).to_have_attribute("data-revealed", "false")
    box.check()  # applies itself
    expect(card(page, flagged).locator(".sensitive")).to_have_attribute("data-revealed", "true")
    expect(page.get_by_label("Show flagged content unblurred")).to_be_checked()
    assert live_server.run(lambda: db.session.get(User, me.id).reveal_sensitive) is True
    page.reload()
    expect(card(page, flagged).locator(".sensitive")).to_have_attribute("data-revealed", "true")
    page.get_by_label("Show flagged content unblurred").uncheck()
    expect(card(page, flagged).locator(".sensitive")).to_have_attribute("data-revealed", "false")


def test_hostile_report_text_stays_text(live_server, page, sign_in, project, moderator, add,
                                        fast_polling, page_problems):
    # one stored directly (intake refuses a javascript: page URL), one through intake
    stored_id = add(description=HOSTILE, model_name=HOSTILE, page_url="javascript:window.__pwned=1",
                    extra={"note": HOSTILE}, conversation=[{"role": "user", "content": HOSTILE}],
                    tagging_state=TaggingState.PENDING)
    sign_in(Role.RESPONDER)
    # and one that arrives while the board is open, through the polling swap
    arrived = intake(page, live_server, project, description=HOSTILE, model=HOSTILE,
                     conversation=[{"role": "user", "content": HOSTILE}],
                     metadata={"note": HOSTILE}, page_url="https://chat.example.com/c/1")
    expect(card(page, arrived)).to_be_visible()
    for public_id in (stored_id, arrived):
        expect(card(page, public_id).locator(".card-desc")).to_have_text(HOSTILE)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("#columns script, #columns img, #columns svg").count() == 0
    assert page.locator('a[href^="javascript:"]').count() == 0
    page.keyboard.press("j")
    page.keyboard.press("r")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert no_csp_violation(page_problems), page_problems.errors
    assert page_problems.errors == []


def test_a_viewer_sees_a_read_only_board(live_server, page, sign_in, add):
    ticket = add(priority=Priority.P2)
    sign_in(Role.VIEWER)
    expect(card(page, ticket)).to_be_visible()
    expect(page.locator(".card-select")).to_have_count(0)
    expect(card(page, ticket)).not_to_have_attribute("draggable", "true")
    page.keyboard.press("j")
    expect(card(page, ticket)).to_be_focused()
    for key in ("e", "a", "0", "m"):
        page.keyboard.press(key)
        expect(page.get_by_role("alert")).to_have_text(
            "Your role can read the board but not change tickets.")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert stored(live_server, ticket) | {"tagging": None} == {
        "status": "new", "priority": "P2", "assignee_id": None, "tagging": None}


def test_the_board_works_at_phone_width(live_server, browser, add, page_problems):
    ticket = add(priority=Priority.P1, description="Small screens matter.")
    add(priority=Priority.P3, status=Status.TRIAGED)
    user = live_server.user(Role.RESPONDER)
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    phone = context.new_page()
    phone.on("console", lambda m: m.type == "error" and page_problems.errors.append(m.text))
    try:
        phone.goto(live_server("/login"))
        phone.get_by_label("E-mail").fill(user.email)
        phone.get_by_label("Password").fill(PASSWORD)
        phone.get_by_role("button", name="Sign in").click()
        phone.wait_for_url(live_server("/board") + "*")
        expect(card(phone, ticket)).to_be_visible()
        # the page itself does not scroll sideways; the columns do
        assert phone.evaluate(WIDER_THAN_THE_WINDOW) == []
        assert phone.evaluate("(() => { const c = document.getElementById('columns');"
                              " return c.scrollWidth > c.clientWidth; })()")
        expect(phone.get_by_text("Filters", exact=True)).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        phone.screenshot(path=str(ARTIFACTS / "board-phone.png"))
        phone.get_by_role("checkbox", name=f"Select {ticket}").tap()
        bar = phone.get_by_role("form", name="Act on the selected tickets")
        bar.get_by_label("Move to").select_option("triaged")
        bar.get_by_role("button", name="Move").tap()
        settled(phone)
        expect(phone.locator(f'.column[data-status="triaged"] #card-{ticket}')).to_have_count(1)
        assert stored(live_server, ticket)["status"] == "triaged"
        assert page_problems.errors == []
    finally:
        context.close()


def test_a_screenshot_of_the_board_at_desktop_width(live_server, page, sign_in, add):
    for priority, flagged, status in [
        (Priority.P0, ["sexual/minors"], Status.NEW), (Priority.P1, ["self-harm"], Status.NEW),
        (Priority.P2, [], Status.TRIAGED), (Priority.P3, ["hate"], Status.IN_PROGRESS),
        (Priority.P4, [], Status.RESOLVED)]:
        add(priority=priority, flagged=flagged, status=status)
    sign_in(Role.RESPONDER)
    page.keyboard.press("j")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "board-desktop.png"))
    assert page.evaluate(WIDER_THAN_THE_WINDOW) == []
