"""Webhooks reach public addresses only (unless WEBHOOK_ALLOW_PRIVATE_NETWORKS): a URL
naming or resolving to a private, loopback or link-local address is refused, and a
request goes to the address that was checked (no second DNS answer)."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import select

from app.core.errors import ValidationFailed
from app.extensions import db
from app.notify import egress, service
from app.notify.models import Delivery, DeliveryStatus

NOT_PUBLIC = ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254",
              "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fd00::1",
              "::ffff:127.0.0.1", "::ffff:10.0.0.1"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_private_loopback_link_local_and_mapped_addresses_are_not_public(address):
    assert not egress.is_public(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_internet_addresses_are_public(address):
    assert egress.is_public(address)


def resolver(*addresses: str):
    def resolve(host, port, *args, **kwargs):  # socket.getaddrinfo's signature
        family = socket.AF_INET6 if any(":" in a for a in addresses) else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]
    return resolve


def test_a_request_is_pinned_to_the_checked_address_and_names_the_host():
    pinned = egress.pin("https://hooks.example.com/in?x=1", resolve=resolver("93.184.216.34"))
    assert pinned.url == "https://93.184.216.34/in?x=1"
    assert pinned.headers == {"Host": "hooks.example.com"}
    assert pinned.extensions == {"sni_hostname": "hooks.example.com"}  # TLS checks the name

    v6 = egress.pin("http://hooks.example.com:8080/in", resolve=resolver("2606:4700::1111"))
    assert v6.url == "http://[2606:4700::1111]:8080/in"
    assert v6.headers == {"Host": "hooks.example.com:8080"} and v6.extensions == {}


def test_a_host_with_any_private_address_is_refused():
    # DNS may mix answers; one private address is enough to refuse.
    with pytest.raises(egress.RefusedAddress, match="169.254.169.254"):
        egress.pin("https://hooks.example.com/", resolve=resolver("93.184.216.34",
                                                                  "169.254.169.254"))


@pytest.fixture
def strict(app, monkeypatch):
    """The production default: private networks refused (the suite allows them for its
    loopback receivers)."""
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/in", "http://169.254.169.254/latest",
                                 "https://[::1]/in", "http://10.0.0.5/"])
def test_a_webhook_to_a_private_address_is_refused_when_created(project, strict, url):
    with pytest.raises(ValidationFailed, match="not a public address"):
        service.create_webhook(actor=None, project_id=project.id, url=url, kind="escalation")


def test_a_hostname_that_resolves_privately_is_refused_when_called(project, strict, receiver,
                                                                    clock):
    # "localhost" passes creation (a name, not an address) but is checked at each call.
    url = receiver.url.replace("127.0.0.1", "localhost")
    service.create_webhook(actor=None, project_id=project.id, url=url, kind="escalation")
    service.enqueue(event="sla.breached", dedupe_key="r_1:breached", project_id=project.id,
                    payload={"report": "r_1"})
    db.session.commit()

    run = service.deliver_due()

    delivery = db.session.scalars(select(Delivery)).one()
    assert (run.failed, delivery.status) == (1, DeliveryStatus.FAILED)  # not retried
    assert "not public" in delivery.last_error and "WEBHOOK_ALLOW_PRIVATE_NETWORKS" in \
        delivery.last_error
    assert receiver.received == []


def test_a_pinned_request_reaches_the_checked_address_with_the_hosts_name(
        project, strict, receiver, clock, monkeypatch):
    # Let loopback count as public for this test only, so the pinned request can be seen
    # arriving: sent to the address resolved once, naming the URL's host.
    monkeypatch.setattr(egress, "is_public", lambda address: True)
    port = receiver.url.split(":")[2].split("/")[0]
    monkeypatch.setattr(egress.socket, "getaddrinfo", resolver("127.0.0.1"))
    service.create_webhook(actor=None, project_id=project.id,
                           url=f"http://hooks.example.com:{port}/flagdesk", kind="escalation")
    service.enqueue(event="sla.breached", dedupe_key="r_1:breached", project_id=project.id,
                    payload={"report": "r_1"})
    db.session.commit()

    assert service.deliver_due().delivered == 1
    [request] = receiver.received
    assert request.path == "/flagdesk"
    assert request.headers["Host"] == f"hooks.example.com:{port}"
