"""POST /api/v1/reports: stored at once, never trusted, never duplicated."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.extensions import db
from app.projects.service import create_project
from app.reports import service
from app.reports.models import Report, Status
from tests.conftest import ORIGIN, TEST_PEPPER, report_body


def error_of(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]


def count_reports() -> int:
    return db.session.scalar(select(func.count()).select_from(Report))


def test_a_report_is_stored_and_acknowledged(submit, project):
    response = submit(report_body(end_user_id="user-42", contact_email="a@b.example",
                                  contact_consent=True, metadata={"plan": "pro", "seats": 3}))

    assert response.status_code == 201
    receipt = response.get_json()
    assert receipt["id"].startswith("rep_")
    assert receipt["status"] == "new"
    assert receipt["status_url"] == f"https://flagdesk.test/api/v1/reports/{receipt['id']}/status"
    assert receipt["status_page_url"].startswith(f"https://flagdesk.test/status/{receipt['id']}")
    assert receipt["status_token"]

    report = db.session.scalar(select(Report).where(Report.public_id == receipt["id"]))
    assert report.project_id == project.id
    assert report.reason == "inaccurate"
    assert report.conversation[1] == {"role": "assistant",
                                      "content": "The Eiffel Tower is in Rome, Italy."}
    assert (report.model_name, report.response_id, report.locale) == (
        "gpt-test-1", "resp_123", "en-GB")
    assert report.page_url == "https://chat.example.com/c/42"
    assert report.contact_email == "a@b.example" and report.contact_consent is True
    assert report.extra == {"plan": "pro", "seats": 3}
    assert report.received_at.tzinfo is not None
    assert report.status == Status.NEW
    assert report.status_token_hash != receipt["status_token"]
    # The answer's timestamp is the stored one, in UTC.
    assert receipt["received_at"].endswith("+00:00")

    received = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "report.received"))
    assert received.subject_id == receipt["id"] and received.actor_type == "reporter"


def test_the_user_agent_header_is_kept_when_the_body_has_none(submit):
    response = submit(headers={"User-Agent": "Mozilla/5.0 (Test)"})
    report = db.session.scalar(select(Report).where(Report.public_id == response.json["id"]))
    assert report.user_agent == "Mozilla/5.0 (Test)"


def test_answers_cross_origin_callers_it_allows(submit):
    response = submit()
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in response.headers["Vary"]


def test_server_to_server_calls_without_an_origin_are_accepted(client, project):
    response = client.post("/api/v1/reports", json=report_body(),
                           headers={"X-Project-Key": project.public_key})
    assert response.status_code == 201
    assert "Access-Control-Allow-Origin" not in response.headers


# --- who may send ------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "pk_unknown", "not-even-a-key"])
def test_an_unknown_or_missing_key_is_401(client, key):
    headers = {"X-Project-Key": key} if key else {}
    response = client.post("/api/v1/reports", json=report_body(), headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert count_reports() == 0


def test_a_disabled_project_key_is_401(submit, project):
    project.active = False
    db.session.commit()
    response = submit()
    assert response.status_code == 401
    assert count_reports() == 0


def test_another_origin_is_403_without_cors_headers(submit):
    response = submit(headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert count_reports() == 0


BAD_BODIES = [  # (content type, body): each refused for itself when the key is valid
    ("application/json", b"{not json"),
    ("text/plain", b"hello"),
    ("application/json", b'{"reason": "no-such-reason", "surprise": 1}'),
]


@pytest.mark.parametrize(("content_type", "body"), BAD_BODIES)
def test_without_a_valid_key_a_bad_body_is_401_too(client, content_type, body):
    """The key is checked before the body is read: a caller without one learns nothing
    about what a report must hold."""
    response = client.post("/api/v1/reports", data=body, content_type=content_type,
                           headers={"X-Project-Key": "pk_unknown"})
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert error_of(response)["fields"] == {}


@pytest.mark.parametrize(("content_type", "body"), BAD_BODIES)
def test_from_another_origin_a_bad_body_is_403_without_cors_headers(client, project,
                                                                    content_type, body):
    response = client.post("/api/v1/reports", data=body, content_type=content_type,
                           headers={"X-Project-Key": project.public_key,
                                    "Origin": "https://evil.example"})
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_an_origin_allowed_only_for_another_project_is_403(submit):
    create_project(name="Other", origins=["https://other.example"])
    response = submit(headers={"Origin": "https://other.example"})
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_from_an_allowed_origin(client, project):
    response = client.options("/api/v1/reports", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-project-key, idempotency-key"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"content-type", "x-project-key", "idempotency-key"} <= {
        h.strip() for h in allowed.split(",")}


@pytest.mark.parametrize("origin", ["https://evil.example", "null", None])
def test_preflight_from_another_origin_is_403_without_cors_headers(client, project, origin):
    headers = {"Access-Control-Request-Method": "POST"}
    if origin:
        headers["Origin"] = origin
    response = client.options("/api/v1/reports", headers=headers)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_disabled_projects_origin_fails_preflight(client, project):
    project.active = False
    db.session.commit()
    response = client.options("/api/v1/reports", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert response.status_code == 403


# --- bad input: a clear error, and nothing stored ----------------------------------


def test_malformed_json_is_400(client, project):
    response = client.post("/api/v1/reports", data='{"reason": "inaccurate",',
                           content_type="application/json",
                           headers={"X-Project-Key": project.public_key})
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_request"
    assert count_reports() == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
def test_a_body_that_is_not_json_is_415(client, project, content_type):
    kwargs = {"data": json.dumps(report_body())}
    if content_type:
        kwargs["content_type"] = content_type
    response = client.post("/api/v1/reports", headers={"X-Project-Key": project.public_key},
                           **kwargs)
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert count_reports() == 0


def test_a_body_over_64_kib_is_413(submit):
    body = report_body(description="x" * 70_000)
    response = submit(body)
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert count_reports() == 0


def test_a_chunked_body_over_64_kib_is_413(client, project):
    payload = json.dumps(report_body(description="x" * 70_000)).encode()
    # As a server hands a chunked body over: no length, the stream ends where it ends.
    response = client.post("/api/v1/reports", input_stream=io.BytesIO(payload),
                           environ_overrides={"wsgi.input_terminated": True},
                           content_type="application/json",
                           headers={"X-Project-Key": project.public_key})
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert count_reports() == 0


TOO_LONG = {
    "description": "x" * 5001,
    "model": "m" * 201,
    "response_id": "r" * 201,
    "locale": "en-" + "a" * 40,
    "user_agent": "u" * 513,
    "end_user_id": "e" * 257,
    "widget_version": "v" * 33,
}


@pytest.mark.parametrize(("field", "value"), [
    ("reason", "it was bad"),
    ("reason", None),
    ("description", 42),
    ("description", "null byte \x00 here"),
    ("conversation", "not a list"),
    ("conversation", [{"role": "narrator", "content": "hi"}]),
    ("conversation", [{"role": "user"}]),
    ("conversation", [{"role": "user", "content": ""}]),
    ("conversation", [{"role": "user", "content": "hi", "extra": 1}]),
    ("conversation", [{"role": "user", "content": "hi"}] * 21),
    ("conversation", [{"role": "user", "content": "y" * 8001}]),
    ("conversation", ["a turn is an object"]),
    ("conversation", [None]),
    ("conversation", [{"role": "user", "content": 42}]),
    ("conversation", [{"role": "user", "content": "   "}]),
    ("conversation", [{"role": "user", "content": "nul \x00 here"}]),
    ("page_url", "javascript:alert(1)"),
    ("page_url", "not a url"),
    ("locale", "en_GB; drop table"),
    ("contact_email", "not-an-email"),
    ("contact_consent", "maybe"),
    ("metadata", {"nested": {"object": True}}),
    ("metadata", {f"k{i}": i for i in range(21)}),
    ("metadata", {"long": "z" * 501}),
    ("metadata", ["a", "list"]),
    ("metadata", {"": "an empty key"}),
    ("metadata", {"k" * 65: "a long key"}),
    ("metadata", {"plan": "pro", " plan ": "team"}),  # the same key once trimmed
    ("metadata", {"note": "nul \x00 here"}),
    *TOO_LONG.items(),
])
def test_invalid_fields_are_422_naming_the_field(submit, field, value):
    response = submit(report_body(**{field: value}))
    assert response.status_code == 422, response.get_json()
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert field in error["fields"], error
    assert count_reports() == 0


def test_a_bad_turn_is_named_by_its_index_and_field(submit):
    turns = [{"role": "user", "content": "fine"},
             {"role": "narrator", "content": "", "mood": "grim"}]
    response = submit(report_body(conversation=turns))

    assert response.status_code == 422
    assert error_of(response)["fields"]["conversation"] == {"1": {
        "role": ["Must be one of: user, assistant, system, tool."],
        "content": ["Length must be between 1 and 8000."],
        "mood": ["Unknown field."]}}
    assert count_reports() == 0


def test_turns_and_context_keys_are_stored_trimmed(submit):
    response = submit(report_body(conversation=[{"role": " user ", "content": "  hi  "}],
                                  metadata={" plan ": "pro", "seats": 3}))

    report = db.session.scalar(select(Report).where(Report.public_id == response.json["id"]))
    assert report.conversation == [{"role": "user", "content": "hi"}]
    assert report.extra == {"plan": "pro", "seats": 3}


def test_reason_is_required(submit):
    body = report_body()
    del body["reason"]
    response = submit(body)
    assert response.status_code == 422
    assert error_of(response)["fields"]["reason"] == ["Missing data for required field."]


def test_unknown_fields_are_refused(submit):
    response = submit(report_body(is_admin=True))
    assert response.status_code == 422
    assert "is_admin" in error_of(response)["fields"]
    assert count_reports() == 0


def test_a_report_needs_words_or_a_conversation(submit):
    response = submit(report_body(description="   ", conversation=[]))
    assert response.status_code == 422
    assert "description" in error_of(response)["fields"]


def test_contact_email_needs_explicit_consent(submit):
    response = submit(report_body(contact_email="me@example.com"))
    assert response.status_code == 422
    assert "contact_consent" in error_of(response)["fields"]


def test_a_json_body_that_is_not_an_object_is_422(submit):
    response = submit(["not", "an", "object"])
    assert response.status_code == 422
    assert count_reports() == 0


def test_an_overlong_idempotency_key_is_422(submit):
    response = submit(headers={"Idempotency-Key": "k" * 256})
    assert response.status_code == 422
    assert "Idempotency-Key" in error_of(response)["fields"]


def test_wrong_method_is_405_in_the_error_shape(client):
    response = client.put("/api/v1/reports", json={})
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


# --- idempotency ---------------------------------------------------------------------


def test_a_retry_with_the_same_key_returns_the_first_report(submit):
    first = submit(headers={"Idempotency-Key": "retry-1"})
    second = submit(headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json["id"] == first.json["id"]
    assert second.json["status_token"] == first.json["status_token"]
    assert count_reports() == 1


def test_the_same_key_in_another_project_is_another_report(submit, project):
    other = create_project(name="Other", origins=[ORIGIN])
    submit(headers={"Idempotency-Key": "shared"})
    response = submit(key=other.public_key, headers={"Idempotency-Key": "shared"})
    assert response.status_code == 201
    assert count_reports() == 2


def test_the_same_key_with_another_body_is_409(submit):
    submit(headers={"Idempotency-Key": "k1"})
    response = submit(report_body(description="Something else"),
                      headers={"Idempotency-Key": "k1"})
    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert count_reports() == 1


def test_two_retries_racing_create_one_report(submit, monkeypatch):
    """No look-up precedes the insert, so there is no window for a racing retry: the
    unique key decides (INSERT … ON CONFLICT DO NOTHING), and only the request that
    inserted nothing reads the first report, to answer with it."""
    real_lookup = service._by_idempotency_key
    calls = []

    def recording_lookup(project_id, key):
        calls.append(key)
        return real_lookup(project_id, key)

    monkeypatch.setattr(service, "_by_idempotency_key", recording_lookup)
    first = submit(headers={"Idempotency-Key": "race"})
    assert first.status_code == 201
    assert calls == []
    second = submit(headers={"Idempotency-Key": "race"})
    assert second.status_code == 200
    assert second.json["id"] == first.json["id"]
    assert calls == ["race"]
    assert count_reports() == 1


# --- end-user identifiers ------------------------------------------------------------


def dump_database() -> str:
    """Every value of every row of every table, as text."""
    parts = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(table.select()):
            parts.append(repr(tuple(row)))
    return "\n".join(parts)


def test_the_raw_end_user_id_is_stored_nowhere_and_logged_nowhere(submit, caplog):
    raw = "end-user-7f3a9c-unique@example.org"
    caplog.set_level("DEBUG")
    response = submit(report_body(end_user_id=raw))
    assert response.status_code == 201

    report = db.session.scalar(select(Report).where(Report.public_id == response.json["id"]))
    assert report.end_user_hash == service.hash_end_user_id(raw, pepper=TEST_PEPPER)
    assert len(report.end_user_hash) == 64
    assert raw not in dump_database()
    assert raw not in caplog.text
    assert raw not in response.get_data(as_text=True)


def test_the_same_end_user_hashes_alike_and_another_pepper_differently():
    a = service.hash_end_user_id("u1", pepper="p1")
    assert a == service.hash_end_user_id("u1", pepper="p1")
    assert a != service.hash_end_user_id("u1", pepper="p2")
    assert a != service.hash_end_user_id("u2", pepper="p1")
