"""With CELERY_BROKER_URL set, tagging goes to Celery through a real Redis broker."""

from __future__ import annotations

import base64
import json
import os
import uuid

import pytest
import redis
from sqlalchemy import select

from app.extensions import db
from app.reports.models import Report, TaggingState
from app.tasks import tag_report_task
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


def test_intake_enqueues_a_tagging_task_and_the_task_tags(celery_app, project):
    broker_app, queue = celery_app
    response = broker_app.test_client().post(
        "/api/v1/reports", json=report_body(), headers={"X-Project-Key": project.public_key})
    assert response.status_code == 201

    raw = redis.Redis.from_url(REDIS_URL).lpop(queue)
    assert raw is not None, "no task reached the broker"
    message = json.loads(raw)
    assert message["headers"]["task"] == "flagdesk.tag_report"
    report = db.session.scalar(select(Report).where(Report.public_id == response.json["id"]))
    assert report.tagging_state == TaggingState.PENDING  # nothing ran in the web process
    assert json.loads(base64.b64decode(message["body"]))[0] == [report.id]

    # What a worker does with the message:
    broker_app.extensions["flagdesk.moderator"] = ScriptedModerator()
    with broker_app.app_context():
        assert tag_report_task.run(report.id) is True
    db.session.expire_all()
    assert db.session.get(Report, report.id).tagging_state == TaggingState.TAGGED


def test_a_broker_outage_does_not_fail_intake(secondary_app, project, caplog):
    down_app = secondary_app(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    down_app.extensions["celery"].conf.broker_connection_retry = False
    down_app.extensions["celery"].conf.broker_transport_options = {"max_retries": 0}
    response = down_app.test_client().post(
        "/api/v1/reports", json=report_body(), headers={"X-Project-Key": project.public_key})
    assert response.status_code == 201
    report = db.session.scalar(select(Report).where(Report.public_id == response.json["id"]))
    assert report.tagging_state == TaggingState.PENDING
    assert "the sweep will" in caplog.text
