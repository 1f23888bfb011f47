"""Rate limits: fixed-window counters in the storage RATELIMIT_STORAGE_URI names.

`limits` (the library under Flask-Limiter) used directly. Flask-Limiter's hooks ran on
every request and cost intake more than its database work; here a view counts only what
it limits. "memory://" keeps counters per process (the embedded default); a Redis URI
shares them between every worker, as production needs.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

from flask import Flask, current_app, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from app.core.errors import RateLimited

_EXTENSION = "flagdesk.ratelimits"


class ProcessMemoryStorage(MemoryStorage):
    """limits' MemoryStorage without the cleanup thread it starts anew every 10 ms under
    load (a thread start per request or so, a tenth of intake's time). A counter whose
    window has ended is dropped when it is next read (MemoryStorage.get does that); the
    ones never read again are dropped every SWEEP_EVERY increments."""

    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        super().__init__()
        self.increments = 0

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        self.get(key)
        with self.locks[key]:
            self.storage[key] += amount
            if self.storage[key] == amount:
                self.expirations[key] = time.time() + expiry
        self.increments += 1
        if self.increments % self.SWEEP_EVERY == 0:
            for stale in [k for k, at in list(self.expirations.items()) if at <= time.time()]:
                self.get(stale)
        return self.storage.get(key, 0)


def init_app(app: Flask) -> None:
    uri = app.config["RATELIMIT_STORAGE_URI"]
    storage = ProcessMemoryStorage() if uri == "memory://" else storage_from_string(uri)
    app.extensions[_EXTENSION] = FixedWindowRateLimiter(storage)


def _limiter() -> FixedWindowRateLimiter:
    return current_app.extensions[_EXTENSION]


@lru_cache(maxsize=64)
def _parsed(limits: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limits))


def _identifiers(scope: str, key: str) -> tuple[str, str, str]:
    return current_app.config.get("RATELIMIT_KEY_PREFIX", "flagdesk"), scope, key


def client_address() -> str:
    """The client's address (ProxyFix has applied TRUSTED_PROXY_COUNT already)."""
    return request.remote_addr or "unknown"


def _seconds_until(reset_at: float) -> int:
    return max(1, math.ceil(reset_at - time.time()))


def enforce(limits: str, scope: str, key: str) -> None:
    """Count one request against each limit in `limits` ("30/minute;500/hour") for `key`
    in `scope`; raise RateLimited (429 with Retry-After) when one is exhausted."""
    limiter, ids = _limiter(), _identifiers(scope, key)
    for item in _parsed(limits):
        if not limiter.hit(item, *ids):
            wait = _seconds_until(limiter.get_window_stats(item, *ids).reset_time)
            raise RateLimited(f"Too many requests: the limit is {item}. Retry later.",
                              headers={"Retry-After": str(wait)})


def exhausted(limits: str, scope: str, key: str) -> int | None:
    """Seconds to wait if a limit is used up for `key`, without counting; None if not.
    With count(), for limits that count only failures (sign-in attempts)."""
    limiter, ids = _limiter(), _identifiers(scope, key)
    waits = [_seconds_until(limiter.get_window_stats(item, *ids).reset_time)
             for item in _parsed(limits) if not limiter.test(item, *ids)]
    return max(waits) if waits else None


def count(limits: str, scope: str, key: str) -> None:
    """Count one event against each limit, never refusing (see exhausted())."""
    limiter, ids = _limiter(), _identifiers(scope, key)
    for item in _parsed(limits):
        limiter.hit(item, *ids)


def reset() -> None:
    """Forget every counter of this app (tests; an operator after an incident)."""
    _limiter().storage.reset()
