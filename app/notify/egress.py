"""Where webhooks may connect: public addresses only, unless the operator allows private
networks (WEBHOOK_ALLOW_PRIVATE_NETWORKS).

An admin chooses a webhook's URL, but Flagdesk makes the request from inside its own
network: unchecked, a URL could reach the cloud's metadata service (169.254.169.254), the
database, or anything else only the server can see (server-side request forgery). So the
host is resolved once, every address it resolves to must be public, and the request goes
to the address that was checked, with the URL's host in the Host header and as the TLS
name (SNI and certificate check), so that DNS cannot answer differently between the check
and the connection.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class RefusedAddress(Exception):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


@dataclass(frozen=True)
class Pinned:
    """A request to send instead of the URL: to a checked address, naming the host."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def is_public(address: str) -> bool:
    """Globally routable unicast: not private, loopback, link-local, shared (CGNAT),
    reserved, multicast or unspecified; IPv4-mapped IPv6 is judged as IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone index
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> str | None:
    """`host` if it is an IP address (IPv6 without its brackets), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def check_literal(url: str) -> None:
    """Refuse a URL whose host is a non-public IP address (a hostname is checked when the
    webhook is called, since what it resolves to can change)."""
    host = urlsplit(url).hostname or ""
    address = literal_address(host)
    if address is not None and not is_public(address):
        raise RefusedAddress(f"{address} is not a public address")


def pin(url: str, resolve: Callable[..., Any] | None = None) -> Pinned:
    """The request for `url` sent to a checked public address of its host (resolved by
    `resolve`, socket.getaddrinfo by default). Raises RefusedAddress if any address is not
    public, OSError if the host does not resolve."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
    lookup = resolve or socket.getaddrinfo
    found = [info[4][0] for info in lookup(host, port, type=socket.SOCK_STREAM)]
    if not found:
        raise OSError(f"{host} has no address")
    refused = [address for address in found if not is_public(address)]
    if refused:
        raise RefusedAddress(f"{host} resolves to {refused[0]}, which is not public")
    address = found[0].split("%", 1)[0]
    extensions = {"sni_hostname": host} if parts.scheme == "https" and \
        literal_address(host) is None else {}
    return Pinned(url=urlunsplit(parts._replace(netloc=_netloc(address, parts.port))),
                  headers={"Host": _netloc(host, parts.port)}, extensions=extensions)


def _netloc(host: str, port: int | None) -> str:
    """host[:port] as a URL or a Host header writes it (an IPv6 address in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"
