"""GET /api/v1/reports and /api/v1/reports/<id>: staff read reports with a token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import flask
import pytest
from sqlalchemy import select

from app.auth.models import ApiToken, Role
from app.core.clock import frozen
from app.extensions import db
from app.projects.service import create_project
from app.reports.models import Report, Status
from tests.conftest import ORIGIN, ScriptedModerator, report_body
from tests.web import sign_in


def make_reports(submit, n: int, start: datetime | None = None, **body) -> list[str]:
    start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    ids = []
    for i in range(n):
        with frozen(start + timedelta(minutes=i)):
            ids.append(submit(report_body(description=f"report {i}", **body)).json["id"])
    return ids


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer fdk_wrong", "Basic abc",
                                    "fdk_without_scheme"])
def test_no_valid_token_is_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/reports", headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_is_401(client, token_for):
    headers = token_for(Role.RESPONDER)
    token = db.session.scalar(select(ApiToken))
    token.revoked_at = datetime.now(UTC)
    db.session.commit()
    assert client.get("/api/v1/reports", headers=headers).status_code == 401


def test_a_deactivated_users_token_is_401(client, token_for):
    headers = token_for(Role.ADMIN)
    token = db.session.scalar(select(ApiToken))
    token.user.active = False
    db.session.commit()
    assert client.get("/api/v1/reports", headers=headers).status_code == 401


def test_the_session_cookie_is_not_an_api_credential(client, token_for):
    # Only the Authorization header counts; a browser's cookie could be ridden by CSRF.
    client.set_cookie("session", "anything", domain="flagdesk.test")
    assert client.get("/api/v1/reports").status_code == 401


def test_a_signed_in_staff_browser_gets_no_api_access_and_no_cookie(client, make_user,
                                                                   submit):
    # The API opens no session (app.core.sessions): a real sign-in is no credential there,
    # and no API response sets or refreshes the session cookie.
    sign_in(client, make_user(Role.ADMIN))
    assert client.get("/board").status_code == 200  # the session works on the pages
    listed = client.get("/api/v1/reports")
    accepted = submit()
    assert listed.status_code == 401
    assert accepted.status_code == 201
    assert "Set-Cookie" not in listed.headers and "Set-Cookie" not in accepted.headers


def test_api_requests_do_not_open_the_session(app, client, make_user):
    sign_in(client, make_user(Role.ADMIN))
    cookie = f"session={client.get_cookie('session', domain='flagdesk.test').value}"
    for path, opened in (("/board", True), ("/api/v1/reports", False)):
        with app.test_request_context(path, headers={"Cookie": cookie}):
            assert ("_user_id" in flask.session) is opened, path


@pytest.mark.parametrize("role", list(Role))
def test_every_role_can_read(client, token_for, submit, role):
    submit()
    response = client.get("/api/v1/reports", headers=token_for(role))
    assert response.status_code == 200
    assert len(response.json["items"]) == 1


def test_newest_first_with_keyset_pages(client, token_for, submit):
    ids = make_reports(submit, 5)
    headers = token_for()
    seen, cursor = [], None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/reports", query_string=query, headers=headers).json
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_a_page_is_stable_when_new_reports_arrive(client, token_for, submit):
    ids = make_reports(submit, 3)
    headers = token_for()
    first = client.get("/api/v1/reports", query_string={"limit": 2}, headers=headers).json
    make_reports(submit, 2, start=datetime(2026, 2, 1, tzinfo=UTC))
    second = client.get("/api/v1/reports", query_string={"limit": 2, "cursor":
                                                         first["next_cursor"]}, headers=headers)
    assert [i["id"] for i in second.json["items"]] == [ids[0]]


def test_filters(client, token_for, submit, project, use_moderator):
    use_moderator(ScriptedModerator({"HATE": {"hate": 0.97}}))
    other = create_project(name="Other", origins=[ORIGIN])
    hateful = submit(report_body(description="HATE here")).json["id"]
    plain = submit(report_body(description="plain")).json["id"]
    elsewhere = submit(report_body(description="plain too"), key=other.public_key).json["id"]
    report = db.session.scalar(select(Report).where(Report.public_id == plain))
    report.status = Status.RESOLVED
    db.session.commit()

    headers = token_for()

    def ids(**query) -> set[str]:
        response = client.get("/api/v1/reports", query_string=query, headers=headers)
        assert response.status_code == 200, response.json
        return {item["id"] for item in response.json["items"]}

    assert ids(project_id=other.id) == {elsewhere}
    assert ids(status="resolved") == {plain}
    assert ids(category="hate") == {hateful}
    assert ids(flagged="true") == {hateful}
    assert ids(flagged="false") == {plain, elsewhere}
    assert ids(priority="P3") == {hateful, plain, elsewhere}  # hate flagged, or "inaccurate"
    assert ids(project_id=project.id, status="new") == {hateful}


@pytest.mark.parametrize("query", [
    {"status": "open-ish"}, {"priority": "P9"}, {"flagged": "sometimes"},
    {"limit": 0}, {"limit": 201}, {"limit": "many"}, {"project_id": "x"},
    {"cursor": "!!!not-a-cursor"}, {"category": "not-a-category"}, {"unknown": "1"},
])
def test_bad_filters_are_422(client, token_for, query):
    response = client.get("/api/v1/reports", query_string=query, headers=token_for())
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "validation_failed"
    assert response.json["error"]["fields"]


def test_one_report_with_its_tags(client, token_for, submit, use_moderator):
    use_moderator(ScriptedModerator({"Rome": {"violence": 0.8}}))
    receipt = submit(report_body(end_user_id="u-1")).json
    response = client.get(f"/api/v1/reports/{receipt['id']}", headers=token_for())
    assert response.status_code == 200
    body = response.json
    assert body["id"] == receipt["id"]
    assert body["tagging_state"] == "tagged"
    assert body["priority"] == "P3"
    assert body["conversation"][0]["role"] == "user"
    assert "status_token_hash" not in body and "idempotency_key" not in body
    assert len(body["end_user_hash"]) == 64
    violence = [t for t in body["tags"] if t["category"] == "violence"]
    assert {t["field"] for t in violence} == {"description", "conversation"}
    by_field = {t["field"]: t for t in violence}
    assert by_field["conversation"]["flagged"] is True  # "Rome" is in the excerpt
    assert by_field["conversation"]["score"] == pytest.approx(0.8)
    assert by_field["conversation"]["source"] == "scripted"
    assert by_field["conversation"]["model"] == "scripted-1"


@pytest.mark.parametrize("public_id", ["rep_nothing", "rep_%00nul"])
def test_an_unknown_report_is_404(client, token_for, public_id):
    # A NUL is no id (PostgreSQL would refuse to compare it): 404 too, not a 500.
    response = client.get(f"/api/v1/reports/{public_id}", headers=token_for())
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
