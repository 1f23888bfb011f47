"""The admin pages: /admin/webhooks (add, rotate, remove) and /admin/deliveries."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.core.errors import Forbidden
from app.extensions import db
from app.notify import service
from app.notify.models import Webhook
from tests.notify.conftest import Reply
from tests.web import post_form
from tests.web import sign_in as sign_in_client


@pytest.fixture
def admin(client, make_user):
    user = make_user(Role.ADMIN, name="Ada Admin")
    sign_in_client(client, user)
    return user


def webhooks() -> list[Webhook]:
    db.session.expire_all()
    return list(db.session.scalars(select(Webhook)))


def audit(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def shown_secret(html: str) -> str:
    match = re.search(r'data-testid="webhook-secret">([^<]+)<', html)
    assert match, "no secret on the page"
    return match.group(1)


def test_adding_a_webhook_shows_its_secret_once(client, admin, project):
    response = post_form(client, "/admin/webhooks", {
        "project_id": project.id, "url": "https://hooks.example.com/flagdesk",
        "kind": "paging", "description": "On-call pager"})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    secret = shown_secret(html)
    [webhook] = webhooks()
    assert webhook.secret == secret and len(secret) >= 43
    assert webhook.kind == "paging" and webhook.description == "On-call pager"
    assert "shown only this once" in html

    later = client.get("/admin/webhooks").get_data(as_text=True)
    assert secret not in later
    assert secret[-4:] in later  # masked: the last four characters only
    assert "https://hooks.example.com/flagdesk" in later and "Chat" in later

    [event] = audit("webhook.created")
    assert event.actor_id == admin.id
    assert secret not in str(event.after)


@pytest.mark.parametrize("url, problem", [
    ("ftp://files.example.com/x", "http:// or https://"),
    ("hooks.example.com/x", "http:// or https://"),
    ("https://user:pw@hooks.example.com/", "credentials"),
    ("https://hooks.example.com/a b", "spaces"),
])
def test_a_bad_url_is_refused_with_what_was_typed(client, admin, project, url, problem):
    response = post_form(client, "/admin/webhooks", {
        "project_id": project.id, "url": url, "kind": "escalation"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert problem in html
    assert webhooks() == []


def test_a_private_address_is_refused_by_default(client, admin, project, app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)
    response = post_form(client, "/admin/webhooks", {
        "project_id": project.id, "url": "http://169.254.169.254/latest/meta-data",
        "kind": "escalation"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "169.254.169.254 is not a public address" in html
    assert "WEBHOOK_ALLOW_PRIVATE_NETWORKS" in html
    assert webhooks() == []


def test_the_same_receiver_twice_is_a_conflict(client, admin, project):
    form = {"project_id": project.id, "url": "https://h.example.com/", "kind": "escalation"}
    assert post_form(client, "/admin/webhooks", form).status_code == 201
    response = post_form(client, "/admin/webhooks", form)
    assert response.status_code == 409 and "already" in response.get_data(as_text=True)
    assert len(webhooks()) == 1


def test_forms_need_a_csrf_token(client, admin, project):
    response = client.post("/admin/webhooks", data={
        "project_id": project.id, "url": "https://h.example.com/", "kind": "escalation"},
        headers={"Referer": "https://flagdesk.test/"})
    assert response.status_code == 400
    assert webhooks() == []
    webhook, _ = service.create_webhook(actor=None, project_id=project.id,
                                        url="https://h.example.com/", kind="escalation")
    for action in ("rotate", "delete"):
        response = client.post(f"/admin/webhooks/{webhook.id}/{action}",
                               data={"confirm": "yes"},
                               headers={"Referer": "https://flagdesk.test/"})
        assert response.status_code == 400
    assert webhooks()[0].secret == webhook.secret


def test_rotating_needs_confirmation_and_shows_the_new_secret_once(client, admin, project):
    webhook, old = service.create_webhook(actor=None, project_id=project.id,
                                          url="https://h.example.com/", kind="escalation")
    refused = post_form(client, f"/admin/webhooks/{webhook.id}/rotate", {})
    assert refused.status_code == 422 and "tick the box" in refused.get_data(as_text=True)
    assert webhooks()[0].secret == old

    response = post_form(client, f"/admin/webhooks/{webhook.id}/rotate", {"confirm": "yes"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    new = shown_secret(response.get_data(as_text=True))
    assert new != old and webhooks()[0].secret == new
    assert "The old secret no longer signs anything" in response.get_data(as_text=True)
    [event] = audit("webhook.secret_rotated")
    assert event.actor_id == admin.id and new not in str(event.after)


def test_removing_a_webhook(client, admin, project):
    webhook, _ = service.create_webhook(actor=None, project_id=project.id,
                                        url="https://h.example.com/", kind="escalation")
    path = f"/admin/webhooks/{webhook.id}/delete"
    assert post_form(client, path, {}).status_code == 422
    assert len(webhooks()) == 1
    response = post_form(client, path, {"confirm": "yes"})
    assert response.status_code == 303
    assert webhooks() == []
    assert "Webhook removed" in client.get("/admin/webhooks").get_data(as_text=True)
    assert len(audit("webhook.deleted")) == 1
    gone = post_form(client, path, {"confirm": "yes"})
    assert gone.status_code == 303
    assert "No webhook" in client.get("/admin/webhooks").get_data(as_text=True)


def test_deliveries_page_lists_and_filters(client, admin, project, receiver, clock):
    service.create_webhook(actor=None, project_id=project.id, url=receiver.url,
                           kind="escalation")
    receiver.reply(Reply(200), Reply(500, b"<script>alert('x')</script>"))
    service.enqueue(event="sla.at_risk", dedupe_key="ok", payload={}, project_id=project.id)
    service.enqueue(event="sla.breached", dedupe_key="bad", payload={}, project_id=project.id)
    db.session.commit()
    service.deliver_due()

    html = client.get("/admin/deliveries").get_data(as_text=True)
    assert "sla.at_risk" in html and "sla.breached" in html
    assert receiver.url in html
    assert "Delivered" in html and "Pending" in html
    # The receiver's answer is shown as text, never as markup.
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html

    pending = client.get("/admin/deliveries?status=pending").get_data(as_text=True)
    assert "sla.breached" in pending and "sla.at_risk" not in pending
    delivered = client.get("/admin/deliveries?status=delivered").get_data(as_text=True)
    assert "sla.at_risk" in delivered and "sla.breached" not in delivered
    assert client.get("/admin/deliveries?status=bogus").status_code == 200


def test_admin_navigation_links_the_new_pages(client, admin):
    html = client.get("/admin/users").get_data(as_text=True)
    assert 'href="/admin/webhooks"' in html and 'href="/admin/deliveries"' in html


@pytest.mark.parametrize("role", [Role.VIEWER, Role.RESPONDER, Role.LEAD])
def test_only_admins(client, make_user, project, role):
    webhook, secret = service.create_webhook(actor=None, project_id=project.id,
                                             url="https://h.example.com/", kind="escalation")
    sign_in_client(client, make_user(role))
    assert client.get("/admin/webhooks").status_code == 403
    assert client.get("/admin/deliveries").status_code == 403
    create = post_form(client, "/admin/webhooks", {
        "project_id": project.id, "url": "https://x.example.com/", "kind": "escalation"})
    assert create.status_code == 403
    for action in ("rotate", "delete"):
        response = post_form(client, f"/admin/webhooks/{webhook.id}/{action}",
                             {"confirm": "yes"})
        assert response.status_code == 403
        assert secret not in response.get_data(as_text=True)
    assert [(w.id, w.secret) for w in webhooks()] == [(webhook.id, secret)]


@pytest.mark.parametrize("call", [
    lambda actor: service.webhooks(actor=actor),
    lambda actor: service.create_webhook(actor=actor, project_id=1, url="https://h.example/",
                                         kind="escalation"),
    lambda actor: service.rotate_secret(actor=actor, webhook_id=1),
    lambda actor: service.delete_webhook(actor=actor, webhook_id=1),
    lambda actor: service.deliveries(actor=actor),
])
def test_the_services_check_the_role(make_user, call):
    with pytest.raises(Forbidden):
        call(make_user(Role.LEAD))


def test_strangers_are_sent_to_sign_in(client):
    for path in ("/admin/webhooks", "/admin/deliveries"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
