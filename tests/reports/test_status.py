"""The reporter's status: JSON at /api/v1/reports/<id>/status and the status page."""

from __future__ import annotations

from app.extensions import db
from tests.conftest import report_body


def test_the_reporter_sees_the_status_with_the_token(client, submit):
    receipt = submit().json
    response = client.get(f"/api/v1/reports/{receipt['id']}/status",
                          query_string={"token": receipt["status_token"]})
    assert response.status_code == 200
    body = response.json
    assert body["id"] == receipt["id"]
    assert body["status"] == "new"
    assert body["replies"] == []
    assert body["merged"] is False
    assert body["updated_at"].endswith("+00:00")
    # The reporter sees nothing staff-only.
    assert "priority" not in body and "description" not in body


def test_a_wrong_token_and_an_unknown_id_are_the_same_404(client, submit):
    receipt = submit().json
    wrong = client.get(f"/api/v1/reports/{receipt['id']}/status", query_string={"token": "x"})
    unknown = client.get("/api/v1/reports/rep_nosuchreport/status",
                         query_string={"token": receipt["status_token"]})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json == unknown.json
    assert wrong.json["error"]["code"] == "not_found"


def test_another_reports_token_does_not_open_this_one(client, submit):
    first = submit().json
    second = submit(report_body(description="Another one")).json
    response = client.get(f"/api/v1/reports/{first['id']}/status",
                          query_string={"token": second["status_token"]})
    assert response.status_code == 404


def test_a_missing_token_is_422(client, submit):
    receipt = submit().json
    response = client.get(f"/api/v1/reports/{receipt['id']}/status")
    assert response.status_code == 422
    assert "token" in response.json["error"]["fields"]


def test_the_status_page_shows_the_status_and_keeps_the_token_private(client, submit):
    receipt = submit().json
    response = client.get(receipt["status_page_url"])
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert receipt["id"] in page
    assert "New" in page
    assert "No reply yet" in page
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_status_page_with_a_wrong_token_is_404_html(client, submit):
    receipt = submit().json
    response = client.get(f"/status/{receipt['id']}", query_string={"token": "nope"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    response = client.get(f"/status/{receipt['id']}")
    assert response.status_code == 404


def test_status_follows_the_report(client, submit):
    from sqlalchemy import select

    from app.reports.models import Report, Status

    receipt = submit().json
    report = db.session.scalar(select(Report).where(Report.public_id == receipt["id"]))
    report.status = Status.RESOLVED
    db.session.commit()
    response = client.get(f"/api/v1/reports/{receipt['id']}/status",
                          query_string={"token": receipt["status_token"]})
    assert response.json["status"] == "resolved"
