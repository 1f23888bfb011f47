"""Webhook signatures: how Flagdesk signs a request, and how a receiver checks it.

Every webhook request carries

    Flagdesk-Signature: t=<unix seconds when sent>,v1=<hex HMAC-SHA256>

where the HMAC key is the webhook's secret and the signed message is
``f"{t}.".encode() + raw_body`` (the exact bytes received, before any JSON parsing).
This is Stripe's scheme: the timestamp is signed too, so a receiver that rejects old
timestamps (five minutes by default) cannot be fooled by a replayed request.

A receiver in Python, e.g. with Flask::

    from app.notify.signing import verify
    ok = verify(SECRET, request.headers["Flagdesk-Signature"], request.get_data(),
                now=time.time())

or, without this module: split the header on "," and "=", recompute
``hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()``,
compare it with ``hmac.compare_digest`` to each ``v1`` value, and check ``t`` is recent.
Receivers should also ignore a ``Flagdesk-Delivery`` id they have seen: a delivery is
retried until it is acknowledged with a 2xx, so it may arrive more than once.

This module is pure (standard library only).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

SIGNATURE_HEADER = "Flagdesk-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300  # seconds


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def signature(secret: str, body: str | bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of f"{timestamp}.{body}" under `secret`."""
    message = f"{int(timestamp)}.".encode() + _bytes(body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: str | bytes, timestamp: int) -> str:
    """The Flagdesk-Signature header value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={int(timestamp)},{SCHEME}={signature(secret, body, timestamp)}"


def parse(header: str) -> tuple[int | None, list[str]]:
    """(timestamp, [v1 signatures]) from a header value; (None, []) if it is malformed."""
    timestamp, signatures = None, []
    for item in (header or "").split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME and value:
            signatures.append(value)
    return timestamp, signatures


def verify(secret: str, header: str, body: str | bytes, *, now: datetime | float,
           tolerance: int = DEFAULT_TOLERANCE) -> bool:
    """True if `header` signs exactly `body` with `secret`, at a time within `tolerance`
    seconds of `now` (an aware datetime or unix seconds). Compares in constant time; any
    of several v1 values may match (a sender may sign with two secrets while rotating)."""
    timestamp, signatures = parse(header)
    if timestamp is None or not signatures:
        return False
    current = now.timestamp() if isinstance(now, datetime) else float(now)
    if abs(current - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp).encode()
    # Check every candidate (no early exit), so timing says nothing about which matched.
    # Bytes, because compare_digest refuses str with non-ASCII characters.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    return matched
