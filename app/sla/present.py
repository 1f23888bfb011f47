"""SLA clocks in words, for the board's badges, the ticket's panel and history, /stats.

Pure: plain values in, text out; no Flask, no database. "Time left" and "time over" are
wall-clock time until (or since) the due instant, which is what tells a responder which
ticket breaches first; the targets themselves are calendar time (business hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

METRIC_LABELS = {"first_response": "First response", "next_update": "Next update",
                 "resolution": "Resolution"}
STATE_LABELS = {"running": "Running", "at_risk": "At risk", "paused": "Paused",
                "breached": "Breached", "achieved": "Achieved"}
# Badges that need a look carry their state in words, not only in colour.
SHOUTED = ("at_risk", "breached")


def metric_label(metric: Any, sequence: int = 0) -> str:
    """"First response", "Resolution", "Next update" (with its number when there were
    several: "Next update #2")."""
    label = METRIC_LABELS.get(str(metric), str(metric).replace("_", " ").capitalize())
    return f"{label} #{sequence}" if str(metric) == "next_update" and sequence > 1 else label


def duration(seconds: float | None) -> str:
    """A span in the units a glance needs: "45s", "42m", "3h 20m", "15h", "2d 4h", "12d"."""
    if seconds is None:
        return "—"
    total = int(abs(seconds))
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if total < 60:
        return f"{total}s"
    if minutes < 60:
        return f"{minutes}m"
    if hours < 10:
        rest = minutes % 60
        return f"{hours}h {rest}m" if rest else f"{hours}h"
    if hours < 24:
        return f"{hours}h"
    if days < 7:
        rest = hours % 24
        return f"{days}d {rest}h" if rest else f"{days}d"
    return f"{days}d"


def target(minutes: int) -> str:
    """A target in calendar minutes: "15m", "4h", "1h 30m", "24h" (never days: a working
    day is not 24 hours)."""
    hours, rest = divmod(int(minutes), 60)
    if not hours:
        return f"{rest}m"
    return f"{hours}h {rest}m" if rest else f"{hours}h"


class ClockLike(Protocol):
    metric: Any
    sequence: int
    state: Any
    due_at: datetime | None
    stopped_at: datetime | None


@dataclass(frozen=True)
class Badge:
    """One clock on a card: "First response · 42m left", with its state in words when it
    needs a look ("At risk", "Breached")."""

    metric: str
    label: str  # "First response"
    state: str  # running, at_risk, paused, breached
    remaining: str  # "42m left", "3h over", "paused"
    due_at: datetime | None

    @property
    def state_label(self) -> str | None:
        return STATE_LABELS[self.state] if self.state in SHOUTED else None

    @property
    def text(self) -> str:
        """The badge as one line of text, as a screen reader says it."""
        words = f"{self.label} · {self.remaining}"
        return f"{self.state_label}: {words}" if self.state_label else words


def remaining(state: str, due_at: datetime | None, at: datetime) -> str:
    """"42m left", "3h over", "paused", or "due now"."""
    if state == "paused" or due_at is None:
        return "paused" if state == "paused" else "no due time"
    seconds = (due_at - at).total_seconds()
    if state == "breached" or seconds < 0:
        return f"{duration(-seconds)} over" if seconds <= -1 else "due now"
    return f"{duration(seconds)} left" if seconds >= 1 else "due now"


def badges(clocks: list[ClockLike] | tuple[ClockLike, ...], at: datetime, *,
           open_ticket: bool = True) -> list[Badge]:
    """The badges of a ticket's clocks that matter on the board: running, at risk and
    paused ones, and breached ones; on an open ticket also a breached clock whose event
    happened late ("missed by 40m"), since it ranks the ticket first in its column. Breached
    first, then at risk, then by due instant."""
    found = []
    for c in clocks:
        state = str(c.state)
        if state == "achieved":
            continue
        if c.stopped_at is not None:
            if not (open_ticket and state == "breached" and c.due_at is not None):
                continue
            text = f"missed by {duration((c.stopped_at - c.due_at).total_seconds())}"
        else:
            text = remaining(state, c.due_at, at)
        found.append(Badge(metric=str(c.metric), label=metric_label(c.metric),
                           state=state, remaining=text, due_at=c.due_at))
    urgency = {"breached": 0, "at_risk": 1, "running": 2, "paused": 3}
    return sorted(found, key=lambda b: (urgency.get(b.state, 4), b.due_at is None,
                                        b.due_at or at))


class DetailLike(ClockLike, Protocol):
    target_minutes: int
    always_on: bool
    category: str | None
    priority: str
    calendar_name: str | None
    paused_seconds: int
    used_seconds: int
    left_seconds: int


@dataclass(frozen=True)
class PanelRow:
    """One line of the ticket's SLA panel."""

    label: str  # "Next update #2"
    state: str
    state_label: str  # "At risk"
    target: str  # "4h"
    counted: str  # the calendar's name ("Business hours (UTC)"), or "Around the clock"
    source: str  # "P2" or "self-harm": where the target came from
    due_at: datetime | None
    time: str  # "42m left", "3h over", "met, 35m used", …
    time_note: str | None  # working time left when it differs from wall-clock time
    paused: str  # "—" or "1h 20m"


def panel_row(c: DetailLike, at: datetime) -> PanelRow:
    state = str(c.state)
    counted = "Around the clock" if c.always_on else (
        f"Working hours of {c.calendar_name}" if c.calendar_name else "Working hours")
    note = None
    if state == "achieved":
        time = f"met in {duration(c.used_seconds)}"
    elif state == "breached" and c.stopped_at is not None and c.due_at is not None:
        time = f"missed by {duration((c.stopped_at - c.due_at).total_seconds())}"
    elif state == "paused":
        time = "paused"
        left = max(c.left_seconds, 0)
        note = f"{duration(left)} of {'time' if c.always_on else 'working time'} left" \
               " when it resumes"
    else:
        time = remaining(state, c.due_at, at)
        working = duration(c.left_seconds)
        # Beside the wall-clock time left, the working time left when they differ (a
        # night or a weekend in between).
        if state in ("running", "at_risk") and c.left_seconds > 0 and \
                f"{working} left" != time:
            note = f"{working} of working time left"
    return PanelRow(
        label=metric_label(c.metric, c.sequence), state=state,
        state_label=STATE_LABELS.get(state, state), target=target(c.target_minutes),
        counted=counted, source=c.category or str(c.priority), due_at=c.due_at, time=time,
        time_note=note, paused=duration(c.paused_seconds) if c.paused_seconds else "—")
