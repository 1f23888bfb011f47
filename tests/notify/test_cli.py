"""flask notify deliver | webhooks add/list/rotate/remove, and the Celery beat task."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.notify import service
from app.notify.models import Delivery, DeliveryStatus, Webhook
from app.tasks import deliver_notifications_task
from tests.notify.conftest import T0, independent_check


def test_deliver_sends_what_is_due(runner, project, receiver, clock):
    _, secret = service.create_webhook(actor=None, project_id=project.id, url=receiver.url,
                                       kind="escalation")
    service.enqueue(event="sla.breached", dedupe_key="k", payload={"a": 1},
                    project_id=project.id)
    db.session.commit()
    result = runner.invoke(args=["notify", "deliver"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "sent 1: delivered 1, retrying 0, failed 0"
    [request] = receiver.received
    assert independent_check(secret, request, now=T0)
    db.session.expire_all()
    assert db.session.scalar(select(Delivery.status)) == DeliveryStatus.DELIVERED


def test_webhooks_add_list_rotate_remove(runner, project):
    added = runner.invoke(args=["notify", "webhooks", "add", "--project", str(project.id),
                                "--url", "https://hooks.example.com/x", "--kind", "paging"])
    assert added.exit_code == 0, added.output
    webhook = db.session.scalar(select(Webhook))
    assert f"Signing secret (shown once): {webhook.secret}" in added.output

    listed = runner.invoke(args=["notify", "webhooks", "list"])
    assert listed.exit_code == 0
    assert "https://hooks.example.com/x" in listed.output and "paging" in listed.output
    assert webhook.secret not in listed.output and webhook.secret[-4:] in listed.output

    rotated = runner.invoke(args=["notify", "webhooks", "rotate", str(webhook.id)])
    db.session.expire_all()
    assert rotated.exit_code == 0 and db.session.get(Webhook, webhook.id).secret in rotated.output

    removed = runner.invoke(args=["notify", "webhooks", "remove", str(webhook.id)])
    assert removed.exit_code == 0 and db.session.scalar(select(Webhook)) is None
    again = runner.invoke(args=["notify", "webhooks", "remove", str(webhook.id)])
    assert again.exit_code != 0 and "No webhook" in again.output


def test_webhooks_add_refuses_a_bad_url(runner, project):
    result = runner.invoke(args=["notify", "webhooks", "add", "--project", str(project.id),
                                 "--url", "file:///etc/passwd"])
    assert result.exit_code != 0 and "http" in result.output
    assert db.session.scalar(select(Webhook)) is None


def test_the_beat_schedule_runs_the_delivery_task(app, project, receiver, clock):
    schedule = app.extensions["celery"].conf.beat_schedule["notify-deliver"]
    assert schedule == {"task": "notify.deliver", "schedule": 15.0}
    assert deliver_notifications_task.name == "notify.deliver"
    service.create_webhook(actor=None, project_id=project.id, url=receiver.url,
                           kind="escalation")
    service.enqueue(event="e", dedupe_key="k", payload={}, project_id=project.id)
    db.session.commit()
    assert deliver_notifications_task.run() == 1
    assert len(receiver.received) == 1
