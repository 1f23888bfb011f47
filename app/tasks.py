"""Background work: Celery in production, in process on the embedded default.

Tasks only carry ids; the database says what is to be done, so a lost task is found
again by the next sweep.
"""

from __future__ import annotations

import logging

from celery import Celery, Task, shared_task
from flask import Flask, Response, after_this_request, current_app

from app.reports import tagging

log = logging.getLogger(__name__)


def celery_init_app(app: Flask) -> Celery:
    """Bind a Celery app to the Flask app (tasks run inside its app context)."""

    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    broker = app.config["CELERY_BROKER_URL"]
    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(
        broker_url=broker or "memory://",
        task_ignore_result=True,
        task_acks_late=True,  # a worker that dies mid-task leaves it for another
        beat_schedule={
            "sweep-untagged": {
                "task": "flagdesk.sweep_untagged",
                "schedule": float(app.config["TAGGING_SWEEP_SECONDS"]),
            },
        },
    )
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


def _moderator():  # noqa: ANN202 - the Moderator protocol
    return current_app.extensions["flagdesk.moderator"]


@shared_task(name="flagdesk.tag_report")
def tag_report_task(report_id: int) -> bool:
    return tagging.tag_report(report_id=report_id, moderator=_moderator())


@shared_task(name="flagdesk.sweep_untagged")
def sweep_untagged_task() -> int:
    return tagging.sweep_untagged(moderator=_moderator()).tagged


def enqueue_tagging(report_id: int) -> None:
    """Tag a just-committed report off the request path.

    With a broker: a Celery task. Without: in this process, once the response has been
    sent. Either way a failure here only delays tags: the report is stored and pending.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config["CELERY_BROKER_URL"]:
        try:
            tag_report_task.delay(report_id)
        except Exception:  # noqa: BLE001 - the broker being down must not fail intake
            log.warning("could not enqueue tagging for report %s; the sweep will", report_id)
        return

    def tag_in_process() -> None:
        with app.app_context():
            try:
                tagging.tag_report(report_id=report_id, moderator=_moderator())
            except Exception:  # noqa: BLE001 - nothing may escape into the server
                log.exception("tagging report %s failed; the sweep will retry", report_id)

    @after_this_request
    def _after(response: Response) -> Response:
        response.call_on_close(tag_in_process)
        return response
