"""The retrospective: draft → in review → published, sign-offs, read-only published
versions, new versions, machine-written sections, action items.

Time is frozen at Monday 5 January 2026, 10:00 UTC and moved by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.core.clock import frozen
from app.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.extensions import db
from app.incidents import service
from app.incidents.facts import RetrospectiveFacts
from app.incidents.models import (
    SECTIONS,
    ActionItemStatus,
    Incident,
    RetrospectiveSignoff,
    RetrospectiveState,
    RetrospectiveVersion,
)
from app.incidents.schemas import (
    ActionItemSchema,
    IncidentSchema,
    IncidentUpdateSchema,
    RetrospectiveFormSchema,
)
from app.triage import service as triage
from tests.incidents.factories import MONDAY, at, make_report


@pytest.fixture(autouse=True)
def clock_at() -> Iterator[Callable]:
    with frozen(MONDAY) as move_to:
        yield move_to


@pytest.fixture
def lead(make_user):
    return make_user(Role.LEAD, name="Lena Lead")


@pytest.fixture
def reviewer(make_user):
    return make_user(Role.ADMIN, name="Ada Admin")


@pytest.fixture
def incident(lead, project) -> Incident:
    report = make_report(project, categories=["hate"], received_at=at(5, 9))
    return service.open_incident(actor=lead, title="Slurs in replies", severity="SEV2",
                                 report_ids=[report.public_id])


def events(incident: Incident, prefix: str = "retrospective.") -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(
        AuditEvent.subject_type == "incident", AuditEvent.subject_id == incident.public_id,
        AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id)))


def publish_now(lead, reviewer, incident: Incident) -> RetrospectiveVersion:
    service.submit_for_review(actor=lead, incident_id=incident.public_id)
    service.sign_off(actor=reviewer, incident_id=incident.public_id)
    return service.publish(actor=lead, incident_id=incident.public_id)


def test_draft_review_sign_off_publish(lead, reviewer, incident, clock_at):
    pid = incident.public_id
    retrospective = service.save_sections(actor=lead, incident_id=pid, sections={
        "summary": "Replies contained slurs for 2 hours.", "impact": "  Many users.  "})
    assert (retrospective.state, retrospective.version) == (RetrospectiveState.DRAFT, 1)
    assert retrospective.sections == {"summary": "Replies contained slurs for 2 hours.",
                                      "impact": "Many users."}
    saved = events(incident)[-1]
    assert (saved.action, saved.actor_id) == ("retrospective.saved", lead.id)
    assert saved.before == {"sections": {"summary": "", "impact": ""}}
    assert saved.after["sections"]["impact"] == "Many users."

    with pytest.raises(Conflict, match="only a version in review"):
        service.publish(actor=lead, incident_id=pid)
    with pytest.raises(Conflict, match="sign-offs are for a version in review"):
        service.sign_off(actor=reviewer, incident_id=pid)
    service.submit_for_review(actor=lead, incident_id=pid)
    with pytest.raises(Conflict, match="must sign off"):
        service.publish(actor=lead, incident_id=pid)
    service.sign_off(actor=reviewer, incident_id=pid)
    again = service.sign_off(actor=reviewer, incident_id=pid)  # twice: no change
    assert [s.user_id for s in service.signoffs(actor=lead, incident_id=pid)] == [reviewer.id]
    assert again.user_id == reviewer.id
    service.sign_off(actor=lead, incident_id=pid)  # the author may sign off too

    clock_at(at(5, 12))
    version = service.publish(actor=lead, incident_id=pid)
    assert (version.version, version.published_at, version.published_by_id) == (
        1, at(5, 12), lead.id)
    assert set(version.sections) == set(SECTIONS)
    assert version.sections["summary"] == "Replies contained slurs for 2 hours."
    assert version.sections["root_cause"] == ""
    facts = RetrospectiveFacts.from_dict(version.facts)
    assert (facts.linked_reports, facts.reports_by_category) == (1, {"hate": 1})
    report = service.linked_reports(actor=lead, incident_id=pid).reports[0]
    assert [item["text"] for item in version.timeline] == [
        "Incident opened: Slurs in replies (SEV2)", f"Report {report.public_id} linked"]
    assert retrospective.state == RetrospectiveState.PUBLISHED
    assert retrospective.published_at == at(5, 12)
    actions = [e.action for e in events(incident)]
    assert actions == ["retrospective.saved", "retrospective.submitted",
                       "retrospective.signed_off", "retrospective.signed_off",
                       "retrospective.published"]
    published = events(incident)[-1]
    assert published.before == {"state": "in_review", "version": 1}
    assert published.after == {"state": "published", "version": 1, "signoffs": 2}


def test_a_published_version_is_read_only(lead, reviewer, incident):
    pid = incident.public_id
    service.save_sections(actor=lead, incident_id=pid, sections={"summary": "v1"})
    version = publish_now(lead, reviewer, incident)
    with pytest.raises(Conflict, match="published and read-only"):
        service.save_sections(actor=lead, incident_id=pid, sections={"summary": "changed"})
    with pytest.raises(Conflict):
        service.save_machine_draft(actor=lead, incident_id=pid, sections={"summary": "x"})
    with pytest.raises(Conflict):
        service.sign_off(actor=reviewer, incident_id=pid)
    with pytest.raises(Conflict):
        service.publish(actor=lead, incident_id=pid)
    # Not even around the service: the frozen row refuses changes.
    version.sections = {**version.sections, "summary": "sneaky"}
    with pytest.raises(RuntimeError, match="read-only"):
        db.session.flush()
    db.session.rollback()
    db.session.expire_all()
    assert service.published_version(actor=lead, incident_id=pid).sections["summary"] == "v1"


def test_editing_after_publishing_starts_a_new_version(lead, reviewer, incident, make_user,
                                                       clock_at):
    pid = incident.public_id
    viewer = make_user(Role.VIEWER)
    service.save_sections(actor=lead, incident_id=pid, sections={"summary": "v1 text"})
    publish_now(lead, reviewer, incident)

    clock_at(at(5, 13))
    retrospective = service.reopen(actor=lead, incident_id=pid)
    assert (retrospective.state, retrospective.version) == (RetrospectiveState.DRAFT, 2)
    assert retrospective.sections["summary"] == "v1 text"  # starts from the published text
    service.save_sections(actor=lead, incident_id=pid, sections={"summary": "v2 text"})
    # v1 is still there, unchanged, for everyone who may read retrospectives.
    v1 = service.published_version(actor=viewer, incident_id=pid)
    assert (v1.version, v1.sections["summary"]) == (1, "v1 text")
    # Sign-offs belong to a version: v1's do not carry over.
    service.submit_for_review(actor=lead, incident_id=pid)
    with pytest.raises(Conflict, match="sign off"):
        service.publish(actor=lead, incident_id=pid)
    service.sign_off(actor=reviewer, incident_id=pid)
    clock_at(at(5, 14))
    v2 = service.publish(actor=lead, incident_id=pid)
    assert (v2.version, v2.sections["summary"]) == (2, "v2 text")
    assert [v.version for v in service.published_versions(actor=viewer, incident_id=pid)] \
        == [1, 2]
    assert service.published_version(actor=viewer, incident_id=pid).version == 2
    assert service.published_version(actor=viewer, incident_id=pid, version=1).sections[
        "summary"] == "v1 text"
    with pytest.raises(NotFound):
        service.published_version(actor=viewer, incident_id=pid, version=3)
    assert [(s.version, s.user_id) for s in service.signoffs(actor=lead, incident_id=pid,
                                                              version=1)] == [(1, reviewer.id)]
    # The range listing: by default the newest version of each retrospective.
    assert [v.version for v in service.list_published(actor=viewer)] == [2]
    assert [v.version for v in service.list_published(actor=viewer, latest_only=False)] == [
        1, 2]
    assert [v.version for v in service.list_published(
        actor=viewer, published_from=at(5, 9), published_to=at(5, 13, 30))] == [1]


def test_viewers_read_published_retrospectives_only(lead, reviewer, incident, make_user):
    viewer = make_user(Role.VIEWER)
    pid = incident.public_id
    service.save_sections(actor=lead, incident_id=pid, sections={"summary": "draft"})
    with pytest.raises(NotFound):
        service.published_version(actor=viewer, incident_id=pid)
    for call in (service.get_retrospective, service.get_incident, service.timeline,
                 service.action_items):
        with pytest.raises(Forbidden):
            call(actor=viewer, incident_id=pid)
    publish_now(lead, reviewer, incident)
    assert service.published_version(actor=viewer, incident_id=pid).sections[
        "summary"] == "draft"
    assert service.action_items(actor=viewer, incident_id=pid) == []
    with pytest.raises(Forbidden):
        service.get_retrospective(actor=viewer, incident_id=pid)


def test_editing_in_review_goes_back_to_draft_and_drops_the_sign_offs(lead, reviewer,
                                                                      incident):
    pid = incident.public_id
    service.save_sections(actor=lead, incident_id=pid, sections={"summary": "first"})
    service.submit_for_review(actor=lead, incident_id=pid)
    service.sign_off(actor=reviewer, incident_id=pid)
    # Saving the same text changes nothing.
    service.save_sections(actor=lead, incident_id=pid, sections={"summary": "first"})
    assert service.get_retrospective(actor=lead, incident_id=pid).state == "in_review"

    retrospective = service.save_sections(actor=lead, incident_id=pid,
                                          sections={"summary": "second"})
    assert retrospective.state == RetrospectiveState.DRAFT
    assert service.signoffs(actor=lead, incident_id=pid) == []
    saved = events(incident)[-1]
    assert saved.before["state"] == "in_review" and saved.after["state"] == "draft"
    assert (saved.before["signed_off_by"], saved.after["signed_off_by"]) == ([reviewer.id], [])


def test_reopen_from_review_keeps_the_version(lead, reviewer, incident):
    pid = incident.public_id
    service.save_sections(actor=lead, incident_id=pid, sections={"summary": "x"})
    service.submit_for_review(actor=lead, incident_id=pid)
    retrospective = service.reopen(actor=lead, incident_id=pid)
    assert (retrospective.state, retrospective.version) == ("draft", 1)


def test_machine_written_sections_until_a_person_edits_or_approves(lead, reviewer, incident):
    pid = incident.public_id
    retrospective = service.save_machine_draft(actor=lead, incident_id=pid, sections={
        "summary": "Model summary.", "contributing_factors": "Model factors."})
    assert retrospective.machine_written == ["summary", "contributing_factors"]
    drafted = events(incident)[-1]
    assert drafted.action == "retrospective.machine_drafted"
    assert drafted.after["machine_written"] == ["summary", "contributing_factors"]

    with pytest.raises(Conflict, match="machine-written") as raised:
        service.submit_for_review(actor=lead, incident_id=pid)
    assert raised.value.fields == {"machine_written": ["summary", "contributing_factors"]}
    # Saving the same text is no edit: the marker stays.
    service.save_sections(actor=lead, incident_id=pid, sections={"summary": "Model summary."})
    assert retrospective.machine_written == ["summary", "contributing_factors"]
    # A person's edit clears it for that section only.
    service.save_sections(actor=lead, incident_id=pid,
                          sections={"summary": "Our summary, checked."})
    assert retrospective.machine_written == ["contributing_factors"]
    # Approving as it is clears the other.
    service.save_sections(actor=lead, incident_id=pid, sections={},
                          approve=["contributing_factors"])
    assert retrospective.machine_written == []
    approved = events(incident)[-1]
    assert approved.before["machine_written"] == ["contributing_factors"]
    assert approved.after["machine_written"] == []
    version = publish_now(lead, reviewer, incident)
    assert version.sections["contributing_factors"] == "Model factors."


def test_sections_are_checked(lead, incident):
    pid = incident.public_id
    empty = service.save_sections(actor=lead, incident_id=pid, sections={})
    assert (empty.sections, empty.state) == ({}, "draft")
    assert [e.action for e in events(incident)] == ["retrospective.started"]
    with pytest.raises(ValidationFailed):
        service.save_sections(actor=lead, incident_id=pid, sections={"gossip": "x"})
    with pytest.raises(ValidationFailed):
        service.save_sections(actor=lead, incident_id=pid, sections={"summary": "x" * 50_001})
    with pytest.raises(ValidationFailed):
        service.save_sections(actor=lead, incident_id=pid, sections={}, approve=["gossip"])
    service.save_sections(actor=lead, incident_id=pid, sections={"impact": "x"})
    with pytest.raises(ValidationFailed, match="summary"):
        service.submit_for_review(actor=lead, incident_id=pid)
    with pytest.raises(NotFound):
        service.sign_off(actor=lead, incident_id="inc_nope")


def test_the_published_timeline_leaves_hidden_items_out_and_facts_stay_as_published(
        lead, reviewer, incident, project, make_user):
    pid = incident.public_id
    responder = make_user(Role.RESPONDER)
    report = service.linked_reports(actor=lead, incident_id=pid).reports[0]
    triage.add_note(actor=responder, public_id=report.public_id, body="noise")
    noise = service.timeline(actor=lead, incident_id=pid)[-1]
    service.hide_timeline_item(actor=lead, incident_id=pid, source=noise.source,
                               source_id=noise.source_id)
    service.save_sections(actor=lead, incident_id=pid, sections={"summary": "x"})
    version = publish_now(lead, reviewer, incident)
    assert noise.source_id not in {i["source_id"] for i in version.timeline
                                   if i["source"] == "audit"}
    assert len(version.timeline) == len(service.timeline(actor=lead, incident_id=pid))

    service.link_reports(actor=lead, incident_id=pid,
                         report_ids=[make_report(project).public_id])
    db.session.expire_all()
    assert service.published_version(actor=lead, incident_id=pid).facts["linked_reports"] == 1
    assert service.incident_facts(actor=lead, incident_id=pid).linked_reports == 2


# --- action items -----------------------------------------------------------------------


def test_action_items_crud_with_audit(lead, incident, make_user):
    pid = incident.public_id
    owner = make_user(Role.RESPONDER)
    item = service.add_action_item(actor=lead, incident_id=pid, title=" Add an eval ",
                                   owner_id=owner.id, due_date=date(2026, 1, 30),
                                   link="https://tracker.example.com/T-1")
    assert (item.title, item.status, item.owner_id) == ("Add an eval", "open", owner.id)
    added = events(incident, "action_item.")[-1]
    assert added.after == {"item_id": item.id, "title": "Add an eval", "owner_id": owner.id,
                           "due_date": "2026-01-30", "status": "open",
                           "link": "https://tracker.example.com/T-1"}

    service.update_action_item(actor=lead, incident_id=pid, item_id=item.id,
                               status=ActionItemStatus.DONE, link=None)
    updated = events(incident, "action_item.")[-1]
    assert updated.before == {"item_id": item.id, "status": "open",
                              "link": "https://tracker.example.com/T-1"}
    assert updated.after == {"item_id": item.id, "status": "done", "link": None}
    assert [i.id for i in service.action_items(actor=lead, incident_id=pid)] == [item.id]

    service.delete_action_item(actor=lead, incident_id=pid, item_id=item.id)
    deleted = events(incident, "action_item.")[-1]
    assert deleted.action == "action_item.deleted" and deleted.before["title"] == "Add an eval"
    assert service.action_items(actor=lead, incident_id=pid) == []
    with pytest.raises(NotFound):
        service.update_action_item(actor=lead, incident_id=pid, item_id=item.id, title="x")


def test_action_items_are_checked(lead, incident, make_user, clock_at):
    pid = incident.public_id
    viewer = make_user(Role.VIEWER)
    for kwargs in ({"title": ""}, {"title": "x", "link": "javascript:alert(1)"},
                   {"title": "x", "link": "ftp://example.com/x"},
                   {"title": "x", "link": "https://"},
                   {"title": "x", "due_date": date(2026, 1, 4)},
                   {"title": "x", "owner_id": viewer.id},
                   {"title": "x", "status": "someday"}):
        with pytest.raises(ValidationFailed):
            service.add_action_item(actor=lead, incident_id=pid, **kwargs)
    item = service.add_action_item(actor=lead, incident_id=pid, title="x",
                                   due_date=date(2026, 1, 6))
    # Once overdue, an item keeps its date through other edits; a new past date is refused.
    clock_at(at(8, 10))
    service.update_action_item(actor=lead, incident_id=pid, item_id=item.id,
                               due_date=date(2026, 1, 6), status="in_progress")
    with pytest.raises(ValidationFailed):
        service.update_action_item(actor=lead, incident_id=pid, item_id=item.id,
                                   due_date=date(2026, 1, 7))


# --- schemas ------------------------------------------------------------------------------


def test_incident_schema_checks_title_enums_and_window_order():
    from marshmallow import ValidationError

    loaded = IncidentSchema().load({"title": " Slurs ", "severity": "SEV1",
                                    "started_at": "2026-01-05T08:00:00Z",
                                    "detected_at": "2026-01-05T09:00:00+01:00"})
    assert loaded["title"] == "Slurs" and loaded["severity"] == "SEV1"
    for bad, field in (({"title": "", "severity": "SEV1"}, "title"),
                       ({"title": "x" * 201, "severity": "SEV1"}, "title"),
                       ({"title": "x", "severity": "SEV5"}, "severity"),
                       ({"title": "x", "severity": "SEV1",
                         "detected_at": "2026-01-05T09:00:00"}, "detected_at"),
                       ({"title": "x", "severity": "SEV1", "started_at": "2026-01-05T10:00Z",
                         "resolved_at": "2026-01-05T09:00Z"}, "resolved_at"),
                       ({"title": "x", "severity": "SEV1", "mitigated_at": "2026-01-05T10:00Z",
                         "resolved_at": "2026-01-05T09:59Z"}, "resolved_at")):
        with pytest.raises(ValidationError) as raised:
            IncidentSchema().load(bad)
        assert field in raised.value.messages
    with pytest.raises(ValidationError):
        IncidentSchema().load({"title": "x", "severity": "SEV1", "status": "closed"})
    # Edits leave the status to set_status and keep only what was sent.
    assert IncidentUpdateSchema().load({"status": "closed", "title": "y"}) == {"title": "y"}


def test_what_the_incident_schema_loads_the_service_takes(lead, project):
    report = make_report(project, received_at=at(5, 9))
    data = IncidentSchema().load({"title": "From the form", "severity": "SEV3",
                                  "status": "identified", "report_ids": [report.public_id]})
    incident = service.open_incident(actor=lead, **data)
    assert (incident.lead_id, incident.status, incident.started_at) == (
        lead.id, "identified", at(5, 9))


def test_action_item_and_retrospective_form_schemas():
    from marshmallow import ValidationError

    assert ActionItemSchema().load({"title": "x", "link": ""})["link"] is None
    assert ActionItemSchema().load({"title": "x", "due_date": "2026-02-01"})["due_date"] == \
        date(2026, 2, 1)
    for link in ("javascript:alert(1)", "data:text/html,x", "https://exa mple.com",
                 "//example.com"):
        with pytest.raises(ValidationError):
            ActionItemSchema().load({"title": "x", "link": link})
    with pytest.raises(ValidationError):
        ActionItemSchema().load({"title": "x", "due_date": "1999-12-31"})
    form = RetrospectiveFormSchema().load({"summary": " S ", "lessons": "L",
                                           "approve": ["summary"], "other": "ignored"})
    assert form == {"sections": {"summary": "S", "lessons": "L"}, "approve": ["summary"]}
    assert set(RetrospectiveFormSchema().fields) == set(SECTIONS) | {"approve"}


def test_signoff_rows_are_unique_per_version_and_user(lead, reviewer, incident):
    service.save_sections(actor=lead, incident_id=incident.public_id,
                          sections={"summary": "x"})
    service.submit_for_review(actor=lead, incident_id=incident.public_id)
    service.sign_off(actor=reviewer, incident_id=incident.public_id)
    service.sign_off(actor=reviewer, incident_id=incident.public_id)
    assert len(db.session.scalars(select(RetrospectiveSignoff)).all()) == 1
    assert MONDAY == service.signoffs(actor=lead, incident_id=incident.public_id)[0].signed_at
