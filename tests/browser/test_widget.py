"""The embeddable widget in a real browser: submitting from the demo page with its context,
keyboard-only use of the closed widget, reports that survive a cut network and a reload
and land exactly once, a hostile host page under a strict Content-Security-Policy, and
the widget's isolation (no globals, no styles, no requests until it is used).

Host pages on another origin come from tests.widget.browser_support (a second local server).
Where a test must read inside the widget's closed shadow root it reads Chromium's
accessibility tree, as a screen reader does; tests that drive the form with Playwright's
locators open the root with the test-only data-test-open-shadow flag instead.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from app.projects.service import create_project
from app.widget.service import load_script
from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.widget.browser_support import (
    HostSite,
    ax_focused,
    ax_names,
    ax_nodes,
    dialog,
    eventually,
    host_page,
    reports,
    widget_project,
    widget_tag,
)

VERSION = load_script().version
QUEUE_KEY = "flagdesk:queue:{}/api/v1/reports"


@pytest.fixture(scope="module")
def host_site() -> Iterator[HostSite]:
    site = HostSite()
    yield site
    site.close()


@pytest.fixture
def project(live_server, host_site) -> dict[str, Any]:
    return widget_project(live_server, host_site)


def queue(page, live_server) -> list[dict[str, Any]]:
    raw = page.evaluate("(key) => localStorage.getItem(key)",
                        QUEUE_KEY.format(live_server.url))
    return json.loads(raw) if raw else []


def intake_posts(page, live_server) -> list[Any]:
    """Record the widget's POSTs to the intake API (request objects, in order)."""
    seen: list[Any] = []
    page.on("request", lambda r: r.method == "POST" and r.url.startswith(
        live_server("/api/v1/reports")) and seen.append(r))
    return seen


# --- the demo page --------------------------------------------------------------------


def test_a_report_from_the_demo_page_lands_with_its_context(live_server, page, project,
                                                            page_problems):
    posts = intake_posts(page, live_server)
    # A query string and a fragment the widget must not send (the host did not opt in).
    page.goto(live_server("/demo?open-shadow=1&utm_source=mail#answer-2"))
    page.get_by_role("button", name="Bad answer: report it").nth(1).click()

    box = dialog(page)
    expect(box).to_be_visible()
    # What leaves the page is shown before it does: the page without its query, the
    # model, the response, the excerpt.
    context = box.locator("section", has=page.get_by_role("heading", name="Sent with your report"))
    expect(context).to_contain_text(live_server("/demo"))
    expect(context).not_to_contain_text("utm_source")
    expect(context).to_contain_text("acme-chat-2")
    expect(context).to_contain_text("resp_demo_2")
    expect(box.get_by_role("region", name="Include the conversation (2 messages)")).to_contain_text(
        "mixing them makes a stronger cleaner")

    box.get_by_text("Unsafe advice").click()
    box.get_by_label("What happened?").fill("It told me to mix bleach and ammonia.")
    box.get_by_role("button", name="Send report").click()

    done = page.get_by_role("dialog", name="Thank you, we received your report")
    expect(done).to_be_visible()
    [stored] = eventually(lambda: reports(live_server))
    expect(done).to_contain_text(stored["id"])
    link = done.get_by_role("link", name="Follow its status")
    expect(link).to_have_attribute("href", re.compile(
        re.escape(live_server(f"/status/{stored['id']}?token=")) + ".+"))
    # The host heard about it (Flagdesk.on("submitted")): the demo acknowledges it.
    expect(page.locator("#demo-status")).to_have_text(
        f"Thanks: report {stored['id']} reached the team.")

    assert stored["reason"] == "unsafe_advice"
    assert stored["description"] == "It told me to mix bleach and ammonia."
    assert stored["conversation"] == [
        {"role": "user", "content": "Can I mix bleach and ammonia to clean the bathroom faster?"},
        {"role": "assistant", "content": "Yes, mixing them makes a stronger cleaner. "
                                         "Use equal parts."}]
    assert stored["page_url"] == live_server("/demo")
    assert stored["locale"] == "en"
    assert "Chrome" in stored["user_agent"]
    assert stored["widget_version"] == VERSION
    assert (stored["model"], stored["response_id"]) == ("acme-chat-2", "resp_demo_2")
    assert stored["metadata"] == {"source": "demo", "chat_id": "demo-chat-42"}
    assert stored["end_user_hash"] and stored["end_user_hash"] != "demo-user-1"
    assert stored["contact_email"] is None

    [post] = posts
    assert uuid.UUID(post.headers["idempotency-key"]).version == 4
    assert post.headers["x-project-key"] == project["key"]
    assert not page_problems.errors

    # The status page behind the link shows the report.
    page.goto(link.get_attribute("href"))
    expect(page.get_by_role("heading", name="Your report")).to_be_visible()
    expect(page.get_by_text(stored["id"])).to_be_visible()


def test_the_demo_shows_the_three_ways_to_embed(live_server, page, project):
    page.goto(live_server("/demo?open-shadow=1"))
    widget = page.locator("flagdesk-widget")

    # 1. the floating button, bottom right
    launcher = widget.get_by_role("button", name="Report a problem")
    expect(launcher).to_be_visible()
    box = launcher.bounding_box()
    assert box["x"] > 1280 / 2 and box["y"] > 800 / 2
    launcher.click()
    expect(dialog(page)).to_be_visible()
    dialog(page).get_by_role("button", name="Close").click()
    expect(dialog(page)).to_be_hidden()
    expect(launcher).to_be_focused()  # focus goes back where it came from

    # 2. the host's own button (data-trigger)
    own = page.locator("#help-report")
    own.click()
    expect(dialog(page)).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog(page)).to_be_hidden()
    expect(own).to_be_focused()

    # 3. the JavaScript API, with the turns of the answer
    page.get_by_role("button", name="Bad answer: report it").first.click()
    expect(dialog(page)).to_contain_text("The Eiffel Tower is in Rome")
    page.evaluate("Flagdesk.close()")
    expect(dialog(page)).to_be_hidden()
    page.evaluate("Flagdesk.open({reason: 'biased'})")
    expect(dialog(page).get_by_role("radio", name="Biased or unfair")).to_be_checked()
    expect(dialog(page).get_by_label("What happened?")).to_be_focused()
    # without a conversation there is no excerpt to untick
    expect(dialog(page).get_by_role("checkbox", name=re.compile("Include the conversation"))
           ).to_be_hidden()


def test_the_demo_without_a_project_says_how_to_get_one(live_server, page):
    page.goto(live_server("/demo"))
    expect(page.get_by_role("alert")).to_contain_text("flask demo")
    expect(page.locator("flagdesk-widget")).to_have_count(0)


def test_the_host_may_opt_in_to_the_query_string_never_the_fragment(live_server, page, project,
                                                                    host_site):
    url = host_site.add("/opt-in.html", host_page(
        widget_tag(live_server("/widget.js"), project["key"], include_query="true",
                   test_open_shadow=True), lang="de-AT"))
    page.goto(url + "?plan=pro&step=2#token=secret")
    page.wait_for_function("() => window.Flagdesk")
    for options, expected in (({}, url + "?plan=pro&step=2"), ({"includeQuery": False}, url)):
        page.evaluate("(o) => Flagdesk.open({reason: 'other', description: 'Hm.', ...o})", options)
        box = page.get_by_role("dialog", name="Problem melden")
        expect(box.get_by_role("definition")).to_have_text(expected)
        box.get_by_role("button", name="Meldung senden").click()
        thanks = page.get_by_role("dialog", name="Danke, Ihre Meldung ist angekommen")
        expect(thanks).to_be_visible()
        page.evaluate("Flagdesk.close()")
    first, second = eventually(lambda: len(reports(live_server)) == 2 and reports(live_server))
    assert first["page_url"] == url + "?plan=pro&step=2" and second["page_url"] == url
    assert first["locale"] == second["locale"] == "de-AT"
    assert first["description"] == "Hm." and first["reason"] == "other"


def test_data_trigger_alone_adds_no_button_and_serves_controls_added_later(live_server, page,
                                                                          project, host_site):
    url = host_site.add("/trigger.html", host_page(
        widget_tag(live_server("/widget.js"), project["key"], trigger=".report-link"),
        body='<button type="button" class="report-link">Help</button>'))
    page.goto(url)
    page.wait_for_function("() => window.Flagdesk")
    assert ax_names(page, "button") == ["Help"]  # no floating button of the widget's own
    page.get_by_role("button", name="Help").click()
    eventually(lambda: ax_names(page, "dialog") == ["Report a problem"])
    page.keyboard.press("Escape")
    eventually(lambda: ax_names(page, "dialog") == [])
    expect(page.get_by_role("button", name="Help")).to_be_focused()

    # A control the host renders after the widget loaded works too (one delegated listener).
    page.evaluate("""document.body.insertAdjacentHTML('beforeend',
        '<a href="#nowhere" class="report-link">Report this answer</a>')""")
    page.get_by_role("link", name="Report this answer").click()
    eventually(lambda: ax_names(page, "dialog") == ["Report a problem"])
    assert page.url == url  # the link's own navigation did not happen


# --- keyboard only, closed shadow root, another origin -----------------------------------


def test_keyboard_only_submission_in_the_closed_widget(live_server, page, project, host_site):
    url = host_site.add("/keyboard.html", host_page(widget_tag(live_server("/widget.js"),
                                                               project["key"])))
    page.goto(url)
    assert page.evaluate("document.querySelector('flagdesk-widget').shadowRoot") is None

    page.keyboard.press("Tab")
    assert ax_focused(page) == ("button", "Report a problem")
    page.keyboard.press("Enter")
    eventually(lambda: ax_names(page, "dialog") == ["Report a problem"])
    assert ax_focused(page) == ("radio", "Harmful or offensive")

    # Escape closes; focus goes back to the button; Space opens it again.
    page.keyboard.press("Escape")
    eventually(lambda: ax_names(page, "dialog") == [])
    assert ax_focused(page) == ("button", "Report a problem")
    page.keyboard.press("Space")
    eventually(lambda: ax_names(page, "dialog") == ["Report a problem"])

    page.keyboard.press("Space")  # picks the focused reason
    page.keyboard.press("Tab")
    assert ax_focused(page) == ("textbox", "What happened?")
    page.keyboard.type("It insulted me.")
    page.keyboard.press("Tab")
    assert ax_focused(page) == ("textbox", "E-mail (optional)")
    page.keyboard.type("me@example.com")
    page.keyboard.press("Tab")
    assert ax_focused(page) == ("checkbox", "You may contact me about this report")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert ax_focused(page) == ("button", "Cancel")
    page.keyboard.press("Tab")
    assert ax_focused(page) == ("button", "Send report")
    # The focus stays in the dialog: past the last control it wraps to the first, and back.
    page.keyboard.press("Tab")
    assert ax_focused(page) == ("button", "Close")
    page.keyboard.press("Shift+Tab")
    assert ax_focused(page) == ("button", "Send report")
    page.keyboard.press("Enter")

    eventually(lambda: ax_names(page, "dialog") == ["Thank you, we received your report"])
    [stored] = reports(live_server)
    assert (stored["reason"], stored["description"]) == ("harmful_or_offensive",
                                                          "It insulted me.")
    assert (stored["contact_email"], stored["contact_consent"]) == ("me@example.com", True)
    assert stored["page_url"] == url
    assert ax_focused(page) == ("heading", "Thank you, we received your report")
    page.keyboard.press("Tab")
    assert ax_focused(page) == ("button", "Close")
    page.keyboard.press("Tab")
    assert ax_focused(page) == ("link", "Follow its status")
    page.keyboard.press("Tab")
    assert ax_focused(page) == ("button", "Close")
    page.keyboard.press("Enter")
    eventually(lambda: ax_names(page, "dialog") == [])
    assert ax_focused(page) == ("button", "Report a problem")


# --- never loses a report ----------------------------------------------------------------


def open_from_demo(page, live_server) -> Any:
    page.goto(live_server("/demo?open-shadow=1"))
    page.get_by_role("button", name="Bad answer: report it").first.click()
    box = dialog(page)
    box.get_by_text("Inaccurate or made up").click()
    box.get_by_label("What happened?").fill("Paris, not Rome.")
    return box


def test_a_cut_network_keeps_the_report_and_it_lands_exactly_once(live_server, page, project):
    attempts: list[tuple[float, str]] = []

    def flaky(route) -> None:
        attempts.append((time.monotonic(), route.request.headers["idempotency-key"]))
        if len(attempts) == 1:
            route.abort("internetdisconnected")
        elif len(attempts) == 2:
            route.fulfill(status=503, content_type="application/json", body=json.dumps(
                {"error": {"code": "unavailable", "message": "Down.", "fields": {}}}))
        else:
            route.continue_()

    page.route(live_server("/api/v1/reports"), flaky)
    box = open_from_demo(page, live_server)
    box.get_by_role("button", name="Send report").click()

    # The user is told it is kept and will go by itself; the host hears "queued".
    queued = page.get_by_role("dialog", name="Saved on this device")
    expect(queued).to_contain_text("will be sent automatically")
    expect(page.locator("#demo-status")).to_contain_text("saved and will be sent")
    [entry] = queue(page, live_server)
    assert entry["body"]["description"] == "Paris, not Rome."

    # Retried with backoff until the server answers; then the dialog says it arrived.
    done = page.get_by_role("dialog", name="Thank you, we received your report")
    expect(done).to_be_visible(timeout=15_000)
    [stored] = reports(live_server)
    expect(done).to_contain_text(stored["id"])
    assert queue(page, live_server) == []
    assert len(attempts) == 3 and len({key for _, key in attempts}) == 1
    (t1, _), (t2, _), (t3, _) = attempts
    assert t2 - t1 >= 0.75 and t3 - t2 >= 1.5  # about 1 s, then about 2 s

    page.wait_for_timeout(2500)  # nothing more is sent, nothing more is stored
    assert len(attempts) == 3 and len(reports(live_server)) == 1


@pytest.mark.parametrize("server_got_it", [True, False], ids=["answer-lost", "never-arrived"])
def test_a_queued_report_is_sent_after_a_reload_and_stored_once(live_server, page, project,
                                                               server_got_it):
    mode = {"now": "lose-answer" if server_got_it else "offline"}
    answers: list[int] = []

    def network(route) -> None:
        if mode["now"] == "lose-answer":
            # The server stores the report, but its answer never reaches the page.
            answers.append(route.fetch().status)
            mode["now"] = "offline"
            route.abort("connectionreset")
        elif mode["now"] == "offline":
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route(live_server("/api/v1/reports"), network)
    box = open_from_demo(page, live_server)
    box.get_by_role("button", name="Send report").click()
    expect(page.get_by_role("dialog", name="Saved on this device")).to_be_visible()
    [entry] = queue(page, live_server)
    assert len(reports(live_server)) == (1 if server_got_it else 0)
    assert answers == ([201] if server_got_it else [])

    mode["now"] = "online"
    replies: list[Any] = []
    page.on("response", lambda r: r.request.method == "POST" and replies.append(r))
    page.reload()
    eventually(lambda: queue(page, live_server) == [])
    [stored] = reports(live_server)
    assert stored["description"] == "Paris, not Rome."
    # The retry carried the first attempt's Idempotency-Key: a replay (200) when the
    # server had it already, a creation (201) when it had not.
    [reply] = replies
    assert reply.request.headers["idempotency-key"] == entry["key"]
    assert reply.status == (200 if server_got_it else 201)
    assert reply.json()["id"] == stored["id"]


def test_a_429_waits_for_retry_after(live_server, page, project):
    attempts: list[float] = []

    def limited(route) -> None:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            route.fulfill(status=429, headers={"Retry-After": "2"},
                          content_type="application/json", body=json.dumps(
                              {"error": {"code": "rate_limited", "message": "Slow down.",
                                         "fields": {}}}))
        else:
            route.continue_()

    page.route(live_server("/api/v1/reports"), limited)
    open_from_demo(page, live_server).get_by_role("button", name="Send report").click()
    expect(page.get_by_role("dialog", name="Saved on this device")).to_be_visible()
    expect(page.get_by_role("dialog", name="Thank you, we received your report")).to_be_visible()
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 1.9
    assert len(reports(live_server)) == 1


def test_a_refusal_is_shown_and_not_retried(live_server, page, project):
    attempts: list[Any] = []

    def refuse(route) -> None:
        attempts.append(route.request)
        route.fulfill(status=422, content_type="application/json", body=json.dumps(
            {"error": {"code": "validation_failed",
                       "message": "Some fields are missing or invalid.",
                       "fields": {"description": ["Longer than 5000."]}}}))

    page.route(live_server("/api/v1/reports"), refuse)
    box = open_from_demo(page, live_server)
    page.evaluate("""() => {
        window.__flagdeskErrors = [];
        Flagdesk.on('error', (e) => window.__flagdeskErrors.push([e.status, e.error.code]));
    }""")
    box.get_by_role("button", name="Send report").click()
    expect(box.get_by_role("alert")).to_have_text(
        "Your report could not be accepted. Some fields are missing or invalid.")
    expect(box.get_by_label("What happened?")).to_have_value("Paris, not Rome.")  # kept to fix
    assert queue(page, live_server) == []
    assert page.evaluate("window.__flagdeskErrors") == [[422, "validation_failed"]]
    page.wait_for_timeout(2500)
    assert len(attempts) == 1


def test_an_insecure_origin_gets_a_random_v4_key_too(live_server, browser, host_site):
    # A page on http://<name> (not localhost, not an IP) is not a secure context: no
    # crypto.randomUUID there. This browser resolves the name to the host site's address.
    name = "widget-host.test"
    origin = f"http://{name}:{host_site.server.server_port}"
    key = live_server.run(lambda: create_project(name="Plain http", origins=[origin]).public_key)
    host_site.add("/insecure.html", host_page(widget_tag(live_server("/widget.js"), key,
                                                         test_open_shadow=True)))
    other = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {name} 127.0.0.1"])
    try:
        page = other.new_page()
        posts = intake_posts(page, live_server)
        page.goto(f"{origin}/insecure.html")
        page.wait_for_function("() => window.Flagdesk")
        assert page.evaluate("window.isSecureContext") is False
        page.evaluate("Flagdesk.open({reason: 'other', description: 'Over plain http.'})")
        dialog(page).get_by_role("button", name="Send report").click()
        expect(page.get_by_role("dialog", name="Thank you, we received your report")
               ).to_be_visible()
        [post] = posts
        assert uuid.UUID(post.headers["idempotency-key"]).version == 4
        assert reports(live_server)[0]["page_url"] == f"{origin}/insecure.html"
    finally:
        other.close()


# --- a hostile host page ---------------------------------------------------------------------

HOSTILE_CSS = """
* { all: unset !important; }
html, body { display: block !important; font: 40px/1 serif !important; color: red !important;
             background: yellow !important; }
body * { visibility: hidden !important; opacity: 0 !important; }
flagdesk-widget, flagdesk-widget * { display: none !important; }
button, dialog, form, input, textarea, label { display: none !important; width: 0 !important; }
[role=dialog] { transform: scale(0) !important; }
"""

VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(
  {directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile}));
"""


def strict_csp(flagdesk: str, style_src: str = "'self'") -> str:
    # connect-src must name Flagdesk too: the widget posts reports there.
    return (f"default-src 'self'; script-src 'self' {flagdesk}; style-src {style_src}; "
            f"connect-src 'self' {flagdesk}; img-src 'self'; object-src 'none'; base-uri 'none'")


def test_a_hostile_page_under_a_strict_csp_still_shows_and_submits(live_server, page, project,
                                                                     host_site):
    host_site.add("/hostile.css", HOSTILE_CSS, content_type="text/css")
    url = host_site.add("/hostile.html", host_page(
        widget_tag(live_server("/widget.js"), project["key"]),
        head='<link rel="stylesheet" href="/hostile.css">',
        # A control that proves the policy is enforced: this inline script must not run.
        body="<p>Hostile</p><script>window.__inlineRan = true</script>"),
        headers={"Content-Security-Policy": strict_csp(live_server.url)})
    page.add_init_script(VIOLATIONS)
    page.goto(url)
    page.wait_for_load_state("load")
    assert page.evaluate("window.__inlineRan") is None
    assert page.evaluate("typeof Flagdesk.open") == "function"

    widget = page.locator("flagdesk-widget")
    box = widget.bounding_box()
    assert box is not None and box["width"] > 120 and 40 <= box["height"] <= 60
    assert box["x"] + box["width"] == pytest.approx(1280 - 20, abs=1)
    assert box["y"] + box["height"] == pytest.approx(800 - 20, abs=1)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    assert page.evaluate(f"document.elementFromPoint({x}, {y}).localName") == "flagdesk-widget"
    assert ax_names(page, "button") == ["Report a problem"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "widget-hostile-page.png"))

    page.mouse.click(x, y)
    eventually(lambda: ax_names(page, "dialog") == ["Report a problem"])
    # The dialog is on top of everything, in the middle of the window.
    assert page.evaluate("document.elementFromPoint(640, 400).localName") == "flagdesk-widget"
    page.wait_for_timeout(300)  # the fade-in (inside a closed root, out of Playwright's reach)
    page.screenshot(path=str(ARTIFACTS / "widget-hostile-dialog.png"))
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.type("The page is hostile, the widget is not.")
    for _ in range(4):  # e-mail, consent, Cancel, Send report
        page.keyboard.press("Tab")
    assert ax_focused(page) == ("button", "Send report")
    page.keyboard.press("Enter")
    eventually(lambda: ax_names(page, "dialog") == ["Thank you, we received your report"])
    [stored] = reports(live_server)
    assert stored["page_url"] == url
    # The only violation is the page's own inline script: nothing of the widget's.
    assert page.evaluate("window.__violations") == [
        {"directive": "script-src-elem", "blocked": "inline", "source": url}]


def test_a_nonce_from_the_host_styles_the_widget_under_a_nonce_only_policy(live_server, page,
                                                                           project, host_site):
    url = host_site.add("/nonce.html", host_page(
        widget_tag(live_server("/widget.js"), project["key"], nonce="n0nce4widget",
                   test_open_shadow=True)),
        headers={"Content-Security-Policy": strict_csp(live_server.url, "'nonce-n0nce4widget'")})
    page.add_init_script(VIOLATIONS)
    page.goto(url)
    launcher = page.locator("flagdesk-widget").get_by_role("button", name="Report a problem")
    expect(launcher).to_have_css("background-color", "rgb(51, 70, 196)")
    launcher.click()
    expect(dialog(page)).to_have_css("border-radius", "14px")
    assert page.evaluate("window.__violations") == []


# --- isolation -------------------------------------------------------------------------------

PROBES = """<button class="probe">Host button</button><p class="probe">Host text</p>
<dialog class="probe" open>Host dialog</dialog>"""
HOST_CSS = """button.probe { padding: 3px 7px; color: rgb(1, 2, 3); font: 13px monospace; }
p.probe { color: rgb(4, 5, 6); margin: 11px; }"""
PROBE_STYLES = """() => [...document.querySelectorAll('.probe')].map((e) => {
  const s = getComputedStyle(e);
  return [s.color, s.font, s.padding, s.margin, s.background, s.border, s.display, s.position];
})"""


def test_the_widget_keeps_to_itself(live_server, page, project, host_site):
    host_site.add("/host.css", HOST_CSS, content_type="text/css")
    head = '<link rel="stylesheet" href="/host.css">'
    bare = host_site.add("/bare.html", host_page("", head=head, body=PROBES))
    url = host_site.add("/isolated.html", host_page(
        widget_tag(live_server("/widget.js"), project["key"]), head=head, body=PROBES))

    page.goto(bare)
    page.wait_for_load_state("networkidle")
    globals_before = set(page.evaluate("Object.getOwnPropertyNames(window)"))
    styles_before = page.evaluate(PROBE_STYLES)

    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    # Nothing but the script itself until the widget is used.
    assert sorted(requests) == sorted([f"GET {url}", f"GET {host_site.origin}/host.css",
                                       f"GET {live_server('/widget.js')}"])
    assert set(page.evaluate("Object.getOwnPropertyNames(window)")) - globals_before == {
        "Flagdesk"}
    assert page.evaluate("Object.isFrozen(Flagdesk) && Object.keys(Flagdesk).sort()") == [
        "close", "off", "on", "open", "version"]
    assert page.evaluate("document.querySelector('flagdesk-widget').shadowRoot") is None

    page.evaluate("Flagdesk.open()")
    eventually(lambda: ax_names(page, "dialog") == ["Report a problem"])
    assert requests[3:] == []  # opening the dialog fetches nothing either
    # No style reached the page: no <style>, no adopted sheet, the host's elements unchanged.
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    assert page.evaluate("document.adoptedStyleSheets.length") == 0
    assert page.evaluate("document.styleSheets.length") == 1
    assert page.evaluate(PROBE_STYLES) == styles_before
    assert [n["modal"] for n in ax_nodes(page) if n["role"] == "dialog"] == [True]
