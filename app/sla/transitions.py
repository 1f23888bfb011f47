"""Clocks to at risk and breached, set-based, each transition audited and escalated once.

The same steps serve the sweep (every due clock) and the service functions (the clocks
of the tickets they just changed), in the caller's transaction:

1. find the reports with a due clock, and lock those no other transaction holds
   (PostgreSQL `FOR UPDATE SKIP LOCKED`; the service functions lock a ticket before
   changing its clocks, so the two never interleave on one ticket);
2. `UPDATE sla_clocks SET state = 'at_risk' WHERE state = 'running' AND at_risk_at <= now
   RETURNING …`, and the same for breached. The condition on the old state makes each
   transition happen once however many sweeps run: a second one finds the row changed;
3. one AuditEvent per transition and one `notify.enqueue_many` call (dedupe key
   `sla:<clock id>:<state>`, which the outbox keeps unique as a second guard);
4. the reports' `sla_rank` and `sla_due_at` recomputed in one UPDATE per chunk.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    any_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql

from app.audit.models import AuditEvent
from app.auth.models import Role, User
from app.extensions import db
from app.notify.models import WebhookKind
from app.notify.service import Notice, enqueue_many
from app.reports.models import Priority, Report, Status
from app.sla.models import ClockState, Metric, SlaClock, SlaPolicy

# Literal SQL for states, not bind parameters: PostgreSQL matches a query to a partial
# index (WHERE state = 'running') only when it can see the value, also in generic plans.
RUNNING = literal_column("'running'")
AT_RISK = literal_column("'at_risk'")
BREACHED = literal_column("'breached'")
CLOSED = (Status.RESOLVED, Status.DISMISSED)
CHUNK = 5000  # ids per IN (...) list on SQLite: well under its bound-parameter limit
PAGING_PRIORITIES = (Priority.P0, Priority.P1)

METRIC_LABELS = {Metric.FIRST_RESPONSE: "first response", Metric.NEXT_UPDATE: "next update",
                 Metric.RESOLUTION: "resolution"}


@dataclass(frozen=True)
class Moved:
    """One clock that moved to at risk or breached."""

    clock_id: int
    report_id: int
    metric: Metric
    sequence: int
    priority: Priority
    target_minutes: int
    at_risk_at: datetime | None
    due_at: datetime | None
    state: ClockState


@dataclass(frozen=True)
class Outcome:
    at_risk: int = 0
    breached: int = 0
    deliveries: int = 0  # outbox rows queued
    skipped: int = 0  # reports with a due clock that another transaction held: next time


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    """The ids in batches: all at once on PostgreSQL (one array parameter), in chunks of
    CHUNK elsewhere (one bound parameter per id)."""
    ordered = sorted(set(ids))
    size = len(ordered) if _on_postgresql() else CHUNK
    for start in range(0, len(ordered), max(size, 1)):
        yield ordered[start:start + size]


def _on_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _among(column: Any, ids: list[int]) -> Any:
    """column IN ids: on PostgreSQL as `= ANY(array)`, which costs one parameter however
    many ids (no SQL text of thousands of placeholders to build and parse)."""
    if _on_postgresql():
        return column == any_(bindparam(None, ids, type_=postgresql.ARRAY(Integer)))
    return column.in_(ids)


def _due(at: datetime) -> Any:
    going_at_risk = and_(SlaClock.state == RUNNING, SlaClock.at_risk_at <= at)
    going_breached = and_(SlaClock.state.in_([RUNNING, AT_RISK]), SlaClock.due_at <= at)
    return or_(going_at_risk, going_breached)


def _reports_due(at: datetime, report_ids: Collection[int] | None) -> list[int]:
    query = select(SlaClock.report_id).where(_due(at)).distinct()
    if report_ids is None:
        return list(db.session.scalars(query))
    found: list[int] = []
    for chunk in _chunks(report_ids):
        found += db.session.scalars(query.where(_among(SlaClock.report_id, chunk)))
    return found


@dataclass(frozen=True)
class _Ticket:
    public_id: str
    project_id: int
    status: Status
    priority: Priority
    assignee_email: str | None
    oncall_email: str | None


def _lock(report_ids: Sequence[int]) -> dict[int, _Ticket]:
    """The reports of these that this transaction now holds (SKIP LOCKED on PostgreSQL;
    SQLite's BEGIN IMMEDIATE already holds the whole database), with what escalating
    needs: who is assigned, the project's on-call address."""
    tickets = {}
    for chunk in _chunks(report_ids):
        rows = db.session.execute(
            select(Report.id, Report.public_id, Report.project_id, Report.status,
                   Report.priority, User.email, SlaPolicy.oncall_email)
            .outerjoin(User, and_(User.id == Report.assignee_id, User.active.is_(True)))
            .outerjoin(SlaPolicy, SlaPolicy.project_id == Report.project_id)
            .where(_among(Report.id, chunk)).order_by(Report.id)
            .with_for_update(skip_locked=True, of=Report))
        for report_id, *values in rows:
            tickets[report_id] = _Ticket(*values)
    return tickets


_RETURNED = (SlaClock.id, SlaClock.report_id, SlaClock.metric, SlaClock.sequence,
             SlaClock.priority, SlaClock.target_minutes, SlaClock.at_risk_at, SlaClock.due_at)


def _move(report_ids: Sequence[int], at: datetime) -> list[Moved]:
    moved: list[Moved] = []
    for chunk in _chunks(report_ids):
        # Not at risk first when the target has run out already: that is a breach.
        to_risk = (update(SlaClock)
                   .where(_among(SlaClock.report_id, chunk), SlaClock.state == RUNNING,
                          SlaClock.at_risk_at <= at, SlaClock.due_at > at)
                   .values(state=ClockState.AT_RISK, updated_at=at)
                   .returning(*_RETURNED))
        to_breach = (update(SlaClock)
                     .where(_among(SlaClock.report_id, chunk),
                            SlaClock.state.in_([RUNNING, AT_RISK]), SlaClock.due_at <= at)
                     .values(state=ClockState.BREACHED, breached_at=SlaClock.due_at,
                             outcome_at=SlaClock.due_at, updated_at=at)
                     .returning(*_RETURNED))
        for statement, state in ((to_risk, ClockState.AT_RISK),
                                 (to_breach, ClockState.BREACHED)):
            rows = db.session.execute(statement,
                                      execution_options={"synchronize_session": False})
            moved += (Moved(*row, state=state) for row in rows)
    return moved


def _leads() -> tuple[str, ...]:
    return tuple(db.session.scalars(
        select(User.email).where(User.role == Role.LEAD, User.active.is_(True))
        .order_by(User.email)))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _clock_facts(m: Moved) -> dict[str, Any]:
    return {"clock_id": m.clock_id, "metric": str(m.metric), "sequence": m.sequence,
            "priority": str(m.priority), "target_minutes": m.target_minutes,
            "at_risk_at": _iso(m.at_risk_at), "due_at": _iso(m.due_at)}


def _audit(moved: Sequence[Moved], tickets: dict[int, _Ticket], at: datetime) -> None:
    before = {ClockState.AT_RISK: "running", ClockState.BREACHED: None}
    rows = [{"at": at, "actor_type": "system", "actor_id": None,
             "action": f"sla.{m.state}", "subject_type": "report",
             "subject_id": tickets[m.report_id].public_id,
             "before": {"state": before[m.state]} if before[m.state] else None,
             "after": {"state": str(m.state), **_clock_facts(m)}} for m in moved]
    if not rows:
        return
    if _on_postgresql():
        # One statement, one parameter: the events travel as one JSON array (as the
        # outbox's deliveries do); half the time of an executemany for a big sweep.
        document = json.dumps([{k: row[k] for k in ("action", "subject_id", "before", "after")}
                               for row in rows], separators=(",", ":"))
        db.session.execute(_INSERT_EVENTS, {"at": at, "rows": document})
    else:
        db.session.execute(insert(AuditEvent.__table__), rows)


_INSERT_EVENTS = text("""
    INSERT INTO audit_events (at, actor_type, actor_id, action, subject_type, subject_id,
                              before, after)
    SELECT CAST(:at AS timestamptz), 'system', NULL, e.action, 'report', e.subject_id,
           e.before, e.after
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS e(action varchar, subject_id varchar, before jsonb, after jsonb)
""")


def _notice(m: Moved, ticket: _Ticket, leads: tuple[str, ...]) -> Notice:
    breached = m.state == ClockState.BREACHED
    first = ticket.assignee_email or ticket.oncall_email
    emails = tuple(dict.fromkeys([*([first] if first else []), *(leads if breached else ())]))
    kinds = [WebhookKind.ESCALATION.value]
    if breached and m.priority in PAGING_PRIORITIES:
        kinds.append(WebhookKind.PAGING.value)
    label = METRIC_LABELS[m.metric]
    what = "breached" if breached else "at risk"
    due = m.due_at.strftime("%Y-%m-%d %H:%M UTC") if m.due_at else "?"
    runs_out = "ran out" if breached else "runs out"
    message = (f"The {label} target ({m.target_minutes} min) of {ticket.public_id} "
               f"{runs_out} at {due}.")
    payload = {"subject": f"[Flagdesk] SLA {what}: {ticket.public_id} ({m.priority}, {label})",
               "text": message, "report": ticket.public_id,
               "ticket_path": f"/tickets/{ticket.public_id}", "project_id": ticket.project_id,
               "status": str(ticket.status), "state": str(m.state), **_clock_facts(m)}
    return Notice(event=f"sla.{m.state}", dedupe_key=f"sla:{m.clock_id}:{m.state}",
                  payload=payload, project_id=ticket.project_id, emails=emails,
                  webhook_kinds=tuple(kinds))


def refresh(report_ids: Iterable[int], *, with_clocks_only: bool = False) -> None:
    """Recompute reports.sla_due_at (soonest due instant of a running or at-risk clock)
    and reports.sla_rank (open and any clock breached 0, any at risk 1, else 2)."""
    def having(state: Any) -> Any:
        return func.max(case((SlaClock.state == state, 1), else_=0))

    ids = set(report_ids)
    for chunk in _chunks(ids):
        # One aggregate over the chunk's clocks joined to its reports: cheaper than three
        # correlated look-ups per report.
        clocks = (select(SlaClock.report_id.label("report_id"),
                         having(BREACHED).label("breached"), having(AT_RISK).label("at_risk"),
                         func.min(case((SlaClock.state.in_([RUNNING, AT_RISK]),
                                        SlaClock.due_at))).label("due"))
                  .where(_among(SlaClock.report_id, chunk)).group_by(SlaClock.report_id)
                  .subquery())
        rank = case((Report.status.in_(CLOSED) | Report.merged_into_id.is_not(None), 2),
                    (clocks.c.breached == 1, 0), (clocks.c.at_risk == 1, 1), else_=2)
        # Only rows that change: sla_rank is indexed, so every write touches every index.
        db.session.execute(update(Report)
                           .where(Report.id == clocks.c.report_id, _among(Report.id, chunk),
                                  or_(Report.sla_rank != rank,
                                      Report.sla_due_at.is_distinct_from(clocks.c.due)))
                           .values(sla_due_at=clocks.c.due, sla_rank=rank),
                           execution_options={"synchronize_session": False})
        if not with_clocks_only:
            db.session.execute(update(Report)
                               .where(_among(Report.id, chunk),
                                      ~exists().where(SlaClock.report_id == Report.id),
                                      or_(Report.sla_rank != 2, Report.sla_due_at.is_not(None)))
                               .values(sla_due_at=None, sla_rank=2),
                               execution_options={"synchronize_session": False})
    # Reports already loaded in this session read the new values on next access.
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Report) and obj.id in ids:
            db.session.expire(obj, ["sla_due_at", "sla_rank"])


def apply(*, at: datetime, report_ids: Collection[int] | None = None) -> Outcome:
    """Move the due clocks (of these reports, or of all) to at risk or breached as of
    `at`; audit, escalate and refresh the reports' SLA columns. The caller commits.

    With `report_ids`, those reports' SLA columns are refreshed whether or not a clock
    moved (the service functions call it after changing clocks)."""
    due = _reports_due(at, report_ids)
    tickets = _lock(due) if due else {}
    moved = _move(list(tickets), at) if tickets else []
    deliveries = 0
    if moved:
        # The clocks' own rows changed under the session: reload them on next access.
        moved_ids = {m.clock_id for m in moved}
        for obj in list(db.session.identity_map.values()):
            if isinstance(obj, SlaClock) and obj.id in moved_ids:
                db.session.expire(obj)
        _audit(moved, tickets, at)
        leads = _leads() if any(m.state == ClockState.BREACHED for m in moved) else ()
        deliveries = enqueue_many([_notice(m, tickets[m.report_id], leads) for m in moved])
    touched = {m.report_id for m in moved} | set(report_ids or ())
    if touched:
        refresh(touched, with_clocks_only=report_ids is None)
    return Outcome(at_risk=sum(m.state == ClockState.AT_RISK for m in moved),
                   breached=sum(m.state == ClockState.BREACHED for m in moved),
                   deliveries=deliveries, skipped=len(due) - len(tickets))
