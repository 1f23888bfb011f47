"""The widget for everyone: an axe-core scan, errors announced, the user's choices about what
is sent, the five languages, theming (colour, position, label, dark, reduced motion), and
screenshots of the dialog in light and dark.

axe cannot see inside a closed shadow root, so the scans run with the widget's test-only
`data-test-open-shadow` flag, which is the only difference: the same markup and styles in
an open root. The locale test reads the closed widget through Chromium's accessibility tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.widget.browser_support import (
    HostSite,
    ax_names,
    dialog,
    eventually,
    host_page,
    reports,
    widget_project,
    widget_tag,
)

AXE = Path(__file__).resolve().parents[2] / "widget" / "node_modules" / "axe-core" / "axe.min.js"
CHAT = [{"role": "user", "content": "Is it safe to take ibuprofen with my blood thinner?"},
        {"role": "assistant", "content": "Yes, always. There is no interaction at all."}]


@pytest.fixture(scope="module")
def host_site() -> Iterator[HostSite]:
    site = HostSite()
    yield site
    site.close()


@pytest.fixture
def project(live_server, host_site) -> dict[str, Any]:
    return widget_project(live_server, host_site)


def open_widget_page(page, live_server, project, host_site, name: str = "a11y", *,
                     lang: str = "en", head: str = "", **data: Any) -> str:
    data.setdefault("test_open_shadow", True)
    url = host_site.add(f"/{name}.html", host_page(
        widget_tag(live_server("/widget.js"), project["key"], **data), lang=lang, head=head,
        body="<main><p>Some product page.</p></main>"))
    page.goto(url)
    page.wait_for_function("() => window.Flagdesk")
    return url


# --- axe --------------------------------------------------------------------------------------


AXE_RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations', 'passes']});
  // A node inside a shadow root has a target path: [host selector, inner selector].
  const inside = (n) => Array.isArray(n.target[0]);
  return {
    violations: r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => JSON.stringify(n.target)).slice(0, 5)})),
    contrastCheckedInside: r.passes.filter((p) => p.id === 'color-contrast')
      .flatMap((p) => p.nodes).filter(inside).length,
  };
}"""


def serious_violations(page, *, inside: int = 1) -> list[dict[str, Any]]:
    """axe's serious and critical violations; also checks that axe did look inside the
    widget (at least `inside` of its elements passed the contrast rule)."""
    found = page.evaluate(AXE_RUN)
    assert found["contrastCheckedInside"] >= inside, found
    return [v for v in found["violations"] if v["impact"] in ("serious", "critical")]


@pytest.fixture
def axe_source() -> Path:
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `cd widget && npm ci` (make test does).")
    return AXE


def test_axe_finds_no_serious_violation_in_any_state_of_the_dialog(live_server, page, project,
                                                                   host_site, axe_source):
    open_widget_page(page, live_server, project, host_site)
    page.add_script_tag(path=str(axe_source))
    scans = {}
    scans["launcher"] = serious_violations(page)

    page.evaluate("(chat) => Flagdesk.open({conversation: chat, model: 'm-1'})", CHAT)
    expect(dialog(page)).to_be_visible()
    page.wait_for_timeout(300)  # the fade-in, so that contrast is measured at full opacity
    scans["form"] = serious_violations(page, inside=20)

    dialog(page).get_by_role("checkbox", name="Include the conversation (2 messages)").uncheck()
    dialog(page).get_by_label("E-mail (optional)").fill("not-an-address")
    dialog(page).get_by_role("button", name="Send report").click()
    expect(dialog(page).get_by_role("alert")).not_to_be_empty()
    scans["errors"] = serious_violations(page)

    page.emulate_media(color_scheme="dark")
    scans["errors, dark"] = serious_violations(page)

    dialog(page).get_by_text("Biased or unfair").click()
    dialog(page).get_by_label("What happened?").fill("Dangerous advice.")
    dialog(page).get_by_label("E-mail (optional)").fill("")
    dialog(page).get_by_role("button", name="Send report").click()
    expect(page.get_by_role("dialog", name="Thank you, we received your report")).to_be_visible()
    scans["confirmation, dark"] = serious_violations(page)
    page.emulate_media(color_scheme="light")
    scans["confirmation"] = serious_violations(page)

    assert scans == {state: [] for state in scans}


def test_axe_finds_no_serious_violation_on_the_demo_page(live_server, page, project, axe_source):
    # The demo page's own policy forbids inline script; an init script is not subject to it.
    page.add_init_script(path=str(axe_source))
    page.goto(live_server("/demo?open-shadow=1"))
    assert serious_violations(page, inside=1) == []
    page.get_by_role("button", name="Bad answer: report it").first.click()
    expect(dialog(page)).to_be_visible()
    page.wait_for_timeout(300)
    assert serious_violations(page) == []


# --- errors and choices -----------------------------------------------------------------------


def test_errors_are_announced_and_point_at_their_field(live_server, page, project, host_site):
    open_widget_page(page, live_server, project, host_site)
    page.evaluate("Flagdesk.open()")
    box = dialog(page)
    box.get_by_role("button", name="Send report").click()

    expect(box.get_by_role("alert")).to_have_text(
        "Choose what went wrong. Describe the problem, or include the conversation.")
    expect(box.get_by_role("radio", name="Harmful or offensive")).to_be_focused()
    description = box.get_by_label("What happened?")
    expect(description).to_have_attribute("aria-invalid", "true")
    expect(description).to_have_accessible_description(
        "Describe the problem, or include the conversation.")
    expect(box.get_by_role("group", name="What went wrong?")).to_have_accessible_description(
        "Choose what went wrong.")

    box.get_by_text("Something else").click()
    description.fill("The answer was cut off.")
    email = box.get_by_label("E-mail (optional)")
    email.fill("nope")
    box.get_by_role("button", name="Send report").click()
    expect(box.get_by_role("alert")).to_have_text(
        "Enter a valid e-mail address. Tick the box, or leave the e-mail empty.")
    expect(email).to_be_focused()
    expect(email).to_have_accessible_description("Enter a valid e-mail address.")

    # An e-mail without consent is not sent: the user is asked to tick the box or clear it.
    email.fill("reporter@example.com")
    box.get_by_role("button", name="Send report").click()
    consent = box.get_by_role("checkbox", name="You may contact me about this report")
    expect(box.get_by_role("alert")).to_have_text("Tick the box, or leave the e-mail empty.")
    expect(consent).to_be_focused()
    expect(consent).to_have_accessible_description("Tick the box, or leave the e-mail empty.")
    assert reports(live_server) == []


def test_what_is_sent_is_the_users_choice(live_server, page, project, host_site):
    requests: list[Any] = []
    page.on("request", lambda r: r.method == "POST" and requests.append(r))
    open_widget_page(page, live_server, project, host_site)

    # The excerpt unticked: the conversation stays on the page.
    page.evaluate("(chat) => Flagdesk.open({conversation: chat, reason: 'unsafe_advice'})", CHAT)
    box = dialog(page)
    box.get_by_role("checkbox", name="Include the conversation (2 messages)").uncheck()
    expect(box.get_by_role("region", name="Include the conversation (2 messages)")).to_be_hidden()
    box.get_by_label("What happened?").fill("Wrong about drug interactions.")
    box.get_by_label("E-mail (optional)").fill("reporter@example.com")
    box.get_by_role("checkbox", name="You may contact me about this report").check()
    box.get_by_role("button", name="Send report").click()
    expect(page.get_by_role("dialog", name="Thank you, we received your report")).to_be_visible()
    page.evaluate("Flagdesk.close()")

    # The excerpt kept, no e-mail: the conversation goes, and no contact details.
    page.evaluate("(chat) => Flagdesk.open({conversation: chat, reason: 'unsafe_advice'})", CHAT)
    box.get_by_role("button", name="Send report").click()  # the excerpt says enough
    expect(page.get_by_role("dialog", name="Thank you, we received your report")).to_be_visible()

    first, second = reports(live_server)
    assert first["conversation"] == [] and first["description"] == "Wrong about drug interactions."
    assert (first["contact_email"], first["contact_consent"]) == ("reporter@example.com", True)
    assert second["conversation"] == CHAT and second["description"] == ""
    assert (second["contact_email"], second["contact_consent"]) == (None, False)
    assert "conversation" not in requests[0].post_data_json
    assert "contact_email" not in requests[1].post_data_json


# --- languages --------------------------------------------------------------------------------

LOCALES = {
    "en": ("Report a problem", "Send report", "Harmful or offensive", "What happened?"),
    "es": ("Informar de un problema", "Enviar informe", "Dañino u ofensivo", "¿Qué pasó?"),
    "de": ("Problem melden", "Meldung senden", "Schädlich oder beleidigend", "Was ist passiert?"),
    "fr": ("Signaler un problème", "Envoyer le signalement", "Nuisible ou offensant",
           "Que s’est-il passé\u00a0?"),
    "ja": ("問題を報告", "報告を送信", "有害・不快な内容", "何が起きましたか？"),
}


def texts_of_the_closed_widget(page) -> tuple[str, str, str, str]:
    [launcher] = [n for n in ax_names(page, "button") if n]
    page.evaluate("Flagdesk.open()")
    eventually(lambda: ax_names(page, "dialog"))
    [title] = ax_names(page, "dialog")
    buttons, radios = ax_names(page, "button"), ax_names(page, "radio")
    assert title == launcher
    [textbox] = ax_names(page, "textbox")[:1]
    send = buttons[-1]
    page.evaluate("Flagdesk.close()")
    return launcher, send, radios[0], textbox


@pytest.mark.parametrize("lang", ["en", "es", "de", "fr", "ja", "de-AT", "pt-BR"])
def test_each_locale_renders_from_the_page_language(live_server, page, project, host_site,
                                                    lang):
    open_widget_page(page, live_server, project, host_site, f"lang-{lang}", lang=lang,
                     test_open_shadow=False)
    expected = LOCALES.get(lang.split("-")[0], LOCALES["en"])  # no Portuguese: English
    assert texts_of_the_closed_widget(page) == expected


def test_the_host_can_choose_the_language(live_server, page, project, host_site):
    open_widget_page(page, live_server, project, host_site, "choose-ja", lang="en",
                     locale="ja", test_open_shadow=False)
    assert texts_of_the_closed_widget(page) == LOCALES["ja"]
    page.evaluate("Flagdesk.open({locale: 'fr'})")
    eventually(lambda: ax_names(page, "dialog") == [LOCALES["fr"][0]])


# --- theming ----------------------------------------------------------------------------------


def launcher_of(page):
    return page.locator("flagdesk-widget").locator(".launch")


def test_colour_position_and_label_come_from_data_attributes(live_server, page, project,
                                                              host_site):
    open_widget_page(page, live_server, project, host_site, "teal", color="#0f766e",
                     position="bottom-left", label="Feedback")
    launcher = launcher_of(page)
    expect(launcher).to_have_accessible_name("Feedback")
    expect(launcher).to_have_css("background-color", "rgb(15, 118, 110)")
    expect(launcher).to_have_css("color", "rgb(255, 255, 255)")
    box = launcher.bounding_box()
    assert box["x"] == pytest.approx(20, abs=1) and box["y"] + box["height"] == pytest.approx(
        780, abs=1)

    # A light accent gets dark text, so that the label keeps its contrast.
    open_widget_page(page, live_server, project, host_site, "yellow", color="#ffd166")
    expect(launcher_of(page)).to_have_css("color", "rgb(17, 17, 17)")


def test_css_custom_properties_on_the_host_element_theme_the_widget(live_server, page, project,
                                                                    host_site):
    host_site.add("/theme.css", "flagdesk-widget { --flagdesk-accent: rgb(120, 20, 80); "
                                "--flagdesk-radius: 4px; }", content_type="text/css")
    open_widget_page(page, live_server, project, host_site, "themed",
                     head='<link rel="stylesheet" href="/theme.css">')
    expect(launcher_of(page)).to_have_css("background-color", "rgb(120, 20, 80)")
    page.evaluate("Flagdesk.open()")
    expect(dialog(page)).to_have_css("border-radius", "4px")
    expect(dialog(page).get_by_role("button", name="Send report")).to_have_css(
        "background-color", "rgb(120, 20, 80)")


def test_light_and_dark_follow_the_system_unless_the_host_decides(live_server, page, project,
                                                                  host_site):
    open_widget_page(page, live_server, project, host_site, "schemes")
    page.evaluate("Flagdesk.open()")
    expect(dialog(page)).to_have_css("background-color", "rgb(255, 255, 255)")
    page.emulate_media(color_scheme="dark")
    expect(dialog(page)).to_have_css("background-color", "rgb(28, 31, 38)")
    expect(dialog(page)).to_have_css("color", "rgb(236, 238, 243)")

    open_widget_page(page, live_server, project, host_site, "forced-light", theme="light")
    page.evaluate("Flagdesk.open()")
    expect(dialog(page)).to_have_css("background-color", "rgb(255, 255, 255)")
    page.emulate_media(color_scheme="light")
    open_widget_page(page, live_server, project, host_site, "forced-dark", theme="dark")
    page.evaluate("Flagdesk.open()")
    expect(dialog(page)).to_have_css("background-color", "rgb(28, 31, 38)")


def test_reduced_motion_is_respected(live_server, page, project, host_site):
    open_widget_page(page, live_server, project, host_site, "motion")
    page.evaluate("Flagdesk.open()")
    expect(dialog(page)).to_have_css("animation-name", "fd-in")
    page.evaluate("Flagdesk.close()")
    page.emulate_media(reduced_motion="reduce")
    page.evaluate("Flagdesk.open()")
    expect(dialog(page)).to_have_css("animation-name", "none")
    expect(launcher_of(page)).to_have_css("transition-duration", "0s")


# --- screenshots ------------------------------------------------------------------------------


def test_screenshots_of_the_dialog_in_light_and_dark(live_server, page, project):
    page.set_viewport_size({"width": 1200, "height": 960})
    page.goto(live_server("/demo?open-shadow=1"))
    page.get_by_role("button", name="Bad answer: report it").nth(1).click()
    box = dialog(page)
    box.get_by_text("Unsafe advice").click()
    box.get_by_label("What happened?").fill("Mixing bleach and ammonia makes a toxic gas.")
    page.wait_for_timeout(300)
    ARTIFACTS.mkdir(exist_ok=True)
    shots = {}
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        shots[scheme] = ARTIFACTS / f"widget-dialog-{scheme}.png"
        page.screenshot(path=str(shots[scheme]))
    box.get_by_role("button", name="Send report").click()
    expect(page.get_by_role("dialog", name="Thank you, we received your report")).to_be_visible()
    page.wait_for_timeout(200)
    shots["confirmation"] = ARTIFACTS / "widget-confirmation-dark.png"
    page.screenshot(path=str(shots["confirmation"]))
    for path in shots.values():
        assert path.stat().st_size > 10_000
