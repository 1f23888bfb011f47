"""The incident timeline: audit events of the incident and of its linked reports, plus
what people write, in time order; hidden items; a fixed number of queries.

Time is frozen at Monday 5 January 2026, 10:00 UTC and moved by hand; the project has
the default SLA policy (first response for P2: 4 working hours).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from app.auth.models import Role
from app.core.clock import frozen
from app.core.errors import Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.incidents import export, service
from app.incidents.models import TimelineSource
from app.incidents.timeline import build_timeline, listed
from app.reports import service as reports
from app.sla import policies, sweep
from app.triage import service as triage
from tests.incidents.factories import MONDAY, at, count_queries, make_report


@pytest.fixture(autouse=True)
def clock_at() -> Iterator[Callable]:
    with frozen(MONDAY) as move_to:
        yield move_to


@pytest.fixture
def lead(make_user):
    return make_user(Role.LEAD, name="Lena Lead")


@pytest.fixture
def responder(make_user):
    return make_user(Role.RESPONDER, name="Rui Responder")


@pytest.fixture
def sla_project(project):
    policies.defaults(actor=None, project_id=project.id)
    return project


def rows(items) -> list[tuple]:
    return [(i.at, i.author, i.kind, i.text) for i in items]


def test_the_timeline_tells_what_happened_in_time_order(lead, responder, sla_project,
                                                        clock_at):
    project = sla_project
    first = make_report(project, route=True)
    first.status_token_hash = hashlib.sha256(b"reporter-token").hexdigest()
    second = make_report(project, route=True)
    early = make_report(project, route=True)
    unrelated = make_report(project, route=True)

    clock_at(at(5, 10, 3))
    triage.move(actor=responder, ids=[early.public_id, unrelated.public_id], status="triaged")
    clock_at(at(5, 10, 5))
    incident = service.open_incident(actor=lead, title="Wrong capitals", severity="SEV2",
                                     report_ids=[first.public_id, second.public_id])
    clock_at(at(5, 10, 10))
    triage.move(actor=responder, ids=[first.public_id], status="in_progress")
    clock_at(at(5, 10, 15))
    triage.add_note(actor=responder, public_id=first.public_id, body="Seen in EU too.")
    clock_at(at(5, 10, 20))
    triage.reply(actor=responder, public_id=first.public_id, body="We are on it.")
    clock_at(at(5, 10, 25))
    reports.reporter_answer(public_id=first.public_id, token="reporter-token",
                            body="Still wrong! =HYPERLINK(evil)")
    clock_at(at(5, 10, 30))
    service.add_timeline_entry(actor=lead, incident_id=incident.public_id, kind="detection",
                               body="Alert fired on the eval dashboard.", at=at(5, 10, 2))
    service.add_timeline_entry(actor=responder, incident_id=incident.public_id,
                               body="Rolled back to **v41**.")
    clock_at(at(5, 10, 40))
    service.link_reports(actor=lead, incident_id=incident.public_id,
                         report_ids=[early.public_id])
    clock_at(at(5, 14, 1))  # second's first response was due at 14:00
    assert sweep.run().breached >= 1
    service.set_status(actor=lead, incident_id=incident.public_id, status="identified")

    items = service.timeline(actor=responder, incident_id=incident.public_id)
    assert rows(items) == [
        (at(5, 10, 2), "Lena Lead", "detection", "Alert fired on the eval dashboard."),
        (at(5, 10, 3), "Rui Responder", "status", f"{early.public_id}: status new → triaged"),
        (at(5, 10, 5), "Lena Lead", "incident", "Incident opened: Wrong capitals (SEV2)"),
        (at(5, 10, 5), "Lena Lead", "link", "2 reports linked"),
        (at(5, 10, 10), "Rui Responder", "status",
         f"{first.public_id}: status new → in_progress"),
        (at(5, 10, 15), "Rui Responder", "note", f"{first.public_id}: internal note added"),
        (at(5, 10, 20), "Rui Responder", "reply",
         f"{first.public_id}: public reply sent to the reporter"),
        (at(5, 10, 25), "reporter", "reply", f"{first.public_id}: the reporter answered"),
        (at(5, 10, 30), "Rui Responder", "note", "Rolled back to **v41**."),
        (at(5, 10, 40), "Lena Lead", "link", f"Report {early.public_id} linked"),
        (at(5, 14, 1), "system", "sla",
         f"{second.public_id}: SLA first response target (240 min) breached"),
        (at(5, 14, 1), "Lena Lead", "status", "Status investigating → identified"),
    ]
    # Each item says where it comes from; the reporter's words never reach the timeline.
    assert {i.source for i in items} == {TimelineSource.AUDIT, TimelineSource.ENTRY}
    assert all("HYPERLINK" not in i.text for i in items)
    assert not any(unrelated.public_id in i.text for i in items)
    assert items[1].subject == early.public_id and items[1].action == "report.status_changed"
    assert items[0].subject == incident.public_id and items[0].action is None
    assert all(not i.hidden for i in items)


def test_lead_entries_need_a_body_and_a_known_kind_and_happened_already(lead, project):
    incident = service.open_incident(actor=lead, title="x", severity="SEV3")
    for kwargs in ({"body": "  "}, {"body": "x" * 10_001}, {"body": "x", "kind": "gossip"},
                   {"body": "x", "at": MONDAY + timedelta(minutes=5)}):
        with pytest.raises(ValidationFailed):
            service.add_timeline_entry(actor=lead, incident_id=incident.public_id, **kwargs)


def test_responders_write_notes_only(lead, responder, project):
    incident = service.open_incident(actor=lead, title="x", severity="SEV3")
    note = service.add_timeline_entry(actor=responder, incident_id=incident.public_id,
                                      body="Seen it too.")
    assert (note.kind, note.author_id, note.at) == ("note", responder.id, MONDAY)
    with pytest.raises(Forbidden):
        service.add_timeline_entry(actor=responder, incident_id=incident.public_id,
                                   body="Roll back.", kind="decision")


def test_hidden_items_leave_the_published_view_but_stay_for_the_lead(lead, responder, project,
                                                                     clock_at):
    report = make_report(project)
    incident = service.open_incident(actor=lead, title="x", severity="SEV3",
                                     report_ids=[report.public_id])
    clock_at(at(5, 10, 10))
    triage.add_note(actor=responder, public_id=report.public_id, body="noise")
    entry = service.add_timeline_entry(actor=lead, incident_id=incident.public_id,
                                       body="Coffee break.")
    full = service.timeline(actor=lead, incident_id=incident.public_id, include_hidden=True)
    note = next(i for i in full if i.kind == "note" and i.source == TimelineSource.AUDIT)

    assert service.hide_timeline_item(actor=lead, incident_id=incident.public_id,
                                      source="audit", source_id=note.source_id)
    assert service.hide_timeline_item(actor=lead, incident_id=incident.public_id,
                                      source="entry", source_id=entry.id)
    assert not service.hide_timeline_item(actor=lead, incident_id=incident.public_id,
                                          source="entry", source_id=entry.id)  # no change
    published = service.timeline(actor=responder, incident_id=incident.public_id)
    assert len(published) == len(full) - 2
    assert note.source_id not in {i.source_id for i in published
                                  if i.source == TimelineSource.AUDIT}
    lead_view = service.timeline(actor=lead, incident_id=incident.public_id,
                                 include_hidden=True)
    assert [(i.source, i.source_id) for i in lead_view] == [
        (i.source, i.source_id) for i in full]
    assert {(i.source, i.source_id) for i in lead_view if i.hidden} == {
        (TimelineSource.AUDIT, note.source_id), (TimelineSource.ENTRY, entry.id)}
    with pytest.raises(Forbidden):
        service.timeline(actor=responder, incident_id=incident.public_id, include_hidden=True)

    # Nothing was deleted: showing it again brings it back, and both steps are audited.
    service.unhide_timeline_item(actor=lead, incident_id=incident.public_id, source="entry",
                                 source_id=entry.id)
    assert len(service.timeline(actor=lead, incident_id=incident.public_id)) == len(full) - 1
    actions = [e.action for e in _incident_events(incident)]
    assert actions.count("incident.timeline_item_hidden") == 2
    assert actions.count("incident.timeline_item_shown") == 1


def _incident_events(incident):
    from sqlalchemy import select

    from app.audit.models import AuditEvent

    return list(db.session.scalars(select(AuditEvent).where(
        AuditEvent.subject_type == "incident", AuditEvent.subject_id == incident.public_id)
        .order_by(AuditEvent.id)))


def test_only_items_of_this_timeline_can_be_hidden(lead, responder, project):
    mine, theirs = make_report(project), make_report(project)
    incident = service.open_incident(actor=lead, title="x", severity="SEV3",
                                     report_ids=[mine.public_id])
    other = service.open_incident(actor=lead, title="y", severity="SEV3",
                                  report_ids=[theirs.public_id])
    triage.add_note(actor=responder, public_id=theirs.public_id, body="theirs")
    foreign = service.timeline(actor=lead, incident_id=other.public_id)
    entry = service.add_timeline_entry(actor=lead, incident_id=other.public_id, body="theirs")
    for source, source_id in [("audit", foreign[-1].source_id), ("entry", entry.id),
                              ("audit", 10**9)]:
        with pytest.raises(NotFound):
            service.hide_timeline_item(actor=lead, incident_id=incident.public_id,
                                       source=source, source_id=source_id)
    with pytest.raises(ValidationFailed):
        service.hide_timeline_item(actor=lead, incident_id=incident.public_id,
                                   source="gossip", source_id=1)


def test_a_lead_corrects_an_entry_and_the_audit_keeps_the_old_text(lead, project):
    incident = service.open_incident(actor=lead, title="x", severity="SEV3")
    entry = service.add_timeline_entry(actor=lead, incident_id=incident.public_id,
                                       body="Rolled back", kind="action")
    service.update_timeline_entry(actor=lead, incident_id=incident.public_id,
                                  entry_id=entry.id, body="Rolled back to v41")
    event = _incident_events(incident)[-1]
    assert (event.action, event.before, event.after) == (
        "incident.timeline_entry_changed", {"entry_id": entry.id, "body": "Rolled back"},
        {"entry_id": entry.id, "body": "Rolled back to v41"})


def test_a_fixed_number_of_queries_whatever_the_number_of_reports(lead, responder, project,
                                                                  make_user):
    def incident_with(n: int):
        linked = [make_report(project) for _ in range(n)]
        incident = service.open_incident(actor=lead, title=f"{n}", severity="SEV3",
                                         report_ids=[r.public_id for r in linked])
        for report in linked:
            triage.move(actor=responder, ids=[report.public_id], status="triaged")
            triage.assign(actor=responder, ids=[report.public_id],
                          assignee_id=make_user(Role.RESPONDER).id)
            service.add_timeline_entry(actor=make_user(Role.RESPONDER),
                                       incident_id=incident.public_id, body="x")
        db.session.expire_all()
        return service.find(incident.public_id)

    small, large = incident_with(2), incident_with(15)
    db.session.refresh(small)
    with count_queries() as few:
        small_items = build_timeline(small, include_hidden=True)
    with count_queries() as many:
        large_items = build_timeline(large, include_hidden=True)
    assert len(large_items) > len(small_items) + 30
    assert len(many) == len(few) <= 5
    assignments = [i.text for i in large_items if i.kind == "assignment"]
    assert len(assignments) == 15 and all(" assigned to responder " in t
                                          for t in assignments)


def test_as_dict_is_plain_json(lead, project):
    import json

    incident = service.open_incident(actor=lead, title="x", severity="SEV3")
    item = service.timeline(actor=lead, incident_id=incident.public_id)[0]
    data = item.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["at"] == MONDAY.isoformat() and data["source"] == "audit"


def test_pages_put_together_are_the_whole_timeline(lead, responder, project, clock_at):
    reports = [make_report(project) for _ in range(4)]
    incident = service.open_incident(actor=lead, title="x", severity="SEV3",
                                     report_ids=[r.public_id for r in reports])
    # Ties on purpose: events and entries at the same instants.
    for minute in (10, 20):
        clock_at(at(5, 10, minute))
        triage.move(actor=responder, ids=[r.public_id for r in reports], status="triaged"
                    if minute == 10 else "in_progress")
        for n in range(2):
            service.add_timeline_entry(actor=lead, incident_id=incident.public_id,
                                       body=f"entry {minute}/{n}")
    full = service.timeline(actor=lead, incident_id=incident.public_id, include_hidden=True)
    noisy = [full[3], full[7]]
    for item in noisy:
        service.hide_timeline_item(actor=lead, incident_id=incident.public_id,
                                   source=item.source, source_id=item.source_id)

    for include_hidden, expected in ((True, full), (False, [i for i in full
                                                            if i not in noisy])):
        collected, after, pages = [], None, 0
        while True:
            page = service.timeline_page(actor=lead, incident_id=incident.public_id,
                                         include_hidden=include_hidden, limit=3, after=after)
            collected += page.items
            pages += 1
            if page.next is None:
                break
            after = page.next.encode()
        assert [(i.source, i.source_id) for i in collected] == [
            (i.source, i.source_id) for i in expected]
        assert pages == -(-len(expected) // 3)
    assert {i.hidden for i in service.timeline_page(
        actor=lead, incident_id=incident.public_id, include_hidden=True,
        limit=100).items} == {True, False}


def test_the_listed_part_reads_no_more_than_it_shows_and_matches_the_whole(
        lead, responder, project, clock_at):
    """What documents show (timeline.listed, which reads about `limit` rows) is what
    listing the whole published timeline gives: the incident's own items first, then the
    reports' earliest events, in time order, hidden ones left out; and the total."""
    reports = [make_report(project) for _ in range(3)]
    incident = service.open_incident(actor=lead, title="x", severity="SEV3",
                                     report_ids=[r.public_id for r in reports])
    for minute in (10, 20, 30):
        clock_at(at(5, 10, minute))
        triage.move(actor=responder, ids=[r.public_id for r in reports],
                    status={10: "triaged", 20: "in_progress", 30: "resolved"}[minute])
        service.add_timeline_entry(actor=lead, incident_id=incident.public_id,
                                   body=f"entry {minute}")
    full = service.timeline(actor=lead, incident_id=incident.public_id, include_hidden=True)
    hidden = [next(i for i in full if i.subject != incident.public_id),
              next(i for i in full if i.source == TimelineSource.ENTRY)]
    for item in hidden:
        service.hide_timeline_item(actor=lead, incident_id=incident.public_id,
                                   source=item.source, source_id=item.source_id)
    published = [i.as_dict() for i in build_timeline(incident, include_hidden=False)]
    own = sum(1 for i in published if i["subject"] == incident.public_id)
    assert 0 < own < len(published) - 2  # both kinds, so every limit below tells

    for limit in (1, own - 1, own, own + 1, len(published) - 1, len(published), 100):
        shown = listed(incident, limit=limit)
        assert [i.as_dict() for i in shown.items] == export.listed_timeline(
            published, incident.public_id, limit)
        assert shown.total == len(published)


def test_a_bad_cursor_or_limit_is_refused(lead, project):
    incident = service.open_incident(actor=lead, title="x", severity="SEV3")
    for after in ("nonsense", "2026-01-05T10:00:00~audit~x", "2026-01-05T10:00:00~elsewhere~1",
                  "2026-01-05T10:00:00~audit~1"):
        with pytest.raises(ValidationFailed):
            service.timeline_page(actor=lead, incident_id=incident.public_id, after=after)
    for limit in (0, 1001):
        with pytest.raises(ValidationFailed):
            service.timeline_page(actor=lead, incident_id=incident.public_id, limit=limit)
    page = service.timeline_page(actor=lead, incident_id=incident.public_id,
                                 after="2026-01-05T09:00:00Z~audit~0")
    assert [i.action for i in page.items] == ["incident.opened"] and page.next is None
