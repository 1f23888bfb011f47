"""The ticket page (/tickets/<id>): what it shows, what responders do on it, and how it
refuses what it must (viewers, bad input, forged requests)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from flask import current_app
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.extensions import db
from app.reports.models import CommentKind, Report, ReportComment, Status
from app.reports.service import submit_report
from app.triage import service
from tests.conftest import TEST_PEPPER, TEST_SECRET, ScriptedModerator, report_body
from tests.web import post_form, sign_in

XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'


@pytest.fixture(autouse=True)
def _scripted(use_moderator):
    """Tags a test can name: "NSFW" flags sexual, "HURT" self-harm, "HATE" hate."""
    return use_moderator(ScriptedModerator({
        "NSFW": {"sexual": 0.93}, "HURT": {"self-harm": 0.88}, "HATE": {"hate": 0.91}}))


@pytest.fixture
def responder(client, make_user):
    user = make_user(Role.RESPONDER, name="Rita Responder")
    sign_in(client, user)
    return user


def received(submit, headers=None, **overrides) -> Report:
    receipt = submit(report_body(**overrides), headers=headers).json
    return db.session.scalar(select(Report).where(Report.public_id == receipt["id"]))


def stored(project, **overrides) -> Report:
    """A report stored without the intake schema (to try what a hostile client might get
    past it, or fields the schema would refuse)."""
    data = {"reason": "inaccurate", "description": "", "conversation": [], "model": None,
            "response_id": None, "page_url": None, "locale": None, "user_agent": None,
            "widget_version": None, "metadata": {}, "contact_email": None,
            "contact_consent": False}
    data.update(overrides)
    receipt = submit_report(project=project, data=data, idempotency_key=None,
                            pepper=TEST_PEPPER, secret=TEST_SECRET)
    return db.session.get(Report, receipt.report_id)


def page_of(client, report: Report) -> str:
    response = client.get(f"/tickets/{report.public_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def refreshed(report: Report) -> Report:
    db.session.expire_all()
    return db.session.get(Report, report.id)


# --- what the page shows -------------------------------------------------------------


def test_the_page_shows_everything_the_reporter_sent(client, responder, submit):
    report = received(submit, reason="unsafe_advice", description="It told me to\n  mix bleach.",
                      model="gpt-test-9", response_id="resp_abc", locale="pt-BR",
                      widget_version="1.4.2", end_user_id="user-42",
                      contact_email="ana@example.org", contact_consent=True,
                      metadata={"plan": "pro", "app_version": "7.1"},
                      headers={"User-Agent": "TestBrowser/1.0"})
    html = page_of(client, report)
    assert "Unsafe advice" in html
    assert "It told me to\n  mix bleach." in html  # white space kept (pre-wrap)
    for shown in ("gpt-test-9", "resp_abc", "pt-BR", "1.4.2", "ana@example.org", "plan", "pro",
                  "app_version", "7.1", "Chat"):
        assert shown in html
    # The end user's hash is shortened, never shown whole.
    assert report.end_user_hash[:12] + "…" in html and report.end_user_hash not in html
    # An http(s) page URL is a link that passes nothing on to the page it opens.
    assert re.search(r'<a href="https://chat.example.com/c/42" rel="noopener noreferrer '
                     r'nofollow"', html)


def test_the_user_agent_from_the_request_is_shown(client, responder, submit):
    report = received(submit, headers={"User-Agent": "Mozilla/5.0 TestAgent"})
    assert "Mozilla/5.0 TestAgent" in page_of(client, report)


def test_a_contact_email_without_consent_is_not_shown(client, responder, project):
    report = stored(project, contact_email="secret@example.org", contact_consent=False)
    html = page_of(client, report)
    assert "secret@example.org" not in html
    assert "Not shared" in html


def test_a_javascript_page_url_is_text_not_a_link(client, responder, project):
    report = stored(project, page_url="javascript:window.__pwned=1")
    html = page_of(client, report)
    assert "javascript:window.__pwned=1" in html
    assert 'href="javascript' not in html.lower()


def test_the_conversation_is_shown_as_escaped_bubbles_per_role(client, responder, submit):
    report = received(submit, conversation=[
        {"role": "user", "content": f"Hi {XSS}"},
        {"role": "assistant", "content": "Line one\n    indented"},
        {"role": "system", "content": "You are helpful."}])
    html = page_of(client, report)
    assert html.count('class="turn turn-user"') == 1
    assert html.count('class="turn turn-assistant"') == 1
    assert html.count('class="turn turn-system"') == 1
    assert "Line one\n    indented" in html
    assert "<script>window.__pwned" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html


def test_every_untrusted_field_is_escaped(client, responder, project, make_user):
    payload = '"><svg onload=window.__pwned=1>'
    report = stored(project, description=XSS, model=payload, response_id=payload,
                    page_url=payload, locale=payload, user_agent=payload, widget_version="1",
                    metadata={payload: payload, "n": XSS},
                    conversation=[{"role": payload, "content": XSS}])
    service.add_note(actor=responder, public_id=report.public_id, body=XSS)
    html = page_of(client, report)
    for raw in ("<script>window", "<img src=x", "<svg onload"):
        assert raw not in html
    assert "&#34;&gt;&lt;svg onload=window.__pwned=1&gt;" in html


def test_moderation_scores_are_a_table_with_field_backend_and_model(client, responder, submit):
    report = received(submit, description="This is HATE speech.")
    html = page_of(client, report)
    table = html[html.index('<table class="scores"'):html.index("</table>")]
    assert "<th scope=\"col\">Backend</th>" in table and "<th scope=\"col\">Model</th>" in table
    assert table.count('class="is-flagged"') == 1
    assert "scripted" in table and "scripted-1" in table and "0.910" in table
    # Flagged first, then the highest score first; each row names its field.
    rows = re.findall(r"<td>(description|conversation)</td><td>([^<]+)</td>\s*"
                      r'<td class="num">([0-9.]+)</td>', table)
    assert rows[0] == ("description", "hate", "0.910")
    assert {r[0] for r in rows} == {"description", "conversation"}
    scores = [float(r[2]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert "flagged: <strong>hate</strong>" in html


def test_an_untagged_report_says_so(client, responder, project):
    report = stored(project, description="Not classified yet")
    html = page_of(client, report)
    assert "Untagged" in html and "has not classified this report yet" in html
    assert '<table class="scores"' not in html


def test_the_history_is_in_words_in_the_readers_timezone(client, make_user, submit):
    reader = make_user(Role.LEAD, name="Lea Lead")
    reader.timezone = "Asia/Tokyo"
    db.session.commit()
    sign_in(client, reader)
    report = received(submit)
    service.set_priority(actor=reader, ids=[report.public_id], priority="P1")
    service.assign(actor=reader, ids=[report.public_id], assignee_id=reader.id)
    html = page_of(client, report)
    history = html[html.index('<ol class="history">'):]
    assert "Report received" in history and "Tagged by moderation" in history
    assert re.search(r'Lea Lead</span> · Priority changed:\s*<span class="change">'
                     r'<span class="before">P\d</span>.*?<span class="after">P1</span>',
                     history, re.S)
    assert re.search(r'Assignee changed:\s*<span class="change"><span class="before">nobody'
                     r'</span>.*?<span class="after">Lea Lead</span>', history, re.S)
    first = db.session.scalar(select(AuditEvent).where(AuditEvent.subject_id == report.public_id)
                              .order_by(AuditEvent.id))
    assert first.at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M JST") in history


def test_strangers_are_sent_to_sign_in(client, submit):
    report = received(submit)
    response = client.get(f"/tickets/{report.public_id}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next=%2Ftickets%2F{report.public_id}"


def test_an_unknown_ticket_is_404(client, make_user):
    sign_in(client, make_user(Role.VIEWER))
    assert client.get("/tickets/rep_doesnotexist").status_code == 404


# --- blurred content -----------------------------------------------------------------


def test_sexual_and_self_harm_content_is_blurred_by_default(client, responder, submit):
    report = received(submit, description="NSFW words", conversation=[
        {"role": "user", "content": "I want to HURT myself"}])
    html = page_of(client, report)
    assert html.count('<div class="sensitive" data-revealed="false">') == 2
    assert html.count('aria-hidden="true">') >= 2
    assert "Show description (flagged: sexual, self-harm)" in html
    assert "press <kbd>r</kbd>" in html.lower()
    assert 'action="/settings/reveal-sensitive"' in html


def test_the_readers_setting_shows_it_unblurred(client, responder, submit):
    report = received(submit, description="NSFW words")
    service.set_reveal_sensitive(actor=responder, reveal=True)
    html = page_of(client, report)
    assert html.count('<div class="sensitive" data-revealed="true">') == 2
    assert "Hide description" in html


def test_other_flagged_categories_are_not_blurred(client, responder, submit):
    report = received(submit, description="HATE speech")
    html = page_of(client, report)
    assert 'class="sensitive"' not in html


def test_the_reveal_setting_form_returns_to_the_ticket(client, responder, submit):
    report = received(submit, description="NSFW words")
    response = post_form(client, "/settings/reveal-sensitive",
                         {"reveal": "on", "back": f"/tickets/{report.public_id}"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/tickets/{report.public_id}")
    db.session.expire_all()
    assert responder.reveal_sensitive is True


# --- triage actions ------------------------------------------------------------------


@pytest.mark.parametrize(("form", "attribute", "expected", "message"), [
    ({"action": "move", "value": "in_progress"}, "status", Status.IN_PROGRESS,
     "Status set to in progress."),
    ({"action": "dismiss"}, "status", Status.DISMISSED, "Ticket dismissed."),
    ({"action": "priority", "value": "P0"}, "priority", "P0", "Priority set to P0."),
])
def test_status_and_priority_controls(client, responder, submit, form, attribute, expected,
                                      message):
    report = received(submit)
    response = post_form(client, f"/tickets/{report.public_id}/actions", form,
                         follow_redirects=True)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert getattr(refreshed(report), attribute) == expected


def test_assign_to_me_then_to_nobody(client, responder, submit):
    report = received(submit)
    html = page_of(client, report)
    assert "Assign to me" in html
    post_form(client, f"/tickets/{report.public_id}/actions", {"action": "assign", "value": "me"})
    assert refreshed(report).assignee_id == responder.id
    html = page_of(client, report)
    assert "Assign to me" not in html and "Assigned to <strong>Rita Responder</strong>" in html
    post_form(client, f"/tickets/{report.public_id}/actions", {"action": "assign", "value": ""})
    assert refreshed(report).assignee_id is None
    actions = db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.subject_id == report.public_id, AuditEvent.action == "report.assigned"))
    assert len(list(actions)) == 2


@pytest.mark.parametrize(("form", "message"), [
    ({"action": "move", "value": "closed"}, "Nothing changed: Pick a column."),
    ({"action": "priority", "value": "P9"}, "Nothing changed: Pick a priority P0–P4."),
    ({"action": "explode", "value": ""}, "Nothing changed: Unknown action."),
    ({"action": "assign", "value": "x1"}, "Nothing changed: Pick a person."),
])
def test_bad_action_values_change_nothing_and_say_why(client, responder, submit, form, message):
    report = received(submit)
    before = (report.status, report.priority, report.assignee_id)
    response = post_form(client, f"/tickets/{report.public_id}/actions", form)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    fresh = refreshed(report)
    assert (fresh.status, fresh.priority, fresh.assignee_id) == before


def test_assigning_to_a_viewer_is_refused(client, responder, submit, make_user):
    report = received(submit)
    viewer = make_user(Role.VIEWER)
    response = post_form(client, f"/tickets/{report.public_id}/actions",
                         {"action": "assign", "value": str(viewer.id)})
    assert response.status_code == 422
    assert "Tickets go to active staff who can triage." in response.get_data(as_text=True)
    assert refreshed(report).assignee_id is None


# --- notes and replies ---------------------------------------------------------------


def test_an_internal_note_is_added_and_shown(client, responder, submit):
    report = received(submit)
    response = post_form(client, f"/tickets/{report.public_id}/notes",
                         {"body": "Checked the logs:\n  model v3."}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Internal note added." in html
    assert "Checked the logs:\n  model v3." in html and "Rita Responder" in html
    assert "staff only" in html


def test_an_empty_note_changes_nothing_and_says_why(client, responder, submit):
    report = received(submit)
    response = post_form(client, f"/tickets/{report.public_id}/notes", {"body": "   "})
    assert response.status_code == 422
    assert "The note was not saved: write between 1 and 10,000 characters." in (
        response.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(ReportComment)) == 0


def test_a_public_reply_reaches_the_reporters_status_page(client, responder, submit):
    receipt = submit().json
    response = post_form(client, f"/tickets/{receipt['id']}/replies",
                         {"body": f"Thanks! We fixed it.\nSee {XSS}"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Reply sent: the reporter sees it on their status page." in html
    assert "visible to the reporter" in html
    status = client.get(receipt["status_page_url"]).get_data(as_text=True)
    assert "Replies from the team" in status
    assert "Thanks! We fixed it.\nSee &lt;script&gt;window.__pwned=1&lt;/script&gt;" in status
    assert "<script>window" not in status and "No reply yet" not in status


def test_a_too_long_reply_changes_nothing_and_keeps_the_draft(client, responder, submit):
    report = received(submit)
    draft = "x" * (service.MAX_COMMENT + 1)
    response = post_form(client, f"/tickets/{report.public_id}/replies", {"body": draft})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "The reply was not sent: write between 1 and 10,000 characters." in html
    assert draft in html
    assert db.session.scalar(select(func.count()).select_from(ReportComment).where(
        ReportComment.kind == CommentKind.REPLY)) == 0


# --- merging -------------------------------------------------------------------------


def test_merge_a_duplicate_into_another_ticket(client, responder, submit):
    survivor = received(submit, description="The first report")
    receipt = submit(report_body(description="The same again")).json
    response = post_form(client, f"/tickets/{receipt['id']}/merge",
                         {"into": f"  {survivor.public_id} "}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert f"Merged {receipt['id']} into {survivor.public_id}." in html
    assert "1 duplicate merged into this ticket" in html
    assert f'href="/tickets/{receipt["id"]}"' in html

    duplicate = client.get(f"/tickets/{receipt['id']}").get_data(as_text=True)
    assert re.search(rf'Merged into <a href="/tickets/{survivor.public_id}">'
                     rf"{survivor.public_id}</a>", duplicate)
    assert f"<span class=\"after\">{survivor.public_id}</span>" in duplicate  # history
    assert 'name="into"' not in duplicate

    # The duplicate's reporter now sees the survivor's status.
    service.move(actor=responder, ids=[survivor.public_id], status=Status.RESOLVED)
    status = client.get(receipt["status_page_url"]).get_data(as_text=True)
    assert 'class="status-pill status-resolved">Resolved<' in status
    assert "we are handling the reports together" in status
    api = client.get(receipt["status_url"], query_string={"token": receipt["status_token"]})
    assert (api.json["status"], api.json["merged"]) == ("resolved", True)


@pytest.mark.parametrize(("into", "status", "message"), [
    ("rep_nosuchticket", 422, "Not merged: No report rep_nosuchticket."),
    ("SELF", 422, "Not merged: A ticket cannot be merged into itself."),
    ("", 422, "Not merged: give the id of the ticket that stays, e.g. rep_…"),
    ("MERGED", 409, "is already merged."),
    ("INTO_MERGED", 409, "was itself merged; merge into"),
])
def test_merge_errors_change_nothing_and_say_why(client, responder, submit, into, status,
                                                message):
    report, other, third = received(submit), received(submit), received(submit)
    if into == "MERGED":  # the ticket on this page was merged already
        service.merge(actor=responder, duplicate_id=report.public_id, into_id=third.public_id)
        into = other.public_id
    elif into == "INTO_MERGED":
        service.merge(actor=responder, duplicate_id=other.public_id, into_id=third.public_id)
        into = other.public_id
    into = report.public_id if into == "SELF" else into
    events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    response = post_form(client, f"/tickets/{report.public_id}/merge", {"into": into})
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events


# --- who may do what -----------------------------------------------------------------


def test_viewers_read_the_ticket_without_any_ticket_forms(client, make_user, submit):
    report = received(submit)
    service.add_note(actor=make_user(Role.RESPONDER), public_id=report.public_id, body="Seen.")
    sign_in(client, make_user(Role.VIEWER))
    html = page_of(client, report)
    assert "Seen." in html and "It said the Eiffel Tower is in Rome." in html
    assert f"/tickets/{report.public_id}/" not in html  # no form posts anywhere on it
    assert "<textarea" not in html and "Assign to me" not in html


@pytest.mark.parametrize(("path", "form"), [
    ("actions", {"action": "move", "value": "resolved"}),
    ("notes", {"body": "sneaky"}),
    ("replies", {"body": "sneaky"}),
    ("merge", {"into": "rep_x"}),
])
def test_viewers_posts_are_refused(client, make_user, submit, path, form):
    report = received(submit)
    sign_in(client, make_user(Role.VIEWER))
    events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    response = post_form(client, f"/tickets/{report.public_id}/{path}", form)
    assert response.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events
    assert refreshed(report).status == Status.NEW


def test_a_post_without_the_csrf_token_is_refused(client, responder, submit):
    report = received(submit)
    response = client.post(f"/tickets/{report.public_id}/notes", data={"body": "forged"})
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(ReportComment)) == 0
    assert current_app.config["WTF_CSRF_ENABLED"] is not False
