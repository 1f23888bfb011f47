"""Stored calendars made into `clock.Calendar`s, public holidays expanded, and cached.

A built calendar is cached per (calendar id, updated_at, years), so the sweep, a bulk
start and the benchmark build each one once, not once per ticket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from functools import lru_cache

import holidays as public_holidays

from app.core.clock import now
from app.reports.models import Priority
from app.sla import clock
from app.sla.models import SlaCalendar

# Holidays are expanded for the year a clock started, the year before (a local date can
# lie in it near New Year) and two after (targets and pauses that run past New Year).
YEARS_BEFORE, YEARS_AFTER = 1, 2

def public_holiday_dates(country: str, subdivision: str | None,
                         years: Iterable[int]) -> frozenset[date]:
    """The public holidays of a country (and region) in the given years.

    Raises ValueError, with a message fit for an admin, for an unknown country or region.
    """
    return _public_holidays(country.upper(), subdivision or None, tuple(sorted(set(years))))


@lru_cache(maxsize=256)
def _public_holidays(country: str, subdivision: str | None,
                     years: tuple[int, ...]) -> frozenset[date]:
    try:
        found = public_holidays.country_holidays(country, subdiv=subdivision, years=years)
    except NotImplementedError as error:
        raise ValueError(str(error)) from None
    return frozenset(found.keys())


def build(calendar: SlaCalendar, *, first_year: int, last_year: int) -> clock.Calendar:
    """The calendar with public holidays of [first_year - 1, last_year + 2] and the
    team's own dates, cached per (calendar id, updated_at, years): every edit through
    app.sla.policies moves updated_at (and forgets this process's copies at once).
    Raises ValueError for settings that make no calendar."""
    key = (calendar.id, calendar.updated_at, first_year - YEARS_BEFORE,
           last_year + YEARS_AFTER)
    cached = _CACHE.get(key)
    if cached is None:
        dates: set[date | str] = set(calendar.extra_holidays or ())
        if calendar.holiday_country:
            dates |= public_holiday_dates(calendar.holiday_country,
                                          calendar.holiday_subdivision,
                                          range(key[2], key[3] + 1))
        cached = clock.calendar_from_settings(timezone=calendar.timezone,
                                              week=calendar.week, holidays=dates)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = cached
    return cached


def forget(calendar_id: int) -> None:
    """Drop the cached builds of a calendar (it was just created or changed)."""
    for key in [k for k in _CACHE if k[0] == calendar_id]:
        _CACHE.pop(key, None)


_CACHE: dict[tuple[int, datetime, int, int], clock.Calendar] = {}
_CACHE_SIZE = 512


def for_priority(calendar: SlaCalendar | None, priority: Priority, *, around_the_clock_p0: bool,
                 first_year: int, last_year: int) -> tuple[clock.Calendar, bool]:
    """The calendar a clock of this priority counts in, and whether it is always on
    (P0 when the policy says so, or when the calendar is gone)."""
    if calendar is None or (priority == Priority.P0 and around_the_clock_p0):
        return clock.ALWAYS_ON, True
    return build(calendar, first_year=first_year, last_year=last_year), False


def validate(*, timezone: str, week: Mapping[str, list[list[str]]], holiday_country: str | None,
             holiday_subdivision: str | None, extra_holidays: Iterable[str]) -> None:
    """Raise ValueError (a message for the admin) unless the settings make a calendar."""
    clock.calendar_from_settings(timezone=timezone, week=week, holidays=list(extra_holidays))
    if holiday_subdivision and not holiday_country:
        raise ValueError("a holiday region needs a holiday country")
    if holiday_country:
        public_holiday_dates(holiday_country, holiday_subdivision, [now().year])
