"""now(): the one source of the current time. Tests swap it with `frozen()`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime


def _system_now() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _system_now


def now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return _source()


@contextmanager
def frozen(at: datetime) -> Iterator[Callable[[datetime], None]]:
    """Freeze now() at `at` (aware); yields a function that moves the frozen clock."""
    global _source
    if at.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    current = [at.astimezone(UTC)]

    def move_to(instant: datetime) -> None:
        current[0] = instant.astimezone(UTC)

    previous, _source = _source, (lambda: current[0])
    try:
        yield move_to
    finally:
        _source = previous
