"""Intake as a server runs it: requests at once, from threads with connections of their own,
on a database of its own whose commits are real (the rest of the suite runs inside one
rolled-back transaction, where no two requests can ever wait for each other)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.extensions import db
from app.projects.models import Project
from app.projects.service import create_project, forget_intake_projects
from app.reports.models import Report
from app.reports.schemas import ReportIntakeSchema
from app.reports.service import submit_report
from tests.conftest import (
    ORIGIN,
    TEST_PEPPER,
    TEST_SECRET,
    ScriptedModerator,
    app_config,
    build_app,
    fresh_database,
    report_body,
)

KEYS = 12  # Idempotency-Keys, each sent by two requests at the same moment
TIMEOUT = 60


@pytest.fixture
def committing_app(app: Flask, tmp_path: Path) -> Iterator[Flask]:
    url, drop = fresh_database(tmp_path, "intake_race")
    other = build_app(app_config(url, tmp_path))
    other.extensions["flagdesk.moderator"] = ScriptedModerator()
    try:
        with other.app_context():
            upgrade()
        yield other
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
        app.extensions["celery"].set_default()
        drop()


def post_all_at_once(app: Flask, project_key: str, requests: list[tuple[str, dict]]) -> list:
    """POST each (Idempotency-Key, body) from a thread of its own, all released together;
    the responses in the same order."""
    start = threading.Barrier(len(requests), timeout=TIMEOUT)
    responses: list = [None] * len(requests)
    errors: list[BaseException] = []

    def post(index: int, key: str, body: dict) -> None:
        try:
            # Work the test client schedules after a response (tagging) runs in this context.
            with app.app_context():
                client = app.test_client()
                start.wait()
                responses[index] = client.post(
                    "/api/v1/reports", json=body,
                    headers={"X-Project-Key": project_key, "Origin": ORIGIN,
                             "Idempotency-Key": key})
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=post, args=(i, key, body))
               for i, (key, body) in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert errors == []
    assert not any(thread.is_alive() for thread in threads), "a request never finished"
    return responses


def test_racing_retries_create_one_report_per_key_and_every_report_commits(committing_app):
    with committing_app.app_context():
        project = create_project(name="Race", origins=[ORIGIN])
        project_key = project.public_key
        db.session.remove()
    # The first requests find no snapshot of the project: each reads it, then writes.
    forget_intake_projects()
    requests = [(f"retry-{n}", report_body(description=f"Report number {n}"))
                for n in range(KEYS) for _ in range(2)]

    responses = post_all_at_once(committing_app, project_key, requests)

    assert [r.status_code for r in responses].count(201) == KEYS
    assert [r.status_code for r in responses].count(200) == KEYS
    by_key: dict[str, set[str]] = {}
    for (key, _), response in zip(requests, responses, strict=True):
        by_key.setdefault(key, set()).add(response.get_json()["id"])
    assert all(len(ids) == 1 for ids in by_key.values())  # a retry answers the first report

    with committing_app.app_context():
        stored = Counter(db.session.scalars(select(Report.idempotency_key)))
        received = db.session.scalar(select(func.count()).select_from(AuditEvent)
                                     .where(AuditEvent.action == "report.received"))
        db.session.remove()
    assert stored == Counter({key: 1 for key in by_key})
    assert received == KEYS


def test_a_caller_inside_a_session_transaction_submits_without_waiting_on_itself(
        committing_app):
    """The demo (and any caller with an ORM Project) has read through the session before it
    submits: on SQLite that transaction holds the write lock, so the report is written in
    it rather than beside it (where it would wait for the lock until it timed out)."""
    with committing_app.app_context():
        project = create_project(name="Demo", origins=[ORIGIN])
        project = db.session.get(Project, project.id)  # a read: the session's transaction
        assert db.session().in_transaction()
        data = ReportIntakeSchema().load(report_body())  # as intake's schema passes it on
        receipt = submit_report(project=project, data=data, idempotency_key="demo-1",
                                pepper=TEST_PEPPER, secret=TEST_SECRET)
        assert receipt.created
        db.session.remove()
    with committing_app.app_context():  # committed: another session sees it
        stored = db.session.scalar(select(Report.public_id).where(
            Report.idempotency_key == "demo-1"))
        db.session.remove()
    assert stored == receipt.public_id
