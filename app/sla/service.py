"""What happens to a ticket's SLA clocks when something happens to the ticket.

Triage calls these from its mutators, and the reports signals (routed, reporter answered)
reach them through `app.sla.init_app`; all run in the caller's transaction (the caller
commits). Each locks the ticket, first settles what fell due before the change (so a
ticket resolved a minute after its target counts as breached), changes the clocks, then
settles again and refreshes the ticket's `sla_rank` and `sla_due_at`.

The rules (README, "SLA rules"):

* first response runs from receipt until a responder first acts: moves the ticket (which
  includes triaging it out of New), assigns it to someone, replies publicly, or merges it;
* next update: each public reply, while the ticket is open, starts a clock for the next
  one; the next public reply achieves it (and starts the next), closing the ticket too;
* resolution runs from receipt until Resolved or Dismissed. Reopening resumes it where it
  stopped, the closed interval counted as paused; a breached one stays breached;
* resolution and next update pause while the ticket is Waiting on reporter, and resume
  when the reporter answers or a responder moves it on; paused time is kept per clock;
* a changed priority (or new tags) re-targets the clocks that still run from their
  original start, audited as `sla.retargeted`; a target already past breaches at once;
* a merged duplicate's first response counts as answered by the merge; its other clocks
  are withdrawn (the surviving ticket's clocks carry the promise), audited `sla.withdrawn`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.audit.models import AuditEvent
from app.audit.service import record
from app.auth.models import User
from app.auth.service import require
from app.core.clock import now
from app.extensions import db
from app.reports.models import CommentKind, Priority, Report, ReportComment, Status
from app.sla import calendars, clock, transitions
from app.sla.models import ClockState, Metric, SlaCalendar, SlaClock, SlaPolicy, SlaTarget

CLOSED = (Status.RESOLVED, Status.DISMISSED)
PAUSING = (Metric.RESOLUTION, Metric.NEXT_UPDATE)
LIVE = (ClockState.RUNNING, ClockState.AT_RISK)
# The actions in a ticket's history that count as a responder acting on it.
RESPONSES = ("report.status_changed", "report.assigned", "report.replied", "report.merged")


# --- targets and calendars -------------------------------------------------------------


def policy_for(project_id: int) -> SlaPolicy | None:
    return db.session.scalar(
        select(SlaPolicy).where(SlaPolicy.project_id == project_id)
        .options(selectinload(SlaPolicy.targets), selectinload(SlaPolicy.calendar)))


@dataclass(frozen=True)
class Target:
    minutes: int
    category: str | None  # the flagged category whose target applies, or None: priority


class TargetIndex:
    """A policy's targets as look-ups (read once; for choosing many tickets' targets)."""

    def __init__(self, targets: Iterable[SlaTarget]) -> None:
        self.by_priority: dict[tuple[str, str], int] = {}
        self.by_category: dict[str, dict[str, int]] = {}
        for t in targets:
            if t.category is not None:
                self.by_category.setdefault(str(t.metric), {})[t.category] = t.minutes
            elif t.priority is not None:
                self.by_priority[(str(t.metric), str(t.priority))] = t.minutes

    def choose(self, metric: Metric, priority: Priority,
               categories: Sequence[str]) -> Target | None:
        """A category target (the tightest, when several flagged categories have one)
        wins over the priority's; None when neither exists (the metric has no clock)."""
        if categories:
            own = self.by_category.get(metric, {})
            matching = [(own[c], c) for c in categories if c in own]
            if matching:
                minutes, category = min(matching)
                return Target(minutes, category)
        minutes = self.by_priority.get((metric, priority))
        return None if minutes is None else Target(minutes, None)


def choose_target(targets: Iterable[SlaTarget], metric: Metric, priority: Priority,
                  categories: Sequence[str]) -> Target | None:
    """The target of one metric for a ticket (see TargetIndex.choose)."""
    return TargetIndex(targets).choose(metric, priority, categories)


def calendar_of(sla_clock: SlaClock, *, until: datetime) -> clock.Calendar:
    """The calendar a clock counts in, with holidays up to `until`'s year."""
    if sla_clock.always_on or sla_clock.calendar_id is None:
        return clock.ALWAYS_ON
    row = db.session.get(SlaCalendar, sla_clock.calendar_id)
    if row is None:
        return clock.ALWAYS_ON
    return calendars.build(row, first_year=sla_clock.started_at.year, last_year=until.year)


def _pauses(sla_clock: SlaClock) -> list[tuple[datetime, datetime]]:
    return [(datetime.fromisoformat(a), datetime.fromisoformat(b))
            for a, b in sla_clock.pauses or ()]


def instants(calendar: clock.Calendar, *, started_at: datetime, target_minutes: int,
             at_risk_share: float,
             pauses: Sequence[tuple[datetime, datetime]] = ()) -> tuple[datetime, datetime]:
    """(at_risk_at, due_at) of a clock: when the share and the whole of the target have
    elapsed in calendar time, pauses not counted."""
    target = timedelta(minutes=target_minutes)
    share = target * at_risk_share
    if not pauses:
        # Calendar time adds up: the due instant is the rest of the target after the
        # at-risk one, which saves walking the calendar from the start twice.
        at_risk = clock.add(calendar, started_at, share)
        return at_risk, clock.add(calendar, at_risk, target - share)
    due = clock.due(calendar, started_at, target, pauses)
    at_risk = clock.due(calendar, started_at, share, pauses)
    assert due is not None and at_risk is not None  # closed pauses only
    return at_risk, due


def _share(sla_clock: SlaClock, policy: SlaPolicy | None) -> float:
    return policy.at_risk_share if policy is not None else 0.75


def _plan(sla_clock: SlaClock, policy: SlaPolicy | None, at: datetime) -> None:
    """Set at_risk_at and due_at from the start, target and closed pauses; due_at stays
    NULL while a pause is open."""
    calendar = calendar_of(sla_clock, until=at)
    at_risk, due = instants(calendar, started_at=sla_clock.started_at,
                            target_minutes=sla_clock.target_minutes,
                            at_risk_share=_share(sla_clock, policy), pauses=_pauses(sla_clock))
    sla_clock.at_risk_at = at_risk
    sla_clock.due_at = None if sla_clock.paused_at is not None else due


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


# --- one clock's life ---------------------------------------------------------------------


def _pause(sla_clock: SlaClock, at: datetime) -> None:
    if sla_clock.state not in LIVE:
        return
    sla_clock.state = ClockState.PAUSED
    sla_clock.paused_at = at
    sla_clock.due_at = None
    sla_clock.updated_at = at


def _close_pause(sla_clock: SlaClock, at: datetime) -> None:
    """End the open pause at `at`, keeping it (and its calendar time) on the clock."""
    if sla_clock.paused_at is None:
        return
    start = min(sla_clock.paused_at, at)
    calendar = calendar_of(sla_clock, until=at)
    sla_clock.pauses = [*(sla_clock.pauses or []), [start.isoformat(), at.isoformat()]]
    sla_clock.paused_seconds += _seconds(clock.between(calendar, start, at))
    sla_clock.paused_at = None


def _resume(sla_clock: SlaClock, policy: SlaPolicy | None, at: datetime) -> None:
    if sla_clock.state != ClockState.PAUSED:
        return
    paused_at = sla_clock.paused_at or at
    was_at_risk = sla_clock.at_risk_at is not None and sla_clock.at_risk_at <= paused_at
    _close_pause(sla_clock, at)
    _plan(sla_clock, policy, at)
    _restart(sla_clock, was_at_risk, at)


def _restart(sla_clock: SlaClock, was_at_risk: bool, at: datetime) -> None:
    # A clock that was at risk when it stopped counting is at risk again at once (no new
    # escalation: nothing changed); otherwise the next settle decides.
    at_risk = was_at_risk and sla_clock.at_risk_at is not None and sla_clock.at_risk_at <= at
    sla_clock.state = ClockState.AT_RISK if at_risk else ClockState.RUNNING
    sla_clock.updated_at = at


def _stop(sla_clock: SlaClock, at: datetime) -> None:
    """The clock's event happened at `at`: achieved, or (already breached) its stop
    recorded for time-to-respond and time-to-resolve."""
    if sla_clock.stopped_at is not None and sla_clock.final:
        return
    if sla_clock.state == ClockState.ACHIEVED:
        return
    _close_pause(sla_clock, at)
    calendar = calendar_of(sla_clock, until=at)
    sla_clock.stopped_at = at
    sla_clock.elapsed_seconds = _seconds(
        clock.elapsed(calendar, sla_clock.started_at, at, _pauses(sla_clock)))
    sla_clock.updated_at = at
    if sla_clock.state == ClockState.BREACHED:
        return
    if sla_clock.due_at is None:  # it was paused: keep when it would have been due
        sla_clock.due_at = clock.due(calendar, sla_clock.started_at,
                                     timedelta(minutes=sla_clock.target_minutes),
                                     _pauses(sla_clock))
    sla_clock.state = ClockState.ACHIEVED
    sla_clock.outcome_at = at


def _reopen(sla_clock: SlaClock, policy: SlaPolicy | None, at: datetime) -> None:
    """Resume a resolution clock where it stopped; the closed interval counts as paused.
    A breached one stays breached (only its stop is forgotten until the next)."""
    if sla_clock.stopped_at is None:
        return
    stopped_at = sla_clock.stopped_at
    sla_clock.stopped_at = None
    sla_clock.elapsed_seconds = None
    sla_clock.updated_at = at
    if sla_clock.state != ClockState.ACHIEVED:
        return
    was_at_risk = sla_clock.at_risk_at is not None and sla_clock.at_risk_at <= stopped_at
    sla_clock.paused_at = stopped_at
    _close_pause(sla_clock, at)
    sla_clock.outcome_at = None
    _plan(sla_clock, policy, at)
    _restart(sla_clock, was_at_risk, at)


def _quiet_breach(sla_clock: SlaClock, report: Report) -> None:
    """A clock started late whose target had run out before the responder acted: it is
    breached, audited, but nobody is paged about the past."""
    sla_clock.state = ClockState.BREACHED
    sla_clock.breached_at = sla_clock.outcome_at = sla_clock.due_at
    record(action="sla.breached", subject_type="report", subject_id=report.public_id,
           after={"state": "breached", "late": True, **_facts(sla_clock)})


def _facts(sla_clock: SlaClock) -> dict[str, Any]:
    return {"metric": str(sla_clock.metric), "sequence": sla_clock.sequence,
            "priority": str(sla_clock.priority), "category": sla_clock.category,
            "target_minutes": sla_clock.target_minutes, "always_on": sla_clock.always_on,
            "due_at": sla_clock.due_at.isoformat() if sla_clock.due_at else None}


# --- starting and re-targeting ------------------------------------------------------------


@dataclass
class _History:
    """What responders did before the clocks started (moderation was down, or the policy
    is new): read from the ticket's audit trail and replies."""

    first_response_at: datetime | None = None
    closed_at: datetime | None = None
    waiting_since: datetime | None = None
    replies: list[datetime] = field(default_factory=list)


def _history(report: Report) -> _History:
    history = _History()
    if report.updated_at <= report.received_at:
        return history  # untouched since intake (every staff action moves updated_at)
    events = db.session.execute(
        select(AuditEvent.at, AuditEvent.action, AuditEvent.actor_type, AuditEvent.after)
        .where(AuditEvent.subject_type == "report", AuditEvent.subject_id == report.public_id,
               AuditEvent.action.in_(RESPONSES)).order_by(AuditEvent.id))
    for at, action, actor_type, after in events:
        after = after or {}
        acted = actor_type == "user" and (action != "report.assigned"
                                          or after.get("assignee_id") is not None)
        if acted and history.first_response_at is None:
            history.first_response_at = at
        if action == "report.status_changed":
            if after.get("status") in CLOSED:
                history.closed_at = at
            if after.get("status") == Status.WAITING_ON_REPORTER:
                history.waiting_since = at
    history.replies = list(db.session.scalars(
        select(ReportComment.created_at).where(ReportComment.report_id == report.id,
                                               ReportComment.kind == CommentKind.REPLY)
        .order_by(ReportComment.id)))
    return history


def _new_clock(report: Report, policy: SlaPolicy, metric: Metric, target: Target,
               started_at: datetime, sequence: int, at: datetime) -> SlaClock:
    _, always_on = calendars.for_priority(
        policy.calendar, report.priority, around_the_clock_p0=policy.p0_around_the_clock,
        first_year=started_at.year, last_year=at.year)
    sla_clock = SlaClock(
        report_id=report.id, metric=metric, sequence=sequence, state=ClockState.RUNNING,
        priority=report.priority, category=target.category, target_minutes=target.minutes,
        policy_id=policy.id, calendar_id=None if always_on else policy.calendar_id,
        always_on=always_on, started_at=started_at, pauses=[], paused_seconds=0, updated_at=at)
    _plan(sla_clock, policy, at)
    db.session.add(sla_clock)
    return sla_clock


def _start(report: Report, policy: SlaPolicy, metric: Metric, target: Target, at: datetime,
           history: _History) -> None:
    """Start a metric's clock from its true beginning, catching up with what happened."""
    if metric == Metric.NEXT_UPDATE:
        if report.status in CLOSED or not history.replies:
            return
        sla_clock = _new_clock(report, policy, metric, target, history.replies[-1],
                               len(history.replies), at)
        if report.status == Status.WAITING_ON_REPORTER:
            _pause(sla_clock, max(history.waiting_since or at, history.replies[-1]))
        return
    sla_clock = _new_clock(report, policy, metric, target, report.received_at, 0, at)
    if metric == Metric.FIRST_RESPONSE:
        stop_at = history.first_response_at
    else:
        stop_at = (history.closed_at or report.updated_at) if report.status in CLOSED else None
        if stop_at is None and report.status == Status.WAITING_ON_REPORTER:
            _pause(sla_clock, max(history.waiting_since or at, report.received_at))
    if stop_at is not None:
        if sla_clock.due_at is not None and sla_clock.due_at <= stop_at:
            _quiet_breach(sla_clock, report)
        _stop(sla_clock, max(stop_at, sla_clock.started_at))


def _retarget(report: Report, policy: SlaPolicy, sla_clock: SlaClock, target: Target | None,
              at: datetime, actor: User | None) -> None:
    """Give a clock that still runs (or is paused) the target of the ticket's current
    priority and tags, counted from its original start."""
    before = _facts(sla_clock)
    if target is None:
        record(action="sla.withdrawn", subject_type="report", subject_id=report.public_id,
               actor=actor, before=before,
               after={"reason": f"no {sla_clock.metric} target for {report.priority}"})
        db.session.delete(sla_clock)
        return
    _, always_on = calendars.for_priority(
        policy.calendar, report.priority, around_the_clock_p0=policy.p0_around_the_clock,
        first_year=sla_clock.started_at.year, last_year=at.year)
    calendar_id = None if always_on else policy.calendar_id
    same = (target.minutes == sla_clock.target_minutes and always_on == sla_clock.always_on
            and calendar_id == sla_clock.calendar_id)
    sla_clock.priority, sla_clock.category = report.priority, target.category
    if same:
        return
    was_at_risk = sla_clock.state == ClockState.AT_RISK
    sla_clock.target_minutes, sla_clock.always_on = target.minutes, always_on
    sla_clock.calendar_id, sla_clock.policy_id = calendar_id, policy.id
    calendar = calendar_of(sla_clock, until=at)
    sla_clock.paused_seconds = sum(_seconds(clock.between(calendar, a, b))
                                   for a, b in _pauses(sla_clock))
    _plan(sla_clock, policy, at)
    if sla_clock.state == ClockState.PAUSED:
        # Paused with the new target already used up before the pause: breached now.
        _, due = instants(calendar, started_at=sla_clock.started_at,
                          target_minutes=sla_clock.target_minutes,
                          at_risk_share=policy.at_risk_share, pauses=_pauses(sla_clock))
        if sla_clock.paused_at is not None and due <= sla_clock.paused_at:
            _close_pause(sla_clock, at)
            _plan(sla_clock, policy, at)
            sla_clock.state = ClockState.RUNNING
    else:
        _restart(sla_clock, was_at_risk, at)
    sla_clock.updated_at = at
    record(action="sla.retargeted", subject_type="report", subject_id=report.public_id,
           actor=actor, before=before, after=_facts(sla_clock))


def _current(clocks: Sequence[SlaClock], metric: Metric) -> SlaClock | None:
    """The metric's latest clock (next update: the highest sequence)."""
    found = [c for c in clocks if c.metric == metric]
    return max(found, key=lambda c: c.sequence) if found else None


def _reconcile(report: Report, clocks: list[SlaClock], at: datetime,
               actor: User | None) -> None:
    """Make the ticket's clocks match its policy, priority and tags: start what is
    missing (catching up with history), re-target what still runs."""
    if report.merged_into_id is not None:
        return
    policy = policy_for(report.project_id)
    if policy is None:
        return
    categories = list(report.flagged_categories or [])
    history: _History | None = None
    for metric in (Metric.FIRST_RESPONSE, Metric.RESOLUTION, Metric.NEXT_UPDATE):
        target = choose_target(policy.targets, metric, report.priority, categories)
        current = _current(clocks, metric)
        if current is None:
            if target is not None:
                history = history or _history(report)
                _start(report, policy, metric, target, at, history)
        elif not current.final:
            _retarget(report, policy, current, target, at, actor)


# --- the hooks ----------------------------------------------------------------------------


def _begin(report: Report) -> tuple[list[SlaClock], datetime]:
    """Lock the ticket, settle what fell due, and load its clocks fresh."""
    db.session.execute(select(Report.id).where(Report.id == report.id).with_for_update())
    at = now()
    transitions.apply(at=at, report_ids=[report.id])
    clocks = list(db.session.scalars(
        select(SlaClock).where(SlaClock.report_id == report.id)
        .order_by(SlaClock.metric, SlaClock.sequence)
        .execution_options(populate_existing=True)))
    return clocks, at


def _finish(report: Report, at: datetime) -> None:
    db.session.flush()
    transitions.apply(at=at, report_ids=[report.id])


def routed(report: Report) -> None:
    """Tagging routed the ticket: start its clocks (from receipt), or re-target them to
    the priority and categories it got."""
    clocks, at = _begin(report)
    _reconcile(report, clocks, at, None)
    _finish(report, at)


def start(report: Report) -> None:
    """Start the clocks a ticket is missing (the sweep, for tickets tagging never
    reached), with its current priority."""
    routed(report)


def priority_changed(*, report: Report, actor: User | None) -> None:
    """Re-target the ticket's running clocks from their original start."""
    clocks, at = _begin(report)
    _reconcile(report, clocks, at, actor)
    _finish(report, at)


def _first_response(clocks: Sequence[SlaClock], at: datetime) -> None:
    first = _current(clocks, Metric.FIRST_RESPONSE)
    if first is not None:
        _stop(first, at)


def status_changed(*, report: Report, before: Status, by_responder: bool = True) -> None:
    """The ticket moved from `before` to its current status."""
    after = report.status
    clocks, at = _begin(report)
    policy = policy_for(report.project_id) if clocks else None
    if by_responder:
        _first_response(clocks, at)
    resolution = _current(clocks, Metric.RESOLUTION)
    update = _current(clocks, Metric.NEXT_UPDATE)
    pausing = [c for c in (resolution, update) if c is not None]
    if after in CLOSED:
        for sla_clock in pausing:
            _stop(sla_clock, at)
    else:
        if before in CLOSED and resolution is not None:
            _reopen(resolution, policy, at)
        if after == Status.WAITING_ON_REPORTER:
            for sla_clock in pausing:
                _pause(sla_clock, at)
        else:
            for sla_clock in pausing:
                _resume(sla_clock, policy, at)
    _finish(report, at)


def assigned(*, report: Report) -> None:
    """Assigning the ticket to someone is a response."""
    if report.assignee_id is None:
        return
    clocks, at = _begin(report)
    _first_response(clocks, at)
    _finish(report, at)


def replied(*, report: Report) -> None:
    """A public reply: a response, the update owed (if one was), and the start of the
    next one while the ticket is open."""
    clocks, at = _begin(report)
    _first_response(clocks, at)
    update = _current(clocks, Metric.NEXT_UPDATE)
    if update is not None:
        _stop(update, at)
    policy = policy_for(report.project_id)
    if policy is not None and report.status not in CLOSED and report.merged_into_id is None:
        target = choose_target(policy.targets, Metric.NEXT_UPDATE, report.priority,
                               list(report.flagged_categories or []))
        if target is not None:
            sequence = (update.sequence if update is not None else 0) + 1
            sla_clock = _new_clock(report, policy, Metric.NEXT_UPDATE, target, at, sequence, at)
            if report.status == Status.WAITING_ON_REPORTER:
                _pause(sla_clock, at)
    _finish(report, at)


def merged(*, report: Report, actor: User | None) -> None:
    """A duplicate merged into another ticket: its first response is the merge; its
    other unfinished clocks are withdrawn."""
    clocks, at = _begin(report)
    _first_response(clocks, at)
    for sla_clock in clocks:
        if sla_clock.metric != Metric.FIRST_RESPONSE and not sla_clock.final:
            record(action="sla.withdrawn", subject_type="report", subject_id=report.public_id,
                   actor=actor, before=_facts(sla_clock), after={"reason": "merged"})
            db.session.delete(sla_clock)
    _finish(report, at)


def reporter_answered(report: Report, *, before: Status) -> None:
    """The reporter answered: a ticket waiting on them resumes (not a response)."""
    if before != report.status:
        status_changed(report=report, before=before, by_responder=False)


# --- reading clocks -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClockView:
    """One clock as a badge shows it."""

    report_id: int
    metric: Metric
    sequence: int
    state: ClockState
    priority: Priority
    target_minutes: int
    started_at: datetime
    at_risk_at: datetime | None
    due_at: datetime | None
    paused_at: datetime | None
    paused_seconds: int
    stopped_at: datetime | None
    breached_at: datetime | None

    @property
    def live(self) -> bool:
        return self.state in LIVE


def clocks_of(*, actor: User, report_ids: Iterable[int],
              current_only: bool = True) -> dict[int, list[ClockView]]:
    """Each ticket's clocks, first response, resolution, next update; with current_only
    just the latest next-update clock (the one a badge shows)."""
    require(actor, "reports:read")
    ids = sorted(set(report_ids))
    found: dict[int, list[ClockView]] = {i: [] for i in ids}
    if not ids:
        return found
    order = {Metric.FIRST_RESPONSE: 0, Metric.RESOLUTION: 1, Metric.NEXT_UPDATE: 2}
    # Plain rows, not entities: a board page reads a few hundred clocks, and building ORM
    # objects for them cost more than the query.
    rows = [ClockView(*row) for row in db.session.execute(
        select(*_VIEW_COLUMNS).where(SlaClock.report_id.in_(ids)))]
    rows.sort(key=lambda c: (c.report_id, order[c.metric], -c.sequence))
    for c in rows:
        mine = found[c.report_id]
        if current_only and mine and mine[-1].metric == c.metric:
            continue
        mine.append(c)
    return found


_VIEW_COLUMNS = (SlaClock.report_id, SlaClock.metric, SlaClock.sequence, SlaClock.state,
                 SlaClock.priority, SlaClock.target_minutes, SlaClock.started_at,
                 SlaClock.at_risk_at, SlaClock.due_at, SlaClock.paused_at,
                 SlaClock.paused_seconds, SlaClock.stopped_at, SlaClock.breached_at)


def clock_history(*, actor: User, report: Report) -> list[ClockView]:
    """All of one ticket's clocks, every next-update clock included."""
    return clocks_of(actor=actor, report_ids=[report.id], current_only=False)[report.id]
