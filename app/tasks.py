"""Background work: Celery in production, in process on the embedded default.

Tasks only carry ids; the database says what is to be done, so a lost task is found
again by the next sweep.
"""

from __future__ import annotations

import logging

from celery import Celery, Task, shared_task
from flask import Flask, Response, after_this_request, current_app

from app.notify import service as notify
from app.reports import tagging
from app.sla import sweep as sla_sweep

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
                "schedule": float(app.config["TAGGING_POLL_SECONDS"]),
            },
            # The outbox: webhooks and e-mail that are due (new, or retrying after backoff).
            "notify-deliver": {"task": "notify.deliver", "schedule": 15.0},
            # SLA clocks to at risk and breached, and their escalations (set-based, safe
            # to overlap with a slow previous run).
            "sla-sweep": {"task": "sla.sweep", "schedule": 60.0},
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


@shared_task(name="sla.sweep")
def sla_sweep_task() -> int:
    result = sla_sweep.run()
    return result.at_risk + result.breached


@shared_task(name="notify.deliver")
def deliver_notifications_task() -> int:
    return notify.deliver_due().delivered


def enqueue_tagging(report_id: int) -> None:
    """Tag a just-committed report off the request path.

    With a broker, intake publishes nothing: the report's row (pending) is the queue, and
    Celery beat runs the sweep every TAGGING_POLL_SECONDS (1 s by default), which claims
    and tags what is due. So a broker outage never slows or fails intake, no task can be
    lost between the commit and a publish, and a request costs no round trip to Redis.
    Without a broker: in this process, once the response has been sent. Either way a
    failure only delays tags: the report is stored and pending.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config["CELERY_BROKER_URL"]:
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
