"""The signature scheme receivers rely on: sign() and verify()."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from app.notify.signing import sign, verify

SECRET = "s3cret-for-tests"
BODY = b'{"id":1,"event":"sla.breached","data":{"report":"r_1"}}'
SENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T = int(SENT.timestamp())


def test_the_header_is_stripes_scheme_computed_independently():
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, T) == f"t={T},v1={expected}"


@pytest.mark.parametrize("delay", [0, 1, 299, 300, -300])
def test_a_fresh_signature_verifies(delay):
    assert verify(SECRET, sign(SECRET, BODY, T), BODY, now=SENT + timedelta(seconds=delay))


def test_unix_seconds_are_accepted_for_now():
    assert verify(SECRET, sign(SECRET, BODY, T), BODY, now=T + 10)


@pytest.mark.parametrize("delay", [301, 3600, -301])
def test_a_stale_or_future_timestamp_is_rejected(delay):
    assert not verify(SECRET, sign(SECRET, BODY, T), BODY, now=SENT + timedelta(seconds=delay))


def test_the_tolerance_is_the_receivers_choice():
    header = sign(SECRET, BODY, T)
    assert not verify(SECRET, header, BODY, now=T + 61, tolerance=60)
    assert verify(SECRET, header, BODY, now=T + 900, tolerance=1000)


def test_a_wrong_secret_is_rejected():
    assert not verify("another-secret", sign(SECRET, BODY, T), BODY, now=SENT)


def test_a_tampered_body_is_rejected():
    tampered = BODY.replace(b"r_1", b"r_2")
    assert not verify(SECRET, sign(SECRET, BODY, T), tampered, now=SENT)


def test_a_replayed_signature_with_a_new_timestamp_is_rejected():
    # An attacker who saw one request cannot refresh its timestamp: t is signed too.
    v1 = sign(SECRET, BODY, T).split("v1=")[1]
    assert not verify(SECRET, f"t={T + 3600},v1={v1}", BODY, now=T + 3600)


@pytest.mark.parametrize("header", ["", "garbage", f"t={T}", "v1=abc", "t=x,v1=ab",
                                    f"t={T},v1=", f"t={T},v1=é"])
def test_malformed_headers_are_rejected(header):
    assert not verify(SECRET, header, BODY, now=SENT)


def test_any_of_several_signatures_may_match():
    good = sign(SECRET, BODY, T).split("v1=")[1]
    assert verify(SECRET, f"t={T},v1={'0' * 64},v1={good}", BODY, now=SENT)
    assert verify(SECRET, sign(SECRET, BODY.decode(), T), BODY.decode(), now=SENT)
