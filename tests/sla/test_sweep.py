"""The sweep: due clocks to at risk and breached, set-based, each transition audited and
escalated exactly once, also with two sweeps at once."""

from __future__ import annotations

import os
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth.models import Role, User
from app.core.clock import frozen
from app.extensions import db
from app.notify.models import Delivery, WebhookKind
from app.projects.service import create_project
from app.reports.models import Priority, Report, Status, TaggingState
from app.sla import policies, sweep, transitions
from app.sla import service as sla
from app.sla.models import SlaClock
from app.triage import service as triage
from tests.conftest import app_config, build_app, fresh_database
from tests.sla.conftest import MONDAY, at, clock, deliveries, fresh, history, webhook


@pytest.fixture
def oncall(project, policy):
    policies.update_policy(actor=None, project_id=project.id, oncall_email="oncall@example.com")


def recipients(event: str) -> set[str]:
    return {d.target for d in deliveries(event)}


def test_a_clock_goes_at_risk_once_its_share_has_elapsed(ticket, oncall, clock_at):
    report = ticket(priority="P2")  # first response due 14:00, at risk from 13:00
    clock_at(at(5, 12, 59))
    assert sweep.run().at_risk == 0
    clock_at(at(5, 13))
    result = sweep.run()
    assert (result.at_risk, result.breached) == (1, 0)
    first = clock(report, "first_response")
    assert first.state == "at_risk"
    event = history(report)[-1]
    assert (event.action, event.actor_type, event.after["metric"]) == (
        "sla.at_risk", "system", "first_response")
    assert event.after["due_at"] == at(5, 14).isoformat()
    # Nobody is assigned: the project's on-call address hears of it.
    notice = deliveries("sla.at_risk")[0]
    assert (notice.target, notice.dedupe_key) == ("oncall@example.com",
                                                  f"sla:{first.id}:at_risk")
    assert notice.payload["report"] == report.public_id
    assert "Eiffel" not in str(notice.payload)  # no report text in notifications
    assert fresh(report).sla_rank == 1


def test_at_risk_goes_to_the_assignee_when_there_is_one(ticket, oncall, make_user, clock_at):
    assignee = make_user(Role.RESPONDER, email="rita@example.com")
    report = ticket(priority="P1")  # resolution: 1 day, at risk after 6 h: 16:00
    triage.assign(actor=assignee, ids=[report.public_id], assignee_id=assignee.id)
    clock_at(at(5, 16))
    assert sweep.run().at_risk == 1
    assert recipients("sla.at_risk") == {"rita@example.com"}


def test_a_breach_goes_to_the_assignee_or_on_call_and_every_active_lead(
        ticket, oncall, make_user, clock_at):
    make_user(Role.LEAD, email="lead@example.com")
    gone = make_user(Role.LEAD, email="gone@example.com")
    gone.active = False
    make_user(Role.ADMIN, email="admin@example.com")
    db.session.commit()
    report = ticket(priority="P2")
    clock_at(at(5, 14))
    result = sweep.run()
    assert (result.at_risk, result.breached) == (0, 1)  # past both: only the breach
    first = clock(report, "first_response")
    assert (first.state, first.breached_at) == ("breached", at(5, 14))
    assert recipients("sla.breached") == {"oncall@example.com", "lead@example.com"}
    assert deliveries("sla.at_risk") == []
    assert [e.action for e in history(report)] == ["sla.breached"]
    assert fresh(report).sla_rank == 0


@pytest.mark.parametrize("priority, kinds", [
    ("P1", {WebhookKind.ESCALATION, WebhookKind.PAGING}),
    ("P3", {WebhookKind.ESCALATION}),
])
def test_only_p0_and_p1_breaches_page(ticket, project, policy, clock_at, priority, kinds):
    escalation = webhook(project, WebhookKind.ESCALATION, "https://hooks.example/escalate")
    paging = webhook(project, WebhookKind.PAGING, "https://hooks.example/page")
    ticket(priority=priority)
    clock_at(at(9, 16))
    sweep.run()
    by_url = {escalation.url: WebhookKind.ESCALATION, paging.url: WebhookKind.PAGING}
    breached = [d for d in deliveries("sla.breached") if d.channel == "webhook"]
    assert {by_url[d.target] for d in breached} == kinds
    at_risk_hooks = {d.target for d in deliveries("sla.at_risk") if d.channel == "webhook"}
    assert at_risk_hooks <= {escalation.url}


def test_a_second_sweep_finds_nothing_to_do(ticket, oncall, clock_at):
    ticket(priority="P2")
    clock_at(at(5, 13, 30))
    assert sweep.run().at_risk == 1
    before = (db.session.scalar(select(func.count()).select_from(Delivery)),
              db.session.scalar(select(func.count()).select_from(AuditEvent)))
    assert sweep.run() == sweep.SweepResult(started=0, at_risk=0, breached=0, deliveries=0,
                                            skipped=0)
    assert before == (db.session.scalar(select(func.count()).select_from(Delivery)),
                      db.session.scalar(select(func.count()).select_from(AuditEvent)))


def test_paused_and_final_clocks_never_breach(ticket, make_user, clock_at):
    responder = make_user()
    waiting, done = ticket(priority="P2"), ticket(priority="P2")
    triage.move(actor=responder, ids=[waiting.public_id], status=Status.WAITING_ON_REPORTER)
    triage.move(actor=responder, ids=[done.public_id], status=Status.RESOLVED)
    clock_at(MONDAY + timedelta(days=30))
    assert sweep.run().breached == 0
    assert clock(waiting, "resolution").state == "paused"
    assert clock(done, "resolution").state == "achieved"


def test_the_sweep_keeps_the_boards_columns(ticket, clock_at):
    report = ticket(priority="P2")
    assert (fresh(report).sla_rank, fresh(report).sla_due_at) == (2, at(5, 14))
    clock_at(at(5, 14, 1))
    sweep.run()
    # The first response breached; the next instant due is the resolution's.
    assert (fresh(report).sla_rank, fresh(report).sla_due_at) == (0, at(8, 10))


def test_the_sweep_is_a_celery_beat_task_every_minute(app):
    schedule = app.extensions["celery"].conf.beat_schedule
    assert schedule["sla-sweep"] == {"task": "sla.sweep", "schedule": 60.0}
    assert "sla.sweep" in app.extensions["celery"].tasks


def test_the_celery_task_sweeps(app, ticket, clock_at):
    from app.tasks import sla_sweep_task

    ticket(priority="P2")
    clock_at(at(5, 13, 30))
    assert sla_sweep_task.run() == 1


# --- two sweeps at once ---------------------------------------------------------------------

ON_POSTGRES = sa.make_url(os.environ.get("TEST_DATABASE_URL") or "sqlite://"
                          ).get_backend_name() == "postgresql"
TICKETS = 60


@pytest.fixture
def committed(app, tmp_path):
    """An app on a database of its own where every sweep commits for real (the suite's
    per-test transaction cannot be shared by two connections), with TICKETS P2 tickets
    received Monday 10:00, a lead, an on-call address and an escalation webhook."""
    url, drop = fresh_database(tmp_path, "slarace")
    other = build_app(app_config(url, tmp_path))
    try:
        with frozen(MONDAY), other.app_context():
            upgrade()
            project = create_project(name="Race", origins=[])
            policies.defaults(actor=None, project_id=project.id)
            policies.update_policy(actor=None, project_id=project.id,
                                   oncall_email="oncall@example.com")
            db.session.add(User(email="lead@example.com", name="Lead", role=Role.LEAD,
                                password_hash="x"))
            webhook(project, WebhookKind.ESCALATION, "https://hooks.example/escalate")
            for n in range(TICKETS):
                report = Report(public_id=f"rep_race{n:04d}", project_id=project.id,
                                reason="other", status_token_hash="0" * 64,
                                priority=Priority.P2, received_at=MONDAY, updated_at=MONDAY,
                                tagging_state=TaggingState.TAGGED)
                db.session.add(report)
                db.session.flush()
                sla.routed(report)
            db.session.commit()
        yield other
    finally:
        with other.app_context():
            db.session.remove()
            db.engines[None].dispose()
        drop()
        app.extensions["celery"].set_default()


def _counts(other, action: str) -> tuple[int, int, int]:
    with other.app_context():
        events = db.session.scalars(select(AuditEvent.after).where(AuditEvent.action == action))
        clock_ids = [e["clock_id"] for e in events]
        notices = db.session.scalar(select(func.count()).select_from(Delivery)
                                    .where(Delivery.event == action))
        return len(clock_ids), len(set(clock_ids)), notices


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite serialises writers (BEGIN IMMEDIATE), "
                                            "so two sweeps cannot overlap there")
def test_two_sweeps_at_once_transition_and_escalate_each_clock_once(committed):
    other = committed
    breach_at = at(5, 14, 30)  # every first response (due 14:00) breached

    # A sweep that has moved the clocks but not committed yet holds their tickets: a
    # second sweep started meanwhile skips them instead of waiting or repeating them.
    with other.app_context():
        holding = transitions.apply(at=breach_at)
        assert holding.breached == TICKETS
        results = []

        def second() -> None:
            with other.app_context():
                results.append(sweep.run(now=breach_at))

        worker = threading.Thread(target=second)
        worker.start()
        worker.join(timeout=60)
        assert not worker.is_alive(), "the second sweep waited for the first"
        assert (results[0].breached, results[0].skipped) == (0, TICKETS)
        db.session.commit()
    with other.app_context():
        assert sweep.run(now=breach_at).breached == 0
    # One audit event per clock; oncall + the lead + the webhook, once each.
    assert _counts(other, "sla.breached") == (TICKETS, TICKETS, 3 * TICKETS)

    # Truly at once: two threads released together on the next transition (resolution
    # at risk after 75% of 3 days: Wednesday 12:00).
    at_risk_at = at(7, 12, 30)
    barrier = threading.Barrier(2)
    outcomes: list[sweep.SweepResult] = []
    errors: list[BaseException] = []

    def race() -> None:
        try:
            with other.app_context():
                barrier.wait(timeout=30)
                outcomes.append(sweep.run(now=at_risk_at))
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=race) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(outcomes) == 2
    assert sum(o.at_risk for o in outcomes) == TICKETS
    assert _counts(other, "sla.at_risk") == (TICKETS, TICKETS, 2 * TICKETS)  # oncall + hook
    with other.app_context():
        states = dict(db.session.execute(
            select(SlaClock.state, func.count()).group_by(SlaClock.state)).all())
    assert states == {"breached": TICKETS, "at_risk": TICKETS}
