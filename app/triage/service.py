"""Triage: what responders do to tickets all day, each action checked and audited.

Every function takes the acting user, checks the permission, writes one AuditEvent per
ticket it changes, and commits once. Bulk actions are the same functions given many ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.orm import selectinload

from app.audit.models import AuditEvent
from app.audit.service import record
from app.auth.models import Role, User
from app.auth.service import require
from app.core.clock import now
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.projects.models import Project
from app.reports.models import (
    CommentKind,
    ModerationTag,
    Priority,
    Report,
    ReportComment,
    Status,
    TaggingState,
)
from app.reports.service import find, surviving_ticket
from app.sla import service as sla
from app.triage.models import SavedView
from app.triage.schemas import DUE_SOONEST, MAX_COMMENT, BoardFilters

COLUMNS: tuple[Status, ...] = tuple(Status)
OPEN = (Status.NEW, Status.TRIAGED, Status.IN_PROGRESS, Status.WAITING_ON_REPORTER)
CARDS_PER_COLUMN = 25
CARD_CATEGORIES = 3
# Counts stop here: an exact count over a million closed tickets costs more than it tells.
COUNT_CAP = 1000
# Disturbing categories whose text is blurred until the reader asks to see it.
SENSITIVE_PREFIXES = ("sexual", "violence/graphic", "self-harm")


def is_sensitive(categories: Sequence[str]) -> bool:
    return any(c.startswith(SENSITIVE_PREFIXES) for c in categories)


# --- reading the board ---------------------------------------------------------------


@dataclass
class Card:
    report: Report
    duplicates: int = 0
    # The SLA clocks its badges show (first response, resolution, the latest next update).
    clocks: list[sla.ClockView] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        """The most confident flagged categories, as many as a card has room for."""
        return list(self.report.flagged_categories or [])[:CARD_CATEGORIES]

    @property
    def more_categories(self) -> int:
        return max(len(self.report.flagged_categories or []) - CARD_CATEGORIES, 0)

    @property
    def sensitive(self) -> bool:
        return is_sensitive(self.report.flagged_categories or [])

    @property
    def untagged(self) -> bool:
        return self.report.tagging_state == TaggingState.PENDING


@dataclass
class Column:
    status: Status
    cards: list[Card]
    count: int  # capped at COUNT_CAP

    @property
    def hidden(self) -> int:
        """How many matching cards are not shown (at least; the count is capped)."""
        return max(self.count - len(self.cards), 0)

    @property
    def count_label(self) -> str:
        return f"{COUNT_CAP - 1}+" if self.count >= COUNT_CAP else str(self.count)


@dataclass
class Board:
    columns: list[Column]
    newest_id: int  # the polling client asks for what came after this
    filters: BoardFilters = field(default_factory=BoardFilters)


def _apply(query: Select, filters: BoardFilters, actor: User) -> Select:
    query = query.where(Report.merged_into_id.is_(None))
    if filters.project_id is not None:
        query = query.where(Report.project_id == filters.project_id)
    if filters.priorities:
        query = query.where(Report.priority.in_(filters.priorities))
    if filters.reason is not None:
        query = query.where(Report.reason == filters.reason)
    if filters.category is not None:
        query = query.where(exists().where(
            ModerationTag.category == filters.category, ModerationTag.flagged.is_(True),
            ModerationTag.report_id == Report.id))
    if filters.flagged is not None:
        any_flag = exists().where(ModerationTag.flagged.is_(True),
                                  ModerationTag.report_id == Report.id)
        query = query.where(any_flag if filters.flagged else ~any_flag)
    if filters.assignee == "me":
        query = query.where(Report.assignee_id == actor.id)
    elif filters.assignee == "none":
        query = query.where(Report.assignee_id.is_(None))
    elif filters.assignee:
        query = query.where(Report.assignee_id == int(filters.assignee))
    if filters.q:
        escaped = filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Report.description.ilike(f"%{escaped}%", escape="\\"))
    if filters.received_from is not None:
        start = datetime.combine(filters.received_from, time.min, tzinfo=actor_zone(actor))
        query = query.where(Report.received_at >= start)
    if filters.received_to is not None:
        end = datetime.combine(filters.received_to + timedelta(days=1), time.min,
                               tzinfo=actor_zone(actor))
        query = query.where(Report.received_at < end)
    return query


def actor_zone(actor: User) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(actor.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _column_order(status: Status, sort: str | None = None) -> tuple[Any, ...]:
    # Closed columns: the most recently closed first within a priority (they have no
    # running clocks, so "due soonest" would tell nothing there).
    if status not in OPEN:
        return (Report.priority, Report.updated_at.desc(), Report.id.desc())
    # Due soonest: the running clock due first; tickets with none (no policy, paused,
    # only breached clocks) last. Served by ix_reports_board_due.
    if sort == DUE_SOONEST:
        return (Report.sla_due_at.asc().nulls_last(), Report.id)
    # Most urgent first: breached SLA, then at risk (sla_rank), then priority, then the
    # longest waiting. Served by ix_reports_board_open.
    return (Report.sla_rank, Report.priority, Report.received_at, Report.id)


def board(*, actor: User, filters: BoardFilters, per_column: int = CARDS_PER_COLUMN) -> Board:
    """The board: each column's most urgent cards and a (capped) count."""
    require(actor, "reports:read")
    columns = []
    for status in COLUMNS:
        base = _apply(select(Report).where(Report.status == status), filters, actor)
        reports = list(db.session.scalars(
            base.options(selectinload(Report.assignee))
            .order_by(*_column_order(status, filters.sort)).limit(per_column)))
        capped = _apply(select(Report.id).where(Report.status == status), filters, actor)
        count = db.session.scalar(
            select(func.count()).select_from(capped.limit(COUNT_CAP).subquery()))
        columns.append(Column(status, [Card(r) for r in reports], count or 0))
    cards = [card for column in columns for card in column.cards]
    _count_duplicates(cards)
    _load_clocks(actor, cards)
    newest = db.session.scalar(select(func.max(Report.id))) or 0
    return Board(columns=columns, newest_id=newest, filters=filters)


def _load_clocks(actor: User, cards: list[Card]) -> None:
    """The SLA clocks of every card on the page, in one query."""
    clocks = sla.clocks_of(actor=actor, report_ids=[card.report.id for card in cards])
    for card in cards:
        card.clocks = clocks.get(card.report.id, [])


def _count_duplicates(cards: list[Card]) -> None:
    by_id = {card.report.id: card for card in cards}
    if not by_id:
        return
    rows = db.session.execute(
        select(Report.merged_into_id, func.count())
        .where(Report.merged_into_id.in_(by_id)).group_by(Report.merged_into_id))
    for report_id, count in rows:
        by_id[report_id].duplicates = count


def arrivals_since(*, actor: User, filters: BoardFilters, after_id: int) -> int:
    """How many reports matching the filters arrived after `after_id` (for polling)."""
    require(actor, "reports:read")
    query = _apply(select(Report.id).where(Report.id > after_id), filters, actor)
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0


# --- the ticket page -----------------------------------------------------------------


@dataclass
class Ticket:
    report: Report
    tags: list[ModerationTag]
    history: list[AuditEvent]
    notes: list[ReportComment]
    replies: list[ReportComment]
    # The public replies and the reporter's answers, in the order they were written: the
    # conversation with the reporter as the ticket page shows it.
    conversation: list[ReportComment]
    duplicates: list[Report]
    handled_by: Report | None  # the surviving ticket when this one was merged
    # Who and which tickets the history refers to, by id: names and public ids.
    people: dict[int, str] = field(default_factory=dict)
    ticket_ids: dict[int, str] = field(default_factory=dict)

    @property
    def sensitive(self) -> bool:
        return is_sensitive(self.report.flagged_categories or [])


def ticket(*, actor: User, public_id: str) -> Ticket:
    """Everything about one ticket, for the ticket page."""
    require(actor, "reports:read")
    report = find(public_id)
    comments = list(db.session.scalars(
        select(ReportComment).options(selectinload(ReportComment.author))
        .where(ReportComment.report_id == report.id).order_by(ReportComment.id)))
    history = list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.subject_type == "report",
                                 AuditEvent.subject_id == report.public_id)
        .order_by(AuditEvent.id)))
    duplicates = list(db.session.scalars(
        select(Report).where(Report.merged_into_id == report.id).order_by(Report.id)))
    survivor = surviving_ticket(report)
    tags = sorted(report.tags, key=lambda t: (t.field, -t.score))
    return Ticket(
        report=report, tags=tags, history=history,
        notes=[c for c in comments if c.kind == CommentKind.NOTE],
        replies=[c for c in comments if c.kind == CommentKind.REPLY],
        conversation=[c for c in comments
                      if c.kind in (CommentKind.REPLY, CommentKind.REPORTER)],
        duplicates=duplicates, handled_by=survivor if survivor is not report else None,
        people=_names_in(history, "assignee_id", User, User.name),
        ticket_ids=_names_in(history, "merged_into_id", Report, Report.public_id))


def _names_in(history: list[AuditEvent], key: str, model: Any, label: Any) -> dict[int, str]:
    """A label for each id the history mentions under `key` (the actors too, for users)."""
    ids = {v for e in history for v in ((e.before or {}).get(key), (e.after or {}).get(key))
           if isinstance(v, int)}
    if model is User:
        ids |= {e.actor_id for e in history if e.actor_id is not None}
    if not ids:
        return {}
    return {ident: name for ident, name in db.session.execute(
        select(model.id, label).where(model.id.in_(ids)))}


def staff(*, actor: User) -> list[User]:
    """The people a ticket can be assigned to."""
    require(actor, "reports:read")
    return list(db.session.scalars(
        select(User).where(User.active.is_(True), User.role != Role.VIEWER)
        .order_by(User.name)))


def projects(*, actor: User) -> list[Project]:
    require(actor, "reports:read")
    return list(db.session.scalars(select(Project).order_by(Project.name)))


# --- acting on tickets ---------------------------------------------------------------


def _reports(ids: Sequence[str]) -> list[Report]:
    if not ids:
        raise ValidationFailed("Select at least one ticket.", fields={"ids": ["Empty."]})
    found = list(db.session.scalars(select(Report).where(Report.public_id.in_(set(ids)))))
    missing = set(ids) - {r.public_id for r in found}
    if missing:
        raise NotFound(f"No report {', '.join(sorted(missing))}.")
    return found


def _change(actor: User, report: Report, action: str, attribute: str, value: Any) -> bool:
    before = getattr(report, attribute)
    if before == value:
        return False
    setattr(report, attribute, value)
    report.updated_at = now()
    record(action=action, subject_type="report", subject_id=report.public_id, actor=actor,
           before={attribute: _plain(before)}, after={attribute: _plain(value)})
    return True


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, int | bool) else str(value)


def _set_all(actor: User, ids: Sequence[str], action: str, attribute: str, value: Any,
             then: Callable[[Report, Any], None] | None = None) -> int:
    """Set one attribute on every ticket named, auditing each change and calling `then`
    (report, value before) for it (the SLA clocks follow); one commit."""
    changed = 0
    for report in _reports(ids):
        before = getattr(report, attribute)
        if _change(actor, report, action, attribute, value):
            changed += 1
            if then is not None:
                then(report, before)
    db.session.commit()
    return changed


def move(*, actor: User, ids: Sequence[str], status: Status) -> int:
    """Move tickets to a column; returns how many changed."""
    require(actor, "reports:triage")
    return _set_all(actor, ids, "report.status_changed", "status", Status(status),
                    lambda report, before: sla.status_changed(report=report, before=before))


def set_priority(*, actor: User, ids: Sequence[str], priority: Priority) -> int:
    require(actor, "reports:triage")
    return _set_all(actor, ids, "report.priority_changed", "priority", Priority(priority),
                    lambda report, _: sla.priority_changed(report=report, actor=actor))


def assign(*, actor: User, ids: Sequence[str], assignee_id: int | None) -> int:
    """Assign tickets to a responder (or to nobody)."""
    require(actor, "reports:triage")
    if assignee_id is not None:
        assignee = db.session.get(User, assignee_id)
        if assignee is None or not assignee.active or assignee.role == Role.VIEWER:
            raise ValidationFailed("Tickets go to active staff who can triage.",
                                   fields={"assignee": ["Not an active responder."]})
    return _set_all(actor, ids, "report.assigned", "assignee_id", assignee_id,
                    lambda report, _: sla.assigned(report=report))


def _comment(actor: User, public_id: str, body: str, kind: CommentKind) -> ReportComment:
    require(actor, "reports:triage")
    body = (body or "").strip()
    if not body or len(body) > MAX_COMMENT:
        raise ValidationFailed(f"Write between 1 and {MAX_COMMENT} characters.",
                               fields={"body": ["Empty or too long."]})
    report = find(public_id)
    comment = ReportComment(report_id=report.id, author_id=actor.id, kind=kind, body=body)
    db.session.add(comment)
    report.updated_at = now()
    db.session.flush()
    action = "report.note_added" if kind == CommentKind.NOTE else "report.replied"
    record(action=action, subject_type="report", subject_id=report.public_id, actor=actor,
           after={"comment_id": comment.id, "public": kind == CommentKind.REPLY})
    if kind == CommentKind.REPLY:
        sla.replied(report=report)
    db.session.commit()
    return comment


def add_note(*, actor: User, public_id: str, body: str) -> ReportComment:
    """An internal note: staff only."""
    return _comment(actor, public_id, body, CommentKind.NOTE)


def reply(*, actor: User, public_id: str, body: str) -> ReportComment:
    """A public reply: the reporter sees it on the status page."""
    return _comment(actor, public_id, body, CommentKind.REPLY)


def merge(*, actor: User, duplicate_id: str, into_id: str) -> Report:
    """Merge a duplicate into the ticket that survives; the duplicate's reporters then
    see the survivor's status and replies, and its own duplicates follow it."""
    require(actor, "reports:triage")
    duplicate, survivor = find(duplicate_id), find(into_id)
    if duplicate.id == survivor.id:
        raise ValidationFailed("A ticket cannot be merged into itself.",
                               fields={"into": ["Same ticket."]})
    if survivor.merged_into_id is not None:
        raise Conflict(f"{into_id} was itself merged; merge into "
                       f"{surviving_ticket(survivor).public_id} instead.")
    if duplicate.merged_into_id is not None:
        raise Conflict(f"{duplicate_id} is already merged.")
    followers = list(db.session.scalars(
        select(Report).where(Report.merged_into_id == duplicate.id)))
    for report in [duplicate, *followers]:
        if _change(actor, report, "report.merged", "merged_into_id", survivor.id):
            sla.merged(report=report, actor=actor)
    record(action="report.duplicate_merged", subject_type="report",
           subject_id=survivor.public_id, actor=actor,
           after={"duplicate": duplicate.public_id})
    survivor.updated_at = now()
    db.session.commit()
    return survivor


# --- the reader's own settings and views ---------------------------------------------


def set_reveal_sensitive(*, actor: User, reveal: bool) -> None:
    require(actor, "reports:read")
    if actor.reveal_sensitive != reveal:
        record(action="user.preference_changed", subject_type="user", subject_id=actor.id,
               actor=actor, before={"reveal_sensitive": actor.reveal_sensitive},
               after={"reveal_sensitive": reveal})
        actor.reveal_sensitive = reveal
        db.session.commit()


BUILT_IN_VIEWS: tuple[tuple[str, str], ...] = (
    ("My queue", "assignee=me"),
    ("Unassigned P0–P1", "assignee=none&priority=P0&priority=P1"),
)


def saved_views(*, actor: User) -> list[tuple[str, str]]:
    """The built-in views, then the reader's own, as (name, query string)."""
    require(actor, "reports:read")
    own = db.session.scalars(select(SavedView).where(SavedView.user_id == actor.id)
                             .order_by(SavedView.name))
    return [*BUILT_IN_VIEWS, *((v.name, v.query) for v in own)]


def save_view(*, actor: User, name: str, query: str) -> SavedView:
    require(actor, "reports:read")
    name = (name or "").strip()
    if not name or len(name) > 80 or not name.isprintable() or len(query) > 1000:
        raise ValidationFailed("Name the view (at most 80 characters).",
                               fields={"name": ["Required, at most 80 characters."]})
    existing = db.session.scalar(select(SavedView).where(
        and_(SavedView.user_id == actor.id, SavedView.name == name)))
    view = existing or SavedView(user_id=actor.id, name=name, query=query)
    view.query = query
    db.session.add(view)
    db.session.commit()
    return view


def open_reports_of(*, actor: User) -> int:
    """How many open tickets the reader has (for the header)."""
    require(actor, "reports:read")
    query = select(func.count()).select_from(Report).where(
        Report.assignee_id == actor.id, Report.status.in_(OPEN),
        Report.merged_into_id.is_(None))
    return db.session.scalar(query) or 0
