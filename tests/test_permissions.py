"""Walk every route as anonymous, viewer, responder, lead and admin, and check the status.

Pages use the session (signed in through the real login form, CSRF tokens and all);
the staff API uses bearer tokens. A route without an expectation here fails the test,
so a new route cannot be added without deciding who may use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.auth.models import Role
from app.auth.service import create_token, create_user
from app.incidents import service as incidents
from app.notify.service import create_webhook
from app.projects.service import create_project
from app.sla.policies import create_calendar
from tests.conftest import ORIGIN, report_body

PASSWORD = "correct horse battery staple"
ANON = "anonymous"
WHO = [ANON, *(str(r) for r in Role)]

OK = "ok"  # 2xx or a redirect that is not to the login page
LOGIN = "login"  # redirected to /login


def _expect(anonymous: Any, viewer: Any, responder: Any, lead: Any, admin: Any) -> dict:
    return dict(zip(WHO, (anonymous, viewer, responder, lead, admin), strict=True))


PUBLIC = _expect(OK, OK, OK, OK, OK)
READ = _expect(LOGIN, OK, OK, OK, OK)
TRIAGE = _expect(LOGIN, 403, OK, OK, OK)
ADMIN = _expect(LOGIN, 403, 403, 403, OK)
LEADS = _expect(LOGIN, 403, 403, OK, OK)
INCIDENT_READ = _expect(LOGIN, 403, OK, OK, OK)  # "incidents:read" / "incidents:note"
TOKEN_READ = _expect(401, OK, OK, OK, OK)  # the API by bearer token, one per role


@dataclass
class World:
    report: str
    other_report: str
    status_token: str
    project_id: int
    user_id: int
    project_key: str
    webhook_id: int = 0
    calendar_id: int = 0
    # Incidents: one running (a draft retrospective, a timeline entry, an action item, the
    # other report linked), one whose retrospective is in review (signed off), one published.
    incident: str = ""
    in_review: str = ""
    published: str = ""
    entry_id: int = 0
    item_id: int = 0


@dataclass(frozen=True)
class Route:
    method: str
    path: Callable[[World], str]
    expected: dict
    form: Callable[[World], dict] | None = None
    api: bool = False  # authenticated by bearer token instead of the session


ROUTES: dict[str, Route] = {
    "home.index": Route("GET", lambda w: "/", PUBLIC),
    "auth.login:GET": Route("GET", lambda w: "/login", PUBLIC),
    # Signing out sends everyone to the login page; anonymous callers are sent there too.
    "auth.logout": Route("POST", lambda w: "/logout", _expect(LOGIN, LOGIN, LOGIN, LOGIN,
                                                               LOGIN)),
    "status_pages.status_page": Route(
        "GET", lambda w: f"/status/{w.report}?token={w.status_token}", PUBLIC),
    "api-docs.openapi_json": Route("GET", lambda w: "/api/openapi.json", PUBLIC),
    "widget.script": Route("GET", lambda w: "/widget.js", PUBLIC),
    "widget.demo": Route("GET", lambda w: "/demo", PUBLIC),
    "reports.ReportStatus": Route(
        "GET", lambda w: f"/api/v1/reports/{w.report}/status?token={w.status_token}", PUBLIC),
    "reports.Reports:GET": Route("GET", lambda w: "/api/v1/reports", TOKEN_READ, api=True),
    "reports.ReportDetail": Route("GET", lambda w: f"/api/v1/reports/{w.report}", TOKEN_READ,
                                  api=True),
    "triage.board_page": Route("GET", lambda w: "/board", READ),
    "triage.arrivals": Route("GET", lambda w: "/board/arrivals?after=0", READ),
    "triage.board_action": Route(
        "POST", lambda w: "/board/actions", TRIAGE,
        lambda w: {"ids": [w.report], "action": "move", "value": "triaged"}),
    "triage.save_view": Route("POST", lambda w: "/board/views", READ,
                              lambda w: {"name": "Mine", "query": "assignee=me"}),
    "triage.reveal_setting": Route("POST", lambda w: "/settings/reveal-sensitive", READ,
                                   lambda w: {"reveal": "on"}),
    "tickets.ticket_page": Route("GET", lambda w: f"/tickets/{w.report}", READ),
    "tickets.ticket_action": Route("POST", lambda w: f"/tickets/{w.report}/actions", TRIAGE,
                                   lambda w: {"action": "priority", "value": "P1"}),
    "tickets.add_note": Route("POST", lambda w: f"/tickets/{w.report}/notes", TRIAGE,
                              lambda w: {"body": "Checked the logs."}),
    "tickets.reply": Route("POST", lambda w: f"/tickets/{w.report}/replies", TRIAGE,
                           lambda w: {"body": "Thanks, we are on it."}),
    "tickets.merge": Route("POST", lambda w: f"/tickets/{w.other_report}/merge", TRIAGE,
                           lambda w: {"into": w.report}),
    "admin.users_page": Route("GET", lambda w: "/admin/users", ADMIN),
    "admin.create_user": Route("POST", lambda w: "/admin/users", ADMIN,
                               lambda w: {"email": "new@example.com", "name": "New",
                                          "role": "viewer"}),
    "admin.change_role": Route("POST", lambda w: f"/admin/users/{w.user_id}/role", ADMIN,
                               lambda w: {"role": "lead"}),
    "admin.set_user_active": Route("POST", lambda w: f"/admin/users/{w.user_id}/active",
                                   ADMIN, lambda w: {"active": ""}),
    "admin.reset_password": Route("POST", lambda w: f"/admin/users/{w.user_id}/password",
                                  ADMIN, lambda w: {}),
    "admin.projects_page": Route("GET", lambda w: "/admin/projects", ADMIN),
    "admin.create_project": Route("POST", lambda w: "/admin/projects", ADMIN,
                                  lambda w: {"name": "New", "origins": "https://n.example"}),
    "admin.project_page": Route("GET", lambda w: f"/admin/projects/{w.project_id}", ADMIN),
    "admin.update_project": Route("POST", lambda w: f"/admin/projects/{w.project_id}", ADMIN,
                                  lambda w: {"name": "Renamed", "origins": ORIGIN}),
    "admin.set_project_active": Route(
        "POST", lambda w: f"/admin/projects/{w.project_id}/active", ADMIN,
        lambda w: {"active": ""}),
    "admin.rotate_key": Route("POST", lambda w: f"/admin/projects/{w.project_id}/rotate-key",
                              ADMIN, lambda w: {"confirm": "yes"}),
    "notify.webhooks_page": Route("GET", lambda w: "/admin/webhooks", ADMIN),
    "notify.create_webhook": Route(
        "POST", lambda w: "/admin/webhooks", ADMIN,
        lambda w: {"project_id": w.project_id, "url": "https://new.example/hook",
                   "kind": "escalation"}),
    "notify.rotate_secret": Route("POST", lambda w: f"/admin/webhooks/{w.webhook_id}/rotate",
                                  ADMIN, lambda w: {"confirm": "yes"}),
    "notify.delete_webhook": Route("POST", lambda w: f"/admin/webhooks/{w.webhook_id}/delete",
                                   ADMIN, lambda w: {"confirm": "yes"}),
    "notify.deliveries_page": Route("GET", lambda w: "/admin/deliveries", ADMIN),
    "sla_admin.index": Route("GET", lambda w: "/admin/sla", ADMIN),
    "sla_admin.new_calendar": Route("GET", lambda w: "/admin/sla/calendars/new", ADMIN),
    "sla_admin.create_calendar": Route(
        "POST", lambda w: "/admin/sla/calendars", ADMIN,
        lambda w: {"name": "Berlin office", "timezone": "Europe/Berlin",
                   "hours_mon": "09:00-17:00", "holiday_country": "DE"}),
    "sla_admin.calendar_page": Route("GET", lambda w: f"/admin/sla/calendars/{w.calendar_id}",
                                     ADMIN),
    "sla_admin.update_calendar": Route(
        "POST", lambda w: f"/admin/sla/calendars/{w.calendar_id}", ADMIN,
        lambda w: {"name": "Night shift", "timezone": "UTC", "hours_mon": "22:00-06:00"}),
    "sla_admin.policy_page": Route("GET", lambda w: f"/admin/sla/policies/{w.project_id}",
                                   ADMIN),
    "sla_admin.save_policy": Route(
        "POST", lambda w: f"/admin/sla/policies/{w.project_id}", ADMIN,
        lambda w: {"calendar_id": w.calendar_id, "at_risk_percent": "75",
                   "target_first_response_P1": "1h"}),
    "sla_admin.apply_defaults": Route(
        "POST", lambda w: f"/admin/sla/policies/{w.project_id}/defaults", ADMIN),
    "stats.stats_page": Route("GET", lambda w: "/stats", LEADS),
    "stats.stats_csv": Route("GET", lambda w: "/stats/sla.csv", LEADS),
    # Incidents: viewers read published retrospectives; responders read incidents and add
    # notes to their timelines (INCIDENT_READ); leads and admins run and export them.
    "incidents.list_page": Route("GET", lambda w: "/incidents", READ),
    "incidents.new_page": Route("GET", lambda w: f"/incidents/new?report={w.report}", LEADS),
    "incidents.create": Route("POST", lambda w: "/incidents", LEADS,
                              lambda w: {"title": "Walked", "severity": "SEV3",
                                         "report_ids": [w.report]}),
    "incidents.incident_page": Route("GET", lambda w: f"/incidents/{w.incident}",
                                     INCIDENT_READ),
    "incidents.edit_page": Route("GET", lambda w: f"/incidents/{w.incident}/edit", LEADS),
    "incidents.update": Route("POST", lambda w: f"/incidents/{w.incident}/edit", LEADS,
                              lambda w: {"title": "Renamed", "severity": "SEV2"}),
    "incidents.set_status": Route("POST", lambda w: f"/incidents/{w.incident}/status", LEADS,
                                  lambda w: {"status": "identified"}),
    "incidents.link": Route("POST", lambda w: f"/incidents/{w.incident}/reports", LEADS,
                            lambda w: {"report_ids": w.report}),
    "incidents.unlink": Route(
        "POST", lambda w: f"/incidents/{w.incident}/reports/{w.other_report}/unlink", LEADS),
    "incidents.reports_page": Route("GET", lambda w: f"/incidents/{w.incident}/reports",
                                    INCIDENT_READ),
    "incidents.facts_panel": Route("GET", lambda w: f"/incidents/{w.incident}/facts",
                                   INCIDENT_READ),
    "incidents.timeline_page": Route("GET", lambda w: f"/incidents/{w.incident}/timeline",
                                     INCIDENT_READ),
    "incidents.add_entry": Route("POST", lambda w: f"/incidents/{w.incident}/timeline",
                                 INCIDENT_READ, lambda w: {"body": "Walked past."}),
    "incidents.set_visibility": Route(
        "POST", lambda w: f"/incidents/{w.incident}/timeline/visibility", LEADS,
        lambda w: {"source": "entry", "source_id": w.entry_id, "hidden": "true"}),
    "incidents.retrospective_page": Route(
        "GET", lambda w: f"/incidents/{w.published}/retrospective", READ),
    "incidents.save_retrospective": Route(
        "POST", lambda w: f"/incidents/{w.incident}/retrospective", LEADS,
        lambda w: {"summary": "Walked through."}),
    "incidents.submit_review": Route(
        "POST", lambda w: f"/incidents/{w.incident}/retrospective/submit", LEADS),
    "incidents.sign_off": Route(
        "POST", lambda w: f"/incidents/{w.in_review}/retrospective/sign-off", LEADS),
    "incidents.publish": Route(
        "POST", lambda w: f"/incidents/{w.in_review}/retrospective/publish", LEADS),
    "incidents.reopen": Route(
        "POST", lambda w: f"/incidents/{w.published}/retrospective/reopen", LEADS),
    # Model drafts are off unless configured: leads get the page again, saying so (409).
    "incidents.request_draft": Route(
        "POST", lambda w: f"/incidents/{w.incident}/retrospective/draft",
        _expect(LOGIN, 403, 403, 409, 409)),
    "incidents.add_action_item": Route("POST", lambda w: f"/incidents/{w.incident}/actions",
                                       LEADS, lambda w: {"title": "Walk the dog"}),
    "incidents.update_action_item": Route(
        "POST", lambda w: f"/incidents/{w.incident}/actions/{w.item_id}", LEADS,
        lambda w: {"title": "Walk the dog", "status": "done"}),
    "incidents.delete_action_item": Route(
        "POST", lambda w: f"/incidents/{w.incident}/actions/{w.item_id}/delete", LEADS),
    "incidents.export_file": Route("GET", lambda w: f"/incidents/{w.published}/export/md",
                                   LEADS),
    "incidents.export_zip": Route(
        "GET", lambda w: "/incidents/retrospectives.zip?from=2000-01-01&to=2099-12-31", LEADS),
    "incidents.similar_panel": Route("GET", lambda w: f"/tickets/{w.report}/similar",
                                     INCIDENT_READ),
    "incidents.stats_csv": Route("GET", lambda w: "/stats/incidents.csv", LEADS),
}
# Checked elsewhere with their own inputs: intake (tests/reports/test_intake.py), the
# login form's POST (tests/auth/test_login.py) and the reporter's answers (JSON with the
# status token: tests/sla/test_reporter_messages.py). All are open to anyone by design.
ELSEWHERE = {"reports.Reports:POST", "auth.login:POST", "reports.ReporterMessages", "static"}


def _keys(app: Flask) -> set[str]:
    keys = set()
    for rule in app.url_map.iter_rules():
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            keys.add(rule.endpoint if len(methods) == 1 else f"{rule.endpoint}:{method}")
    return keys


def test_every_route_has_an_expectation(app):
    assert _keys(app) - ELSEWHERE == set(ROUTES)


def _csrf(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def world(project, submit) -> World:
    first, second = submit().json, submit(report_body(description="Same again")).json
    user, _ = create_user(email="target@example.com", name="Target", role=Role.RESPONDER,
                          password=PASSWORD)
    other = create_project(name="Other", origins=["https://other.example"])
    webhook, _ = create_webhook(actor=None, project_id=other.id,
                                url="https://hooks.other.example/", kind="escalation")
    calendar = create_calendar(actor=None, name="Walk calendar")
    lead, _ = create_user(email="lead@world.example", name="World lead", role=Role.LEAD,
                          password=PASSWORD)
    running = incidents.open_incident(actor=lead, title="Running", severity="SEV2",
                                      report_ids=[second["id"]])
    incidents.save_sections(actor=lead, incident_id=running.public_id,
                            sections={"summary": "Written."})
    entry = incidents.add_timeline_entry(actor=lead, incident_id=running.public_id,
                                         body="Looked.")
    item = incidents.add_action_item(actor=lead, incident_id=running.public_id, title="Fix")
    in_review = incidents.open_incident(actor=lead, title="In review", severity="SEV3")
    incidents.save_sections(actor=lead, incident_id=in_review.public_id,
                            sections={"summary": "Reviewed."})
    incidents.submit_for_review(actor=lead, incident_id=in_review.public_id)
    incidents.sign_off(actor=lead, incident_id=in_review.public_id)
    published = incidents.open_incident(actor=lead, title="Published", severity="SEV4")
    incidents.save_sections(actor=lead, incident_id=published.public_id,
                            sections={"summary": "Done."})
    incidents.submit_for_review(actor=lead, incident_id=published.public_id)
    incidents.sign_off(actor=lead, incident_id=published.public_id)
    incidents.publish(actor=lead, incident_id=published.public_id)
    return World(report=first["id"], other_report=second["id"],
                 status_token=first["status_token"], project_id=other.id, user_id=user.id,
                 project_key=project.public_key, webhook_id=webhook.id,
                 calendar_id=calendar.id, incident=running.public_id,
                 in_review=in_review.public_id, published=published.public_id,
                 entry_id=entry.id, item_id=item.id)


def _client_for(app: Flask, who: str) -> FlaskClient:
    client = app.test_client()
    if who == ANON:
        return client
    create_user(email=f"{who}@walk.example", name=who, role=Role(who), password=PASSWORD)
    response = client.post("/login", data={"email": f"{who}@walk.example",
                                           "password": PASSWORD, "csrf_token": _csrf(client)},
                           headers={"Referer": "https://flagdesk.test/login"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def _outcome(response: Any) -> Any:
    if response.status_code in (301, 302, 303):
        return LOGIN if "/login" in response.headers["Location"] else OK
    if 200 <= response.status_code < 300:
        return OK
    return response.status_code


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("name", sorted(ROUTES))
def test_route_permissions(app, world, name, who):
    route = ROUTES[name]
    client = _client_for(app, who)
    headers = {}
    if route.api and who != ANON:
        user, _ = create_user(email=f"{who}-api@walk.example", name=who, role=Role(who),
                              password=PASSWORD)
        _, raw = create_token(user=user, name="walk")
        headers["Authorization"] = f"Bearer {raw}"
    if route.method == "GET":
        response = client.get(route.path(world), headers=headers)
    else:
        form = route.form(world) if route.form else {}
        form["csrf_token"] = _csrf(client, "/login" if who == ANON else "/board")
        # Over HTTPS, Flask-WTF also wants a same-origin Referer, as browsers send.
        headers["Referer"] = "https://flagdesk.test/"
        response = client.post(route.path(world), data=form, headers=headers)
    assert _outcome(response) == route.expected[who], response.get_data(as_text=True)[:500]
