"""Opening incidents, linking reports, the status walk, editing, and who may do what.

Time is frozen at Monday 5 January 2026, 10:00 UTC and moved by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.core.clock import frozen
from app.core.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from app.extensions import db
from app.incidents import service
from app.incidents.links import incident_for_reports
from app.incidents.models import (
    SEVERITY_MEANINGS,
    Incident,
    IncidentReport,
    IncidentStatus,
    Severity,
    TimelineSource,
)
from app.projects.service import create_project
from tests.incidents.factories import MONDAY, at, make_report


@pytest.fixture(autouse=True)
def clock_at() -> Iterator[Callable]:
    with frozen(MONDAY) as move_to:
        yield move_to


@pytest.fixture
def lead(make_user):
    return make_user(Role.LEAD, name="Lena Lead")


def events(incident: Incident, action: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.subject_type == "incident",
                                     AuditEvent.subject_id == incident.public_id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.session.scalars(query.order_by(AuditEvent.id)))


def open_one(lead, project, *reports, **kwargs: Any) -> Incident:
    reports = reports or (make_report(project, received_at=at(5, 8)),)
    return service.open_incident(actor=lead, title=kwargs.pop("title", "Wrong capitals"),
                                 severity=kwargs.pop("severity", "SEV2"),
                                 report_ids=[r.public_id for r in reports], **kwargs)


# --- opening ---------------------------------------------------------------------------


def test_every_severity_has_a_written_meaning():
    assert set(SEVERITY_MEANINGS) == set(Severity)
    assert all(len(text) > 20 for text in SEVERITY_MEANINGS.values())


def test_open_an_incident_from_selected_reports(lead, project):
    first = make_report(project, received_at=at(5, 8), model="gpt-a")
    second = make_report(project, received_at=at(5, 9), model="gpt-b")
    incident = service.open_incident(actor=lead, title="  Wrong capitals  ", severity="SEV2",
                                     report_ids=[second.public_id, first.public_id,
                                                 first.public_id])
    db.session.expire_all()
    incident = db.session.get(Incident, incident.id)
    assert incident.public_id.startswith("inc_") and len(incident.public_id) == 20
    assert (incident.title, incident.severity, incident.status) == (
        "Wrong capitals", Severity.SEV2, IncidentStatus.INVESTIGATING)
    # Defaults from the data: the lead who opened it, detected now, started with the
    # earliest report, the reports' projects and models.
    assert incident.lead_id == lead.id and incident.created_by_id == lead.id
    assert (incident.started_at, incident.detected_at) == (at(5, 8), MONDAY)
    assert [p.id for p in incident.projects] == [project.id]
    assert incident.affected_models == ["gpt-a", "gpt-b"]
    linked = db.session.scalars(select(IncidentReport.report_id).where(
        IncidentReport.incident_id == incident.id)).all()
    assert sorted(linked) == sorted([first.id, second.id])

    opened, linked_event = events(incident)
    assert (opened.action, opened.actor_id, opened.before) == ("incident.opened", lead.id, None)
    assert opened.after["title"] == "Wrong capitals" and opened.after["severity"] == "SEV2"
    assert opened.after["started_at"] == at(5, 8).isoformat()
    assert linked_event.action == "incident.reports_linked"
    assert linked_event.after == {"reports": sorted([first.public_id, second.public_id])}


def test_the_badge_of_linked_reports_in_one_query(lead, project):
    linked, other = make_report(project), make_report(project)
    incident = open_one(lead, project, linked, severity="SEV1")
    badges = incident_for_reports([linked.id, other.id])
    assert list(badges) == [linked.id]
    badge = badges[linked.id]
    assert (badge.public_id, badge.title, badge.severity, badge.open) == (
        incident.public_id, "Wrong capitals", Severity.SEV1, True)
    assert incident_for_reports([]) == {}


def test_a_report_already_in_another_incident_is_a_conflict_naming_it(lead, project):
    taken, free = make_report(project), make_report(project)
    first = open_one(lead, project, taken, title="First")
    before = db.session.scalar(select(func.count()).select_from(Incident))
    with pytest.raises(Conflict) as raised:
        open_one(lead, project, free, taken, title="Second")
    assert f"{taken.public_id} is in incident {first.public_id} (First)" in raised.value.message
    assert raised.value.fields == {"report_ids": {taken.public_id: first.public_id}}
    assert db.session.scalar(select(func.count()).select_from(Incident)) == before
    assert incident_for_reports([free.id]) == {}

    second = open_one(lead, project, free, title="Second")
    with pytest.raises(Conflict, match=first.public_id):
        service.link_reports(actor=lead, incident_id=second.public_id,
                             report_ids=[taken.public_id])


def test_unknown_reports_and_bad_fields_are_refused(lead, project):
    with pytest.raises(NotFound, match="rep_nope"):
        service.open_incident(actor=lead, title="x", severity="SEV3", report_ids=["rep_nope"])
    with pytest.raises(ValidationFailed) as raised:
        service.open_incident(actor=lead, title=" ", severity="SEV3")
    assert "title" in raised.value.fields
    with pytest.raises(ValidationFailed):
        service.open_incident(actor=lead, title="x" * 201, severity="SEV3")
    with pytest.raises(ValidationFailed) as raised:
        service.open_incident(actor=lead, title="x", severity="SEV9")
    assert "severity" in raised.value.fields
    with pytest.raises(ValidationFailed):
        service.open_incident(actor=lead, title="x", severity="SEV3", status="closed")
    with pytest.raises(ValidationFailed) as raised:
        service.open_incident(actor=lead, title="x", severity="SEV3",
                              started_at=at(5, 9), detected_at=at(5, 8))
    assert raised.value.fields == {"detected_at": ["Must not be before started."]}
    with pytest.raises(ValidationFailed, match="not happened yet"):
        service.open_incident(actor=lead, title="x", severity="SEV3",
                              started_at=MONDAY + timedelta(minutes=1))


def test_the_lead_must_be_a_lead_and_participants_staff(lead, project, make_user):
    responder, viewer = make_user(Role.RESPONDER), make_user(Role.VIEWER)
    with pytest.raises(ValidationFailed) as raised:
        service.open_incident(actor=lead, title="x", severity="SEV3", lead_id=responder.id)
    assert "lead_id" in raised.value.fields
    with pytest.raises(ValidationFailed):
        service.open_incident(actor=lead, title="x", severity="SEV3",
                              participant_ids=[viewer.id])
    incident = service.open_incident(actor=lead, title="x", severity="SEV3", lead_id=None,
                                     participant_ids=[responder.id])
    assert incident.lead_id is None and [u.id for u in incident.participants] == [responder.id]


# --- linking ----------------------------------------------------------------------------


def test_link_and_unlink_reports(lead, project):
    incident = open_one(lead, project)
    more = [make_report(project) for _ in range(3)]
    assert service.link_reports(actor=lead, incident_id=incident.public_id,
                                report_ids=[r.public_id for r in more]) == 3
    # Linking again links nothing new and writes nothing.
    count = len(events(incident))
    assert service.link_reports(actor=lead, incident_id=incident.public_id,
                                report_ids=[more[0].public_id]) == 0
    assert len(events(incident)) == count
    page = service.linked_reports(actor=lead, incident_id=incident.public_id, limit=2)
    assert page.total == 4 and len(page.reports) == 2

    service.unlink_report(actor=lead, incident_id=incident.public_id,
                          report_id=more[1].public_id)
    last = events(incident)[-1]
    assert (last.action, last.before, last.after) == (
        "incident.report_unlinked", {"report": more[1].public_id}, None)
    assert service.linked_reports(actor=lead, incident_id=incident.public_id).total == 3
    with pytest.raises(NotFound):
        service.unlink_report(actor=lead, incident_id=incident.public_id,
                              report_id=more[1].public_id)
    # Unlinked, it may join another incident.
    other = open_one(lead, project, more[1], title="Other")
    assert incident_for_reports([more[1].id])[more[1].id].public_id == other.public_id


# --- the status walk ---------------------------------------------------------------------


def test_walk_every_status_in_order(lead, project, clock_at):
    incident = open_one(lead, project)
    steps = [(IncidentStatus.IDENTIFIED, at(5, 11), {}),
             (IncidentStatus.MONITORING, at(5, 12), {"mitigated_at": at(5, 12)}),
             (IncidentStatus.RESOLVED, at(5, 13), {"resolved_at": at(5, 13)}),
             (IncidentStatus.CLOSED, at(5, 14), {})]
    previous = IncidentStatus.INVESTIGATING
    for status, instant, stamped in steps:
        clock_at(instant)
        service.set_status(actor=lead, incident_id=incident.public_id, status=status)
        db.session.expire_all()
        incident = service.find(incident.public_id)
        assert incident.status == status and incident.updated_at == instant
        event = events(incident, "incident.status_changed")[-1]
        assert event.actor_id == lead.id
        assert event.before == {"status": str(previous),
                                **{k: None for k in stamped}}
        assert event.after == {"status": str(status),
                               **{k: v.isoformat() for k, v in stamped.items()}}
        previous = status
    assert (incident.mitigated_at, incident.resolved_at) == (at(5, 12), at(5, 13))


def test_closing_needs_resolved_and_closed_is_final(lead, project):
    incident = open_one(lead, project, detected_at=at(5, 9))
    with pytest.raises(Conflict, match="resolve it before closing"):
        service.set_status(actor=lead, incident_id=incident.public_id, status="closed")
    # Steps may be skipped forward: a quick fix goes straight to resolved.
    service.set_status(actor=lead, incident_id=incident.public_id, status="resolved",
                       at=at(5, 9, 30))
    assert (incident.mitigated_at, incident.resolved_at) == (at(5, 9, 30), at(5, 9, 30))
    service.set_status(actor=lead, incident_id=incident.public_id, status="closed")
    for status in ("investigating", "resolved"):
        with pytest.raises(Conflict, match="closed is final"):
            service.set_status(actor=lead, incident_id=incident.public_id, status=status)
    with pytest.raises(Conflict, match="closed"):
        service.link_reports(actor=lead, incident_id=incident.public_id,
                             report_ids=[make_report(project).public_id])
    # The same status again is no change and no event.
    count = len(events(incident))
    service.set_status(actor=lead, incident_id=incident.public_id, status="closed")
    assert len(events(incident)) == count
    with pytest.raises(ValidationFailed):
        service.set_status(actor=lead, incident_id=incident.public_id, status="done")


def test_going_back_clears_what_no_longer_holds(lead, project, clock_at):
    incident = open_one(lead, project)
    clock_at(at(5, 12))
    service.set_status(actor=lead, incident_id=incident.public_id, status="resolved")
    clock_at(at(5, 13))
    service.set_status(actor=lead, incident_id=incident.public_id, status="monitoring")
    assert (incident.mitigated_at, incident.resolved_at) == (at(5, 12), None)
    event = events(incident, "incident.status_changed")[-1]
    assert event.before == {"status": "resolved", "resolved_at": at(5, 12).isoformat()}
    assert event.after == {"status": "monitoring", "resolved_at": None}
    service.set_status(actor=lead, incident_id=incident.public_id, status="investigating")
    assert incident.mitigated_at is None


def test_a_status_time_out_of_the_window_or_in_the_future_is_refused(lead, project):
    incident = open_one(lead, project, started_at=at(5, 8), detected_at=at(5, 9))
    with pytest.raises(ValidationFailed) as raised:
        service.set_status(actor=lead, incident_id=incident.public_id, status="monitoring",
                           at=at(5, 7))
    assert "mitigated_at" in raised.value.fields
    # A refusal leaves no half-change behind, even unsaved.
    assert (incident.status, incident.mitigated_at) == (IncidentStatus.INVESTIGATING, None)
    with pytest.raises(ValidationFailed, match="not happened yet"):
        service.set_status(actor=lead, incident_id=incident.public_id, status="monitoring",
                           at=MONDAY + timedelta(hours=1))


# --- editing --------------------------------------------------------------------------------


def test_update_records_only_what_changed(lead, project, make_user):
    other_lead, responder = make_user(Role.LEAD), make_user(Role.RESPONDER)
    second = create_project(name="Second", origins=[])
    incident = open_one(lead, project, detected_at=at(5, 8, 30))
    count = len(events(incident))
    service.update_incident(actor=lead, incident_id=incident.public_id, title="Wrong capitals")
    assert len(events(incident)) == count  # nothing changed, nothing written

    service.update_incident(actor=lead, incident_id=incident.public_id, title="Capitals",
                            severity="SEV1", lead_id=other_lead.id,
                            participant_ids=[responder.id], project_ids=[second.id],
                            affected_models=["gpt-x"], mitigated_at=at(5, 9))
    event = events(incident)[-1]
    assert event.action == "incident.updated"
    assert event.before == {"title": "Wrong capitals", "severity": "SEV2",
                            "lead_id": lead.id, "participant_ids": [],
                            "project_ids": [project.id], "affected_models": ["gpt-test-1"],
                            "mitigated_at": None}
    assert event.after == {"title": "Capitals", "severity": "SEV1", "lead_id": other_lead.id,
                           "participant_ids": [responder.id], "project_ids": [second.id],
                           "affected_models": ["gpt-x"], "mitigated_at": at(5, 9).isoformat()}
    with pytest.raises(ValidationFailed) as raised:
        service.update_incident(actor=lead, incident_id=incident.public_id,
                                resolved_at=at(5, 8, 30))
    assert set(raised.value.fields) == {"resolved_at"}
    db.session.expire_all()
    assert service.find(incident.public_id).resolved_at is None


def test_list_incidents_newest_first_with_counts(lead, project, clock_at):
    first = open_one(lead, project, make_report(project), make_report(project), title="A")
    clock_at(at(5, 11))
    second = open_one(lead, project, title="B")
    service.set_status(actor=lead, incident_id=second.public_id, status="resolved")
    rows = service.list_incidents(actor=lead)
    assert [(r.incident.public_id, r.linked_reports) for r in rows[:2]] == [
        (second.public_id, 1), (first.public_id, 2)]
    only_open = service.list_incidents(actor=lead, statuses=["investigating"])
    assert second.public_id not in {r.incident.public_id for r in only_open}


# --- who may do what ----------------------------------------------------------------------


@pytest.fixture
def world(lead, project, make_user, clock_at) -> dict[str, Any]:
    """An incident with a report, a note, an action item and a retrospective published
    once and reopened as a draft of version 2."""
    report = make_report(project, received_at=at(5, 8))
    spare = make_report(project, received_at=at(5, 8))
    incident = open_one(lead, project, report)
    entry = service.add_timeline_entry(actor=lead, incident_id=incident.public_id,
                                       body="Paged the model team.", kind="action")
    item = service.add_action_item(actor=lead, incident_id=incident.public_id,
                                   title="Add a regression eval", due_date=date(2026, 2, 1))
    service.save_sections(actor=lead, incident_id=incident.public_id,
                          sections={"summary": "Capitals were wrong."})
    service.submit_for_review(actor=lead, incident_id=incident.public_id)
    service.sign_off(actor=lead, incident_id=incident.public_id)
    service.publish(actor=lead, incident_id=incident.public_id)
    service.reopen(actor=lead, incident_id=incident.public_id)
    event = events(incident, "incident.opened")[0]
    return {"incident": incident.public_id, "report": report.public_id,
            "spare": spare.public_id, "entry": entry.id, "item": item.id, "event": event.id,
            "lead": lead}


def _in_review(world: dict[str, Any]) -> None:
    service.submit_for_review(actor=world["lead"], incident_id=world["incident"])


def _signed(world: dict[str, Any]) -> None:
    _in_review(world)
    service.sign_off(actor=world["lead"], incident_id=world["incident"])


# name: (least role, prepare, call)
CASES: dict[str, tuple[Role, Callable | None, Callable]] = {
    "open_incident": (Role.LEAD, None, lambda a, w: service.open_incident(
        actor=a, title="New", severity="SEV4", report_ids=[w["spare"]])),
    "update_incident": (Role.LEAD, None, lambda a, w: service.update_incident(
        actor=a, incident_id=w["incident"], title="Renamed")),
    "set_status": (Role.LEAD, None, lambda a, w: service.set_status(
        actor=a, incident_id=w["incident"], status="identified")),
    "link_reports": (Role.LEAD, None, lambda a, w: service.link_reports(
        actor=a, incident_id=w["incident"], report_ids=[w["spare"]])),
    "unlink_report": (Role.LEAD, None, lambda a, w: service.unlink_report(
        actor=a, incident_id=w["incident"], report_id=w["report"])),
    "get_incident": (Role.RESPONDER, None, lambda a, w: service.get_incident(
        actor=a, incident_id=w["incident"])),
    "list_incidents": (Role.RESPONDER, None, lambda a, w: service.list_incidents(actor=a)),
    "linked_reports": (Role.RESPONDER, None, lambda a, w: service.linked_reports(
        actor=a, incident_id=w["incident"])),
    "timeline": (Role.RESPONDER, None, lambda a, w: service.timeline(
        actor=a, incident_id=w["incident"])),
    "timeline_page": (Role.RESPONDER, None, lambda a, w: service.timeline_page(
        actor=a, incident_id=w["incident"], limit=10)),
    "timeline_with_hidden": (Role.LEAD, None, lambda a, w: service.timeline(
        actor=a, incident_id=w["incident"], include_hidden=True)),
    "incident_facts": (Role.RESPONDER, None, lambda a, w: service.incident_facts(
        actor=a, incident_id=w["incident"])),
    "add_timeline_note": (Role.RESPONDER, None, lambda a, w: service.add_timeline_entry(
        actor=a, incident_id=w["incident"], body="Seen it too.")),
    "add_timeline_decision": (Role.LEAD, None, lambda a, w: service.add_timeline_entry(
        actor=a, incident_id=w["incident"], body="Roll back.", kind="decision")),
    "update_timeline_entry": (Role.LEAD, None, lambda a, w: service.update_timeline_entry(
        actor=a, incident_id=w["incident"], entry_id=w["entry"], body="Paged them.")),
    "hide_timeline_item": (Role.LEAD, None, lambda a, w: service.hide_timeline_item(
        actor=a, incident_id=w["incident"], source=TimelineSource.AUDIT,
        source_id=w["event"])),
    "unhide_timeline_item": (Role.LEAD, None, lambda a, w: service.unhide_timeline_item(
        actor=a, incident_id=w["incident"], source="entry", source_id=w["entry"])),
    "get_retrospective": (Role.RESPONDER, None, lambda a, w: service.get_retrospective(
        actor=a, incident_id=w["incident"])),
    "save_sections": (Role.LEAD, None, lambda a, w: service.save_sections(
        actor=a, incident_id=w["incident"], sections={"impact": "Many users."})),
    "save_machine_draft": (Role.LEAD, None, lambda a, w: service.save_machine_draft(
        actor=a, incident_id=w["incident"], sections={"summary": "Drafted."})),
    "submit_for_review": (Role.LEAD, None, lambda a, w: service.submit_for_review(
        actor=a, incident_id=w["incident"])),
    "sign_off": (Role.LEAD, _in_review, lambda a, w: service.sign_off(
        actor=a, incident_id=w["incident"])),
    "signoffs": (Role.RESPONDER, None, lambda a, w: service.signoffs(
        actor=a, incident_id=w["incident"], version=1)),
    "publish": (Role.LEAD, _signed, lambda a, w: service.publish(
        actor=a, incident_id=w["incident"])),
    "reopen": (Role.LEAD, _in_review, lambda a, w: service.reopen(
        actor=a, incident_id=w["incident"])),
    "published_version": (Role.VIEWER, None, lambda a, w: service.published_version(
        actor=a, incident_id=w["incident"])),
    "published_versions": (Role.VIEWER, None, lambda a, w: service.published_versions(
        actor=a, incident_id=w["incident"])),
    "list_published": (Role.VIEWER, None, lambda a, w: service.list_published(actor=a)),
    "action_items": (Role.VIEWER, None, lambda a, w: service.action_items(
        actor=a, incident_id=w["incident"])),
    "add_action_item": (Role.LEAD, None, lambda a, w: service.add_action_item(
        actor=a, incident_id=w["incident"], title="Another")),
    "update_action_item": (Role.LEAD, None, lambda a, w: service.update_action_item(
        actor=a, incident_id=w["incident"], item_id=w["item"], status="done")),
    "delete_action_item": (Role.LEAD, None, lambda a, w: service.delete_action_item(
        actor=a, incident_id=w["incident"], item_id=w["item"])),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("name", list(CASES))
def test_each_role_against_each_service_function(name, role, world, make_user):
    least, prepare, call = CASES[name]
    if prepare is not None:
        prepare(world)
    if name == "unhide_timeline_item":
        service.hide_timeline_item(actor=world["lead"], incident_id=world["incident"],
                                   source="entry", source_id=world["entry"])
    actor = make_user(role)
    if role.at_least(least):
        call(actor, world)
    else:
        with pytest.raises(Forbidden):
            call(actor, world)


@pytest.mark.parametrize("name", list(CASES))
def test_nobody_signed_in_may_do_anything(name, world):
    with pytest.raises(Unauthorized):
        CASES[name][2](None, world)


def test_a_deactivated_lead_may_do_nothing(world, make_user):
    from app.auth.service import set_user_active

    admin, gone = make_user(Role.ADMIN), make_user(Role.LEAD)
    set_user_active(actor=admin, user_id=gone.id, active=False)
    with pytest.raises(Unauthorized):
        service.update_incident(actor=gone, incident_id=world["incident"], title="x")


def test_every_public_service_function_is_in_the_permission_table():
    import inspect

    public = {name for name, f in inspect.getmembers(service, inspect.isfunction)
              if f.__module__ == service.__name__ and not name.startswith("_")
              and "actor" in inspect.signature(f).parameters}
    covered = set(CASES) | {"timeline", "add_timeline_entry", "set_timeline_item_hidden"}
    assert public <= covered, public - covered
