"""Two senders at once (two processes' worth: separate sessions and connections on a
database of its own) never send one delivery twice."""

from __future__ import annotations

import threading
from collections import Counter

from flask_migrate import upgrade
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.notify import service
from app.notify.models import Delivery, DeliveryStatus
from app.projects.service import create_project
from tests.conftest import app_config, fresh_database


def test_racing_senders_share_the_work_without_duplicates(tmp_path, receiver, clock):
    url, drop = fresh_database(tmp_path, "notify_race")
    other = create_app(app_config(url, tmp_path))
    try:
        with other.app_context():
            upgrade()
            project = create_project(name="Race", origins=[])
            service.create_webhook(actor=None, project_id=project.id, url=receiver.url,
                                   kind="escalation")
            service.enqueue_many([service.Notice("e", f"k{n}", {"n": n}, project.id)
                                  for n in range(40)])
            db.session.commit()

        # The first request of each sender waits for the other's: both are mid-send at
        # once, holding claims, before either goes on.
        both_sending = threading.Barrier(2, timeout=20)
        original = receiver.server.RequestHandlerClass.do_POST
        arrivals = iter(range(10_000))  # next() on an iterator is atomic under the GIL

        def do_post(handler):  # noqa: ANN001
            if next(arrivals) < 2:
                try:
                    both_sending.wait()
                except threading.BrokenBarrierError:
                    pass
            original(handler)

        receiver.server.RequestHandlerClass.do_POST = do_post
        runs, errors = [], []

        def sender() -> None:
            try:
                with other.app_context():
                    runs.append(service.deliver_due(limit=100))
                    db.session.remove()
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=sender) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert not both_sending.broken, "the two senders never sent at the same time"

        ids = Counter(r.headers["Flagdesk-Delivery"] for r in receiver.received)
        assert len(ids) == 40 and set(ids.values()) == {1}
        assert sorted(run.claimed for run in runs)[0] > 0  # both took a share
        assert sum(run.delivered for run in runs) == 40
        with other.app_context():
            statuses = set(db.session.scalars(select(Delivery.status)))
            assert statuses == {DeliveryStatus.DELIVERED}
            db.session.remove()
    finally:
        with other.app_context():
            db.engine.dispose()
        drop()
