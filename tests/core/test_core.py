"""The shared kernel: the clock, UTC instants in the database, errors, security headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.audit.service import record
from app.core import clock
from app.extensions import db


def test_now_is_aware_utc():
    assert clock.now().tzinfo is UTC


def test_frozen_clock_moves_only_when_told():
    at = datetime(2026, 6, 1, 8, 30, tzinfo=UTC)
    with clock.frozen(at) as move_to:
        assert clock.now() == at
        move_to(at + timedelta(hours=2))
        assert clock.now() == at + timedelta(hours=2)
    assert clock.now() != at


def test_frozen_refuses_naive_time():
    with pytest.raises(ValueError), clock.frozen(datetime(2026, 1, 1)):
        pass


def test_instants_round_trip_as_utc_whatever_zone_they_came_in():
    tokyo = timezone(timedelta(hours=9))
    event = record(action="test", subject_type="t", subject_id=1)
    event.at = datetime(2026, 3, 29, 10, 0, tzinfo=tokyo)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "test"))
    assert stored.at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert stored.at.tzinfo == UTC


def test_naive_instants_are_refused():
    event = record(action="test", subject_type="t", subject_id=1)
    event.at = datetime(2026, 3, 29, 10, 0)
    with pytest.raises(Exception, match="naive datetime"):
        db.session.commit()
    db.session.rollback()


def test_audit_events_are_append_only():
    event = record(action="test", subject_type="t", subject_id=1, after={"a": 1})
    db.session.commit()
    event.action = "rewritten"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEvent, event.id))
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()


def test_unknown_api_paths_get_the_json_error_shape(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json == {"error": {"code": "not_found", "message": response.json["error"][
        "message"], "fields": {}}}


def test_pages_get_html_errors(client):
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_security_headers_on_every_response(client):
    for path in ("/", "/api/openapi.json", "/api/v1/reports"):
        headers = client.get(path).headers
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"


def test_an_unexpected_error_is_a_500_in_the_shape_without_details(client, token_for,
                                                                   monkeypatch):
    from app.reports import service

    def broken(**kwargs):
        raise KeyError("secret internals")

    monkeypatch.setattr(service, "get_report", broken)
    response = client.get("/api/v1/reports/rep_x", headers=token_for())
    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"
    assert "secret internals" not in response.get_data(as_text=True)
