"""flask sla …, and the demo's SLA defaults."""

from __future__ import annotations

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.extensions import db
from app.reports.models import Report
from app.sla import policies
from app.sla.models import SlaCalendar, SlaClock, SlaPolicy
from tests.conftest import TEST_PEPPER, TEST_SECRET, ScriptedModerator
from tests.sla.conftest import at


def run(runner, *args):
    result = runner.invoke(args=["sla", *args])
    return result.exit_code, result.output


def test_defaults_create_a_business_hours_policy_once(runner, project):
    code, output = run(runner, "defaults", str(project.id))
    assert code == 0, output
    assert "Business hours (UTC)" in output and "16 targets" in output
    policy = db.session.scalar(select(SlaPolicy).where(SlaPolicy.project_id == project.id))
    assert policy.calendar.week["mon"] == [["09:00", "17:00"]] and "sat" not in policy.calendar.week
    assert policy.p0_around_the_clock and policy.at_risk_share == 0.75
    # Again, by name: nothing new, the existing targets kept.
    policies.set_target(actor=None, project_id=project.id, metric="resolution",
                        priority="P1", minutes=99)
    assert run(runner, "defaults", project.name)[0] == 0
    assert db.session.scalar(select(func.count()).select_from(SlaCalendar)) == 1
    assert {t.minutes for t in policy.targets if t.metric == "resolution"
            and t.priority == "P1"} == {99}


def test_policy_show_lists_the_targets(runner, project):
    assert run(runner, "policy", "show", str(project.id))[1].strip().endswith(
        f"no SLA policy (flask sla defaults {project.id} creates one)")
    run(runner, "defaults", str(project.id))
    code, output = run(runner, "policy", "show", str(project.id))
    assert code == 0
    assert "calendar 'Business hours (UTC)' [UTC], at risk at 75%, P0 around the clock: yes" \
        in output
    assert "first_response  P0" in output and "15 min" in output
    assert "category self-harm" in output


def test_set_target_and_policy_settings(runner, project):
    run(runner, "defaults", str(project.id))
    code, output = run(runner, "policy", "set-target", str(project.id), "--metric",
                       "first_response", "--category", "hate", "--minutes", "45")
    assert code == 0 and "45 min" in output
    code, output = run(runner, "policy", "set", str(project.id), "--at-risk-share", "0.5",
                       "--oncall", "pager@example.com", "--p0-business-hours")
    assert code == 0, output
    policy = db.session.scalar(select(SlaPolicy))
    assert (policy.at_risk_share, policy.oncall_email, policy.p0_around_the_clock) == (
        0.5, "pager@example.com", False)
    assert any(t.category == "hate" and t.minutes == 45 for t in policy.targets)
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "sla.target_set", AuditEvent.actor_type == "system")) == 17


def test_bad_input_is_a_clear_error(runner, project):
    run(runner, "defaults", str(project.id))
    code, output = run(runner, "policy", "set-target", str(project.id), "--metric",
                       "resolution", "--category", "spam", "--minutes", "5")
    assert code != 0 and "Unknown moderation category 'spam'" in output
    code, output = run(runner, "policy", "show", "Nope")
    assert code != 0 and "No project 'Nope'" in output


def test_calendars_add_set_hours_add_holiday_list(runner):
    code, output = run(runner, "calendars", "add", "Munich", "--timezone", "Europe/Berlin",
                       "--hours", "mon-thu=08:00-16:00", "--hours", "fri=08:00-12:00",
                       "--country", "DE", "--subdivision", "BY")
    assert code == 0, output
    assert run(runner, "calendars", "set-hours", "Munich", "sat,sun", "10:00-12:00")[0] == 0
    assert run(runner, "calendars", "set-hours", "Munich", "sun")[0] == 0  # no hours
    assert run(runner, "calendars", "add-holiday", "Munich", "2026-12-24")[0] == 0
    code, output = run(runner, "calendars", "list")
    assert code == 0
    assert ("Munich  [Europe/Berlin]  mon 08:00-16:00, tue 08:00-16:00, wed 08:00-16:00, "
            "thu 08:00-16:00, fri 08:00-12:00, sat 10:00-12:00; public holidays: DE-BY; "
            "own dates: 2026-12-24") in output
    code, output = run(runner, "calendars", "add", "Bad", "--timezone", "Nowhere/Land")
    assert code != 0 and "unknown timezone" in output
    code, output = run(runner, "calendars", "set-hours", "Munich", "someday", "09:00-10:00")
    assert code != 0


def test_sweep_reports_what_it_did(runner, ticket, clock_at):
    ticket(priority="P2")
    code, output = run(runner, "sweep", "--now", at(5, 13, 30).isoformat())
    assert code == 0, output
    assert output.startswith("at risk 1, breached 0, notifications 0")
    code, output = run(runner, "sweep", "--now", "2026-01-05T13:30")
    assert code != 0 and "offset" in output


def test_the_demo_project_gets_the_default_policy_and_its_tickets_clocks(app, use_moderator):
    from app.demo import SAMPLE_REPORTS, seed_demo
    from app.reports.tagging import sweep_untagged

    demo = seed_demo(port=5000, pepper=TEST_PEPPER, secret=TEST_SECRET)
    sweep_untagged(moderator=ScriptedModerator())
    policy = db.session.scalar(select(SlaPolicy).where(SlaPolicy.project_id == demo.project.id))
    assert policy is not None and len(policy.targets) == 16
    with_clocks = db.session.scalar(select(func.count(func.distinct(SlaClock.report_id))))
    assert with_clocks == len(SAMPLE_REPORTS) == db.session.scalar(
        select(func.count()).select_from(Report))
