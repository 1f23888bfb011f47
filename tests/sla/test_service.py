"""The SLA rules, one test (or a few) per rule, through the functions responders use.

Calendar of the default policy: Monday to Friday, 09:00-17:00 UTC. Time is frozen at
Monday 5 January 2026, 10:00 UTC (see conftest) and moved by hand.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.auth.models import Role
from app.core.errors import Forbidden, ValidationFailed
from app.extensions import db
from app.reports.models import Report, Status
from app.reports.tagging import sweep_untagged
from app.sla import calendars, policies, sweep
from app.sla import service as sla
from app.sla.models import ClockState, Metric, SlaCalendar, SlaClock
from app.triage import service as triage
from tests.conftest import DownModerator, ScriptedModerator, report_body
from tests.sla.conftest import MONDAY, at, clock, deliveries, fresh, history


@pytest.fixture
def responder(make_user):
    return make_user(Role.RESPONDER)


# --- targets and calendars -------------------------------------------------------------


def test_clocks_start_at_receipt_with_the_priority_target(ticket):
    report = ticket(priority="P2")
    first = clock(report, "first_response")
    assert (first.state, first.started_at, first.target_minutes) == ("running", MONDAY, 240)
    assert first.due_at == at(5, 14) and first.at_risk_at == at(5, 13)  # 75% of 4 h
    resolution = clock(report, "resolution")
    assert resolution.target_minutes == 3 * 480
    # Monday 10-17, Tuesday, Wednesday: 23 h; the 24th is Thursday 09-10.
    assert resolution.due_at == at(8, 10)
    assert clock(report, "next_update") is None  # owed only after a public reply


def test_a_category_target_wins_over_the_priority_and_the_tightest_category_wins(
        ticket, project):
    report = ticket(priority="P1", categories=["self-harm"])
    first = clock(report, "first_response")
    assert (first.target_minutes, first.category, first.due_at) == (30, "self-harm", at(5, 10, 30))
    assert clock(report, "resolution").target_minutes == 480  # no category target: P1's

    policies.set_target(actor=None, project_id=project.id, metric="first_response",
                        category="violence", minutes=20)
    both = ticket(priority="P1", categories=["self-harm", "violence"])
    assert (clock(both, "first_response").target_minutes,
            clock(both, "first_response").category) == (20, "violence")


def test_no_matching_target_means_no_clock_for_that_metric(ticket, project):
    policy = policies.get_policy(actor=None, project_id=project.id)
    p4 = next(t for t in policy.targets if t.metric == "resolution" and t.priority == "P4")
    policies.remove_target(actor=None, project_id=project.id, target_id=p4.id)
    report = ticket(priority="P4")
    assert clock(report, "first_response") is not None
    assert clock(report, "resolution") is None


def test_a_project_without_a_policy_has_no_clocks(make_user, clock_at):
    from app.projects.service import create_project
    from tests.sla.conftest import _numbers

    other = create_project(name="No SLA", origins=[])
    report = Report(public_id=f"rep_nopolicy{next(_numbers)}", project_id=other.id,
                    reason="other", status_token_hash="0" * 64, received_at=MONDAY,
                    updated_at=MONDAY)
    db.session.add(report)
    db.session.flush()
    sla.routed(report)
    db.session.commit()
    assert db.session.scalar(select(SlaClock).where(SlaClock.report_id == report.id)) is None
    assert (fresh(report).sla_rank, fresh(report).sla_due_at) == (2, None)


def test_p0_runs_around_the_clock_unless_the_policy_says_otherwise(ticket, project, clock_at):
    saturday_night = at(10, 3)
    clock_at(saturday_night)
    report = ticket(priority="P0", received_at=saturday_night)
    first = clock(report, "first_response")
    assert first.always_on and first.due_at == at(10, 3, 15)
    assert clock(report, "resolution").due_at == at(10, 7)  # 4 h

    policies.update_policy(actor=None, project_id=project.id, p0_around_the_clock=False)
    business = ticket(priority="P0", received_at=saturday_night)
    assert clock(business, "first_response").due_at == at(12, 9, 15)  # Monday 09:15


def test_public_holidays_and_the_teams_own_dates_do_not_count(ticket, project, clock_at):
    berlin = policies.create_calendar(actor=None, name="Munich", timezone="Europe/Berlin",
                                      holiday_country="de", holiday_subdivision="by")
    policies.update_policy(actor=None, project_id=project.id, calendar_id=berlin.id)
    # Monday 16:00 in Munich: 1 h that day; Tuesday 6 January is Epiphany in Bavaria;
    # the other 3 h on Wednesday, 09:00-12:00 local (11:00 UTC).
    clock_at(at(5, 15))
    report = ticket(priority="P2")
    assert clock(report, "first_response").due_at == at(7, 11)

    policies.add_holiday(actor=None, calendar_id=berlin.id, day="2026-01-07")
    later = ticket(priority="P2")
    assert clock(later, "first_response").due_at == at(8, 11)


def test_built_calendars_are_cached_until_the_calendar_changes(policy, project):
    calendar = db.session.get(SlaCalendar, policy.calendar_id)
    first = calendars.build(calendar, first_year=2026, last_year=2026)
    assert calendars.build(calendar, first_year=2026, last_year=2026) is first
    policies.set_hours(actor=None, calendar_id=calendar.id, days=["sat"],
                       spans=[["10:00", "14:00"]])
    changed = calendars.build(db.session.get(SlaCalendar, calendar.id), first_year=2026,
                              last_year=2026)
    assert changed is not first and changed.week[5]


# --- routing starts the clocks ---------------------------------------------------------


def test_routing_starts_the_clocks_from_receipt(submit, use_moderator, policy, clock_at):
    use_moderator(DownModerator())
    receipt = submit(report_body(description="I want to hurt myself")).json
    report = db.session.scalar(select(Report).where(Report.public_id == receipt["id"]))
    assert clock(report, "first_response") is None  # not routed yet

    clock_at(MONDAY + timedelta(minutes=3))
    use_moderator(ScriptedModerator({"hurt": {"self-harm": 0.9}}))
    db.session.execute(Report.__table__.update().values(next_tagging_at=None))
    sweep_untagged(moderator=ScriptedModerator({"hurt": {"self-harm": 0.9}}))
    first = clock(report, "first_response")
    assert fresh(report).priority == "P1"
    assert (first.started_at, first.category, first.due_at) == (MONDAY, "self-harm",
                                                               at(5, 10, 30))
    assert fresh(report).sla_due_at == at(5, 10, 30)


def test_the_sweep_starts_clocks_for_reports_tagging_never_reached(submit, use_moderator,
                                                                   policy, clock_at):
    use_moderator(DownModerator())
    old = submit().json
    clock_at(MONDAY + timedelta(minutes=4))
    young = submit(report_body(description="Another one")).json
    clock_at(MONDAY + timedelta(minutes=6))
    result = sweep.run()
    assert result.started == 1
    reports = {r.public_id: r for r in db.session.scalars(select(Report))}
    first = clock(reports[old["id"]], "first_response")
    assert first.started_at == MONDAY and first.priority == "P3"  # intake's priority
    assert clock(reports[young["id"]], "first_response") is None  # still in its grace


def test_clocks_started_late_catch_up_with_what_responders_did(submit, use_moderator, policy,
                                                               responder, clock_at):
    use_moderator(DownModerator())
    receipt = submit().json
    clock_at(MONDAY + timedelta(minutes=2))
    triage.move(actor=responder, ids=[receipt["id"]], status=Status.WAITING_ON_REPORTER)
    clock_at(MONDAY + timedelta(minutes=6))
    assert sweep.run().started == 1
    report = db.session.scalar(select(Report).where(Report.public_id == receipt["id"]))
    first = clock(report, "first_response")
    assert (first.state, first.stopped_at, first.elapsed_seconds) == (
        "achieved", MONDAY + timedelta(minutes=2), 120)
    resolution = clock(report, "resolution")
    assert (resolution.state, resolution.paused_at) == ("paused",
                                                        MONDAY + timedelta(minutes=2))


# --- first response -------------------------------------------------------------------------


@pytest.mark.parametrize("act", ["move", "assign", "reply"])
def test_the_first_response_is_a_responder_acting(ticket, responder, clock_at, act):
    report = ticket(priority="P2")
    clock_at(MONDAY + timedelta(minutes=45))
    if act == "move":
        triage.move(actor=responder, ids=[report.public_id], status=Status.TRIAGED)
    elif act == "assign":
        triage.assign(actor=responder, ids=[report.public_id], assignee_id=responder.id)
    else:
        triage.reply(actor=responder, public_id=report.public_id, body="We are looking.")
    first = clock(report, "first_response")
    assert (first.state, first.stopped_at, first.elapsed_seconds) == (
        "achieved", MONDAY + timedelta(minutes=45), 45 * 60)


def test_notes_and_priority_changes_are_not_a_first_response(ticket, responder, clock_at):
    report = ticket(priority="P2")
    triage.add_note(actor=responder, public_id=report.public_id, body="Internal.")
    triage.set_priority(actor=responder, ids=[report.public_id], priority="P3")
    assert clock(report, "first_response").state == "running"


# --- next update ------------------------------------------------------------------------------


def test_each_public_reply_owes_the_next_one_while_the_ticket_is_open(ticket, responder,
                                                                      clock_at):
    report = ticket(priority="P2")
    clock_at(at(5, 10, 30))
    triage.reply(actor=responder, public_id=report.public_id, body="On it.")
    first = clock(report, "next_update", 1)
    assert (first.state, first.started_at, first.due_at) == ("running", at(5, 10, 30),
                                                             at(6, 10, 30))  # 1 day

    clock_at(at(6, 9))
    triage.reply(actor=responder, public_id=report.public_id, body="Found the cause.")
    assert clock(report, "next_update", 1).state == "achieved"
    second = clock(report, "next_update", 2)
    assert (second.state, second.started_at) == ("running", at(6, 9))

    clock_at(at(6, 10))
    triage.move(actor=responder, ids=[report.public_id], status=Status.RESOLVED)
    assert clock(report, "next_update", 2).state == "achieved"  # resolving is the update
    triage.move(actor=responder, ids=[report.public_id], status=Status.IN_PROGRESS)
    assert clock(report, "next_update").sequence == 2  # none owed until the next reply


# --- resolution: pauses, reopening ------------------------------------------------------


def test_resolution_pauses_while_waiting_on_the_reporter(ticket, responder, clock_at):
    report = ticket(priority="P2")  # resolution due Thursday 10:00
    clock_at(at(5, 11))
    triage.move(actor=responder, ids=[report.public_id], status=Status.WAITING_ON_REPORTER)
    paused = clock(report, "resolution")
    assert (paused.state, paused.due_at, paused.paused_at) == ("paused", None, at(5, 11))
    assert fresh(report).sla_due_at is None  # nothing is due while it waits

    clock_at(at(6, 11))
    triage.move(actor=responder, ids=[report.public_id], status=Status.IN_PROGRESS)
    resumed = clock(report, "resolution")
    # Paused Monday 11-17 and Tuesday 09-11: 8 calendar hours, so due 8 h later.
    assert resumed.paused_seconds == 8 * 3600
    assert (resumed.state, resumed.due_at) == ("running", at(9, 10))
    assert fresh(report).sla_due_at == at(9, 10)


def test_the_reporters_answer_resumes_a_waiting_ticket(submit, use_moderator, policy,
                                                       responder, client, clock_at):
    use_moderator(ScriptedModerator())
    receipt = submit().json
    report = db.session.scalar(select(Report).where(Report.public_id == receipt["id"]))
    clock_at(at(5, 11))
    triage.move(actor=responder, ids=[report.public_id], status=Status.WAITING_ON_REPORTER)
    clock_at(at(5, 15))
    response = client.post(f"/api/v1/reports/{report.public_id}/messages",
                           json={"token": receipt["status_token"], "body": " Here it is. "})
    assert response.status_code == 201, response.json
    assert response.json["status"] == "in_progress"
    assert fresh(report).status == Status.IN_PROGRESS
    resolution = clock(report, "resolution")
    assert (resolution.state, resolution.paused_seconds) == ("running", 4 * 3600)
    actions = [(e.action, e.actor_type) for e in history(report, "report.")][-2:]
    assert actions == [("report.reporter_answered", "reporter"),
                       ("report.status_changed", "reporter")]
    from app.reports.models import ReportComment
    comment = db.session.scalar(select(ReportComment).where(
        ReportComment.report_id == report.id, ReportComment.kind == "reporter"))
    assert (comment.body, comment.author_id) == ("Here it is.", None)


def test_reopening_resumes_resolution_where_it_stopped(ticket, responder, clock_at):
    report = ticket(priority="P2")  # due Thursday 10:00
    clock_at(at(5, 12))
    triage.move(actor=responder, ids=[report.public_id], status=Status.RESOLVED)
    done = clock(report, "resolution")
    assert (done.state, done.stopped_at, done.elapsed_seconds) == ("achieved", at(5, 12), 7200)
    assert fresh(report).sla_rank == 2 and fresh(report).sla_due_at is None

    clock_at(at(6, 12))
    triage.move(actor=responder, ids=[report.public_id], status=Status.IN_PROGRESS)
    reopened = clock(report, "resolution")
    # Closed Monday 12-17 and Tuesday 09-12 (8 h): counted as paused.
    assert (reopened.state, reopened.stopped_at, reopened.outcome_at) == ("running", None, None)
    assert (reopened.paused_seconds, reopened.due_at) == (8 * 3600, at(9, 10))

    clock_at(at(6, 13))
    triage.move(actor=responder, ids=[report.public_id], status=Status.DISMISSED)
    again = clock(report, "resolution")
    assert (again.state, again.elapsed_seconds) == ("achieved", 3 * 3600)  # 2 h + 1 h


def test_a_breached_clock_stays_breached_when_resolved_and_reopened(ticket, responder,
                                                                     clock_at):
    report = ticket(priority="P2")  # resolution due Thursday 10:00
    clock_at(at(8, 11))
    sweep.run()
    assert clock(report, "resolution").state == "breached"
    assert fresh(report).sla_rank == 0

    clock_at(at(8, 12))
    triage.move(actor=responder, ids=[report.public_id], status=Status.RESOLVED)
    resolved = clock(report, "resolution")
    assert (resolved.state, resolved.breached_at, resolved.stopped_at) == (
        "breached", at(8, 10), at(8, 12))
    assert resolved.elapsed_seconds == (7 + 8 + 8 + 3) * 3600  # Mon, Tue, Wed, Thu 09-12
    assert fresh(report).sla_rank == 2  # a closed ticket is off the board's open columns

    clock_at(at(9, 10))
    triage.move(actor=responder, ids=[report.public_id], status=Status.IN_PROGRESS)
    assert clock(report, "resolution").state == "breached"
    assert fresh(report).sla_rank == 0


# --- re-targeting -------------------------------------------------------------------------------


def test_a_changed_priority_retargets_from_receipt_and_shows_in_the_history(
        ticket, responder, clock_at):
    report = ticket(priority="P3")  # first response 1 day: Tuesday 10:00
    assert clock(report, "first_response").due_at == at(6, 10)
    clock_at(at(5, 11))
    triage.set_priority(actor=responder, ids=[report.public_id], priority="P2")
    first = clock(report, "first_response")
    assert (first.target_minutes, first.started_at, first.due_at) == (240, MONDAY, at(5, 14))

    events = [e for e in history(report) if e.action == "sla.retargeted"]
    first_event = next(e for e in events if e.after["metric"] == "first_response")
    assert first_event.actor_id == responder.id
    assert first_event.before["target_minutes"] == 480
    assert first_event.before["due_at"] == at(6, 10).isoformat()
    assert (first_event.after["target_minutes"], first_event.after["due_at"]) == (
        240, at(5, 14).isoformat())
    page = triage.ticket(actor=responder, public_id=report.public_id)
    assert "sla.retargeted" in [e.action for e in page.history]


def test_a_new_target_already_past_breaches_at_once_and_escalates(ticket, responder, project,
                                                                  clock_at):
    policies.update_policy(actor=None, project_id=project.id, oncall_email="oncall@example.com")
    report = ticket(priority="P3")
    clock_at(at(5, 15))
    triage.set_priority(actor=responder, ids=[report.public_id], priority="P1")  # 1 h: 11:00
    first = clock(report, "first_response")
    assert (first.state, first.due_at, first.breached_at) == ("breached", at(5, 11), at(5, 11))
    assert [e.action for e in history(report)][-1] == "sla.breached"
    assert {d.target for d in deliveries("sla.breached")} == {"oncall@example.com"}
    assert fresh(report).sla_rank == 0


# --- what the board reads -----------------------------------------------------------------


def test_the_board_puts_breached_then_at_risk_first_in_each_column(ticket, responder,
                                                                   clock_at):
    from app.triage.schemas import BoardFilters

    clock_at(at(5, 9))
    breached = ticket(priority="P2")  # first response due 13:00
    clock_at(at(5, 10))
    at_risk = ticket(priority="P2")  # due 14:00, at risk from 13:00
    clock_at(at(5, 13, 30))
    urgent = ticket(priority="P1")  # due 14:30
    sweep.run()
    assert [fresh(r).sla_rank for r in (breached, at_risk, urgent)] == [0, 1, 2]
    assert fresh(at_risk).sla_due_at == at(5, 14)
    board = triage.board(actor=responder, filters=BoardFilters())
    new = next(c for c in board.columns if c.status == Status.NEW)
    assert [c.report.public_id for c in new.cards] == [
        breached.public_id, at_risk.public_id, urgent.public_id]


def test_clock_states_for_badges(ticket, responder, clock_at):
    report = ticket(priority="P2")
    clock_at(at(5, 10, 30))
    triage.reply(actor=responder, public_id=report.public_id, body="Hello")
    triage.reply(actor=responder, public_id=report.public_id, body="Again")
    views = sla.clocks_of(actor=responder, report_ids=[report.id])[report.id]
    assert [(v.metric, v.sequence, v.state) for v in views] == [
        ("first_response", 0, "achieved"), ("resolution", 0, "running"),
        ("next_update", 2, "running")]
    assert len(sla.clock_history(actor=responder, report=report)) == 4


def test_a_merged_duplicate_ends_its_clocks(ticket, responder, clock_at):
    survivor, duplicate = ticket(priority="P2"), ticket(priority="P2")
    clock_at(at(5, 10, 20))
    triage.merge(actor=responder, duplicate_id=duplicate.public_id, into_id=survivor.public_id)
    assert clock(duplicate, "first_response").state == "achieved"
    assert clock(duplicate, "resolution") is None
    assert "sla.withdrawn" in [e.action for e in history(duplicate)]
    assert (fresh(duplicate).sla_rank, fresh(duplicate).sla_due_at) == (2, None)
    assert clock(survivor, "resolution").state == "running"


# --- administering policies ---------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.RESPONDER, Role.LEAD])
def test_only_admins_manage_sla_settings(make_user, project, policy, role):
    someone = make_user(role)
    with pytest.raises(Forbidden):
        policies.set_target(actor=someone, project_id=project.id, metric="resolution",
                            priority="P1", minutes=60)
    with pytest.raises(Forbidden):
        policies.create_calendar(actor=someone, name="Night shift")
    with pytest.raises(Forbidden):
        policies.list_calendars(actor=someone)


def test_admin_changes_are_audited(make_user, project, policy):
    from app.audit.models import AuditEvent

    admin = make_user(Role.ADMIN)
    policies.set_target(actor=admin, project_id=project.id, metric="resolution",
                        priority="P1", minutes=120)
    night = policies.create_calendar(actor=admin, name="Night shift", timezone="Asia/Tokyo",
                                     week={"mon": [["22:00", "06:00"]]})
    policies.update_policy(actor=admin, project_id=project.id, calendar_id=night.id,
                           at_risk_share=0.5)
    events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.actor_id == admin.id)
                                     .order_by(AuditEvent.id)))
    assert [e.action for e in events] == ["sla.target_set", "sla.calendar_created",
                                          "sla.policy_updated"]
    assert events[0].before == {"minutes": 480} and events[0].after["minutes"] == 120
    assert events[2].after["at_risk_share"] == 0.5


@pytest.mark.parametrize("change, field", [
    (dict(timezone="Mars/Olympus"), "timezone"),
    (dict(week={"mon": [["9am", "5pm"]]}), "week"),
    (dict(week={}), "week"),
    (dict(holiday_country="XX"), "holiday_country"),
    (dict(extra_holidays=["24/12/2026"]), "extra_holidays"),
])
def test_calendars_are_validated(change, field):
    with pytest.raises(ValidationFailed) as refused:
        policies.create_calendar(actor=None, name="Bad", **change)
    assert field in refused.value.fields


@pytest.mark.parametrize("change, field", [
    (dict(metric="speed", priority="P1", minutes=5), "metric"),
    (dict(metric="resolution", minutes=5), "priority"),
    (dict(metric="resolution", priority="P1", category="hate", minutes=5), "priority"),
    (dict(metric="resolution", category="spam", minutes=5), "category"),
    (dict(metric="resolution", priority="P1", minutes=0), "minutes"),
    (dict(metric="resolution", priority="P9", minutes=5), "priority"),
])
def test_targets_are_validated(project, policy, change, field):
    with pytest.raises(ValidationFailed) as refused:
        policies.set_target(actor=None, project_id=project.id, **change)
    assert field in refused.value.fields


def test_the_at_risk_share_is_between_zero_and_one(project, policy):
    with pytest.raises(ValidationFailed):
        policies.update_policy(actor=None, project_id=project.id, at_risk_share=1.0)


def test_clock_state_values_are_the_five_of_the_issue():
    assert {s.value for s in ClockState} == {"running", "at_risk", "paused", "breached",
                                             "achieved"}
    assert {m.value for m in Metric} == {"first_response", "next_update", "resolution"}
