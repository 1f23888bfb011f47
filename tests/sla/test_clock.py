"""The business-hours clock: worked examples a service desk would check by hand, and
properties (hypothesis) that tie adding and measuring together."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as public_holidays
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.sla.clock import (
    ALWAYS_ON,
    DAY_KEYS,
    Calendar,
    add,
    between,
    calendar_from_settings,
    due,
    elapsed,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _rolled_back() -> None:
    """The clock is pure: these tests need no app and no database (this replaces the
    suite-wide fixture that opens a transaction for each test)."""


def office(timezone: str = "Europe/Berlin", hours: tuple[str, str] = ("09:00", "17:00"),
           days: tuple[str, ...] = DAY_KEYS[:5], holidays: object = ()) -> Calendar:
    return calendar_from_settings(timezone=timezone, week={day: [list(hours)] for day in days},
                                  holidays=holidays)


def at(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)


def bavaria(year: int) -> frozenset[date]:
    # As the service will feed it: the holidays package for a country and region.
    return frozenset(public_holidays.country_holidays("DE", subdiv="BY", years=year))


# --- weekends and holidays -----------------------------------------------------------


def test_time_left_on_friday_carries_over_the_weekend() -> None:
    cal = office()
    friday = at(BERLIN, 2024, 6, 7, 16)
    assert add(cal, friday, 2 * H) == at(BERLIN, 2024, 6, 10, 10)
    assert between(cal, friday, at(BERLIN, 2024, 6, 10, 10)) == 2 * H


def test_a_clock_started_at_the_weekend_starts_on_monday_morning() -> None:
    cal = office()
    saturday = at(BERLIN, 2024, 6, 8, 11, 30)
    assert add(cal, saturday, H) == at(BERLIN, 2024, 6, 10, 10)
    assert between(cal, saturday, at(BERLIN, 2024, 6, 10, 9)) == timedelta(0)


def test_a_full_week_holds_five_working_days() -> None:
    cal = office()
    monday = at(BERLIN, 2024, 6, 10)
    assert between(cal, monday, monday + timedelta(days=7)) == 40 * H
    assert between(cal, monday, monday + timedelta(days=70)) == 400 * H
    assert add(cal, monday, 40 * H) == at(BERLIN, 2024, 6, 14, 17)


def test_german_easter_holidays_and_the_clock_change_in_one_weekend() -> None:
    cal = office(holidays=bavaria(2024))
    thursday = at(BERLIN, 2024, 3, 28, 16)  # Good Friday and Easter Monday follow
    due_at = add(cal, thursday, 3 * H)
    assert due_at == at(BERLIN, 2024, 4, 2, 11)
    assert due_at == datetime(2024, 4, 2, 9, tzinfo=UTC)  # summer time by then
    assert between(cal, thursday, due_at) == 3 * H


def test_us_thanksgiving_is_skipped() -> None:
    cal = office("America/New_York",
                 holidays=public_holidays.country_holidays("US", years=2024))
    wednesday = at(NEW_YORK, 2024, 11, 27, 16)
    assert add(cal, wednesday, 2 * H) == at(NEW_YORK, 2024, 11, 29, 10)


def test_results_are_utc_whatever_zone_the_input_is_in() -> None:
    cal = office()
    result = add(cal, at(NEW_YORK, 2024, 6, 10, 3), H)  # 09:00 in Berlin
    assert result.tzinfo is UTC
    assert result == datetime(2024, 6, 10, 8, tzinfo=UTC)


# --- daylight saving -----------------------------------------------------------------


@pytest.mark.parametrize(("timezone", "spring", "autumn"), [
    ("Europe/Berlin", date(2024, 3, 31), date(2024, 10, 27)),
    ("America/New_York", date(2024, 3, 10), date(2024, 11, 3)),
])
def test_a_night_span_across_the_clock_change_is_real_time(
        timezone: str, spring: date, autumn: date) -> None:
    cal = office(timezone, ("01:00", "05:00"), DAY_KEYS)
    zone = ZoneInfo(timezone)

    def day(d: date) -> tuple[datetime, datetime]:
        return (datetime.combine(d, time(0), zone),
                datetime.combine(d + timedelta(days=1), time(0), zone))

    assert between(cal, *day(spring)) == 3 * H  # the skipped hour is not worked
    assert between(cal, *day(autumn)) == 5 * H  # the repeated hour is worked twice
    assert between(cal, *day(spring - timedelta(days=1))) == 4 * H
    start = datetime.combine(spring, time(0), zone)
    assert add(cal, start, 3 * H) == datetime.combine(spring, time(5), zone)


def test_a_span_edge_in_the_skipped_hour_maps_forward() -> None:
    cal = office(hours=("02:30", "04:00"), days=DAY_KEYS)
    sunday = at(BERLIN, 2024, 3, 31)
    # 02:30 does not exist that night: the span starts at 03:30 summer time.
    assert between(cal, sunday, sunday + timedelta(days=1)) == 30 * M
    assert add(cal, sunday, 10 * M) == datetime(2024, 3, 31, 1, 40, tzinfo=UTC)


def test_a_span_edge_in_the_repeated_hour_means_its_first_occurrence() -> None:
    cal = office(hours=("02:30", "04:00"), days=DAY_KEYS)
    sunday = at(BERLIN, 2024, 10, 27)
    assert add(cal, sunday, timedelta(0)) == sunday
    assert add(cal, sunday, M) == datetime(2024, 10, 27, 0, 31, tzinfo=UTC)  # 02:31 CEST
    assert between(cal, sunday, sunday + timedelta(days=1)) == 150 * M


def test_office_hours_keep_their_wall_clock_times_across_the_change() -> None:
    cal = office("America/New_York")
    friday = at(NEW_YORK, 2024, 3, 8, 16)
    due_at = add(cal, friday, 2 * H)
    assert due_at == at(NEW_YORK, 2024, 3, 11, 10)
    assert due_at == datetime(2024, 3, 11, 14, tzinfo=UTC)  # EDT, no longer EST
    autumn = add(cal, at(NEW_YORK, 2024, 11, 1, 16), 2 * H)
    assert autumn == datetime(2024, 11, 4, 15, tzinfo=UTC)  # EST again


# --- spans past midnight -------------------------------------------------------------


def test_a_night_shift_runs_past_midnight_into_the_next_day() -> None:
    cal = office(hours=("22:00", "06:00"))  # shifts start Monday to Friday evenings
    friday_night = at(BERLIN, 2024, 6, 7, 23)
    # 7 hours until Saturday 06:00, none at the weekend, the last hour on Monday night.
    assert add(cal, friday_night, 8 * H) == at(BERLIN, 2024, 6, 10, 23)
    assert between(cal, at(BERLIN, 2024, 6, 8, 0), at(BERLIN, 2024, 6, 8, 12)) == 6 * H


def test_a_holiday_stops_the_shift_that_starts_on_it_not_the_one_running_into_it() -> None:
    wednesday = date(2024, 6, 12)
    cal = office(hours=("22:00", "06:00"), holidays=[wednesday])
    # Tuesday's shift runs into the holiday and counts; Wednesday's does not start.
    assert between(cal, at(BERLIN, 2024, 6, 11, 12), at(BERLIN, 2024, 6, 13, 12)) == 8 * H
    assert between(cal, at(BERLIN, 2024, 6, 12, 0), at(BERLIN, 2024, 6, 12, 6)) == 6 * H


def test_overlapping_spans_count_once() -> None:
    cal = calendar_from_settings(
        timezone="Europe/Berlin",
        week={day: [["22:00", "06:00"], ["05:00", "07:00"], ["05:30", "06:30"]]
              for day in DAY_KEYS},
        holidays=[])
    # Tuesday 22:00 to Wednesday 07:00 is one stretch of 9 hours, not 8 + 2 + 1.
    assert between(cal, at(BERLIN, 2024, 6, 11, 12), at(BERLIN, 2024, 6, 12, 12)) == 9 * H


def test_a_whole_day_span_and_24_00() -> None:
    whole = office(hours=("00:00", "00:00"), days=("sat",))
    also_whole = office(hours=("00:00", "24:00"), days=("sat",))
    assert whole == also_whole
    saturday = at(BERLIN, 2024, 6, 8)
    assert between(whole, saturday - 3 * H, saturday + 30 * H) == 24 * H


# --- always on -----------------------------------------------------------------------


def test_always_on_counts_every_instant() -> None:
    start = at(BERLIN, 2024, 3, 30, 12).astimezone(UTC)  # so that + 36 h is real time
    assert between(ALWAYS_ON, start, start + 36 * H) == 36 * H  # across the clock change
    assert add(ALWAYS_ON, start, 36 * H) == start + 36 * H
    on_holidays = calendar_from_settings(timezone="Europe/Berlin", week={},
                                         holidays=bavaria(2024), always_on=True)
    assert between(on_holidays, at(BERLIN, 2024, 12, 25), at(BERLIN, 2024, 12, 27)) == 48 * H


# --- pauses --------------------------------------------------------------------------


def test_a_pause_stops_the_clock_for_the_working_time_it_covers() -> None:
    cal = office()
    start = at(BERLIN, 2024, 6, 10, 9)  # Monday
    pause = (at(BERLIN, 2024, 6, 10, 11), at(BERLIN, 2024, 6, 11, 10))  # 6 + 1 hours
    end = at(BERLIN, 2024, 6, 11, 17)
    assert elapsed(cal, start, end, [pause]) == 16 * H - 7 * H
    assert due(cal, start, 4 * H, [pause]) == at(BERLIN, 2024, 6, 11, 12)
    assert due(cal, start, 2 * H, [pause]) == at(BERLIN, 2024, 6, 10, 11)


def test_a_pause_outside_working_hours_costs_nothing() -> None:
    cal = office()
    start = at(BERLIN, 2024, 6, 10, 9)
    night = (at(BERLIN, 2024, 6, 10, 18), at(BERLIN, 2024, 6, 11, 8))
    assert due(cal, start, 10 * H, [night]) == due(cal, start, 10 * H, [])


def test_overlapping_pauses_are_not_subtracted_twice() -> None:
    cal = office()
    start, end = at(BERLIN, 2024, 6, 10, 9), at(BERLIN, 2024, 6, 10, 17)
    pauses = [(at(BERLIN, 2024, 6, 10, 10), at(BERLIN, 2024, 6, 10, 13)),
              (at(BERLIN, 2024, 6, 10, 12), at(BERLIN, 2024, 6, 10, 14)),
              (at(BERLIN, 2024, 6, 10, 11), at(BERLIN, 2024, 6, 10, 12))]
    assert elapsed(cal, start, end, pauses) == 4 * H
    assert due(cal, start, 4 * H, pauses) == end


def test_pauses_are_clipped_to_the_measured_stretch() -> None:
    cal = office()
    start, end = at(BERLIN, 2024, 6, 10, 9), at(BERLIN, 2024, 6, 10, 17)
    pauses = [(at(BERLIN, 2024, 6, 7, 9), at(BERLIN, 2024, 6, 10, 10)),   # began before
              (at(BERLIN, 2024, 6, 10, 16), at(BERLIN, 2024, 6, 12, 9))]  # ends after
    assert elapsed(cal, start, end, pauses) == 6 * H
    assert due(cal, start, 6 * H, pauses) == at(BERLIN, 2024, 6, 10, 16)
    assert due(cal, start, 7 * H, pauses) == at(BERLIN, 2024, 6, 12, 10)


def test_an_open_pause_runs_to_the_end_and_leaves_nothing_due() -> None:
    cal = office()
    start = at(BERLIN, 2024, 6, 10, 9)
    pauses = [(at(BERLIN, 2024, 6, 10, 10), at(BERLIN, 2024, 6, 10, 11)),
              (at(BERLIN, 2024, 6, 10, 15), None)]
    assert elapsed(cal, start, at(BERLIN, 2024, 6, 11, 17), pauses) == 5 * H
    assert due(cal, start, 8 * H, pauses) is None


def test_a_pause_that_ends_before_it_starts_is_refused() -> None:
    start = at(BERLIN, 2024, 6, 10, 9)
    with pytest.raises(ValueError, match="pause"):
        elapsed(office(), start, start + H, [(start + H, start)])


# --- zero, negative, naive, empty ----------------------------------------------------


def test_zero_and_reversed_stretches() -> None:
    cal = office()
    start = at(BERLIN, 2024, 6, 8, 12)  # Saturday: not working time, still the answer
    assert add(cal, start, timedelta(0)) == start
    assert due(cal, start, timedelta(0), []) == start
    assert between(cal, start, start) == timedelta(0)
    assert between(cal, start + 72 * H, start) == timedelta(0)
    assert elapsed(cal, start + 72 * H, start, []) == timedelta(0)


def test_negative_durations_are_refused() -> None:
    start = at(BERLIN, 2024, 6, 10, 9)
    with pytest.raises(ValueError, match="negative"):
        add(office(), start, -M)
    with pytest.raises(ValueError, match="negative"):
        due(office(), start, -M, [])


def test_naive_datetimes_are_refused() -> None:
    cal, naive = office(), datetime(2024, 6, 10, 9)
    aware = naive.replace(tzinfo=UTC)
    for call in (lambda: between(cal, naive, aware), lambda: between(cal, aware, naive),
                 lambda: add(cal, naive, H), lambda: elapsed(cal, naive, aware + H, []),
                 lambda: elapsed(cal, aware, aware + H, [(naive, aware)]),
                 lambda: due(cal, aware, H, [(aware, naive)])):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


def test_a_calendar_without_working_hours_never_gets_there() -> None:
    empty = Calendar(timezone="Europe/Berlin", week=((),) * 7)
    start = at(BERLIN, 2024, 6, 10, 9)
    assert between(empty, start, start + 1000 * H) == timedelta(0)
    with pytest.raises(ValueError, match="no working hours"):
        add(empty, start, H)
    with pytest.raises(ValueError, match="no working hours"):
        due(empty, start, H, [])
    only_holidays = office(holidays=[date(2024, 6, 10) + timedelta(days=n) for n in range(60)])
    assert add(only_holidays, start, H) == at(BERLIN, 2024, 8, 9, 10)


# --- settings ------------------------------------------------------------------------


def test_settings_make_a_hashable_calendar() -> None:
    settings_ = dict(timezone="America/New_York", week={"mon": [["09:00", "12:00"],
                                                                ["13:00", "17:30"]]},
                     holidays=["2024-07-04", date(2024, 12, 25)])
    cal = calendar_from_settings(**settings_)
    assert cal == calendar_from_settings(**settings_)
    assert {cal: 1}[calendar_from_settings(**settings_)] == 1
    assert cal.week[0] == ((time(9), time(12)), (time(13), time(17, 30)))
    assert cal.week[1:] == ((),) * 6
    assert cal.holidays == {date(2024, 7, 4), date(2024, 12, 25)}


@pytest.mark.parametrize(("changes", "message"), [
    ({"timezone": "Mars/Olympus_Mons"}, "unknown timezone"),
    ({"timezone": ""}, "timezone"),
    ({"week": {"monday": [["09:00", "17:00"]]}}, "unknown day 'monday'"),
    ({"week": {"mon": [["9:00", "17:00"]]}}, "mon: '9:00' is not a time of day"),
    ({"week": {"mon": [["09:00", "25:00"]]}}, "not a time of day"),
    ({"week": {"mon": [["24:00", "06:00"]]}}, "not a time of day"),
    ({"week": {"mon": [["09:00", "17:60"]]}}, "not a time of day"),
    ({"week": {"mon": [["09:00"]]}}, "a span is a pair"),
    ({"week": {"mon": "09:00-17:00"}}, "list of"),
    ({"week": {}}, "needs working hours"),
    ({"holidays": ["24.12.2024"]}, "YYYY-MM-DD"),
    ({"holidays": [datetime(2024, 12, 24, tzinfo=UTC)]}, "dates"),
    ({"always_on": "yes"}, "always_on"),
])
def test_bad_settings_are_refused_with_a_clear_message(changes: dict, message: str) -> None:
    given_settings = {"timezone": "Europe/Berlin", "week": {"mon": [["09:00", "17:00"]]},
                      "holidays": [], **changes}
    with pytest.raises(ValueError, match=message):
        calendar_from_settings(**given_settings)


def test_a_calendar_built_by_hand_is_checked_too() -> None:
    with pytest.raises(ValueError, match="7 entries"):
        Calendar(timezone="UTC", week=((),) * 5)
    with pytest.raises(ValueError, match="naive"):
        Calendar(timezone="UTC", week=(((time(9, tzinfo=UTC), time(17)),),) + ((),) * 6)
    with pytest.raises(ValueError, match="unknown timezone"):
        Calendar(timezone="Nowhere/Town", week=((),) * 7)


# --- properties ----------------------------------------------------------------------
#
# Zones with DST at 02:00, at midnight (Santiago, Havana), by half an hour (Lord Howe), at
# quarter-hour offsets (Chatham), and none at all. Spans and instants on a 15-minute grid
# make every edge fall on the grid, so a brute-force count on the grid is exact.

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Europe/London", "America/Santiago",
         "America/Havana", "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kolkata"]
RANGE_START = datetime(2024, 1, 1, tzinfo=UTC)
RANGE_DAYS = 730
QUARTER = timedelta(minutes=15)
DAY_US = 86_400_000_000
MICROSECOND = timedelta(microseconds=1)


@lru_cache
def transitions(timezone: str) -> tuple[datetime, ...]:
    """The instants in the test range at which the zone's UTC offset changes."""
    zone = ZoneInfo(timezone)
    found = []
    for day in range(RANGE_DAYS):
        midnight = RANGE_START + timedelta(days=day)
        if midnight.astimezone(zone).utcoffset() != (midnight + timedelta(days=1)).astimezone(
                zone).utcoffset():
            found.extend(midnight + q * QUARTER for q in range(96)
                         if (midnight + q * QUARTER).astimezone(zone).utcoffset()
                         != (midnight + (q + 1) * QUARTER).astimezone(zone).utcoffset())
    return tuple(t + QUARTER for t in found)


quarter_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
spans = st.lists(st.tuples(quarter_times, quarter_times), max_size=3).map(tuple)


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    week = tuple(draw(st.lists(spans, min_size=7, max_size=7)))
    assume(any(week))
    holidays = draw(st.frozensets(
        st.dates(date(2023, 12, 1), date(2026, 2, 1)), max_size=40))
    return Calendar(timezone=draw(st.sampled_from(ZONES)), week=week, holidays=holidays)


@st.composite
def calendar_and_instants(draw: st.DrawFn, count: int,
                          grid: timedelta = MICROSECOND) -> tuple[Calendar, list[datetime]]:
    """A calendar and instants in the test range, half of them within three days of one of
    its zone's clock changes (a uniform draw would rarely come near one)."""
    cal = draw(calendars())
    near = transitions(cal.timezone)
    per_day = timedelta(days=1) // grid
    points = []
    for _ in range(count):
        if near and draw(st.booleans()):
            base = draw(st.sampled_from(near))
            points.append(base + draw(st.integers(-3 * per_day, 3 * per_day)) * grid)
        else:
            points.append(RANGE_START + draw(st.integers(0, RANGE_DAYS * per_day)) * grid)
    return cal, points


durations = st.integers(0, 10 * DAY_US).map(lambda us: timedelta(microseconds=us))


def union_of_spans(cal: Calendar, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    """Every span of every local day near [lo, hi], straight from the rules."""
    zone = ZoneInfo(cal.timezone)
    first = lo.astimezone(zone).date() - timedelta(days=3)
    last = hi.astimezone(zone).date() + timedelta(days=1)
    result = []
    day = first
    while day <= last:
        if day not in cal.holidays:
            for start, end in cal.week[day.weekday()]:
                end_day = day if end > start else day + timedelta(days=1)
                result.append((datetime.combine(day, start, zone),
                               datetime.combine(end_day, end, zone)))
        day += timedelta(days=1)
    return result


def test_the_properties_meet_clock_changes() -> None:
    assert datetime(2024, 3, 31, 1, tzinfo=UTC) in transitions("Europe/Berlin")
    assert transitions("Asia/Kolkata") == ()


@settings(deadline=None, max_examples=200)
@given(case=calendar_and_instants(1, QUARTER), quarters=st.integers(0, 3 * 96))
def test_between_matches_a_brute_force_count(case: tuple[Calendar, list[datetime]],
                                             quarters: int) -> None:
    cal, (start,) = case
    end = start + quarters * QUARTER
    worked = union_of_spans(cal, start, end)
    expected = sum(
        (QUARTER for q in range(quarters)
         if any(a <= start + q * QUARTER < b for a, b in worked)),
        timedelta(0))
    assert between(cal, start, end) == expected


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=calendar_and_instants(1), duration=durations)
def test_measuring_what_was_added_gives_it_back(case: tuple[Calendar, list[datetime]],
                                               duration: timedelta) -> None:
    cal, (start,) = case
    result = add(cal, start, duration)
    assert result >= start
    assert between(cal, start, result) == duration
    if duration:  # and no earlier instant would do
        assert between(cal, start, result - MICROSECOND) < duration


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=calendar_and_instants(1), first=durations, second=durations)
def test_adding_more_never_ends_earlier(case: tuple[Calendar, list[datetime]],
                                        first: timedelta, second: timedelta) -> None:
    cal, (start,) = case
    shorter, longer = sorted([first, second])
    assert add(cal, start, shorter) <= add(cal, start, longer)


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=calendar_and_instants(3))
def test_between_adds_up(case: tuple[Calendar, list[datetime]]) -> None:
    cal, points = case
    a, b, c = sorted(points)
    assert between(cal, a, b) + between(cal, b, c) == between(cal, a, c)


pause_lists = st.lists(
    st.tuples(st.integers(-2 * DAY_US, 8 * DAY_US), st.integers(0, 3 * DAY_US)), max_size=4)


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=calendar_and_instants(1), target=durations, raw_pauses=pause_lists)
def test_the_clock_is_due_when_elapsed_time_reaches_the_target(
        case: tuple[Calendar, list[datetime]], target: timedelta,
        raw_pauses: list[tuple[int, int]]) -> None:
    cal, (start,) = case
    pauses = [(start + timedelta(microseconds=offset),
               start + timedelta(microseconds=offset + length))
              for offset, length in raw_pauses]
    due_at = due(cal, start, target, pauses)
    assert due_at is not None
    assert elapsed(cal, start, due_at, pauses) == target
    if target:  # and no earlier instant would do
        assert elapsed(cal, start, due_at - MICROSECOND, pauses) < target
    assert due(cal, start, target, [*pauses, (start, None)]) is None
