"""Reports: intake, the reporter's status, and the staff's reading of them.

Intake commits the report before anything else happens to it; tagging (tagging.py)
reads what intake stored and never runs on the request path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload
from sqlalchemy.sql.dml import Insert

from app.audit.service import event_insert, record
from app.auth.models import User
from app.auth.service import require
from app.core.clock import now
from app.core.db import separate_transaction
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.prepared import PreparedInsert
from app.extensions import db
from app.projects.models import Project
from app.projects.service import IntakeProject
from app.reports.models import (
    CommentKind,
    ModerationTag,
    Report,
    ReportComment,
    Status,
    TaggingState,
)
from app.reports.routing import route
from app.reports.signals import reporter_answered


@dataclass(frozen=True)
class Receipt:
    """What intake answers, as plain values taken before the commit: reading the committed
    row again would open a new transaction (on SQLite, a write lock) for nothing."""

    report_id: int
    public_id: str
    status: Status
    received_at: datetime
    status_token: str
    created: bool  # False when an Idempotency-Key replay returned the first report

    @classmethod
    def of(cls, report: Report, token: str, *, created: bool) -> Receipt:
        return cls(report.id, report.public_id, report.status, report.received_at, token,
                   created)


def hash_end_user_id(raw: str, *, pepper: str) -> str:
    """HMAC-SHA256 of the host's end-user id: linkable across reports, not reversible
    without the pepper, which lives only in the server's environment."""
    return hmac.new(pepper.encode(), raw.encode(), hashlib.sha256).hexdigest()


def status_token_for(public_id: str, *, secret: str) -> str:
    """The reporter's status token. Derived rather than stored, so an Idempotency-Key
    replay can hand the same token back; only its SHA-256 is kept in the row."""
    digest = hmac.new(secret.encode(), f"status-token:{public_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _new_public_id() -> str:
    return "rep_" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


def _fingerprint(data: dict[str, Any]) -> str:
    return _sha256(json.dumps(data, sort_keys=True, default=str, separators=(",", ":")))


def _by_idempotency_key(project_id: int, key: str) -> Report | None:
    return db.session.scalar(
        select(Report).where(Report.project_id == project_id, Report.idempotency_key == key)
    )


def _replay(report: Report, fingerprint: str, secret: str) -> Receipt:
    if report.request_fingerprint != fingerprint:
        raise Conflict("This Idempotency-Key was used for a different report. "
                       "Use a new key for a new report.")
    return Receipt.of(report, status_token_for(report.public_id, secret=secret), created=False)


def submit_report(*, project: IntakeProject | Project, data: dict[str, Any],
                  idempotency_key: str | None, pepper: str, secret: str) -> Receipt:
    """Store a validated report and commit it; the same Idempotency-Key returns the
    first report (also when two requests race) and never creates a second."""
    data = dict(data)
    raw_user = data.pop("end_user_id", None)
    data["end_user_hash"] = hash_end_user_id(raw_user, pepper=pepper) if raw_user else None
    fingerprint = _fingerprint(data)
    routed = route(reason=data["reason"], scores={}, flagged=set(), rules=project.routing_rules)
    public_id = _new_public_id()
    token = status_token_for(public_id, secret=secret)
    received = now()
    # The hot path of the service: two INSERT statements and a commit, no unit of work and
    # no read first. A duplicate Idempotency-Key inserts nothing (ON CONFLICT DO NOTHING)
    # and is answered from the row that holds it, committed by a racing request or earlier.
    # Both statements are bound before the transaction starts: on SQLite the write lock is
    # held from BEGIN IMMEDIATE to COMMIT, and every worker waits while one holds it.
    dialect = db.engine.dialect  # the session's bind; asking the session costs more
    report_row = _INSERT_UNLESS_KEY_USED.bind(dialect, dict(
        public_id=public_id,
        project_id=project.id,
        received_at=received,
        updated_at=received,
        reason=data["reason"],
        description=data["description"],
        conversation=data["conversation"],
        model_name=data["model"],
        response_id=data["response_id"],
        page_url=data["page_url"],
        locale=data["locale"],
        user_agent=data["user_agent"],
        widget_version=data["widget_version"],
        extra=data["metadata"],
        end_user_hash=data["end_user_hash"],
        contact_email=data["contact_email"],
        contact_consent=data["contact_consent"],
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        status_token_hash=_sha256(token),
        status=Status.NEW,
        priority=routed.priority,
        # The model's defaults, which a prepared statement does not apply.
        tagging_state=TaggingState.PENDING,
        tagging_attempts=0,
        flagged_categories=[],
        sla_rank=2,
    ))
    event_row = event_insert(
        dialect, action="report.received", subject_type="report", subject_id=public_id,
        actor_type="reporter", at=received,
        after={"reason": str(data["reason"]), "priority": str(routed.priority),
               "routed_by": routed.matched})
    # On the transaction's connection's driver cursor (app.core.prepared): neither the ORM
    # nor Core execution adds anything to these two statements but work.
    with _write_transaction() as connection:  # BEGIN (IMMEDIATE on SQLite)
        inserted = report_row.execute(connection)  # (id,), or None for a used key
        if inserted is not None:
            event_row.execute(connection)
    if inserted is None:  # the key's report was committed earlier, or by a racing retry
        existing = _by_idempotency_key(project.id, idempotency_key or "")
        if existing is None:  # cannot happen: the conflict was on this very key
            raise Conflict("This Idempotency-Key is in use; retry in a moment.")
        return _replay(existing, fingerprint, secret)
    return Receipt(inserted[0], public_id, Status.NEW, received, token, created=True)


@contextmanager
def _write_transaction() -> Iterator[Connection]:
    """Intake's transaction, committed when the block ends: apart from the ORM session,
    whose creation, transaction and commit cost more than SQLite's own commit at intake's
    rate (the API's path: it reads its project apart from the session too). But in the
    session's transaction when the caller holds one (it read through the session, as the
    demo and an ORM Project's lazy routing rules do): on SQLite that transaction holds the
    write lock, which a separate one would wait for until it timed out."""
    if db.session.registry.has() and db.session().in_transaction():
        try:
            yield db.session.connection()
        except BaseException:
            db.session.rollback()
            raise
        db.session.commit()
    else:
        with separate_transaction(db.engine) as connection:
            yield connection


def _insert_unless_key_used(dialect: str) -> Insert:
    # A duplicate Idempotency-Key inserts nothing (ON CONFLICT DO NOTHING).
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    table = Report.__table__
    return (insert(table)
            .on_conflict_do_nothing(index_elements=[table.c.project_id, table.c.idempotency_key])
            .returning(table.c.id))


# Run as driver SQL (app.core.prepared): at intake's rate SQLAlchemy's per-statement
# bookkeeping cost as much as SQLite's own work.
_INSERT_UNLESS_KEY_USED = PreparedInsert(_insert_unless_key_used, columns=(
    "public_id", "project_id", "received_at", "updated_at", "reason", "description",
    "conversation", "model_name", "response_id", "page_url", "locale", "user_agent",
    "widget_version", "extra", "end_user_hash", "contact_email", "contact_consent",
    "idempotency_key", "request_fingerprint", "status_token_hash", "status", "priority",
    "tagging_state", "tagging_attempts", "flagged_categories", "sla_rank"))


@dataclass(frozen=True)
class ReporterView:
    """What a reporter may see: their report's reference, and the status and public
    replies of the ticket that handles it (itself, or the one it was merged into)."""

    public_id: str
    received_at: datetime
    status: Status
    updated_at: datetime
    replies: list[ReportComment]
    merged: bool  # handled together with another report about the same problem


def reporter_status(*, public_id: str, token: str) -> ReporterView:
    """The reporter's view, if `token` is the report's status token; NotFound otherwise
    (unknown id and wrong token are indistinguishable; constant-time comparison)."""
    report = db.session.scalar(select(Report).where(Report.public_id == public_id))
    expected = report.status_token_hash if report else _sha256("no such report")
    if not hmac.compare_digest(expected, _sha256(token)) or report is None:
        raise NotFound("No report with this id and token.")
    handling = surviving_ticket(report)
    replies = list(db.session.scalars(
        select(ReportComment)
        .where(ReportComment.report_id.in_({report.id, handling.id}),
               ReportComment.kind == CommentKind.REPLY)
        .order_by(ReportComment.created_at, ReportComment.id)))
    return ReporterView(public_id=report.public_id, received_at=report.received_at,
                        status=handling.status,
                        updated_at=max(report.updated_at, handling.updated_at),
                        replies=replies, merged=handling is not report)


def surviving_ticket(report: Report) -> Report:
    """The ticket that handles `report`: itself, or the end of its merge chain."""
    seen = {report.id}
    while report.merged_into is not None and report.merged_into.id not in seen:
        report = report.merged_into
        seen.add(report.id)
    return report


def reporter_answer(*, public_id: str, token: str, body: str) -> ReporterView:
    """Store the reporter's answer on the ticket that handles their report; a ticket
    Waiting on reporter moves to In progress (its SLA clocks resume). NotFound for an
    unknown id or a wrong token alike (constant-time comparison). Commits."""
    report = None if "\x00" in public_id else db.session.scalar(
        select(Report).where(Report.public_id == public_id))
    expected = report.status_token_hash if report else _sha256("no such report")
    if not hmac.compare_digest(expected, _sha256(token)) or report is None:
        raise NotFound("No report with this id and token.")
    handling = surviving_ticket(report)
    comment = ReportComment(report_id=handling.id, author_id=None, kind=CommentKind.REPORTER,
                            body=body)
    db.session.add(comment)
    handling.updated_at = now()
    db.session.flush()
    record(action="report.reporter_answered", subject_type="report",
           subject_id=handling.public_id, actor_type="reporter",
           after={"comment_id": comment.id, "via": report.public_id})
    before = handling.status
    if before == Status.WAITING_ON_REPORTER:
        handling.status = Status.IN_PROGRESS
        record(action="report.status_changed", subject_type="report",
               subject_id=handling.public_id, actor_type="reporter",
               before={"status": str(before)}, after={"status": str(handling.status)})
    reporter_answered.send(handling, before=before)
    db.session.commit()
    return reporter_status(public_id=public_id, token=token)


# --- the staff's reading -------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list[Report]
    next_cursor: str | None


def _encode_cursor(report: Report) -> str:
    raw = f"{report.received_at.isoformat()}|{report.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, _, ident = base64.urlsafe_b64decode(padded).decode().partition("|")
        return datetime.fromisoformat(at), int(ident)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationFailed("The cursor is not one this API gave out.",
                               fields={"cursor": ["Invalid cursor."]}) from error


def _filtered(query: Select, *, project_id: int | None, status: Status | None,
              priority: str | None, category: str | None, flagged: bool | None) -> Select:
    if project_id is not None:
        query = query.where(Report.project_id == project_id)
    if status is not None:
        query = query.where(Report.status == status)
    if priority is not None:
        query = query.where(Report.priority == priority)
    if category is not None:
        query = query.where(exists().where(
            ModerationTag.report_id == Report.id, ModerationTag.category == category,
            ModerationTag.flagged.is_(True)))
    if flagged is not None:
        any_flag = exists().where(ModerationTag.report_id == Report.id,
                                  ModerationTag.flagged.is_(True))
        query = query.where(any_flag if flagged else ~any_flag)
    return query


def list_reports(*, actor: User, project_id: int | None = None, status: Status | None = None,
                 priority: str | None = None, category: str | None = None,
                 flagged: bool | None = None, cursor: str | None = None,
                 limit: int = 50) -> Page:
    """Reports newest first, filtered, one keyset page at a time."""
    require(actor, "reports:read")
    query = _filtered(select(Report), project_id=project_id, status=status, priority=priority,
                      category=category, flagged=flagged)
    if cursor:
        at, ident = _decode_cursor(cursor)
        query = query.where(or_(Report.received_at < at,
                                and_(Report.received_at == at, Report.id < ident)))
    query = query.options(selectinload(Report.tags))
    newest_first = query.order_by(Report.received_at.desc(), Report.id.desc())
    rows = list(db.session.scalars(newest_first.limit(limit + 1)))
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items, _encode_cursor(items[-1]) if more else None)


def get_report(*, actor: User, public_id: str) -> Report:
    require(actor, "reports:read")
    return find(public_id)


def find(public_id: str) -> Report:
    """The report with this public id, or NotFound. Checks no permission."""
    # A NUL cannot be in any id, and PostgreSQL refuses to even compare text holding one.
    report = None if "\x00" in public_id else db.session.scalar(
        select(Report).where(Report.public_id == public_id))
    if report is None:
        raise NotFound(f"No report {public_id}.")
    return report
