"""A retrospective's facts are computed from the data: times to detect, mitigate and
resolve; linked reports by reason, moderation category, model and project; the SLA
outcomes of the linked tickets from their clocks.

Time is frozen at Monday 5 January 2026, 10:00 UTC; the project has the default SLA
policy (first response: P2 4 working hours, P3 1 day; resolution P2 3 days).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.auth.models import Role
from app.core.clock import frozen
from app.extensions import db
from app.incidents import service
from app.incidents.facts import RetrospectiveFacts, SlaOutcome, facts
from app.projects.service import create_project
from app.sla import policies, sweep
from app.sla.models import SlaClock
from app.triage import service as triage
from tests.incidents.factories import MONDAY, at, count_queries, make_report


@pytest.fixture(autouse=True)
def clock_at() -> Iterator[Callable]:
    with frozen(MONDAY) as move_to:
        yield move_to


def test_facts_come_from_the_data(project, make_user, clock_at):
    lead = make_user(Role.LEAD, name="Lena Lead")
    responder = make_user(Role.RESPONDER, name="Rui Responder")
    policies.defaults(actor=None, project_id=project.id)
    other_project = create_project(name="Another", origins=[])  # no SLA policy
    answered = make_report(project, reason="harmful_or_offensive", categories=["hate",
                           "violence"], model="gpt-a", route=True)
    ignored = make_report(project, reason="harmful_or_offensive", categories=["hate"],
                          model="gpt-a", route=True)
    slow = make_report(project, reason="inaccurate", model=None, priority="P3", route=True)
    elsewhere = make_report(other_project, reason="privacy", categories=["self-harm"],
                            model="gpt-b", received_at=at(5, 9, 45), route=True)
    unlinked = make_report(project, reason="privacy", categories=["sexual"], route=True)

    incident = service.open_incident(
        actor=lead, title="Slurs", severity="SEV2", started_at=at(5, 8),
        detected_at=at(5, 9), participant_ids=[responder.id],
        report_ids=[r.public_id for r in (answered, ignored, slow, elsewhere)])
    clock_at(at(5, 10, 30))
    triage.reply(actor=responder, public_id=answered.public_id, body="Looking into it.")
    clock_at(at(5, 11))
    service.set_status(actor=lead, incident_id=incident.public_id, status="monitoring")
    triage.move(actor=responder, ids=[answered.public_id], status="resolved")
    clock_at(at(5, 14, 1))
    sweep.run()  # ignored's and unlinked's first responses breach; slow's (1 day) runs on
    clock_at(at(5, 14, 30))
    service.set_status(actor=lead, incident_id=incident.public_id, status="resolved")

    found = service.incident_facts(actor=responder, incident_id=incident.public_id)
    assert (found.time_to_detect, found.time_to_mitigate, found.time_to_resolve) == (
        timedelta(hours=1), timedelta(hours=3), timedelta(hours=6, minutes=30))
    assert found.linked_reports == 4
    assert (found.first_report_at, found.last_report_at) == (at(5, 9, 45), MONDAY)
    assert found.reports_by_reason == {"harmful_or_offensive": 2, "inaccurate": 1,
                                       "privacy": 1}
    assert list(found.reports_by_reason) == ["harmful_or_offensive", "inaccurate", "privacy"]
    assert found.reports_by_category == {"hate": 2, "self-harm": 1, "violence": 1}
    assert found.unflagged_reports == 1
    assert found.reports_by_model == {"gpt-a": 2, "(unknown)": 1, "gpt-b": 1}
    assert found.reports_by_project == {"Chat": 3, "Another": 1}
    assert found.participants == ["Lena Lead", "Rui Responder"]

    by_metric = {o.metric: o for o in found.sla}
    first = by_metric["first_response"]
    assert (first.achieved, first.breached, first.open) == (1, 1, 1)
    assert first.attainment == 0.5
    resolution = by_metric["resolution"]
    assert (resolution.achieved, resolution.breached, resolution.open) == (1, 0, 2)
    assert found.tickets_breached == 1
    # Every linked clock is counted once, and nothing of the unlinked ticket.
    linked_clocks = db.session.scalar(select(func.count()).select_from(SlaClock).where(
        SlaClock.report_id.in_([answered.id, ignored.id, slow.id, elsewhere.id])))
    assert sum(o.achieved + o.breached + o.open for o in found.sla) == linked_clocks
    # The unlinked ticket breached too, and is not among the breaches counted above.
    breached = set(db.session.scalars(select(SlaClock.report_id).where(
        SlaClock.state == "breached")))
    assert breached == {ignored.id, unlinked.id}


def test_unknown_instants_give_unknown_durations(project, make_user):
    lead = make_user(Role.LEAD)
    incident = service.open_incident(actor=lead, title="x", severity="SEV4")
    found = facts(incident=incident)
    assert incident.started_at is None and incident.detected_at == MONDAY
    assert (found.time_to_detect, found.time_to_mitigate, found.time_to_resolve) == (
        None, None, None)
    assert (found.linked_reports, found.sla, found.reports_by_reason) == (0, [], {})
    assert found.first_report_at is None


def test_facts_survive_a_round_trip_through_json(project, make_user):
    lead = make_user(Role.LEAD)
    policies.defaults(actor=None, project_id=project.id)
    report = make_report(project, categories=["hate"], route=True, received_at=at(5, 9))
    incident = service.open_incident(actor=lead, title="x", severity="SEV3",
                                     report_ids=[report.public_id])
    found = facts(incident=incident)
    data = json.loads(json.dumps(found.as_dict()))
    assert data["time_to_detect_seconds"] == 3600
    assert data["sla"][0] == {"metric": "first_response", "achieved": 0, "breached": 0,
                              "open": 1}
    assert RetrospectiveFacts.from_dict(data) == found
    assert isinstance(RetrospectiveFacts.from_dict(data).sla[0], SlaOutcome)


def test_a_fixed_number_of_queries_whatever_the_number_of_reports(project, make_user):
    lead = make_user(Role.LEAD)
    policies.defaults(actor=None, project_id=project.id)

    def incident_with(n: int):
        linked = [make_report(project, categories=["hate"], route=True) for _ in range(n)]
        return service.open_incident(actor=lead, title=f"{n}", severity="SEV3",
                                     report_ids=[r.public_id for r in linked])

    small, large = incident_with(2), incident_with(20)
    for incident in (small, large):
        db.session.refresh(incident)
        incident.participants, incident.lead  # noqa: B018 (loaded before counting)
    with count_queries() as few:
        facts(incident=small)
    with count_queries() as many:
        assert facts(incident=large).linked_reports == 20
    assert len(many) == len(few) <= 4
