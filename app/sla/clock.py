"""Business-hours arithmetic: how much calendar time lies between two instants, and which
instant comes a given amount of calendar time after another.

Pure functions: no Flask, no database, no other part of the app (an import-linter
contract keeps it so). Instants go in as timezone-aware datetimes (naive ones are
refused) and come out as aware datetimes in UTC. Durations are exact: everything is
counted in whole microseconds, never in floats.

The rules a calendar follows:

* Working spans are wall-clock times in the calendar's timezone, per weekday (Monday
  first). A span whose end is at or before its start runs past midnight and ends on the
  next day: 22:00-06:00 is a night shift, 00:00-00:00 a whole day.
* Spans that overlap (on one day, or a night shift running into the next day's hours)
  count once.
* A holiday is a local date on which no span *starts*. A night shift that began the
  evening before a holiday counts until it ends, past midnight; one that would start on
  the evening of a holiday does not count at all, not even its hours after midnight.
* Daylight saving: a span is the real time between its two wall-clock edges. On the
  spring-forward night 01:00-05:00 lasts 3 real hours, on the fall-back night 5 (4 + the
  repeated hour). An edge in the skipped hour maps forward (02:30 on the spring-forward
  night in Berlin means 03:30 summer time); an edge in the repeated hour means its first
  occurrence. This is what `zoneinfo` does with `fold=0`.
* An always-on calendar counts every instant (timezone, hours and holidays aside).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "ALWAYS_ON",
    "DAY_KEYS",
    "Calendar",
    "add",
    "between",
    "calendar_from_settings",
    "due",
    "elapsed",
]

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MONDAY = 1  # date.fromordinal(1) is a Monday: ordinal % 7 == 1 marks the start of a week


def _zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError(f"timezone must be an IANA name such as 'Europe/Berlin', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown timezone {name!r}: use an IANA name such as "
                         "'Europe/Berlin'") from None


@dataclass(frozen=True)
class Calendar:
    """When a clock runs: a timezone, working spans per weekday and holidays.

    `week` has 7 entries, Monday first; each is a tuple of (start, end) wall-clock times
    (naive `time`s). Lists and sets are accepted and stored as tuples and a frozenset, so
    a calendar is hashable and can key a cache.
    """

    timezone: str
    week: tuple[tuple[tuple[time, time], ...], ...]
    holidays: frozenset[date] = frozenset()
    always_on: bool = False

    def __post_init__(self) -> None:
        _zone(self.timezone)
        if isinstance(self.week, str | bytes) or len(self.week) != 7:
            raise ValueError("week needs 7 entries of working spans, Monday first")
        week = []
        for key, spans in zip(DAY_KEYS, self.week, strict=True):
            day = []
            for span in spans:
                if len(span) != 2:
                    raise ValueError(f"{key}: a working span is a (start, end) pair, got {span!r}")
                for edge in span:
                    if not isinstance(edge, time) or edge.tzinfo is not None:
                        raise ValueError(f"{key}: span edges are naive wall-clock times, "
                                         f"got {edge!r}")
                # fold would change which instant an ambiguous edge means; the rule is fold=0.
                day.append((span[0].replace(fold=0), span[1].replace(fold=0)))
            week.append(tuple(day))
        holidays = frozenset(self.holidays)
        for holiday in holidays:
            if not isinstance(holiday, date) or isinstance(holiday, datetime):
                raise ValueError(f"holidays are dates, got {holiday!r}")
        object.__setattr__(self, "week", tuple(week))
        object.__setattr__(self, "holidays", holidays)
        if not isinstance(self.always_on, bool):
            raise ValueError(f"always_on is True or False, got {self.always_on!r}")


ALWAYS_ON = Calendar(timezone="UTC", week=((),) * 7, always_on=True)


def between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    """The calendar time in [start, end); zero when end <= start."""
    s, e = _instant(start, "start"), _instant(end, "end")
    return timedelta(microseconds=_between(_compile(calendar), s, e))


def add(calendar: Calendar, start: datetime, duration: timedelta) -> datetime:
    """The earliest instant t >= start with between(calendar, start, t) == duration.

    Raises ValueError for a negative duration, and for a calendar with no working hours
    at all (which would never get there).
    """
    s, n = _instant(start, "start"), _duration(duration, "duration")
    compiled = _compile(calendar)
    _require_time(compiled)
    return _datetime(_add(compiled, s, n))


def elapsed(calendar: Calendar, start: datetime, end: datetime,
            pauses: Sequence[tuple[datetime, datetime | None]]) -> timedelta:
    """The calendar time in [start, end) outside the pauses.

    Each pause is (from, until); an open pause (until None) runs to `end`. Pauses are
    clipped to [start, end] and may overlap: time paused twice is subtracted once.
    """
    s, e = _instant(start, "start"), _instant(end, "end")
    compiled = _compile(calendar)
    paused, _ = _merged_pauses(pauses, s, e)
    total = _between(compiled, s, e)
    for pause_start, pause_end in paused:
        total -= _between(compiled, pause_start, pause_end)
    return timedelta(microseconds=total)


def due(calendar: Calendar, start: datetime, target: timedelta,
        pauses: Sequence[tuple[datetime, datetime | None]]) -> datetime | None:
    """The earliest instant at which elapsed(calendar, start, t, pauses) reaches target:
    the clock is pushed back by the calendar time of each pause. None while a pause is
    open, since the clock stands still and no instant is due yet.

    Raises ValueError for a negative target, and for a calendar with no working hours.
    """
    s, n = _instant(start, "start"), _duration(target, "target")
    compiled = _compile(calendar)
    _require_time(compiled)
    paused, is_open = _merged_pauses(pauses, s, None)
    if is_open:
        return None
    cursor = s
    for pause_start, pause_end in paused:
        before_pause = _between(compiled, cursor, pause_start)
        if before_pause >= n:
            break
        n -= before_pause
        cursor = pause_end
    return _datetime(_add(compiled, cursor, n))


def calendar_from_settings(*, timezone: str, week: Mapping[str, list[list[str]]],
                           holidays: Iterable[date | str], always_on: bool = False) -> Calendar:
    """A Calendar from stored settings, validated.

    `week` maps day keys ("mon" .. "sun") to lists of ["HH:MM", "HH:MM"] spans; a day not
    listed has no hours. An end of "24:00" means midnight at the end of the day. Holidays
    are dates (or ISO "YYYY-MM-DD" strings). Raises ValueError, with a message fit to show
    an admin, for an unknown timezone, day key or bad time, and for a calendar that is
    neither always on nor has any working hours.
    """
    _zone(timezone)
    if not isinstance(week, Mapping):
        raise ValueError("week maps day keys (mon .. sun) to lists of [start, end] spans")
    unknown = sorted(str(key) for key in week if key not in DAY_KEYS)
    if unknown:
        raise ValueError(f"unknown day {', '.join(map(repr, unknown))}: "
                         f"use {', '.join(DAY_KEYS)}")
    days = []
    for key in DAY_KEYS:
        spans = week.get(key) or ()
        if isinstance(spans, str | bytes | Mapping):
            raise ValueError(f"{key}: expected a list of [start, end] spans, got {spans!r}")
        day = []
        for span in spans:
            if isinstance(span, str | bytes) or not isinstance(span, Sequence) or len(span) != 2:
                raise ValueError(f"{key}: a span is a pair [\"HH:MM\", \"HH:MM\"], got {span!r}")
            day.append((_parse_hhmm(span[0], key, end=False), _parse_hhmm(span[1], key, end=True)))
        days.append(tuple(day))
    if not isinstance(always_on, bool):
        raise ValueError(f"always_on is true or false, got {always_on!r}")
    if not always_on and not any(days):
        raise ValueError("a calendar needs working hours on at least one day (or always on)")
    return Calendar(timezone=timezone, week=tuple(days),
                    holidays=frozenset(_parse_holiday(h) for h in holidays),
                    always_on=always_on)


_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def _parse_hhmm(value: object, key: str, *, end: bool) -> time:
    if end and value == "24:00":
        return time(0)  # an end at or before the start runs to the next day
    match = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{key}: {value!r} is not a time of day as HH:MM (00:00 to 23:59"
                         f"{', or 24:00 as an end' if end else ''})")
    return time(int(match[1]), int(match[2]))


def _parse_holiday(value: object) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"holidays are dates, not instants: got {value!r}")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"holidays are dates as YYYY-MM-DD, got {value!r}")


# --- conversion and validation ------------------------------------------------------


def _instant(value: object, name: str) -> int:
    """An aware datetime as microseconds since the Unix epoch."""
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got the naive {value!r}")
    return (value - _EPOCH) // _MICROSECOND


def _duration(value: object, name: str) -> int:
    if not isinstance(value, timedelta):
        raise ValueError(f"{name} must be a timedelta, got {value!r}")
    if value < timedelta(0):
        raise ValueError(f"{name} must not be negative, got {value}")
    return value // _MICROSECOND


def _datetime(instant: int) -> datetime:
    return _EPOCH + timedelta(microseconds=instant)


def _require_time(compiled: _Compiled) -> None:
    if compiled.empty:
        raise ValueError("the calendar has no working hours, so no amount of its time "
                         "is ever reached")


def _merged_pauses(pauses: Sequence[tuple[datetime, datetime | None]], lo: int,
                   hi: int | None) -> tuple[list[tuple[int, int]], bool]:
    """The pauses clipped to [lo, hi], sorted, overlaps merged; and whether one is open.

    With hi None an open pause is only reported, not included."""
    spans = []
    is_open = False
    for pause_start, pause_end in pauses:
        a = _instant(pause_start, "a pause's start")
        if pause_end is None:
            is_open = True
            if hi is None:
                continue
            b = hi
        else:
            b = _instant(pause_end, "a pause's end")
            if b < a:
                raise ValueError("a pause ends before it starts")
        a = max(a, lo)
        if hi is not None:
            b = min(b, hi)
        if b > a:
            spans.append((a, b))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged, is_open


# --- the arithmetic -----------------------------------------------------------------
#
# The timeline is cut into local days: day D covers [midnight of D, midnight of D+1) in
# real time. Each day's working time is the union of every span (of any day) that falls
# into it, as microsecond intervals, computed once per (calendar, date) and cached. Both
# between() and add() walk these same intervals in order, which is what makes them agree
# exactly; whole weeks are skipped with one cached sum.


class _Compiled:
    """A calendar prepared for arithmetic. Hashed by identity, so cache look-ups keyed by
    it cost no hashing of the calendar's fields."""

    __slots__ = ("always_on", "empty", "holidays", "week", "zone")

    def __init__(self, calendar: Calendar) -> None:
        self.zone = _zone(calendar.timezone)
        self.week = calendar.week
        self.holidays = calendar.holidays
        self.always_on = calendar.always_on
        self.empty = not calendar.always_on and not any(calendar.week)


@lru_cache(maxsize=256)
def _compile(calendar: Calendar) -> _Compiled:
    return _Compiled(calendar)


def _local(compiled: _Compiled, day: date, at: time) -> int:
    # fold=0: an edge in a skipped hour maps forward, one in a repeated hour is its first.
    return (datetime.combine(day, at, tzinfo=compiled.zone) - _EPOCH) // _MICROSECOND


@lru_cache(maxsize=1 << 16)
def _midnight(compiled: _Compiled, ordinal: int) -> int:
    return _local(compiled, date.fromordinal(ordinal), time(0))


@lru_cache(maxsize=1 << 16)
def _spans_starting(compiled: _Compiled, ordinal: int) -> tuple[tuple[int, int], ...]:
    """The real-time intervals of the spans that start on this local date."""
    day = date.fromordinal(ordinal)
    if day in compiled.holidays:
        return ()
    spans = []
    for start, end in compiled.week[day.weekday()]:
        a = _local(compiled, day, start)
        b = _local(compiled, day if end > start else day + timedelta(days=1), end)
        # Both edges in or around a skipped hour can collapse a span to nothing.
        if b > a:
            spans.append((a, b))
    return tuple(spans)


@lru_cache(maxsize=1 << 16)
def _day(compiled: _Compiled, ordinal: int) -> tuple[int, int, tuple[tuple[int, int], ...], int]:
    """(start, end, working intervals, their total) of one local day, in microseconds.

    A night shift of the day before reaches into this day; the neighbours further out are
    included only because DST gaps can shift an edge by a few hours."""
    lo, hi = _midnight(compiled, ordinal), _midnight(compiled, ordinal + 1)
    candidates = sorted(
        (max(a, lo), min(b, hi))
        for neighbour in range(ordinal - 2, ordinal + 2)
        for a, b in _spans_starting(compiled, neighbour)
        if a < hi and b > lo
    )
    merged: list[tuple[int, int]] = []
    for a, b in candidates:
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return lo, hi, tuple(merged), sum(b - a for a, b in merged)


@lru_cache(maxsize=1 << 14)
def _week(compiled: _Compiled, ordinal: int) -> tuple[int, int, int]:
    """(start, end, working total) of the seven local days from this one."""
    return (_midnight(compiled, ordinal), _midnight(compiled, ordinal + 7),
            sum(_day(compiled, ordinal + i)[3] for i in range(7)))


def _first_day(compiled: _Compiled, instant: int) -> int:
    """A local day at or before the one holding the instant (one early, for safety
    around midnight transitions); the walks skip what lies before the instant."""
    return _datetime(instant).astimezone(compiled.zone).toordinal() - 1


def _between(compiled: _Compiled, s: int, e: int) -> int:
    if e <= s:
        return 0
    if compiled.always_on:
        return e - s
    if compiled.empty:
        return 0
    total = 0
    ordinal = _first_day(compiled, s)
    while True:
        if ordinal % 7 == _MONDAY:
            lo, hi, week_total = _week(compiled, ordinal)
            if lo >= s and hi <= e:
                total += week_total
                ordinal += 7
                continue
        lo, hi, intervals, day_total = _day(compiled, ordinal)
        if lo >= e:
            return total
        ordinal += 1
        if hi <= s:
            continue
        if lo >= s and hi <= e:
            total += day_total
            continue
        for a, b in intervals:
            a, b = max(a, s), min(b, e)
            if b > a:
                total += b - a


def _add(compiled: _Compiled, s: int, n: int) -> int:
    if n == 0:
        return s
    if compiled.always_on:
        return s + n
    ordinal = _first_day(compiled, s)
    # n stays positive in the loop: time is only taken off while more is left over.
    while True:
        if ordinal % 7 == _MONDAY:
            lo, hi, week_total = _week(compiled, ordinal)
            if lo >= s and week_total < n:
                n -= week_total
                ordinal += 7
                continue
        lo, hi, intervals, day_total = _day(compiled, ordinal)
        ordinal += 1
        if hi <= s:
            continue
        if lo >= s and day_total < n:
            n -= day_total
            continue
        for a, b in intervals:
            if b <= s:
                continue
            a = max(a, s)
            if b - a >= n:
                return a + n
            n -= b - a
