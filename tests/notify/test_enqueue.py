"""Queueing notices: one delivery per recipient, never the same one twice."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.notify import service
from app.notify.models import Channel, Delivery, DeliveryStatus, Webhook
from app.notify.service import Notice
from app.projects.service import create_project


def hook(project_id: int, url: str, kind: str = "escalation") -> Webhook:
    webhook, _ = service.create_webhook(actor=None, project_id=project_id, url=url, kind=kind)
    return webhook


def recipients(dedupe_key: str | None = None) -> set[tuple[str, str, str]]:
    query = select(Delivery.dedupe_key, Delivery.channel, Delivery.target)
    if dedupe_key:
        query = query.where(Delivery.dedupe_key == dedupe_key)
    return {(k, str(c), t) for k, c, t in db.session.execute(query)}


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(Delivery))


def test_one_delivery_per_address_and_per_webhook_of_the_wanted_kinds(project):
    escalation = hook(project.id, "https://hooks.example.com/a")
    hook(project.id, "https://pager.example.com/p", kind="paging")
    added = service.enqueue(event="sla.at_risk", dedupe_key="r1:first_response:at_risk",
                            payload={"report": "r1"}, project_id=project.id,
                            emails=["ada@example.com", " bob@example.com "])
    assert added == 3
    assert recipients() == {
        ("r1:first_response:at_risk", "email", "ada@example.com"),
        ("r1:first_response:at_risk", "email", "bob@example.com"),
        ("r1:first_response:at_risk", "webhook", "https://hooks.example.com/a"),
    }
    row = db.session.scalar(select(Delivery).where(Delivery.channel == Channel.WEBHOOK))
    assert row.webhook_id == escalation.id and row.project_id == project.id
    assert row.status == DeliveryStatus.PENDING and row.attempts == 0
    assert row.payload == {"report": "r1"} and row.event == "sla.at_risk"
    assert row.next_attempt_at is not None  # due at once


def test_the_same_notice_twice_is_queued_once(project):
    hook(project.id, "https://hooks.example.com/a")
    notice = {"event": "sla.breached", "dedupe_key": "r1:resolution:breached",
              "payload": {"n": 1}, "project_id": project.id, "emails": ["ada@example.com"]}
    assert service.enqueue(**notice) == 2
    db.session.commit()
    assert service.enqueue(**notice) == 0
    assert service.enqueue_many([Notice(**{**notice, "emails": ("ada@example.com",)})]) == 0
    db.session.commit()
    assert count() == 2


def test_enqueue_belongs_to_the_callers_unit_of_work(project):
    hook(project.id, "https://hooks.example.com/a")
    service.enqueue(event="e", dedupe_key="k", payload={}, project_id=project.id)
    db.session.rollback()
    assert count() == 0


def test_inactive_webhooks_and_other_projects_get_nothing(project):
    other = create_project(name="Other", origins=[])
    paused = hook(project.id, "https://paused.example.com/")
    paused.active = False
    hook(other.id, "https://other.example.com/")
    db.session.commit()
    assert service.enqueue(event="e", dedupe_key="k", payload={}, project_id=project.id) == 0


def test_enqueue_many_across_projects_and_kinds(project):
    other = create_project(name="Other", origins=[])
    hook(project.id, "https://a.example.com/escalation")
    hook(project.id, "https://a.example.com/pager", kind="paging")
    hook(other.id, "https://b.example.com/escalation")
    hook(other.id, "https://b.example.com/pager", kind="paging")
    notices = [
        Notice("sla.at_risk", "a1", {"r": 1}, project.id, emails=("lead@a.example",)),
        Notice("sla.breached", "a2", {"r": 2}, project.id,
               webhook_kinds=("escalation", "paging")),
        Notice("sla.breached", "b1", {"r": 3}, other.id, webhook_kinds=("paging",)),
        Notice("sla.breached", "b1", {"r": 3}, other.id, webhook_kinds=("paging",)),  # again
        Notice("digest", "n1", {}, None, emails=("ops@example.com",)),
        Notice("quiet", "q1", {}, other.id, webhook_kinds=()),
    ]
    assert service.enqueue_many(notices) == 6
    assert recipients() == {
        ("a1", "email", "lead@a.example"),
        ("a1", "webhook", "https://a.example.com/escalation"),
        ("a2", "webhook", "https://a.example.com/escalation"),
        ("a2", "webhook", "https://a.example.com/pager"),
        ("b1", "webhook", "https://b.example.com/pager"),
        ("n1", "email", "ops@example.com"),
    }
    assert service.enqueue_many(notices) == 0
    assert service.enqueue_many([]) == 0


def test_thousands_of_notices_in_one_call(project):
    hook(project.id, "https://hooks.example.com/a")
    notices = [Notice("sla.at_risk", f"r{i}:at_risk", {"report": f"r{i}"}, project.id,
                      emails=(f"owner{i % 7}@example.com",)) for i in range(3000)]
    assert service.enqueue_many(notices) == 6000
    assert service.enqueue_many(notices[:10] + [
        Notice("sla.at_risk", "new", {}, project.id)]) == 1
    assert count() == 6001


def test_a_bad_address_is_recorded_as_failed_not_dropped(project):
    added = service.enqueue(event="e", dedupe_key="k", payload={}, project_id=None,
                            emails=["not-an-address", "evil@example.com\r\nBcc: x@y.z", ""])
    assert added == 2
    rows = db.session.scalars(select(Delivery)).all()
    assert {r.status for r in rows} == {DeliveryStatus.FAILED}
    assert all("not a valid e-mail address" in r.last_error for r in rows)
    assert all("\n" not in r.target for r in rows)
    assert service.deliver_due().claimed == 0


@pytest.mark.parametrize("field, value", [("dedupe_key", "k" * 201), ("dedupe_key", ""),
                                          ("event", "e" * 65)])
def test_a_key_or_event_that_does_not_fit_is_a_programming_error(field, value):
    notice = {"event": "sla.at_risk", "dedupe_key": "k", "payload": {}, "project_id": None,
              "emails": ["a@example.com"], field: value}
    with pytest.raises(ValueError):
        service.enqueue(**notice)
