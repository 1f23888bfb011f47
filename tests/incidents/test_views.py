"""The incident pages through the test client: the list, the new-incident form (from the
board's bulk action and a ticket), the incident page (status walk, linked reports,
timeline, retrospective editor, action items, exports), the published retrospective a
viewer reads, the ticket page's suggestions, the board's badges; bad input shown again
with status 422 and what was typed kept; hostile report text escaped on every page.

Time is frozen at Monday 5 January 2026, 10:00 UTC.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from app.auth.models import Role, User
from app.core.clock import frozen
from app.extensions import db
from app.incidents import service
from app.incidents.models import (
    SEVERITY_MEANINGS,
    ActionItem,
    Incident,
    IncidentStatus,
    Severity,
    TimelineSource,
)
from app.projects.models import Project
from app.reports.models import Report
from tests.incidents.factories import MONDAY, at, count_queries, make_report
from tests.incidents.test_draft import enabled, stub  # noqa: F401 - fixtures
from tests.web import csrf_token, post_form, sign_in

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"


@pytest.fixture(autouse=True)
def clock_at() -> Iterator[Callable]:
    with frozen(MONDAY) as move_to:
        yield move_to


@pytest.fixture
def lead(make_user) -> User:
    return make_user(Role.LEAD, name="Lena Lead")


@pytest.fixture
def responder(make_user) -> User:
    return make_user(Role.RESPONDER, name="Remy Responder")


@pytest.fixture
def viewer(make_user) -> User:
    return make_user(Role.VIEWER, name="Vic Viewer")


def as_user(client, user: User):
    return sign_in(client, user)


def html(response) -> str:
    return response.get_data(as_text=True)


def opened(lead: User, project: Project, *reports: Report, **kwargs: Any) -> Incident:
    reports = reports or (make_report(project, received_at=at(5, 8)),)
    return service.open_incident(actor=lead, title=kwargs.pop("title", "Wrong capitals"),
                                 severity=kwargs.pop("severity", "SEV2"),
                                 report_ids=[r.public_id for r in reports], **kwargs)


def fresh(incident: Incident) -> Incident:
    db.session.expire_all()
    return db.session.scalar(select(Incident).where(Incident.public_id == incident.public_id))


# --- the list --------------------------------------------------------------------------------


def test_the_list_filters_by_status_and_severity(client, lead, responder, project):
    first = opened(lead, project, title="Capitals wrong", severity="SEV1")
    second = opened(lead, project, title="Slow replies", severity="SEV3")
    service.set_status(actor=lead, incident_id=second.public_id, status="resolved")
    as_user(client, responder)
    page = html(client.get("/incidents"))
    assert "Capitals wrong" in page and "Slow replies" in page
    assert "Open an incident" not in page  # responders do not open incidents
    only_sev1 = html(client.get("/incidents?severity=SEV1"))
    assert "Capitals wrong" in only_sev1 and "Slow replies" not in only_sev1
    resolved = html(client.get("/incidents?status=resolved"))
    assert "Slow replies" in resolved and "Capitals wrong" not in resolved
    both = html(client.get("/incidents?status=resolved&status=investigating&severity=SEV3"))
    assert "Slow replies" in both and "Capitals wrong" not in both
    assert first.public_id in page


def test_a_bad_filter_is_422_and_says_so(client, responder):
    as_user(client, responder)
    response = client.get("/incidents?status=exploded")
    assert response.status_code == 422
    assert "Unknown status or severity." in html(response)


def test_a_viewer_sees_only_published_retrospectives(client, lead, viewer, project):
    published = opened(lead, project, title="Published one")
    opened(lead, project, title="Still secret")
    publish(lead, published, summary="All fixed.")
    as_user(client, viewer)
    page = html(client.get("/incidents"))
    assert "Published retrospectives" in page
    assert "Published one" in page and "Still secret" not in page
    assert f"/incidents/{published.public_id}/retrospective" in page


# --- opening an incident ---------------------------------------------------------------------


def test_the_form_shows_each_severity_with_its_meaning_and_the_preselected_reports(
        client, lead, project):
    first = make_report(project, description="Paris is in Spain, it said")
    second = make_report(project, description="Berlin is in Austria")
    as_user(client, lead)
    response = client.get(f"/incidents/new?report={first.public_id}&report={second.public_id}"
                          "&report=rep_nope")
    page = html(response)
    assert response.status_code == 200
    for severity in Severity:
        assert severity.value in page
        assert SEVERITY_MEANINGS[severity].split(".")[0] in page
    assert "Paris is in Spain, it said" in page and "Berlin is in Austria" in page
    assert page.count('name="report_ids"') == 2  # each preselected report, ticked
    assert "No report rep_nope." in page
    assert 'type="datetime-local"' in page and "(UTC)" in page  # the reader's zone


def test_only_leads_open_incidents(client, responder, viewer):
    for user in (responder, viewer):
        as_user(client, user)
        assert client.get("/incidents/new").status_code == 403
        assert post_form(client, "/incidents", {"title": "x", "severity": "SEV1"}
                         ).status_code == 403


def test_open_an_incident_with_the_window_in_the_viewers_timezone(client, lead, responder,
                                                                   project):
    lead.timezone = "Europe/Berlin"  # UTC+1 in January
    db.session.commit()
    first, second = make_report(project, model="gpt-a"), make_report(project, model="gpt-b")
    as_user(client, lead)
    response = post_form(client, "/incidents", {
        "title": "Capitals wrong", "severity": "SEV2", "status": "identified",
        "lead_id": str(lead.id), "participant_ids": [str(responder.id)],
        "project_ids": [str(project.id)], "affected_models": "gpt-a, gpt-b",
        "report_ids": [first.public_id], "more_report_ids": second.public_id,
        "started_at": "2026-01-05T08:15", "detected_at": "2026-01-05T09:30",
        "mitigated_at": "", "resolved_at": ""})
    assert response.status_code == 303, html(response)
    incident = db.session.scalar(select(Incident).where(Incident.title == "Capitals wrong"))
    assert response.headers["Location"].endswith(f"/incidents/{incident.public_id}")
    assert incident.severity == Severity.SEV2 and incident.status == IncidentStatus.IDENTIFIED
    assert incident.started_at == datetime(2026, 1, 5, 7, 15, tzinfo=UTC)
    assert incident.detected_at == datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
    assert incident.mitigated_at is None and incident.lead_id == lead.id
    assert [u.id for u in incident.participants] == [responder.id]
    assert incident.affected_models == ["gpt-a", "gpt-b"]
    linked = service.linked_reports(actor=lead, incident_id=incident.public_id)
    assert {r.public_id for r in linked.reports} == {first.public_id, second.public_id}
    # shown back in the same zone
    page = html(client.get(f"/incidents/{incident.public_id}"))
    assert "2026-01-05 08:15 CET" in page and "2026-01-05 09:30 CET" in page


def test_a_bad_form_comes_back_422_with_what_was_typed(client, lead, project):
    report = make_report(project)
    as_user(client, lead)
    response = post_form(client, "/incidents", {
        "title": "", "severity": "SEV3", "affected_models": "gpt-typed",
        "offered": [report.public_id], "report_ids": [report.public_id],
        "started_at": "2026-01-05T09:00", "detected_at": "2026-01-05T08:00",
        "mitigated_at": "not a time"})
    assert response.status_code == 422
    page = html(response)
    assert "Nothing was saved" in page
    assert 'value="gpt-typed"' in page
    assert re.search(r'value="SEV3"\s+checked', page)
    assert 'value="2026-01-05T09:00"' in page and 'value="2026-01-05T08:00"' in page
    assert "Give a date and a time." in page
    assert report.public_id in page  # the report offered stays offered
    assert db.session.scalar(select(Incident)) is None


def test_an_impact_window_out_of_order_is_refused_beside_the_field(client, lead, project):
    as_user(client, lead)
    response = post_form(client, "/incidents", {
        "title": "Out of order", "severity": "SEV3",
        "started_at": "2026-01-05T09:00", "detected_at": "2026-01-05T08:00"})
    assert response.status_code == 422
    assert "Must not be before started." in html(response)
    assert 'id="err-detected_at"' in html(response)


def test_a_report_in_another_incident_is_a_conflict_and_the_form_is_kept(client, lead,
                                                                           project):
    report = make_report(project)
    other = opened(lead, project, report, title="First")
    as_user(client, lead)
    response = post_form(client, "/incidents", {
        "title": "Second", "severity": "SEV4", "offered": [report.public_id],
        "report_ids": [report.public_id]})
    assert response.status_code == 409
    page = html(response)
    assert other.public_id in page and 'value="Second"' in page


def test_the_board_bulk_action_goes_to_the_form_with_the_tickets(client, lead, project):
    first, second = make_report(project), make_report(project)
    as_user(client, lead)
    form = {"ids": [first.public_id, second.public_id], "action": "incident"}
    response = post_form(client, "/board/actions", form)
    assert response.status_code == 303
    assert response.headers["Location"] == (
        f"/incidents/new?report={first.public_id}&report={second.public_id}")
    through_htmx = post_form(client, "/board/actions", form, headers={"HX-Request": "true"})
    assert through_htmx.status_code == 204
    assert through_htmx.headers["HX-Redirect"] == response.headers["Location"]


def test_the_board_offers_open_incident_to_leads_and_shows_badges(client, lead, responder,
                                                                    viewer, project):
    linked, loose = make_report(project), make_report(project)
    incident = opened(lead, project, linked, title="Badge me", severity="SEV1")
    as_user(client, lead)
    board = html(client.get("/board"))
    assert 'value="incident"' in board
    card = board[board.index(f'id="card-{linked.public_id}"'):]
    card = card[:card.index("</article>")]
    assert "Badge me" in card and f"/incidents/{incident.public_id}" in card
    other = board[board.index(f'id="card-{loose.public_id}"'):]
    assert "incident-badge" not in other[:other.index("</article>")]
    as_user(client, responder)
    assert 'value="incident"' not in html(client.get("/board"))
    as_user(client, viewer)
    board = html(client.get("/board"))
    assert "Badge me" in board and f'href="/incidents/{incident.public_id}"' not in board


def test_the_board_badges_cost_one_query(client, lead, project):
    reports = [make_report(project) for _ in range(6)]
    opened(lead, project, *reports[:3], title="Three")
    opened(lead, project, *reports[3:5], title="Two")
    as_user(client, lead)
    with count_queries() as statements:
        client.get("/board")
    assert sum("incident_reports" in s for s in statements) == 1


# --- the ticket page -------------------------------------------------------------------------


def test_the_ticket_page_shows_the_incident_and_offers_to_open_one(client, lead, responder,
                                                                     project):
    linked, loose = make_report(project), make_report(project)
    incident = opened(lead, project, linked, title="On the ticket")
    as_user(client, lead)
    page = html(client.get(f"/tickets/{linked.public_id}"))
    assert "On the ticket" in page and f"/incidents/{incident.public_id}" in page
    page = html(client.get(f"/tickets/{loose.public_id}"))
    assert f"/incidents/new?report={loose.public_id}" in page
    assert f"/tickets/{loose.public_id}/similar" in page  # the suggestions panel loads
    as_user(client, responder)
    page = html(client.get(f"/tickets/{loose.public_id}"))
    assert "/incidents/new" not in page and f"/tickets/{loose.public_id}/similar" in page


def similar_pair(project: Project) -> tuple[Report, Report]:
    ticket = make_report(project, description="The answer said Paris is in Spain")
    twin = make_report(project, description="Totally different words here")
    ticket.response_id = twin.response_id = "resp_shared_1"
    db.session.commit()
    return ticket, twin


def test_suggestions_give_their_reasons_and_a_lead_links_in_one_click(client, lead,
                                                                        responder, project):
    ticket, twin = similar_pair(project)
    incident = opened(lead, project, ticket, title="Spain confusion")
    as_user(client, responder)
    panel = html(client.get(f"/tickets/{ticket.public_id}/similar",
                            headers={"HX-Request": "true"}))
    assert twin.public_id in panel and "Same response id resp_shared_1" in panel
    assert "<html" not in panel  # the fragment only
    assert "Link to" not in panel  # responders only see
    as_user(client, lead)
    panel = html(client.get(f"/tickets/{ticket.public_id}/similar",
                            headers={"HX-Request": "true"}))
    assert "Link to Spain confusion" in panel
    response = post_form(client, f"/incidents/{incident.public_id}/reports", {
        "report_ids": twin.public_id, "back": f"/tickets/{ticket.public_id}#similar"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/tickets/{ticket.public_id}#similar"
    assert twin.public_id in {r.public_id for r in service.linked_reports(
        actor=lead, incident_id=incident.public_id).reports}
    page = html(client.get(f"/tickets/{ticket.public_id}"))
    assert f"Linked {twin.public_id} to {incident.public_id}." in page


def test_a_ticket_is_linked_to_a_suggested_incident(client, lead, project):
    ticket, twin = similar_pair(project)
    incident = opened(lead, project, twin, title="Already open")
    as_user(client, lead)
    panel = html(client.get(f"/tickets/{ticket.public_id}/similar",
                            headers={"HX-Request": "true"}))
    assert "Already open" in panel and "with the same response id resp_shared_1" in panel
    assert "Link this ticket to the incident" in panel
    post_form(client, f"/incidents/{incident.public_id}/reports", {
        "report_ids": ticket.public_id, "back": f"/tickets/{ticket.public_id}#similar"})
    page = html(client.get(f"/tickets/{ticket.public_id}"))
    assert "incident-badge" in page and "Already open" in page


def test_nothing_is_linked_by_looking(client, lead, project):
    ticket, twin = similar_pair(project)
    opened(lead, project, ticket)
    as_user(client, lead)
    client.get(f"/tickets/{ticket.public_id}/similar")
    client.get(f"/tickets/{ticket.public_id}")
    assert db.session.scalar(select(Report).where(Report.id == twin.id)) is not None
    from app.incidents.links import incident_for_reports
    assert twin.id not in incident_for_reports([twin.id])


def test_a_failed_link_from_the_ticket_says_why_there(client, lead, project):
    ticket, twin = similar_pair(project)
    first = opened(lead, project, ticket, title="First")
    opened(lead, project, twin, title="Second")
    as_user(client, lead)
    response = post_form(client, f"/incidents/{first.public_id}/reports", {
        "report_ids": twin.public_id, "back": f"/tickets/{ticket.public_id}"})
    assert response.status_code == 303
    page = html(client.get(f"/tickets/{ticket.public_id}"))
    assert "Nothing linked: A report belongs to one incident at most" in page


def test_a_viewer_gets_no_suggestions(client, viewer, project):
    ticket, _ = similar_pair(project)
    as_user(client, viewer)
    assert f"/tickets/{ticket.public_id}/similar" not in html(
        client.get(f"/tickets/{ticket.public_id}"))
    assert client.get(f"/tickets/{ticket.public_id}/similar").status_code == 403


# --- the incident page -----------------------------------------------------------------------


def test_the_incident_page_shows_counts_and_the_first_reports(client, lead, responder,
                                                              project):
    reports = [make_report(project, received_at=at(5, 8, n), categories=["hate"])
               for n in range(30)]
    incident = opened(lead, project, *reports, title="Thirty reports")
    as_user(client, responder)
    page = html(client.get(f"/incidents/{incident.public_id}"))
    assert 'data-testid="linked-count">30<' in page
    assert reports[0].public_id in page and reports[24].public_id in page
    assert reports[25].public_id not in page  # the rest is a page away
    assert f"/incidents/{incident.public_id}/reports?page=2" in page
    assert "Save draft" not in page and "Edit details" not in page  # responders read
    more = html(client.get(f"/incidents/{incident.public_id}/reports?page=1"))
    assert reports[29].public_id in more


def test_the_incident_page_does_not_grow_with_its_reports(client, lead, project):
    small = opened(lead, project, *[make_report(project) for _ in range(3)], title="Small")
    big = opened(lead, project, *[make_report(project) for _ in range(40)], title="Big")
    as_user(client, lead)

    def statements(incident: Incident) -> int:
        with count_queries() as found:
            assert client.get(f"/incidents/{incident.public_id}").status_code == 200
        return len(found)

    assert statements(big) == statements(small)


def test_the_facts_come_in_a_request_of_their_own(client, lead, responder, project):
    reports = [make_report(project, received_at=at(5, 8, n), categories=["hate"] if n else [])
               for n in range(3)]
    incident = opened(lead, project, *reports, started_at=at(5, 8), detected_at=at(5, 8, 40))
    pid = incident.public_id
    service.set_status(actor=lead, incident_id=pid, status="resolved", at=at(5, 9, 30))
    as_user(client, responder)
    page = html(client.get(f"/incidents/{pid}"))
    assert f'hx-get="/incidents/{pid}/facts"' in page and 'data-fact="detect"' not in page
    fragment = html(client.get(f"/incidents/{pid}/facts", headers={"HX-Request": "true"}))
    assert "<html" not in fragment
    assert 'data-fact="detect">40 min<' in fragment
    assert 'data-fact="mitigate">1 h 30 min<' in fragment  # resolving mitigates too
    assert 'data-fact="resolve">1 h 30 min<' in fragment
    assert re.search(r"hate</span> <span class=\"n\">2<", fragment)
    alone = client.get(f"/incidents/{pid}/facts")
    assert alone.status_code == 200 and "<html" in html(alone)


def test_the_status_walk(client, lead, responder, project):
    incident = opened(lead, project, detected_at=at(5, 9))
    as_user(client, lead)
    early = post_form(client, f"/incidents/{incident.public_id}/status",
                      {"status": "monitoring", "at": "2026-01-05T08:45"})
    assert early.status_code == 422
    assert "Must not be before detected." in html(early)
    assert 'value="2026-01-05T08:45"' in html(early)
    page = html(client.get(f"/incidents/{incident.public_id}"))
    assert 'name="status" value="identified"' in page
    assert 'name="status" value="closed"' not in page  # resolve first
    response = post_form(client, f"/incidents/{incident.public_id}/status",
                         {"status": "monitoring", "at": "2026-01-05T09:45"})
    assert response.status_code == 303
    assert fresh(incident).mitigated_at == datetime(2026, 1, 5, 9, 45, tzinfo=UTC)
    refused = post_form(client, f"/incidents/{incident.public_id}/status", {"status": "closed"})
    assert refused.status_code == 409
    assert "resolve it before closing it" in html(refused)
    for status in ("resolved", "closed"):
        post_form(client, f"/incidents/{incident.public_id}/status", {"status": status})
    assert fresh(incident).status == IncidentStatus.CLOSED
    assert "closed is final" not in html(client.get(f"/incidents/{incident.public_id}"))
    as_user(client, responder)
    assert post_form(client, f"/incidents/{incident.public_id}/status",
                     {"status": "identified"}).status_code == 403


def test_link_and_unlink_reports_on_the_page(client, lead, project):
    incident = opened(lead, project)
    extra = make_report(project)
    as_user(client, lead)
    bad = post_form(client, f"/incidents/{incident.public_id}/reports",
                    {"more_report_ids": f"{extra.public_id} rep_missing"})
    assert bad.status_code == 422
    assert "No report rep_missing." in html(bad)
    assert f'value="{extra.public_id} rep_missing"' in html(bad)
    ok = post_form(client, f"/incidents/{incident.public_id}/reports",
                   {"more_report_ids": extra.public_id})
    assert ok.status_code == 303
    assert service.linked_reports(actor=lead, incident_id=incident.public_id).total == 2
    post_form(client, f"/incidents/{incident.public_id}/reports/{extra.public_id}/unlink")
    assert service.linked_reports(actor=lead, incident_id=incident.public_id).total == 1


def test_responders_write_notes_and_leads_hide_noise(client, lead, responder, project):
    incident = opened(lead, project)
    as_user(client, responder)
    empty = post_form(client, f"/incidents/{incident.public_id}/timeline", {"body": "  "})
    assert empty.status_code == 422
    assert post_form(client, f"/incidents/{incident.public_id}/timeline",
                     {"body": "Rolled back?", "kind": "decision"}).status_code == 403
    ok = post_form(client, f"/incidents/{incident.public_id}/timeline",
                   {"body": "Checked the deploy log", "at": "2026-01-05T09:50"})
    assert ok.status_code == 303
    items = service.timeline(actor=lead, incident_id=incident.public_id)
    note = next(i for i in items if i.text == "Checked the deploy log")
    assert (note.author, note.kind) == ("Remy Responder", "note")
    assert note.at == datetime(2026, 1, 5, 9, 50, tzinfo=UTC)
    assert "Hide" not in html(client.get(f"/incidents/{incident.public_id}"))

    as_user(client, lead)
    hidden = post_form(client, f"/incidents/{incident.public_id}/timeline/visibility",
                       {"source": "entry", "source_id": str(note.source_id), "hidden": "true"})
    assert hidden.status_code == 303
    page = html(client.get(f"/incidents/{incident.public_id}"))
    assert "Hidden from the published timeline" in page and "Unhide" in page
    as_user(client, responder)
    assert "Checked the deploy log" not in html(client.get(f"/incidents/{incident.public_id}"))
    as_user(client, lead)
    post_form(client, f"/incidents/{incident.public_id}/timeline/visibility",
              {"source": "entry", "source_id": str(note.source_id), "hidden": "false"})
    assert not next(i for i in service.timeline(actor=lead, incident_id=incident.public_id,
                                                include_hidden=True)
                    if i.source == TimelineSource.ENTRY).hidden


def test_the_timeline_page_pages_with_a_cursor(client, lead, project, monkeypatch):
    from app.incidents import pages

    monkeypatch.setattr(pages, "TIMELINE_PER_PAGE", 2)
    monkeypatch.setattr(pages, "TIMELINE_SHOWN", 2)
    incident = opened(lead, project)
    for n in range(3):
        service.add_timeline_entry(actor=lead, incident_id=incident.public_id,
                                   body=f"entry {n}", at=at(5, 9, n))
    as_user(client, lead)
    page = html(client.get(f"/incidents/{incident.public_id}"))
    later = re.search(r'href="(/incidents/[^"]+/timeline\?after=[^"]+)"', page).group(1)
    next_page = html(client.get(later.replace("&amp;", "&")))
    assert "entry 2" in next_page or "entry 1" in next_page
    assert client.get(f"/incidents/{incident.public_id}/timeline?after=nonsense"
                      ).status_code == 422


# --- the retrospective -----------------------------------------------------------------------


def publish(lead: User, incident: Incident, **sections: str) -> None:
    service.save_sections(actor=lead, incident_id=incident.public_id, sections=sections)
    service.submit_for_review(actor=lead, incident_id=incident.public_id)
    service.sign_off(actor=lead, incident_id=incident.public_id)
    service.publish(actor=lead, incident_id=incident.public_id)


def test_write_review_sign_off_and_publish_through_the_page(client, lead, viewer, project,
                                                             make_user):
    incident = opened(lead, project, title="Geography")
    pid = incident.public_id
    as_user(client, lead)
    no_summary = post_form(client, f"/incidents/{pid}/retrospective/submit")
    assert no_summary.status_code == 422  # nothing written yet
    assert "has no retrospective yet" in html(no_summary)
    saved = post_form(client, f"/incidents/{pid}/retrospective", {
        "summary": "Replies put **Paris** in Spain.", "impact": "", "lessons": "Test more"})
    assert saved.status_code == 303
    page = html(client.get(f"/incidents/{pid}"))
    assert "Replies put **Paris** in Spain." in page  # the editor holds the Markdown
    assert post_form(client, f"/incidents/{pid}/retrospective/submit").status_code == 303
    page = html(client.get(f"/incidents/{pid}"))
    assert "Sign off" in page and re.search(r"<button[^>]*disabled[^>]*>Publish", page)
    refused = post_form(client, f"/incidents/{pid}/retrospective/publish")
    assert refused.status_code == 409 and "must sign off" in html(refused)
    assert post_form(client, f"/incidents/{pid}/retrospective/sign-off").status_code == 303
    assert "Signed off by Lena Lead" in html(client.get(f"/incidents/{pid}"))
    assert post_form(client, f"/incidents/{pid}/retrospective/publish").status_code == 303

    page = html(client.get(f"/incidents/{pid}"))
    assert "is read-only" in page and "Save draft" not in page
    assert "<strong>Paris</strong>" in page  # rendered, not editable
    assert "Start version 2" in page
    refused = post_form(client, f"/incidents/{pid}/retrospective", {"summary": "Sneaky"})
    assert refused.status_code == 409 and "read-only" in html(refused)

    as_user(client, viewer)
    read = client.get(f"/incidents/{pid}/retrospective")
    assert read.status_code == 200
    text = html(read)
    assert "Published and read-only: version 1." in text and "<strong>Paris</strong>" in text
    assert "<textarea" not in text and "<form" not in text.split('id="main"')[1]
    assert client.get(f"/incidents/{pid}").status_code == 403

    as_user(client, lead)
    post_form(client, f"/incidents/{pid}/retrospective/reopen")
    post_form(client, f"/incidents/{pid}/retrospective", {"summary": "Version two text."})
    assert fresh(incident).retrospective.version == 2
    as_user(client, viewer)
    still = html(client.get(f"/incidents/{pid}/retrospective"))
    assert "Replies put" in still and "Version two text." not in still
    assert client.get(f"/incidents/{pid}/retrospective?version=2").status_code == 404


def test_an_unpublished_retrospective_is_not_for_viewers(client, lead, viewer, project):
    incident = opened(lead, project)
    service.save_sections(actor=lead, incident_id=incident.public_id,
                          sections={"summary": "Draft only"})
    as_user(client, viewer)
    assert client.get(f"/incidents/{incident.public_id}/retrospective").status_code == 404
    assert client.get(f"/incidents/{incident.public_id}/retrospective?draft=1"
                      ).status_code == 404
    as_user(client, lead)
    preview = html(client.get(f"/incidents/{incident.public_id}/retrospective?draft=1"))
    assert "Draft only" in preview and "A preview of the draft" in preview


def test_machine_written_sections_are_marked_until_a_person_approves(client, lead, project):
    incident = opened(lead, project)
    service.save_machine_draft(actor=lead, incident_id=incident.public_id,
                               sections={"summary": "The model's summary."})
    as_user(client, lead)
    page = html(client.get(f"/incidents/{incident.public_id}"))
    assert "Drafted by the model: not yet reviewed by a person." in page
    assert 'name="approve" value="summary"' in page
    refused = post_form(client, f"/incidents/{incident.public_id}/retrospective/submit")
    assert refused.status_code == 409 and "machine-written" in html(refused)
    post_form(client, f"/incidents/{incident.public_id}/retrospective",
              {"summary": "The model's summary.", "approve": "summary"})
    page = html(client.get(f"/incidents/{incident.public_id}"))
    assert "Drafted by the model" not in page
    assert fresh(incident).retrospective.machine_written == []


def test_the_model_draft_button_only_when_configured(client, app, lead, project, monkeypatch):
    incident = opened(lead, project)
    as_user(client, lead)
    assert "Draft with the model" not in html(client.get(f"/incidents/{incident.public_id}"))
    refused = post_form(client, f"/incidents/{incident.public_id}/retrospective/draft")
    assert refused.status_code == 409 and "Model drafts are off" in html(refused)
    monkeypatch.setitem(app.config, "RETRO_DRAFT_MODEL", "gpt-test-draft")
    monkeypatch.setitem(app.config, "OPENAI_API_KEY", "sk-test")
    assert "Draft with the model" in html(client.get(f"/incidents/{incident.public_id}"))


def test_a_bad_section_edit_keeps_what_was_typed(client, lead, project):
    incident = opened(lead, project)
    as_user(client, lead)
    response = post_form(client, f"/incidents/{incident.public_id}/retrospective",
                         {"summary": "Kept text", "impact": "x" * 50_001})
    assert response.status_code == 422
    assert "Kept text" in html(response)


# --- action items ----------------------------------------------------------------------------


def test_action_items_are_added_changed_and_removed(client, lead, responder, project):
    incident = opened(lead, project)
    pid = incident.public_id
    as_user(client, lead)
    bad = post_form(client, f"/incidents/{pid}/actions", {
        "title": "Add a geography eval", "link": "javascript:alert(1)",
        "due_date": "2026-01-20", "owner_id": str(responder.id)})
    assert bad.status_code == 422
    page = html(bad)
    assert "Only http:// and https:// links." in page
    assert 'value="Add a geography eval"' in page and 'value="2026-01-20"' in page
    ok = post_form(client, f"/incidents/{pid}/actions", {
        "title": "Add a geography eval", "link": "https://tracker.example/1",
        "due_date": "2026-01-20", "owner_id": str(responder.id)})
    assert ok.status_code == 303
    item = db.session.scalar(select(ActionItem))
    assert (item.owner_id, item.due_date, str(item.status)) == (responder.id, date(2026, 1, 20),
                                                               "open")
    post_form(client, f"/incidents/{pid}/actions/{item.id}", {
        "title": "Add a geography eval", "status": "done", "owner_id": str(responder.id),
        "due_date": "2026-01-20", "link": "https://tracker.example/1"})
    db.session.expire_all()
    assert str(db.session.get(ActionItem, item.id).status) == "done"
    page = html(client.get(f"/incidents/{pid}"))
    assert "Done" in page and 'href="https://tracker.example/1"' in page
    as_user(client, responder)
    assert post_form(client, f"/incidents/{pid}/actions/{item.id}/delete").status_code == 403
    as_user(client, lead)
    assert post_form(client, f"/incidents/{pid}/actions/{item.id}/delete").status_code == 303
    assert db.session.scalar(select(ActionItem)) is None


# --- editing ---------------------------------------------------------------------------------


def test_edit_the_details(client, lead, project):
    incident = opened(lead, project, started_at=at(5, 7), affected_models=["gpt-x"])
    as_user(client, lead)
    form = html(client.get(f"/incidents/{incident.public_id}/edit"))
    assert 'value="2026-01-05T07:00"' in form and 'value="gpt-x"' in form
    bad = post_form(client, f"/incidents/{incident.public_id}/edit", {
        "title": "Renamed", "severity": "SEV1", "started_at": "2026-01-05T09:00",
        "detected_at": "2026-01-05T08:00"})
    assert bad.status_code == 422 and 'value="Renamed"' in html(bad)
    ok = post_form(client, f"/incidents/{incident.public_id}/edit", {
        "title": "Renamed", "severity": "SEV1", "lead_id": str(lead.id),
        "project_ids": [str(project.id)], "affected_models": "gpt-x, gpt-y",
        "started_at": "2026-01-05T07:00", "detected_at": "2026-01-05T08:00"})
    assert ok.status_code == 303
    incident = fresh(incident)
    assert (incident.title, incident.severity) == ("Renamed", Severity.SEV1)
    assert incident.affected_models == ["gpt-x", "gpt-y"]


# --- exports ---------------------------------------------------------------------------------


@pytest.fixture
def exported(lead, project) -> Incident:
    report = make_report(project, description="It said =1+1 is 3")
    report.contact_email = "reporter@example.com"
    report.end_user_hash = "a" * 64
    db.session.commit()
    incident = opened(lead, project, report, title="Exported")
    publish(lead, incident, summary="Summary for export.")
    return incident


def test_each_export_downloads_with_its_type(client, lead, exported):
    pid = exported.public_id
    as_user(client, lead)
    md = client.get(f"/incidents/{pid}/export/md")
    assert md.status_code == 200 and md.mimetype == "text/markdown"
    assert md.headers["Content-Disposition"] == (
        f'attachment; filename="{pid}-retrospective.md"')
    assert "# Retrospective: Exported" in html(md) and "Summary for export." in html(md)
    assert "reporter@example.com" not in html(md)
    pdf = client.get(f"/incidents/{pid}/export/pdf?version=1")
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert f'{pid}-retrospective-v1.pdf' in pdf.headers["Content-Disposition"]
    doc = json.loads(client.get(f"/incidents/{pid}/export/json").data)
    assert doc["format"] == "flagdesk.retrospective/1" and doc["version"] == 1
    assert "contact_email" not in doc["linked_reports"]["listed"][0]
    rows = list(csv.reader(io.StringIO(client.get(f"/incidents/{pid}/export/csv")
                                       .data.decode("utf-8-sig"))))
    assert rows[0][:2] == ["report", "received_at"] and "contact_email" not in rows[0]
    assert rows[1][-1] == "It said =1+1 is 3"
    for response in (md, pdf):
        assert response.headers["Cache-Control"] == "no-store"


def test_exports_carry_end_user_data_only_when_ticked(client, lead, exported):
    as_user(client, lead)
    pid = exported.public_id
    md = html(client.get(f"/incidents/{pid}/export/md?contacts=1&hashes=1"))
    assert "reporter@example.com" in md and "a" * 64 in md
    rows = list(csv.reader(io.StringIO(client.get(f"/incidents/{pid}/export/csv?contacts=1")
                                       .data.decode("utf-8-sig"))))
    assert rows[0][-1] == "contact_email" and rows[1][-1] == "reporter@example.com"
    assert client.get(f"/incidents/{pid}/export/exe").status_code == 404
    assert client.get(f"/incidents/{pid}/export/md?version=zero").status_code == 422


def test_only_leads_export(client, responder, viewer, exported):
    for user in (responder, viewer):
        as_user(client, user)
        assert client.get(f"/incidents/{exported.public_id}/export/md").status_code == 403
        assert client.get("/incidents/retrospectives.zip?from=2026-01-01&to=2026-01-31"
                          ).status_code == 403


def test_the_zip_of_a_date_range(client, lead, exported):
    as_user(client, lead)
    response = client.get("/incidents/retrospectives.zip?from=2026-01-05&to=2026-01-05")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    assert f"2026-01-05_{exported.public_id}/{exported.public_id}-v1.md" in names
    bad = client.get("/incidents/retrospectives.zip?from=2026-01-09&to=2026-01-01")
    assert bad.status_code == 422
    page = html(bad)
    assert "The range ends before it starts." in page and 'value="2026-01-09"' in page
    assert client.get("/incidents/retrospectives.zip?from=nope").status_code == 422


# --- hostile report text ---------------------------------------------------------------------


def test_hostile_report_text_is_escaped_on_every_page(client, lead, project):
    ticket = make_report(project, description=HOSTILE, model=HOSTILE[:60])
    twin = make_report(project, description=HOSTILE)
    ticket.response_id = twin.response_id = "resp_x"
    db.session.commit()
    incident = opened(lead, project, ticket, title=HOSTILE[:200], affected_models=[HOSTILE[:60]])
    service.add_timeline_entry(actor=lead, incident_id=incident.public_id, body=HOSTILE)
    service.add_action_item(actor=lead, incident_id=incident.public_id, title=HOSTILE[:200])
    publish(lead, incident, summary=HOSTILE)
    pid = incident.public_id
    as_user(client, lead)
    pages = {
        "board": "/board", "ticket": f"/tickets/{ticket.public_id}",
        "similar": f"/tickets/{ticket.public_id}/similar",
        "list": "/incidents", "incident": f"/incidents/{pid}",
        "reports": f"/incidents/{pid}/reports", "timeline": f"/incidents/{pid}/timeline",
        "retrospective": f"/incidents/{pid}/retrospective",
        "new": f"/incidents/new?report={twin.public_id}",
        "edit": f"/incidents/{pid}/edit",
    }
    for name, url in pages.items():
        response = client.get(url)
        assert response.status_code == 200, name
        text = html(response)
        assert "<script>alert" not in text and "<img src=x" not in text, name
        assert "&lt;script&gt;" in text, name
    post_form(client, f"/incidents/{pid}/retrospective/reopen")
    assert "<script>alert" not in html(client.get(f"/incidents/{pid}"))


def test_every_form_carries_a_csrf_token(client, lead, project):
    incident = opened(lead, project)
    service.save_sections(actor=lead, incident_id=incident.public_id, sections={"summary": "s"})
    service.add_action_item(actor=lead, incident_id=incident.public_id, title="Item")
    as_user(client, lead)
    for url in (f"/incidents/{incident.public_id}", "/incidents/new", "/incidents",
                f"/incidents/{incident.public_id}/edit"):
        page = html(client.get(url))
        posts = re.findall(r'<form[^>]*method="post"[^>]*>(.*?)</form>', page, re.S)
        assert posts, url
        assert all('name="csrf_token"' in form for form in posts), url
    token = csrf_token(client)
    assert token
    refused = client.post(f"/incidents/{incident.public_id}/status",
                          data={"status": "identified"},
                          headers={"Referer": "https://flagdesk.test/"})
    assert refused.status_code == 400


# --- the model's draft, against a stubbed endpoint (tests/incidents/test_draft.py's) -------


def test_draft_with_the_model_marks_the_sections(client, lead, project,
                                                enabled):  # noqa: F811 - the fixture
    incident = opened(lead, project)
    as_user(client, lead)
    assert "Draft with the model" in html(client.get(f"/incidents/{incident.public_id}"))
    response = post_form(client, f"/incidents/{incident.public_id}/retrospective/draft")
    assert response.status_code == 303
    page = html(client.get(f"/incidents/{incident.public_id}"))
    assert "The model drafted the summary" in page
    assert page.count("Drafted by the model: not yet reviewed by a person.") == 2
    assert "wrongly for three hours" in page and len(enabled.requests) == 1


def test_a_failed_model_draft_says_so_and_changes_nothing(
        client, lead, project, enabled):  # noqa: F811 - the fixture
    enabled.plan.append(("status", 500))
    incident = opened(lead, project)
    as_user(client, lead)
    response = post_form(client, f"/incidents/{incident.public_id}/retrospective/draft")
    assert response.status_code == 502
    assert "The model&#39;s endpoint answered HTTP 500." in html(response)
    assert fresh(incident).retrospective is None
