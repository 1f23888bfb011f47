"""SLA clocks in words: durations, targets and the board's badges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from app.sla import present

NOW = datetime(2026, 1, 5, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (59, "59s"), (60, "1m"), (42 * 60 + 59, "42m"), (3600, "1h"),
    (3 * 3600 + 20 * 60, "3h 20m"), (10 * 3600 + 59 * 60, "10h"), (86400, "1d"),
    (2 * 86400 + 4 * 3600 + 1, "2d 4h"), (12 * 86400, "12d"), (-90 * 60, "1h 30m"),
    (None, "—"),
])
def test_durations_read_at_a_glance(seconds, text):
    assert present.duration(seconds) == text


def test_targets_never_use_days_since_a_working_day_is_not_24_hours():
    assert [present.target(m) for m in (15, 60, 90, 480, 1440)] == [
        "15m", "1h", "1h 30m", "8h", "24h"]


@dataclass
class Clock:
    metric: str
    state: str
    due_at: datetime | None
    stopped_at: datetime | None = None
    sequence: int = 0


def test_badges_say_time_left_or_over_and_name_the_state_that_needs_a_look():
    badges = present.badges([
        Clock("resolution", "running", NOW + timedelta(hours=20)),
        Clock("first_response", "breached", NOW - timedelta(hours=3)),
        Clock("next_update", "at_risk", NOW + timedelta(minutes=42)),
        Clock("first_response", "achieved", NOW, stopped_at=NOW),
        Clock("resolution", "paused", None),
    ], NOW)
    assert [b.text for b in badges] == [
        "Breached: First response · 3h over",
        "At risk: Next update · 42m left",
        "Resolution · 20h left",
        "Resolution · paused",
    ]


def test_a_late_answer_stays_on_an_open_card_and_leaves_a_closed_one():
    # The ticket still ranks as breached in its column: its card says why.
    late = Clock("first_response", "breached", NOW - timedelta(minutes=40), stopped_at=NOW)
    assert [b.text for b in present.badges([late], NOW)] == [
        "Breached: First response · missed by 40m"]
    assert present.badges([late], NOW, open_ticket=False) == []


def test_next_update_clocks_are_numbered_after_the_first():
    assert present.metric_label("next_update", 1) == "Next update"
    assert present.metric_label("next_update", 3) == "Next update #3"
    assert present.metric_label("resolution", 0) == "Resolution"
