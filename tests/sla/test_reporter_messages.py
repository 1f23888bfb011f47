"""POST /api/v1/reports/<id>/messages: the reporter answers with their status token."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.auth.models import Role
from app.extensions import db
from app.reports.models import CommentKind, Report, ReportComment, Status
from app.triage import service as triage
from tests.conftest import ScriptedModerator, report_body
from tests.web import sign_in


@pytest.fixture
def received(submit, use_moderator):
    use_moderator(ScriptedModerator())
    return submit().json


def post(client, public_id, body, **kwargs):
    return client.post(f"/api/v1/reports/{public_id}/messages", json=body, **kwargs)


def test_an_answer_is_stored_on_the_ticket_without_moving_an_open_one(client, received):
    response = post(client, received["id"], {"token": received["status_token"],
                                             "body": "It happened again today."})
    assert response.status_code == 201
    assert response.json["id"] == received["id"] and response.json["status"] == "new"
    report = db.session.scalar(select(Report).where(Report.public_id == received["id"]))
    comments = list(db.session.scalars(select(ReportComment).where(
        ReportComment.report_id == report.id)))
    assert [(c.kind, c.body) for c in comments] == [(CommentKind.REPORTER,
                                                     "It happened again today.")]


def test_a_waiting_ticket_moves_to_in_progress(client, received, make_user):
    responder = make_user(Role.RESPONDER)
    triage.move(actor=responder, ids=[received["id"]], status=Status.WAITING_ON_REPORTER)
    response = post(client, received["id"], {"token": received["status_token"],
                                             "body": "Screenshot attached below."})
    assert response.status_code == 201 and response.json["status"] == "in_progress"


def test_an_answer_to_a_merged_report_reaches_the_surviving_ticket(client, submit, received,
                                                                   make_user):
    survivor = submit(report_body(description="The same problem")).json
    responder = make_user(Role.RESPONDER)
    triage.merge(actor=responder, duplicate_id=received["id"], into_id=survivor["id"])
    triage.move(actor=responder, ids=[survivor["id"]], status=Status.WAITING_ON_REPORTER)
    response = post(client, received["id"], {"token": received["status_token"],
                                             "body": "More detail."})
    assert response.status_code == 201
    assert response.json["merged"] is True and response.json["status"] == "in_progress"
    kept = db.session.scalar(select(Report).where(Report.public_id == survivor["id"]))
    assert db.session.scalar(select(ReportComment.body).where(
        ReportComment.report_id == kept.id, ReportComment.kind == "reporter")) == "More detail."


def test_a_wrong_token_and_an_unknown_report_look_the_same(client, received):
    wrong = post(client, received["id"], {"token": "not-the-token", "body": "Hi"})
    unknown = post(client, "rep_doesnotexist", {"token": received["status_token"], "body": "Hi"})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json == unknown.json
    assert db.session.scalar(select(ReportComment)) is None


@pytest.mark.parametrize("body, field", [
    ({"token": "x"}, "body"),
    ({"body": "Hi"}, "token"),
    ({"token": "x", "body": "   "}, "body"),
    ({"token": "x", "body": "a" * 5001}, "body"),
    ({"token": "x", "body": "Hi", "extra": 1}, "extra"),
])
def test_answers_are_validated(client, received, body, field):
    response = post(client, received["id"], body)
    assert response.status_code == 422
    assert field in str(response.json["error"]["fields"])


def test_only_json_is_accepted(client, received):
    response = client.post(f"/api/v1/reports/{received['id']}/messages",
                           data={"token": received["status_token"], "body": "Hi"})
    assert response.status_code == 415


def test_answers_are_rate_limited_per_address(app, client, received):
    app.config["REPORTER_MESSAGE_LIMIT_PER_ADDRESS"] = "2/minute"
    try:
        codes = [post(client, received["id"], {"token": "wrong", "body": "Hi"}).status_code
                 for _ in range(3)]
    finally:
        del app.config["REPORTER_MESSAGE_LIMIT_PER_ADDRESS"]
    assert codes == [404, 404, 429]


def test_staff_read_the_answer_on_the_ticket_between_the_replies(client, received, make_user):
    responder = make_user(Role.RESPONDER, name="Rita Responder")
    triage.reply(actor=responder, public_id=received["id"], body="Which model was it?")
    hostile = '<img src=x onerror="alert(1)"> It was the <b>fast</b> one.'
    assert post(client, received["id"], {"token": received["status_token"],
                                         "body": hostile}).status_code == 201
    triage.reply(actor=responder, public_id=received["id"], body="Thanks, we are on it.")

    sign_in(client, responder)
    html = client.get(f"/tickets/{received['id']}").get_data(as_text=True)
    thread = html.split('id="replies-title"')[1].split("</section>")[0]

    assert thread.index("Which model was it?") < thread.index("The reporter</strong> answered") \
        < thread.index("Thanks, we are on it.")
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; It was the &lt;b&gt;fast&lt;/b&gt;" \
        in thread
    assert "<img src=x" not in html
