"""The admin pages in a real browser: add an origin, rotate a project's key (the old key
stops working for intake), and create a user whose password is shown once."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.auth.models import Role
from app.projects.service import create_project
from tests.conftest import ORIGIN, report_body

NEW_ORIGIN = "https://help.example.com"


def intake(page, live_server, key: str, origin: str):
    return page.request.post(live_server("/api/v1/reports"), data=report_body(),
                             headers={"X-Project-Key": key, "Origin": origin})


def test_an_admin_adds_an_origin_and_rotates_the_key(live_server, page, sign_in,
                                                     page_problems):
    sign_in(Role.ADMIN)
    project_id, old_key = live_server.run(lambda: (lambda p: (p.id, p.public_key))(
        create_project(name="Chat", origins=[ORIGIN])))
    assert intake(page, live_server, old_key, NEW_ORIGIN).status == 403

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Projects").click()
    page.get_by_role("link", name="Chat").click()
    page.wait_for_url(live_server(f"/admin/projects/{project_id}"))

    origins = page.get_by_label("Allowed origins")
    origins.fill(f"{ORIGIN}\nHTTPS://Help.Example.com:443/")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text("Project saved.")
    expect(page.get_by_label("Allowed origins")).to_have_value(f"{ORIGIN}\n{NEW_ORIGIN}")
    assert intake(page, live_server, old_key, NEW_ORIGIN).status == 201

    # The confirmation box must be ticked before the key changes.
    rotate = page.get_by_role("button", name="Rotate key")
    rotate.click()
    expect(page.get_by_test_id("public-key")).to_have_text(old_key)
    page.get_by_label("Yes, stop accepting the old key now").check()
    rotate.click()
    expect(page.get_by_text("This is the new key. The old one no longer works.")).to_be_visible()
    new_key = page.get_by_test_id("public-key").inner_text()
    assert new_key.startswith("pk_") and new_key != old_key

    refused = intake(page, live_server, old_key, NEW_ORIGIN)
    assert refused.status == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert intake(page, live_server, new_key, NEW_ORIGIN).status == 201
    assert page_problems.errors == []


def test_an_admin_creates_a_user_who_can_then_sign_in(live_server, page, sign_in,
                                                      page_problems):
    sign_in(Role.ADMIN)
    page.goto(live_server("/admin/users"))
    page.get_by_label("E-mail").fill("nora@example.com")
    page.get_by_label("Name").fill("Nora New")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("heading", name="Nora New can sign in now")).to_be_visible()
    password = page.get_by_test_id("new-password").inner_text()
    expect(page.get_by_label("Role of Nora New")).to_have_value("viewer")

    page.get_by_label("Role of Nora New").select_option("responder")
    page.get_by_role("button", name="Save role of Nora New").click()
    expect(page.get_by_role("status")).to_have_text("Nora New is now responder.")
    expect(page.get_by_test_id("new-password")).to_have_count(0)  # shown once only

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("E-mail").fill("nora@example.com")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server("/board") + "*")
    expect(page.locator(".who-name")).to_have_text("Nora New (responder)")
    assert page_problems.errors == []


@pytest.mark.parametrize("path", ["/admin/users", "/admin/projects"])
def test_the_admin_pages_fit_a_phone(live_server, page, sign_in, page_problems, path):
    sign_in(Role.ADMIN)
    live_server.run(lambda: create_project(name="Chat", origins=[ORIGIN, NEW_ORIGIN]))
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server(path))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page_problems.errors == []
