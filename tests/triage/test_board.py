"""The triage board through the test client and its service: columns, cards, filters,
saved views, arrivals, actions (and their refusals), the viewer's read-only board."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.models import Role, User
from app.core.clock import frozen, now
from app.core.errors import Forbidden, NotFound
from app.extensions import db
from app.projects.models import Project
from app.projects.service import create_project
from app.reports.models import (
    ModerationTag,
    Priority,
    Reason,
    Report,
    Status,
    TaggingState,
)
from app.triage import service
from app.triage.schemas import BoardFilters
from tests.web import csrf_token, post_form, sign_in

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def make_report(project: Project, **fields: Any) -> Report:
    """A stored report with exactly the board-relevant fields a test names."""
    flagged = list(fields.pop("flagged", ()))
    report = Report(
        public_id=fields.pop("public_id", f"rep_{uuid.uuid4().hex[:16]}"),
        project_id=project.id,
        reason=fields.pop("reason", Reason.INACCURATE),
        description=fields.pop("description", "It got the capital of France wrong."),
        conversation=fields.pop("conversation", []), extra=fields.pop("extra", {}),
        status_token_hash="0" * 64,
        status=fields.pop("status", Status.NEW),
        priority=fields.pop("priority", Priority.P3),
        tagging_state=fields.pop("tagging_state", TaggingState.TAGGED),
        flagged_categories=flagged,
        received_at=fields.pop("received_at", now()),
        **fields,
    )
    report.updated_at = report.received_at
    if report.tagging_state == TaggingState.TAGGED:
        report.tagged_at = report.received_at
    for score, category in enumerate(reversed(flagged)):
        report.tags.append(ModerationTag(field="description", category=category,
                                         score=0.6 + score / 10, flagged=True,
                                         source="test", model="test-1"))
    db.session.add(report)
    db.session.commit()
    return report


def html(response: Any) -> str:
    return response.get_data(as_text=True)


def card(page: str, public_id: str) -> str:
    """The markup of one card on the page."""
    match = re.search(rf'<article class="card[^>]*data-id="{public_id}".*?</article>', page,
                      re.S)
    assert match, f"no card {public_id}"
    return match.group(0)


def column_of(page: str, public_id: str) -> str:
    """The status of the column a card is in."""
    position = page.index(f'data-id="{public_id}"')
    return re.findall(r'<section class="column column-([a-z_]+)"', page[:position])[-1]


@pytest.fixture
def responder(make_user):
    return make_user(Role.RESPONDER, name="Rita Responder")


@pytest.fixture
def board_client(client, responder):
    return sign_in(client, responder)


def act(client, ids, action, value="", headers=None, **extra):
    return post_form(client, "/board/actions",
                     {"ids": ids, "action": action, "value": value, **extra},
                     headers=headers or {})


def statuses_of(*reports: Report) -> list[str]:
    for report in reports:
        db.session.refresh(report)
    return [str(r.status) for r in reports]


# --- the page and its cards --------------------------------------------------------------


def test_the_board_has_the_six_columns_in_order(board_client):
    page = html(board_client.get("/board"))
    names = re.findall(r'<span class="column-name">([^<]+)</span>', page)
    assert names == ["New", "Triaged", "In progress", "Waiting on reporter", "Resolved",
                     "Dismissed"]
    assert '<link rel="stylesheet" href="/static/board.css">' in page
    assert '<script src="/static/board.js" defer></script>' in page


def test_the_board_needs_a_signed_in_user(client):
    response = client.get("/board")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_card_shows_what_a_responder_triages_by(board_client, project, responder, make_user):
    responder.timezone = "America/New_York"
    sam = make_user(Role.RESPONDER, name="Sam Lee")
    with frozen(NOW):
        report = make_report(
            project, priority=Priority.P1, reason=Reason.UNSAFE_ADVICE, assignee_id=sam.id,
            received_at=NOW - timedelta(minutes=5), model_name="gpt-test-2",
            flagged=["illicit", "harassment", "hate", "violence"],
            description="Told me how to mix bleach and ammonia.")
        for _ in range(2):
            make_report(project, merged_into_id=report.id)
        page = html(board_client.get("/board"))
    shown = card(page, report.public_id)
    assert '<span class="priority priority-p1" title="Priority P1">P1</span>' in shown
    assert re.findall(r'<li class="tag tag-[a-z-]+">([^<]+)</li>', shown) == [
        "illicit", "harassment", "hate"]  # the first three, most confident first
    assert ">+1</li>" in shown
    assert 'title="Reason: Unsafe advice"' in shown
    assert ('<time class="card-age" datetime="2026-03-02T11:55:00+00:00" '
            'title="Received 2026-03-02 06:55 EST">5 min</time>') in shown
    assert "Sam Lee" in shown
    assert ">+2 dups</span>" in shown
    assert f'href="/tickets/{report.public_id}"' in shown
    assert "Told me how to mix bleach and ammonia." in shown
    # merged duplicates are not cards of their own
    assert page.count('<article class="card') == 1


@pytest.mark.parametrize(("ago", "label"), [
    (timedelta(seconds=20), "now"), (timedelta(minutes=5), "5 min"),
    (timedelta(hours=3, minutes=59), "3 h"), (timedelta(days=2, hours=5), "2 d"),
])
def test_a_card_says_its_age_in_one_unit(board_client, project, ago, label):
    with frozen(NOW):
        report = make_report(project, received_at=NOW - ago)
        page = html(board_client.get("/board"))
    assert re.search(r'<time class="card-age"[^>]*>([^<]+)</time>',
                     card(page, report.public_id)).group(1) == label


def test_untagged_reports_are_on_the_board_marked_untagged(board_client, project):
    pending = make_report(project, tagging_state=TaggingState.PENDING)
    tagged = make_report(project)
    page = html(board_client.get("/board"))
    assert ">untagged</li>" in card(page, pending.public_id)
    assert "untagged" not in card(page, tagged.public_id)
    assert ">no flags</li>" in card(page, tagged.public_id)


def test_the_most_urgent_card_is_first_in_each_column(project, responder):
    with frozen(NOW):
        old_p2 = make_report(project, priority=Priority.P2, received_at=NOW - timedelta(days=3))
        new_p0 = make_report(project, priority=Priority.P0, received_at=NOW - timedelta(hours=1))
        old_p0 = make_report(project, priority=Priority.P0, received_at=NOW - timedelta(hours=5))
        p1 = make_report(project, priority=Priority.P1, received_at=NOW - timedelta(days=1))
        closed_early = make_report(project, status=Status.RESOLVED, priority=Priority.P1)
        closed_early.updated_at = NOW - timedelta(days=2)
        closed_late = make_report(project, status=Status.RESOLVED, priority=Priority.P1)
        closed_late.updated_at = NOW - timedelta(hours=2)
        closed_p0 = make_report(project, status=Status.RESOLVED, priority=Priority.P0)
        closed_p0.updated_at = NOW - timedelta(days=9)
        db.session.commit()
        board = service.board(actor=responder, filters=BoardFilters())
    columns = {str(c.status): [card.report.public_id for card in c.cards] for c in board.columns}
    # open: priority, then the longest waiting
    assert columns["new"] == [old_p0.public_id, new_p0.public_id, p1.public_id,
                              old_p2.public_id]
    # closed: priority, then the most recently closed
    assert columns["resolved"] == [closed_p0.public_id, closed_late.public_id,
                                   closed_early.public_id]


def test_a_column_shows_its_most_urgent_cards_and_counts_the_rest(project, responder):
    for n in range(4):
        make_report(project, priority=Priority.P3 if n else Priority.P0)
    board = service.board(actor=responder, filters=BoardFilters(), per_column=2)
    new = board.columns[0]
    assert [c.report.priority for c in new.cards] == [Priority.P0, Priority.P3]
    assert (new.count, new.hidden, new.count_label) == (4, 2, "4")


# --- filters -------------------------------------------------------------------------------


@pytest.fixture
def spread(project, responder, make_user):
    """Reports that differ in one filterable way each."""
    other = create_project(name="Docs", origins=["https://docs.example.com"])
    sam = make_user(Role.RESPONDER, name="Sam")
    with frozen(NOW):
        reports = {
            "p0_mine": make_report(project, priority=Priority.P0, assignee_id=responder.id,
                                   description="Fifty percent off 100% of the time"),
            "p1_sams": make_report(project, priority=Priority.P1, assignee_id=sam.id,
                                   flagged=["hate"], reason=Reason.BIASED),
            "p3_other_project": make_report(other, priority=Priority.P3,
                                            flagged=["self-harm"], description="snake_case"),
            "p4_old": make_report(project, priority=Priority.P4,
                                  received_at=datetime(2026, 2, 20, 23, 30, tzinfo=UTC)),
        }
    return reports, other, sam


def shown(responder, **filters) -> set[str]:
    board = service.board(actor=responder, filters=BoardFilters(**filters))
    return {card.report.public_id for column in board.columns for card in column.cards}


def test_each_filter_narrows_the_board(spread, responder):
    reports, other, sam = spread
    ids = {name: r.public_id for name, r in reports.items()}
    assert shown(responder) == set(ids.values())
    assert shown(responder, project_id=other.id) == {ids["p3_other_project"]}
    assert shown(responder, priorities=(Priority.P0, Priority.P1)) == {ids["p0_mine"],
                                                                       ids["p1_sams"]}
    assert shown(responder, category="hate") == {ids["p1_sams"]}
    assert shown(responder, flagged=True) == {ids["p1_sams"], ids["p3_other_project"]}
    assert shown(responder, flagged=False) == {ids["p0_mine"], ids["p4_old"]}
    assert shown(responder, reason=Reason.BIASED) == {ids["p1_sams"]}
    assert shown(responder, assignee="me") == {ids["p0_mine"]}
    assert shown(responder, assignee=str(sam.id)) == {ids["p1_sams"]}
    assert shown(responder, assignee="none") == {ids["p3_other_project"], ids["p4_old"]}
    # the search is a substring match in which % and _ are plain characters
    assert shown(responder, q="100%") == {ids["p0_mine"]}
    assert shown(responder, q="e_c") == {ids["p3_other_project"]}
    assert shown(responder, q="FIFTY") == {ids["p0_mine"]}


def test_the_date_range_is_read_in_the_viewers_timezone(spread, responder):
    reports, _, _ = spread
    old = reports["p4_old"].public_id  # 2026-02-20 23:30 UTC = 2026-02-21 00:30 in Berlin
    assert old in shown(responder, received_to=datetime(2026, 2, 20).date())
    responder.timezone = "Europe/Berlin"
    assert old not in shown(responder, received_to=datetime(2026, 2, 20).date())
    assert shown(responder, received_from=datetime(2026, 2, 21).date(),
                 received_to=datetime(2026, 2, 21).date()) == {old}


def test_filters_come_from_the_url_and_the_form_shows_them(board_client, spread):
    reports, _, _ = spread
    page = html(board_client.get("/board?priority=P0&priority=P1&assignee=&q="))
    assert page.count('<article class="card') == 2
    assert 'value="P0" checked' in page and 'value="P1" checked' in page
    assert 'value="P2" checked' not in page
    # the columns fragment carries the canonical query, for polling and actions
    assert 'data-query="priority=P0&amp;priority=P1"' in page


@pytest.mark.parametrize(("query", "field"), [
    ("priority=P9", "priority"), ("from=2026-13-01", "from"), ("to=yesterday", "to"),
    ("from=2026-03-02&to=2026-03-01", "from"), ("assignee=bob", "assignee"),
    ("category=spam", "category"), ("project=0", "project"), ("flagged=maybe", "flagged"),
    ("project=" + "9" * 20, "project"), ("assignee=" + "9" * 10, "assignee"),
    ("assignee=%C2%B2", "assignee"), ("q=a%00b", "q"),
    ("reason=rude", "reason"), ("q=" + "x" * 201, "q"),
])
def test_invalid_filters_show_the_board_with_the_error(board_client, project, query, field):
    make_report(project)
    response = board_client.get(f"/board?{query}")
    assert response.status_code == 422
    page = html(response)
    assert "Some filters are invalid" in page
    assert f'<p class="field-error" id="err-{field}">' in page
    assert 'aria-invalid="true"' in page
    assert '<article class="card' not in page


def test_an_invalid_filter_on_the_fragment_is_a_json_error(board_client):
    response = board_client.get("/board?priority=P9", headers={
        "HX-Request": "true", "Accept": "application/json, text/html;q=0.9"})
    assert response.status_code == 422
    assert response.json["error"]["fields"] == {"priority": {"0": [
        "Must be one of: P0, P1, P2, P3, P4."]}}


def test_the_fragment_is_only_the_columns(board_client, project):
    report = make_report(project)
    page = html(board_client.get("/board", headers={"HX-Request": "true"}))
    assert page.lstrip().startswith("{#") is False
    assert page.strip().startswith('<div id="columns"') and "<html" not in page
    assert report.public_id in page


# --- saved views ---------------------------------------------------------------------------


def test_the_built_in_views_are_offered_and_marked_when_active(board_client):
    page = html(board_client.get("/board?priority=P1&assignee=none&priority=P0"))
    assert '<a href="/board?assignee=me" >My queue</a>' in page
    assert re.search(r'href="/board\?assignee=none&amp;priority=P0&amp;priority=P1" '
                     r'aria-current="page">Unassigned P0–P1</a>', page)


def test_a_person_saves_the_current_filters_as_a_view(board_client, responder, make_user):
    response = post_form(board_client, "/board/views",
                         {"name": "Hate, P1", "query": "category=hate&priority=P1"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/board?priority=P1&category=hate"
    assert ("Hate, P1", "priority=P1&category=hate") in service.saved_views(actor=responder)
    page = html(board_client.get("/board?priority=P1&category=hate"))
    assert 'aria-current="page">Hate, P1</a>' in page
    # another person does not see it
    assert ("Hate, P1", "priority=P1&category=hate") not in service.saved_views(
        actor=make_user(Role.RESPONDER))


@pytest.mark.parametrize("form", [{"name": "", "query": "priority=P1"},
                                  {"name": "x" * 81, "query": ""},
                                  {"name": "a\x00b", "query": ""},
                                  {"name": "Bad", "query": "priority=P7"}])
def test_a_view_without_a_name_or_with_bad_filters_is_refused(board_client, responder, form):
    assert post_form(board_client, "/board/views", form).status_code == 422
    assert service.saved_views(actor=responder) == list(service.BUILT_IN_VIEWS)


# --- new arrivals ----------------------------------------------------------------------------


def test_arrivals_counts_matching_reports_after_the_newest_seen(board_client, project):
    make_report(project)
    newest = int(re.search(r'data-newest="(\d+)"', html(board_client.get("/board"))).group(1))
    assert board_client.get(f"/board/arrivals?after={newest}").json == {"count": 0}
    make_report(project, priority=Priority.P0)
    make_report(project, priority=Priority.P3)
    assert board_client.get(f"/board/arrivals?after={newest}").json == {"count": 2}
    assert board_client.get(
        f"/board/arrivals?after={newest}&priority=P0").json == {"count": 1}


@pytest.mark.parametrize("query", ["after=abc", "after=-1", "after=1&priority=P8",
                                   "after=%C2%B2", "after=" + "9" * 30, "after=1&q=%00"])
def test_arrivals_refuses_bad_parameters(board_client, query):
    response = board_client.get(f"/board/arrivals?{query}",
                                headers={"Accept": "application/json"})
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_failed"


# --- actions ---------------------------------------------------------------------------------


def events(public_id: str) -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.subject_type == "report", AuditEvent.subject_id == public_id)
        .order_by(AuditEvent.id)))


HX = {"HX-Request": "true", "Accept": "application/json, text/html;q=0.9"}


def test_moving_a_card_returns_the_new_columns(board_client, project):
    report = make_report(project)
    response = act(board_client, [report.public_id], "move", "in_progress",
                   back="priority=P3", headers=HX)
    assert response.status_code == 200
    assert response.headers["X-Board-Message"] == "Updated 1 ticket."
    page = html(response)
    assert page.strip().startswith('<div id="columns"')
    assert column_of(page, report.public_id) == "in_progress"
    assert 'data-query="priority=P3"' in page
    assert statuses_of(report) == ["in_progress"]
    assert events(report.public_id)[-1] == "report.status_changed"


def test_without_htmx_an_action_redirects_back_to_the_same_filters(board_client, project):
    report = make_report(project)
    response = act(board_client, [report.public_id], "dismiss", back="assignee=none&q=tower")
    assert response.status_code == 302
    assert response.headers["Location"] == "/board?assignee=none&q=tower"
    assert "Updated 1 ticket." in html(board_client.get(response.headers["Location"]))
    assert statuses_of(report) == ["dismissed"]


def test_bulk_actions_change_many_tickets_in_one_request(board_client, project, responder,
                                                         make_user):
    sam = make_user(Role.RESPONDER, name="Sam")
    reports = [make_report(project) for _ in range(3)]
    ids = [r.public_id for r in reports]
    # the bulk bar sends each action's value in a field named after the action
    response = post_form(board_client, "/board/actions",
                         {"ids": ids, "action": "assign", "assign": str(sam.id),
                          "priority": "P0", "move": "resolved"}, headers=HX)
    assert response.headers["X-Board-Message"] == "Updated 3 tickets."
    assert {r.assignee_id for r in reports} == {sam.id}
    assert {r.priority for r in reports} == {Priority.P3}
    act(board_client, ids, "priority", "P1")
    act(board_client, ids, "assign", "me")
    assert {(r.priority, r.assignee_id) for r in reports} == {(Priority.P1, responder.id)}
    act(board_client, ids[:2], "move", "waiting_on_reporter")
    assert statuses_of(*reports) == ["waiting_on_reporter", "waiting_on_reporter", "new"]
    act(board_client, ids, "assign", "")
    assert {r.assignee_id for r in reports} == {None}
    assert events(ids[0]).count("report.assigned") == 3


def test_an_unchanged_ticket_is_not_counted_or_audited(board_client, project):
    report = make_report(project, priority=Priority.P2)
    before = events(report.public_id)
    response = act(board_client, [report.public_id], "priority", "P2", headers=HX)
    assert response.headers["X-Board-Message"] == "Updated 0 tickets."
    assert events(report.public_id) == before


@pytest.mark.parametrize(("form", "status"), [
    ({"action": "move", "value": "triaged"}, 422),  # no ids
    ({"ids": ["ID"], "action": "delete", "value": ""}, 422),
    ({"ids": ["ID"], "action": "move", "value": "nowhere"}, 422),
    ({"ids": ["ID"], "action": "move", "value": ""}, 422),
    ({"ids": ["ID"], "action": "priority", "value": "P9"}, 422),
    ({"ids": ["ID"], "action": "assign", "value": "bob"}, 422),
    ({"ids": ["ID"], "action": "assign", "value": "²"}, 422),
    ({"ids": ["ID"], "action": "assign", "value": "9" * 30}, 422),
    ({"ids": ["ID"], "action": "assign", "value": "999999"}, 422),  # nobody
    ({"ids": ["ID"], "action": "assign", "value": "VIEWER"}, 422),  # may not triage
    ({"ids": ["ID", "rep_doesnotexist"], "action": "dismiss"}, 404),
    ({"ids": ["ID", "rep_\x00"], "action": "dismiss"}, 422),
    ({"ids": ["ID", "x" * 33], "action": "dismiss"}, 422),
    ({"ids": ["ID"], "action": "dismiss", "back": "q=%00"}, 422),
    ({"ids": ["ID"], "action": "dismiss", "back": "priority=P9"}, 422),
])
def test_bad_actions_are_refused_and_change_nothing(board_client, project, make_user, form,
                                                    status):
    report = make_report(project)
    viewer = make_user(Role.VIEWER)
    form = {key: ([report.public_id if i == "ID" else i for i in value]
                  if key == "ids" else value.replace("VIEWER", str(viewer.id)))
            for key, value in form.items()}
    before = events(report.public_id)
    response = post_form(board_client, "/board/actions", form, headers=HX)
    assert response.status_code == status
    assert response.json["error"]["message"]
    db.session.refresh(report)
    assert (report.status, report.assignee_id) == (Status.NEW, None)
    assert events(report.public_id) == before
    # without htmx the same refusal is an HTML error page
    page = post_form(board_client, "/board/actions", form)
    assert page.status_code == status and page.mimetype == "text/html"


def test_an_action_without_the_csrf_token_is_refused(board_client, project):
    report = make_report(project)
    csrf_token(board_client)  # the session has a token; the form does not send it
    for token in ([], ["not-the-token"]):
        response = board_client.post(
            "/board/actions", headers={"Referer": "https://flagdesk.test/"},
            data={"ids": [report.public_id], "action": "dismiss", "csrf_token": token})
        assert response.status_code == 400
        assert re.search(r"The CSRF token is (missing|invalid)", html(response))
    assert statuses_of(report) == ["new"]


# --- the viewer ------------------------------------------------------------------------------


def test_a_viewer_reads_the_board_but_cannot_act(client, project, make_user):
    report = make_report(project)
    sign_in(client, make_user(Role.VIEWER))
    page = html(client.get("/board"))
    assert report.public_id in page
    assert 'data-can-triage="false"' in page
    assert 'class="card-select"' not in page
    assert 'draggable="true"' not in page
    assert 'id="bulk-form"' not in page and 'id="move-dialog"' not in page
    assert "actions are not available" in page
    for action, value in [("move", "triaged"), ("dismiss", ""), ("assign", "me"),
                          ("priority", "P0")]:
        response = act(client, [report.public_id], action, value, headers=HX)
        assert response.status_code == 403
        assert response.json["error"]["code"] == "forbidden"
    db.session.refresh(report)
    assert (report.status, report.priority, report.assignee_id) == (Status.NEW, Priority.P3,
                                                                   None)


def test_the_viewer_is_refused_by_the_service_itself(project, make_user):
    report = make_report(project)
    viewer = make_user(Role.VIEWER)
    with pytest.raises(Forbidden):
        service.move(actor=viewer, ids=[report.public_id], status=Status.TRIAGED)
    with pytest.raises(Forbidden):
        service.assign(actor=viewer, ids=[report.public_id], assignee_id=viewer.id)


# --- sensitive content -----------------------------------------------------------------------


@pytest.mark.parametrize(("flagged", "blurred"), [
    (["sexual"], True), (["sexual/minors"], True), (["self-harm"], True),
    (["self-harm/intent", "hate"], True), (["violence/graphic"], True),
    (["hate", "violence", "sexual"], True), (["violence"], False), (["harassment"], False),
    ([], False),
])
def test_disturbing_categories_are_blurred_by_default(board_client, project, flagged, blurred):
    report = make_report(project, flagged=flagged, description="the disturbing words")
    shown = card(html(board_client.get("/board")), report.public_id)
    assert ('<div class="sensitive" data-revealed="false">' in shown) is blurred
    assert "the disturbing words" in shown
    if blurred:
        assert re.search(r'<div class="sensitive-body" aria-hidden="true">\s*'
                         r'<p class="card-desc">the disturbing words', shown)
        assert 'aria-expanded="false"' in shown and ">Show text (flagged: " in shown


def test_the_reveal_preference_changes_the_default(board_client, project, responder):
    report = make_report(project, flagged=["self-harm"])
    page = html(board_client.get("/board"))
    assert 'name="reveal" value="on" >' in page or 'name="reveal" value="on"  >' in page
    response = post_form(board_client, "/settings/reveal-sensitive",
                         {"reveal": "on", "back": "/board?priority=P3"})
    assert response.headers["Location"] == "/board?priority=P3"
    assert responder.reveal_sensitive is True
    shown = card(html(board_client.get("/board")), report.public_id)
    assert '<div class="sensitive" data-revealed="true">' in shown
    assert 'aria-expanded="true"' in shown and ">Hide text</button>" in shown
    assert "checked> Show flagged content unblurred" in html(board_client.get("/board"))
    post_form(board_client, "/settings/reveal-sensitive", {"back": "/board"})
    assert responder.reveal_sensitive is False


@pytest.mark.parametrize("back", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
def test_the_preference_never_redirects_off_site(board_client, back):
    response = post_form(board_client, "/settings/reveal-sensitive", {"back": back})
    assert response.headers["Location"] == "/board"


# --- untrusted text --------------------------------------------------------------------------


def test_report_text_is_escaped_on_the_board(board_client, project):
    payload = '<script>alert(1)</script><img src=x onerror="alert(2)">"><svg onload=alert(3)>'
    report = make_report(project, description=payload, model_name=payload,
                         page_url="javascript:alert(4)", extra={"k": payload})
    page = html(board_client.get("/board"))
    shown = card(page, report.public_id)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=" in shown
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "<svg" not in page and "javascript:alert" not in page


def test_a_long_description_is_cut_on_the_card(board_client, project):
    report = make_report(project, description="word " * 200)
    shown = card(html(board_client.get("/board")), report.public_id)
    text = re.search(r'<p class="card-desc">([^<]*)</p>', shown).group(1)
    assert len(text) <= 240 and text.endswith("...")


def test_the_ticket_page_link_is_the_cards_name(board_client, project):
    report = make_report(project)
    shown = card(html(board_client.get("/board")), report.public_id)
    assert f'aria-labelledby="title-{report.public_id}"' in shown
    assert (f'<a class="card-id" id="title-{report.public_id}" '
            f'href="/tickets/{report.public_id}">{report.public_id}</a>') in shown


def test_staff_for_the_assignee_lists_excludes_viewers(board_client, make_user):
    viewer = make_user(Role.VIEWER, name="Vera Viewer")
    page = html(board_client.get("/board"))
    assert "Vera Viewer" not in page
    assert isinstance(viewer, User)


def test_finding_a_ticket_by_an_impossible_id_is_not_found(project):
    make_report(project, public_id="rep_real")
    assert service.find("rep_real").public_id == "rep_real"
    for public_id in ("rep_\x00", "rep_nothing"):
        with pytest.raises(NotFound):
            service.find(public_id)
