"""Tagging and routing happen after the commit, off the request path; an outage of the
moderation backend delays tags and loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.core.clock import frozen
from app.extensions import db
from app.reports.models import ModerationTag, Report, TaggingState
from app.reports.tagging import backoff, sweep_untagged, tag_report
from tests.conftest import DownModerator, ScriptedModerator, report_body


def stored(public_id: str) -> Report:
    db.session.expire_all()
    return db.session.scalar(select(Report).where(Report.public_id == public_id))


def actions(public_id: str) -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.subject_type == "report", AuditEvent.subject_id == public_id
    ).order_by(AuditEvent.id)))


def test_a_report_is_tagged_and_routed_after_the_response(submit, use_moderator):
    moderator = use_moderator(ScriptedModerator({"minor": {"sexual/minors": 0.93}}))
    receipt = submit(report_body(description="It wrote about a minor", reason="other")).json

    report = stored(receipt["id"])
    assert report.tagging_state == TaggingState.TAGGED
    assert report.priority == "P0"
    assert moderator.calls == [[
        "It wrote about a minor",
        "user: Where is the Eiffel Tower?\nassistant: The Eiffel Tower is in Rome, Italy.",
    ]]
    assert actions(receipt["id"]) == ["report.received", "report.tagged", "report.routed"]
    routed = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "report.routed"))
    assert routed.before == {"priority": "P4"}
    assert routed.after == {"priority": "P0", "rule": "category:sexual/minors"}


def test_tags_record_field_backend_and_model(submit, use_moderator):
    use_moderator(ScriptedModerator({"kill": {"violence": 0.7}}))
    receipt = submit(report_body(description="It said it would kill me", reason="unsafe_advice"))
    tags = db.session.scalars(select(ModerationTag).join(Report).where(
        Report.public_id == receipt.json["id"], ModerationTag.category == "violence")).all()
    assert {(t.field, t.flagged, t.source, t.model) for t in tags} == {
        ("description", True, "scripted", "scripted-1"),
        ("conversation", False, "scripted", "scripted-1"),
    }


def test_a_backend_outage_keeps_the_report_pending_and_the_sweep_tags_it(submit, use_moderator):
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    down = use_moderator(DownModerator())
    with frozen(start) as move_to:
        response = submit()
        assert response.status_code == 201
        assert down.calls == 1
        report = stored(response.json["id"])
        assert report.tagging_state == TaggingState.PENDING
        assert report.tagging_error == "backend unreachable (test)"
        assert report.next_tagging_at == start + backoff(1)
        assert actions(report.public_id)[-1] == "report.tagging_failed"

        # The sweep leaves it alone until its backoff is over…
        up = ScriptedModerator()
        assert sweep_untagged(moderator=up).tagged == 0
        assert up.calls == []
        # …then tags it.
        move_to(start + backoff(1) + timedelta(seconds=1))
        assert sweep_untagged(moderator=up).tagged == 1
    report = stored(response.json["id"])
    assert report.tagging_state == TaggingState.TAGGED
    assert report.tagging_error is None
    assert report.tagging_attempts == 2


def test_backoff_grows_and_is_capped():
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(30) == timedelta(hours=1)


def test_retag_now_retries_waiting_reports_from_the_cli(submit, use_moderator, runner):
    use_moderator(DownModerator())
    ids = [submit(report_body(description=f"r{i}")).json["id"] for i in range(3)]
    use_moderator(ScriptedModerator())
    result = runner.invoke(args=["reports", "retag"])
    assert "tagged 0" in result.output  # still in backoff
    result = runner.invoke(args=["reports", "retag", "--now"])
    assert result.exit_code == 0, result.output
    assert "tagged 3; still pending 0" in result.output
    assert all(stored(i).tagging_state == TaggingState.TAGGED for i in ids)


def test_a_tagged_report_is_not_tagged_twice(submit, use_moderator):
    moderator = use_moderator(ScriptedModerator())
    report = stored(submit().json["id"])
    assert tag_report(report_id=report.id, moderator=moderator) is False
    assert len(moderator.calls) == 1
    assert len(stored(report.public_id).tags) == 8  # 4 categories x 2 fields


def test_a_report_leased_by_another_worker_is_left_alone(submit, use_moderator):
    use_moderator(DownModerator())
    report = stored(submit().json["id"])
    report.next_tagging_at = datetime.now(UTC) + timedelta(minutes=4)  # someone's lease
    report.tagging_error = None
    db.session.commit()
    other = ScriptedModerator()
    assert tag_report(report_id=report.id, moderator=other) is False
    assert sweep_untagged(moderator=other, include_waiting=True).tagged == 0
    assert other.calls == []


def test_a_report_with_only_a_conversation_classifies_the_conversation(submit, use_moderator):
    moderator = use_moderator(ScriptedModerator())
    submit(report_body(description=""))
    assert moderator.calls == [[
        "user: Where is the Eiffel Tower?\nassistant: The Eiffel Tower is in Rome, Italy."]]


def test_the_real_local_backend_tags_a_report_end_to_end(submit, app):
    """The default offline classifier, as `make run` uses it."""
    receipt = submit(report_body(description="You are worthless and I hope you die.",
                                 reason="harmful_or_offensive")).json
    report = stored(receipt["id"])
    assert report.tagging_state == TaggingState.TAGGED
    sources = {t.source for t in report.tags}
    assert sources == {"local"}
    assert {t.category for t in report.tags} >= {"harassment", "hate", "violence", "sexual"}
    assert all(0.0 <= t.score <= 1.0 for t in report.tags)
