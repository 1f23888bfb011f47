"""Intake is rate limited per client address and per project, with 429 and Retry-After."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from app.core import ratelimit
from tests.conftest import report_body

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def limits(app):
    saved = {k: app.config[k] for k in ("INTAKE_LIMIT_PER_ADDRESS", "INTAKE_LIMIT_PER_PROJECT")}

    def set_limits(per_address: str, per_project: str) -> None:
        app.config["INTAKE_LIMIT_PER_ADDRESS"] = per_address
        app.config["INTAKE_LIMIT_PER_PROJECT"] = per_project
        ratelimit.reset()

    yield set_limits
    app.config.update(saved)
    ratelimit.reset()


def test_per_address_limit(submit, limits):
    limits("2/minute", "100/minute")
    assert [submit().status_code for _ in range(2)] == [201, 201]
    response = submit()
    assert response.status_code == 429
    assert response.json["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0
    # The widget on an allowed origin can read the refusal.
    assert response.headers["Access-Control-Allow-Origin"] == "https://chat.example.com"
    # Another address is not affected.
    other = submit(environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 201


def test_per_project_limit_across_addresses(submit, limits):
    limits("100/minute", "3/minute")
    codes = [submit(environ_base={"REMOTE_ADDR": f"10.0.0.{i}"}).status_code for i in range(4)]
    assert codes == [201, 201, 201, 429]


def test_reading_the_status_is_not_intake_limited(client, submit, limits):
    limits("1/minute", "100/minute")
    receipt = submit().json
    for _ in range(3):
        response = client.get(f"/api/v1/reports/{receipt['id']}/status",
                              query_string={"token": receipt["status_token"]})
        assert response.status_code == 200


def test_limits_are_kept_in_redis_when_configured(secondary_app):
    """With RATELIMIT_STORAGE_URI pointing at Redis, counters live there (shared by every
    worker process), not in this process."""
    prefix = f"flagdesk-test-{uuid.uuid4().hex}"
    connection = redis.Redis.from_url(REDIS_URL)
    redis_app = secondary_app(RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix,
                              INTAKE_LIMIT_PER_ADDRESS="1/minute")
    try:
        client = redis_app.test_client()
        codes = [client.post("/api/v1/reports", json=report_body(),
                             headers={"X-Project-Key": "pk_nope"}).status_code
                 for _ in range(2)]
        assert codes == [401, 429]
        assert connection.keys(f"*{prefix}*")
    finally:
        for key in connection.keys(f"*{prefix}*"):
            connection.delete(key)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


def test_in_process_counters_end_with_their_window_and_are_swept(monkeypatch):
    """The embedded default counts in process without a cleanup thread: a counter is
    fresh again once its window ends, and counters never read again are dropped."""
    import limits.storage.memory
    from limits import parse
    from limits.strategies import FixedWindowRateLimiter

    from app.core import ratelimit as module

    clock = FakeTime()
    monkeypatch.setattr(limits.storage.memory, "time", clock)
    monkeypatch.setattr(module, "time", clock)
    storage = module.ProcessMemoryStorage()
    first_timer = storage.timer  # MemoryStorage starts one at construction
    first_timer.join()
    limiter = FixedWindowRateLimiter(storage)
    two_a_second = parse("2/second")
    assert [limiter.hit(two_a_second, "k") for _ in range(3)] == [True, True, False]
    clock.now += 1.5
    assert limiter.hit(two_a_second, "k")

    storage.SWEEP_EVERY = 3
    limiter.hit(two_a_second, "other")
    clock.now += 5
    limiter.hit(two_a_second, "x")  # the third increment since the setting: a sweep
    assert [key for key in storage.storage if "other" in key or "/k/" in key] == []
    assert [key for key in storage.storage if "/x/" in key]
    assert storage.timer is first_timer  # no cleanup thread was started per increment
