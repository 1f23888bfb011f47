"""Attainment and MTTA/MTTR over known clocks."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.auth.models import Role
from app.core.errors import Unauthorized
from app.extensions import db
from app.projects.service import create_project
from app.sla import stats
from app.sla.models import ClockState, Metric, SlaClock
from tests.sla.conftest import at

START, END = at(1, 0), datetime(2026, 2, 1, tzinfo=at(1, 0).tzinfo)


@pytest.fixture
def known(ticket, clock_at):
    """Decided clocks of two weeks and two projects, plus a running one (not counted)."""
    other = create_project(name="Other", origins=[])

    def add(metric: str, priority: str, state: str, outcome: datetime | None,
            elapsed: int | None, project_id: int | None = None) -> None:
        report = ticket(priority=priority, route=False, project_id=project_id)
        db.session.add(SlaClock(
            report_id=report.id, metric=Metric(metric), state=ClockState(state),
            priority=priority, target_minutes=60, started_at=at(5, 9), pauses=[],
            paused_seconds=0, outcome_at=outcome, stopped_at=outcome, elapsed_seconds=elapsed,
            breached_at=outcome if state == "breached" else None, updated_at=at(5, 9)))
        db.session.commit()

    # Week 2026-W02: first responses, P1 three of four kept, P2 one of one.
    for elapsed in (600, 1200, 1800):
        add("first_response", "P1", "achieved", at(6, 10), elapsed)
    add("first_response", "P1", "breached", at(7, 10), 4000)
    add("first_response", "P2", "achieved", at(8, 10), 300)
    # Week 2026-W03: resolutions, two of four kept, one in another project.
    add("resolution", "P2", "achieved", at(12, 10), 10000)
    add("resolution", "P2", "achieved", at(13, 10), 20000)
    add("resolution", "P2", "breached", at(14, 10), 30000)
    add("resolution", "P2", "breached", at(15, 10), 40000, project_id=other.id)
    add("resolution", "P3", "running", None, None)
    return other


def test_attainment_per_metric_and_priority(known, make_user):
    rows = stats.attainment(actor=make_user(Role.VIEWER), start=START, end=END)
    assert [(r.metric, r.priority, r.achieved, r.breached, r.share) for r in rows] == [
        ("first_response", "P1", 3, 1, 0.75),
        ("first_response", "P2", 1, 0, 1.0),
        ("resolution", "P2", 2, 2, 0.5),
    ]


def test_attainment_per_iso_week_and_project(known, make_user, project):
    viewer = make_user(Role.VIEWER)
    weekly = stats.attainment(actor=viewer, start=START, end=END, by=("metric", "week"))
    assert [(r.metric, r.week, r.achieved, r.breached) for r in weekly] == [
        ("first_response", "2026-W02", 4, 1), ("resolution", "2026-W03", 2, 2)]
    per_project = stats.attainment(actor=viewer, start=START, end=END, by=("project",))
    assert {(r.project_id, r.achieved, r.breached) for r in per_project} == {
        (project.id, 6, 2), (known.id, 0, 1)}
    only = stats.attainment(actor=viewer, start=START, end=END, project_id=known.id,
                            by=("metric",))
    assert [(r.metric, r.share) for r in only] == [("resolution", 0.0)]


def test_the_window_is_by_when_the_clock_was_decided(known, make_user):
    rows = stats.attainment(actor=make_user(Role.VIEWER), start=at(12, 0), end=END,
                            by=("metric",))
    assert [(r.metric, r.achieved, r.breached) for r in rows] == [("resolution", 2, 2)]


def test_median_and_90th_percentile_times(known, make_user):
    viewer = make_user(Role.VIEWER)
    rows = stats.response_times(actor=viewer, start=START, end=END)
    assert [(r.metric, r.count, r.median_seconds, r.p90_seconds) for r in rows] == [
        ("first_response", 5, 1200, 4000),  # MTTA over 300, 600, 1200, 1800, 4000
        ("resolution", 4, 20000, 40000),  # MTTR over 10000 … 40000
    ]
    by_priority = stats.response_times(actor=viewer, start=START, end=END, by=("priority",))
    assert [(r.metric, r.priority, r.median_seconds, r.p90_seconds) for r in by_priority] == [
        ("first_response", "P1", 1200, 4000), ("first_response", "P2", 300, 300),
        ("resolution", "P2", 20000, 40000)]


def test_stats_need_a_signed_in_user(known):
    with pytest.raises(Unauthorized):
        stats.attainment(actor=None, start=START, end=END)


def test_weeks_covers_whole_iso_weeks():
    start, end = stats.weeks(at(14, 15), count=2)
    assert (start, end) == (at(5, 0), at(19, 0))
