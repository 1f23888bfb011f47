"""The SLA admin editor (/admin/sla): calendars and project policies, admins only, CSRF on
every form, bad input shown again (422) with every field kept, every change audited."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.extensions import db
from app.projects.service import create_project
from app.sla import policies
from app.sla.models import SlaCalendar, SlaPolicy
from tests.web import post_form, sign_in

WEEKDAYS = {f"hours_{d}": "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")}


@pytest.fixture
def admin(client, make_user):
    user = make_user(Role.ADMIN, name="Ada Admin")
    sign_in(client, user)
    return user


def html(response: Any) -> str:
    return response.get_data(as_text=True)


def audit(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.id)))


def calendar_named(name: str) -> SlaCalendar | None:
    db.session.expire_all()
    return db.session.scalar(select(SlaCalendar).where(SlaCalendar.name == name))


def value_of(page: str, name: str) -> str | None:
    """What an input or textarea of the page holds."""
    found = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page)
    if found:
        return found.group(1)
    found = re.search(rf'<textarea[^>]*name="{name}"[^>]*>([^<]*)</textarea>', page)
    return found.group(1) if found else None


def selected(page: str, name: str) -> str | None:
    select_ = re.search(rf'<select[^>]*name="{name}".*?</select>', page, re.S)
    assert select_, f"no select {name}"
    found = re.search(r'<option value="([^"]*)"\s+selected', select_.group(0))
    return found.group(1) if found else None


# --- who may ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.RESPONDER, Role.LEAD])
def test_only_admins_may_see_or_change_slas(client, make_user, project, role):
    sign_in(client, make_user(role))
    calendar = policies.create_calendar(actor=None, name="Office")
    for path in ("/admin/sla", "/admin/sla/calendars/new", f"/admin/sla/calendars/{calendar.id}",
                 f"/admin/sla/policies/{project.id}"):
        assert client.get(path).status_code == 403, path
    events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    for path, data in ((f"/admin/sla/calendars/{calendar.id}", {"name": "Mine", **WEEKDAYS,
                                                                "timezone": "UTC"}),
                       ("/admin/sla/calendars", {"name": "", "timezone": "nowhere"}),
                       (f"/admin/sla/policies/{project.id}", {"calendar_id": calendar.id,
                                                              "at_risk_percent": "75"}),
                       (f"/admin/sla/policies/{project.id}/defaults", {})):
        assert post_form(client, path, data).status_code == 403, path
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events
    assert calendar_named("Office") is not None and calendar_named("Mine") is None


def test_forms_need_a_csrf_token(client, admin, project):
    response = client.post("/admin/sla/calendars", data={"name": "Forged", "timezone": "UTC",
                                                         **WEEKDAYS},
                           headers={"Referer": "https://flagdesk.test/"})
    assert response.status_code == 400
    assert calendar_named("Forged") is None
    response = client.post(f"/admin/sla/policies/{project.id}/defaults",
                           headers={"Referer": "https://flagdesk.test/"})
    assert response.status_code == 400
    assert policies.get_policy(actor=None, project_id=project.id) is None


def test_the_admin_nav_links_to_the_sla_pages(client, admin):
    page = html(client.get("/admin/users"))
    assert re.search(r'<a href="/admin/sla"\s*>SLA</a>', page)


# --- the overview ----------------------------------------------------------------------------


def test_the_overview_lists_calendars_policies_and_projects_without_one(client, admin,
                                                                         project):
    policies.defaults(actor=None, project_id=project.id)
    create_project(name='<script>alert("x")</script>', origins=[])
    page = html(client.get("/admin/sla"))
    assert "Business hours (UTC)" in page and "Mon–Fri 09:00-17:00" in page
    assert re.search(r">Chat</td>\s*<td[^>]*><a [^>]*>Business hours \(UTC\)</a>", page)
    assert "75%" in page and "Around the clock" in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert '<script>alert("x")' not in page
    assert "No SLA policy: its tickets get no clocks." in page


def test_defaults_give_a_project_a_policy(client, admin, project):
    response = post_form(client, f"/admin/sla/policies/{project.id}/defaults")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/sla/policies/{project.id}")
    policy = policies.get_policy(actor=None, project_id=project.id)
    assert policy is not None and len(policy.targets) == 16
    assert audit("sla.policy_created")


# --- calendars -------------------------------------------------------------------------------


def test_a_new_calendar_with_night_shifts_regional_holidays_and_team_dates(client, admin):
    page = html(client.get("/admin/sla/calendars/new"))
    assert value_of(page, "hours_mon") == "09:00-17:00" and value_of(page, "hours_sat") == ""
    assert '<option value="Europe/Berlin"' in page
    assert re.search(r'<optgroup label="Germany" data-country="DE">', page)
    response = post_form(client, "/admin/sla/calendars", {
        "name": "Munich support", "timezone": "Europe/Berlin", **WEEKDAYS,
        "hours_fri": "09:00-12:00, 13:00-17:00", "hours_sat": "22:00-06:00",
        "holiday_country": "DE", "holiday_subdivision": "BY",
        "extra_holidays": "2026-12-24\n2026-12-31"})
    assert response.status_code == 303, html(response)
    calendar = calendar_named("Munich support")
    assert calendar.timezone == "Europe/Berlin"
    assert calendar.week["fri"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert calendar.week["sat"] == [["22:00", "06:00"]] and "sun" not in calendar.week
    assert (calendar.holiday_country, calendar.holiday_subdivision) == ("DE", "BY")
    assert calendar.extra_holidays == ["2026-12-24", "2026-12-31"]
    [created] = audit("sla.calendar_created")
    assert created.actor_id == admin.id


def test_bad_calendar_input_is_shown_again_with_everything_kept(client, admin):
    form = {"name": "", "timezone": "Mars/Olympus", **WEEKDAYS, "hours_tue": "9 to 5ish",
            "hours_sat": "25:00-26:00", "holiday_country": "DE", "holiday_subdivision": "ENG",
            "extra_holidays": "2026-12-24\nChristmas"}
    response = post_form(client, "/admin/sla/calendars", form)
    assert response.status_code == 422
    page = html(response)
    for message in ("Name the calendar", "Pick a timezone from the list.",
                    "“9 to 5ish” is not a span like 09:00-17:00.",
                    "“25:00-26:00” is not a span like 09:00-17:00.",
                    "Not a region of Germany", "“Christmas” is not a date as YYYY-MM-DD."):
        assert message in page, message
    assert value_of(page, "hours_tue") == "9 to 5ish"
    assert value_of(page, "hours_mon") == "09:00-17:00"
    assert value_of(page, "extra_holidays") == "2026-12-24\nChristmas"
    assert selected(page, "holiday_country") == "DE"
    assert re.search(r'id="f-hours-tue"[^>]*aria-invalid="true"', page)
    assert db.session.scalar(select(func.count()).select_from(SlaCalendar)) == 0


def test_a_calendar_needs_some_working_hours(client, admin):
    response = post_form(client, "/admin/sla/calendars", {"name": "Never", "timezone": "UTC"})
    assert response.status_code == 422
    assert "Give working hours on at least one day." in html(response)


def test_editing_a_calendar_changes_it_and_clearing_the_country_clears_the_region(
        client, admin):
    calendar = policies.create_calendar(actor=None, name="Office", holiday_country="DE",
                                        holiday_subdivision="BY")
    page = html(client.get(f"/admin/sla/calendars/{calendar.id}"))
    assert selected(page, "holiday_country") == "DE"
    assert selected(page, "holiday_subdivision") == "BY"
    response = post_form(client, f"/admin/sla/calendars/{calendar.id}", {
        "name": "Office (night)", "timezone": "UTC", "hours_mon": "22:00-24:00",
        "holiday_country": "", "holiday_subdivision": "BY", "extra_holidays": ""})
    # A region without a country is refused rather than silently dropped.
    assert response.status_code == 422 and "A region needs its country." in html(response)
    response = post_form(client, f"/admin/sla/calendars/{calendar.id}", {
        "name": "Office (night)", "timezone": "UTC", "hours_mon": "22:00-24:00",
        "holiday_country": "", "holiday_subdivision": "", "extra_holidays": ""})
    assert response.status_code == 303
    stored = calendar_named("Office (night)")
    assert stored.week == {"mon": [["22:00", "24:00"]]}
    assert stored.holiday_country is None and stored.holiday_subdivision is None
    [updated] = audit("sla.calendar_updated")
    assert updated.before["holiday_country"] == "DE" and updated.after["name"] == "Office (night)"


def test_a_name_in_use_is_a_conflict_with_the_form_kept(client, admin):
    policies.create_calendar(actor=None, name="Office")
    response = post_form(client, "/admin/sla/calendars", {"name": "Office", "timezone": "UTC",
                                                          **WEEKDAYS})
    assert response.status_code == 409
    page = html(response)
    assert "exists already" in page and value_of(page, "name") == "Office"


def test_an_unknown_calendar_is_not_found(client, admin):
    assert client.get("/admin/sla/calendars/999999").status_code == 404


# --- policies --------------------------------------------------------------------------------


@pytest.fixture
def defaults(project) -> SlaPolicy:
    return policies.defaults(actor=None, project_id=project.id)


def policy_form(page: str) -> dict[str, str]:
    """Every field of the policy form as the page fills it in."""
    form = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page):
        if name != "csrf_token":
            form[name] = value
    for name in ("calendar_id", *(f"cat_{i}_{k}" for i in range(10)
                                  for k in ("metric", "category"))):
        if f'name="{name}"' in page:
            form[name] = selected(page, name) or ""
    if re.search(r'name="p0_around_the_clock" value="on"\s+checked', page):
        form["p0_around_the_clock"] = "on"
    return form


def test_the_policy_form_shows_the_targets_and_saves_what_changed(client, admin, project,
                                                                  defaults):
    page = html(client.get(f"/admin/sla/policies/{project.id}"))
    form = policy_form(page)
    assert form["target_first_response_P0"] == "15m"
    assert form["target_resolution_P2"] == "24h"
    assert form["at_risk_percent"] == "75" and form["p0_around_the_clock"] == "on"
    assert (form["cat_0_metric"], form["cat_0_category"], form["cat_0_target"]) == (
        "first_response", "self-harm", "30m")
    before = len(audit("sla.target_set"))
    form.update({"at_risk_percent": "80", "oncall_email": "oncall@example.com",
                 "target_first_response_P1": "45m", "target_resolution_P4": "",
                 "cat_1_metric": "resolution", "cat_1_category": "violence",
                 "cat_1_target": "2h 30m"})
    del form["p0_around_the_clock"]
    response = post_form(client, f"/admin/sla/policies/{project.id}", form)
    assert response.status_code == 303, html(response)
    db.session.expire_all()
    policy = policies.get_policy(actor=None, project_id=project.id)
    assert (policy.at_risk_share, policy.p0_around_the_clock, policy.oncall_email) == (
        0.8, False, "oncall@example.com")
    targets = {(str(t.metric), t.priority and str(t.priority), t.category): t.minutes
               for t in policy.targets}
    assert targets[("first_response", "P1", None)] == 45
    assert ("resolution", "P4", None) not in targets
    assert targets[("resolution", None, "violence")] == 150
    assert targets[("first_response", None, "self-harm")] == 30
    assert len(targets) == 16
    assert len(audit("sla.target_set")) == before + 2
    assert len(audit("sla.target_removed")) == 1
    assert audit("sla.policy_updated")[-1].actor_id == admin.id


def test_bad_policy_input_changes_nothing_and_keeps_what_was_typed(client, admin, project,
                                                                   defaults):
    form = policy_form(html(client.get(f"/admin/sla/policies/{project.id}")))
    form.update({"at_risk_percent": "150", "oncall_email": "not an address",
                 "target_first_response_P2": "soon", "target_resolution_P0": "2000h",
                 "cat_1_metric": "first_response", "cat_1_category": "self-harm",
                 "cat_1_target": "10m"})
    events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    response = post_form(client, f"/admin/sla/policies/{project.id}", form)
    assert response.status_code == 422
    page = html(response)
    for message in ("A whole percentage from 1 to 99", "Not an e-mail address.",
                    "“soon” is not a duration like 15m, 4h or 1h 30m.",
                    "Between 1 minute and 1440h (60 days).",
                    "This category has a target for this metric already."):
        assert message in page, message
    kept = policy_form(page)
    assert (kept["at_risk_percent"], kept["oncall_email"], kept["target_first_response_P2"],
            kept["cat_1_target"]) == ("150", "not an address", "soon", "10m")
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events
    db.session.expire_all()
    assert policies.get_policy(actor=None, project_id=project.id).at_risk_share == 0.75


def test_a_project_without_a_policy_gets_one_from_the_form(client, admin, project):
    calendar = policies.create_calendar(actor=None, name="Office")
    page = html(client.get(f"/admin/sla/policies/{project.id}"))
    assert "This project has no SLA policy" in page
    response = post_form(client, f"/admin/sla/policies/{project.id}", {
        "calendar_id": calendar.id, "at_risk_percent": "75", "p0_around_the_clock": "on",
        "target_first_response_P1": "1h 30m", "cat_0_metric": "", "cat_0_category": "",
        "cat_0_target": ""})
    assert response.status_code == 303, html(response)
    policy = policies.get_policy(actor=None, project_id=project.id)
    assert [(str(t.metric), str(t.priority), t.minutes) for t in policy.targets] == [
        ("first_response", "P1", 90)]


def test_a_policy_needs_a_calendar_that_exists(client, admin, project):
    response = post_form(client, f"/admin/sla/policies/{project.id}",
                         {"calendar_id": "424242", "at_risk_percent": "75"})
    assert response.status_code == 422
    assert "create a calendar" in html(response).lower()  # none exists: the page says so
