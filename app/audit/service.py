"""record(): add one AuditEvent to the caller's unit of work (the caller commits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Dialect

from app.audit.models import AuditEvent
from app.auth.models import User
from app.core.prepared import BoundInsert, PreparedInsert
from app.extensions import db


def record(*, action: str, subject_type: str, subject_id: str | int, actor: User | None = None,
           actor_type: str | None = None, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None) -> AuditEvent:
    """Append one audit event. With no actor it is the system's (a rule or a sweep)."""
    event = AuditEvent(
        actor_type=actor_type or ("user" if actor else "system"),
        actor_id=actor.id if actor else None,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        before=before,
        after=after,
    )
    db.session.add(event)
    return event


def event_insert(dialect: Dialect, *, action: str, subject_type: str,
                 subject_id: str | int, actor_type: str, at: datetime,
                 before: dict[str, Any] | None = None,
                 after: dict[str, Any] | None = None) -> BoundInsert:
    """One audit event as a bound INSERT, for a hot path (intake) that flushes nothing
    else: the caller runs it on the session's connection, outside the unit of work, and
    its transaction commits it with the rest. Bound before the transaction starts."""
    return _INSERT_EVENT.bind(dialect, {
        "at": at, "actor_type": actor_type, "actor_id": None, "action": action,
        "subject_type": subject_type, "subject_id": str(subject_id), "before": before,
        "after": after})


# Compiled once, run as driver SQL (see app.core.prepared).
_INSERT_EVENT = PreparedInsert(insert(AuditEvent.__table__), columns=(
    "at", "actor_type", "actor_id", "action", "subject_type", "subject_id", "before", "after"))
