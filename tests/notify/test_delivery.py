"""Sending the outbox: signed webhooks to a real receiver on loopback, and e-mail through
a real SMTP server or the console sink; retries with backoff, giving up, bookkeeping."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.notify import service
from app.notify.models import Delivery, DeliveryStatus
from app.notify.service import MAX_ATTEMPTS, DeliveryRun
from app.notify.signing import verify
from tests.notify.conftest import T0, Reply, independent_check


@pytest.fixture
def webhook(project, receiver):
    webhook, secret = service.create_webhook(actor=None, project_id=project.id,
                                             url=receiver.url, kind="escalation")
    return webhook, secret


def enqueue(project_id, key="r_1:resolution:breached", **kwargs):
    kwargs.setdefault("payload", {"report": "r_1", "title": "SLA breached", "metric": "resolution"})
    added = service.enqueue(event="sla.breached", dedupe_key=key, project_id=project_id, **kwargs)
    db.session.commit()
    return added


def the_delivery() -> Delivery:
    db.session.expire_all()
    return db.session.scalars(select(Delivery)).one()


def test_a_webhook_is_delivered_signed(project, webhook, receiver, clock):
    _, secret = webhook
    enqueue(project.id)
    run = service.deliver_due()
    assert run == DeliveryRun(claimed=1, delivered=1, retrying=0, failed=0)

    [request] = receiver.received
    delivery = the_delivery()
    assert request.path == "/hooks/flagdesk"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Flagdesk-Webhooks/1"
    assert request.headers["Flagdesk-Event"] == "sla.breached"
    assert request.headers["Flagdesk-Delivery"] == str(delivery.id)
    assert json.loads(request.body) == {
        "id": delivery.id, "event": "sla.breached", "created_at": T0.isoformat(),
        "data": {"report": "r_1", "title": "SLA breached", "metric": "resolution"}}
    # The receiver's own HMAC check, and ours, both accept it at the time it was sent…
    assert request.headers["Flagdesk-Signature"].startswith(f"t={int(T0.timestamp())},v1=")
    assert independent_check(secret, request, now=T0)
    assert verify(secret, request.headers["Flagdesk-Signature"], request.body, now=T0)
    # …but not a replay six minutes later, a tampered body, or another secret.
    assert not independent_check(secret, request, now=T0 + timedelta(minutes=6))
    tampered = type(request)(request.path, request.headers,
                             request.body.replace(b"r_1", b"r_2"))
    assert not independent_check(secret, tampered, now=T0)
    assert not independent_check("not-the-secret", request, now=T0)

    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 1 and delivery.last_status_code == 204
    assert delivery.delivered_at == T0 and delivery.next_attempt_at is None
    assert service.deliver_due().claimed == 0  # nothing sent twice


def test_the_signature_timestamp_is_the_time_of_sending(project, webhook, receiver, clock):
    _, secret = webhook
    enqueue(project.id)
    clock(T0 + timedelta(hours=2))  # sent late: signed now, not when queued
    service.deliver_due()
    [request] = receiver.received
    assert request.headers["Flagdesk-Signature"].startswith(
        f"t={int((T0 + timedelta(hours=2)).timestamp())},")
    assert independent_check(secret, request, now=T0 + timedelta(hours=2))


def test_a_500_is_retried_with_exponential_backoff_then_given_up(project, webhook, receiver,
                                                                   clock):
    receiver.reply(*[Reply(500, b"database on fire")] * MAX_ATTEMPTS)
    enqueue(project.id)
    current = T0
    expected_waits = [30, 60, 120, 240, 480, 960, 1920]
    for attempt, wait in enumerate(expected_waits, start=1):
        assert service.deliver_due() == DeliveryRun(claimed=1, retrying=1)
        delivery = the_delivery()
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.attempts == attempt
        assert delivery.last_status_code == 500
        assert delivery.last_error == "HTTP 500: database on fire"
        assert delivery.next_attempt_at == current + timedelta(seconds=wait)
        clock(current + timedelta(seconds=wait - 1))
        assert service.deliver_due().claimed == 0  # not due yet
        current += timedelta(seconds=wait)
        clock(current)
    assert service.deliver_due() == DeliveryRun(claimed=1, failed=1)
    delivery = the_delivery()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == MAX_ATTEMPTS
    assert delivery.next_attempt_at is None and delivery.delivered_at is None
    assert len(receiver.received) == MAX_ATTEMPTS
    assert {r.headers["Flagdesk-Delivery"] for r in receiver.received} == {str(delivery.id)}
    clock(current + timedelta(days=1))
    assert service.deliver_due().claimed == 0


def test_the_backoff_is_capped_at_an_hour():
    assert [service.backoff(n).total_seconds() for n in range(1, 10)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_receiver_that_recovers_gets_the_delivery(project, webhook, receiver, clock):
    receiver.reply(Reply(503), Reply(200))
    enqueue(project.id)
    service.deliver_due()
    clock(T0 + timedelta(seconds=30))
    assert service.deliver_due() == DeliveryRun(claimed=1, delivered=1)
    delivery = the_delivery()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    assert delivery.last_status_code == 200 and delivery.last_error is None
    assert delivery.delivered_at == T0 + timedelta(seconds=30)


def test_connection_refused_is_retried(project, closed_port_url, clock):
    service.create_webhook(actor=None, project_id=project.id, url=closed_port_url,
                           kind="escalation")
    enqueue(project.id)
    assert service.deliver_due() == DeliveryRun(claimed=1, retrying=1)
    delivery = the_delivery()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("ConnectError")
    assert delivery.next_attempt_at == T0 + timedelta(seconds=30)
    clock(T0 + timedelta(seconds=30))
    assert service.deliver_due() == DeliveryRun(claimed=1, retrying=1)
    assert the_delivery().next_attempt_at == T0 + timedelta(seconds=90)


def test_redirects_are_not_followed(project, webhook, receiver, clock):
    receiver.reply(Reply(302, headers={"Location": "http://169.254.169.254/latest"}))
    enqueue(project.id)
    assert service.deliver_due() == DeliveryRun(claimed=1, retrying=1)
    delivery = the_delivery()
    assert delivery.last_status_code == 302
    assert "redirects are not followed" in delivery.last_error
    assert len(receiver.received) == 1


def test_a_removed_webhooks_pending_deliveries_fail_unsent(project, webhook, receiver, clock):
    enqueue(project.id)
    service.delete_webhook(actor=None, webhook_id=webhook[0].id)
    assert service.deliver_due() == DeliveryRun(claimed=1, failed=1)
    delivery = the_delivery()
    assert delivery.status == DeliveryStatus.FAILED and delivery.webhook_id is None
    assert "removed" in delivery.last_error
    assert receiver.received == []


def test_after_rotation_pending_deliveries_are_signed_with_the_new_secret(
        project, webhook, receiver, clock):
    old = webhook[1]
    enqueue(project.id)
    new = service.rotate_secret(actor=None, webhook_id=webhook[0].id)
    assert new != old
    service.deliver_due()
    [request] = receiver.received
    assert independent_check(new, request, now=T0)
    assert not independent_check(old, request, now=T0)


def test_a_run_sends_at_most_its_limit_oldest_first(project, webhook, receiver, clock):
    for n in range(25):
        enqueue(project.id, key=f"k{n}")
    assert service.deliver_due(limit=12) == DeliveryRun(claimed=12, delivered=12)
    assert [json.loads(r.body)["data"]["report"] for r in receiver.received][:1] == ["r_1"]
    ids = [int(r.headers["Flagdesk-Delivery"]) for r in receiver.received]
    assert ids == sorted(ids)
    assert service.deliver_due() == DeliveryRun(claimed=13, delivered=13)
    assert len({r.headers["Flagdesk-Delivery"] for r in receiver.received}) == 25


def test_secrets_never_reach_the_logs(project, webhook, receiver, clock, caplog):
    receiver.reply(Reply(500, b"nope"))
    enqueue(project.id)
    with caplog.at_level(logging.DEBUG):
        service.deliver_due()
    assert "will be retried" in caplog.text
    assert webhook[1] not in caplog.text


# --- e-mail --------------------------------------------------------------------------


def test_email_goes_through_smtp(app, smtp_server, clock, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}")
    monkeypatch.setitem(app.config, "MAIL_FROM", "Flagdesk <alerts@flagdesk.test>")
    enqueue(None, emails=["lead@example.com"], payload={
        "title": "Breached: <script>alert(1)</script>\r\nBcc: victim@example.com",
        "text": "Report r_1 missed its resolution target.\x1b[2J",
        "report": "r_1", "description": "<b>untrusted</b> report text",
        "url": "https://flagdesk.test/tickets/r_1"})
    assert service.deliver_due() == DeliveryRun(claimed=1, delivered=1)

    [mail] = smtp_server.mails
    assert mail.sender == "alerts@flagdesk.test" and mail.recipients == ["lead@example.com"]
    message = mail.message
    assert message["To"] == "lead@example.com"
    assert message["From"] == "Flagdesk <alerts@flagdesk.test>"
    # One header line: the CR/LF in the untrusted title could not add a Bcc.
    assert message["Subject"] == ("Breached: <script>alert(1)</script> Bcc: "
                                  "victim@example.com")
    assert message["Bcc"] is None
    assert message.get_content_type() == "text/plain" and not message.is_multipart()
    body = message.get_content().replace("\r\n", "\n")
    assert body.startswith("Report r_1 missed its resolution target.[2J\n")
    assert "\x1b" not in body  # the escape character is gone; what follows is harmless
    assert "report: r_1" in body
    assert "description: <b>untrusted</b> report text" in body
    assert "https://flagdesk.test/tickets/r_1" in body
    assert the_delivery().status == DeliveryStatus.DELIVERED


def test_an_smtp_refusal_is_retried(app, smtp_server, clock, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}")
    smtp_server.refuse_mail = True
    enqueue(None, emails=["lead@example.com"])
    assert service.deliver_due() == DeliveryRun(claimed=1, retrying=1)
    delivery = the_delivery()
    assert "451" in delivery.last_error
    assert delivery.next_attempt_at == T0 + timedelta(seconds=30)
    smtp_server.refuse_mail = False
    clock(T0 + timedelta(seconds=30))
    assert service.deliver_due() == DeliveryRun(claimed=1, delivered=1)
    assert len(smtp_server.mails) == 1


def test_a_password_is_never_sent_without_tls(app, smtp_server, clock, monkeypatch, caplog):
    monkeypatch.setitem(app.config, "SMTP_URL",
                        f"smtp://mailer:hunter2-secret@127.0.0.1:{smtp_server.port}")
    enqueue(None, emails=["lead@example.com"])
    with caplog.at_level(logging.DEBUG):
        assert service.deliver_due() == DeliveryRun(claimed=1, retrying=1)
    delivery = the_delivery()
    assert "STARTTLS" in delivery.last_error
    assert not any(c.upper().startswith("AUTH") for c in smtp_server.commands)
    assert smtp_server.mails == []
    assert "hunter2" not in caplog.text and "hunter2" not in delivery.last_error


def test_without_smtp_url_mail_goes_to_the_console_sink(app, clock, caplog, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    enqueue(None, emails=["lead@example.com"], payload={"title": "At risk: r_1",
                                                         "report": "r_1"})
    with caplog.at_level(logging.INFO, logger="flagdesk.mail"):
        assert service.deliver_due() == DeliveryRun(claimed=1, delivered=1)
    [entry] = [r for r in caplog.records if r.name == "flagdesk.mail"]
    text = entry.getMessage()
    assert "To: lead@example.com" in text
    assert "Subject: At risk: r_1" in text
    assert "report: r_1" in text
    assert the_delivery().status == DeliveryStatus.DELIVERED


def test_webhooks_and_mail_of_one_notice_are_independent(app, project, webhook, receiver,
                                                         closed_port_url, clock, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", closed_port_url.replace("http", "smtp"))
    enqueue(project.id, emails=["lead@example.com"])
    assert service.deliver_due() == DeliveryRun(claimed=2, delivered=1, retrying=1)
    assert len(receiver.received) == 1
