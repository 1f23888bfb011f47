"""With CELERY_BROKER_URL set, tagging goes to Celery through a real Redis broker."""

from __future__ import annotations

import json
import os
import uuid

import pytest
import redis
from sqlalchemy import select

from app.extensions import db
from app.reports.models import Report, TaggingState
from app.tasks import sweep_untagged_task
from tests.conftest import ScriptedModerator, report_body

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def celery_app(secondary_app):
    """An app whose tagging tasks go to a private queue on the real Redis broker."""
    queue = f"flagdesk-test-{uuid.uuid4().hex}"
    broker_app = secondary_app(CELERY_BROKER_URL=REDIS_URL)
    broker_app.extensions["celery"].conf.task_default_queue = queue
    yield broker_app, queue
    redis.Redis.from_url(REDIS_URL).delete(queue)


def test_intake_publishes_nothing_and_the_beat_sweep_tags(celery_app, project):
    """The report's row is the queue: intake only commits it, and the sweep that Celery
    beat sends every TAGGING_POLL_SECONDS (1 s) claims and tags it."""
    broker_app, queue = celery_app
    connection = redis.Redis.from_url(REDIS_URL)
    response = broker_app.test_client().post(
        "/api/v1/reports", json=report_body(), headers={"X-Project-Key": project.public_key})
    assert response.status_code == 201
    assert connection.llen(queue) == 0  # no round trip to the broker on the request path

    schedule = broker_app.extensions["celery"].conf.beat_schedule["sweep-untagged"]
    assert schedule == {"task": "flagdesk.sweep_untagged", "schedule": 1.0}
    with broker_app.app_context():
        sweep_untagged_task.delay()  # what beat does, through the real broker
    raw = connection.lpop(queue)
    assert raw is not None, "no task reached the broker"
    assert json.loads(raw)["headers"]["task"] == "flagdesk.sweep_untagged"

    # What a worker does with the message:
    report = db.session.scalar(select(Report).where(Report.public_id == response.json["id"]))
    assert report.tagging_state == TaggingState.PENDING
    broker_app.extensions["flagdesk.moderator"] = ScriptedModerator()
    with broker_app.app_context():
        assert sweep_untagged_task.run() == 1
    db.session.expire_all()
    assert db.session.get(Report, report.id).tagging_state == TaggingState.TAGGED


def test_a_broker_outage_does_not_touch_intake(secondary_app, project, monkeypatch):
    down_app = secondary_app(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    celery = down_app.extensions["celery"]
    sent = []
    monkeypatch.setattr(celery, "send_task", lambda *a, **k: sent.append(a))
    monkeypatch.setattr(celery.Task, "apply_async", lambda *a, **k: sent.append(a))
    response = down_app.test_client().post(
        "/api/v1/reports", json=report_body(), headers={"X-Project-Key": project.public_key})
    assert response.status_code == 201
    assert sent == []  # nothing on the request path waits for the broker
    report = db.session.scalar(select(Report).where(Report.public_id == response.json["id"]))
    assert report.tagging_state == TaggingState.PENDING  # the sweep tags it once it is back
