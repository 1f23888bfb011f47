"""record(): add one AuditEvent to the caller's unit of work (the caller commits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from app.audit.models import AuditEvent
from app.auth.models import User
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


def record_now(connection: Connection, *, action: str, subject_type: str,
               subject_id: str | int, actor_type: str, at: datetime,
               before: dict[str, Any] | None = None,
               after: dict[str, Any] | None = None) -> None:
    """Insert one audit event at once on `connection` (the session's), outside the unit
    of work: for a hot path (intake) that flushes nothing else. The caller's transaction
    commits it with the rest."""
    connection.execute(_INSERT_EVENT, {
        "at": at, "actor_type": actor_type, "actor_id": None, "action": action,
        "subject_type": subject_type, "subject_id": str(subject_id), "before": before,
        "after": after})


# Built once, run with bound parameters (see record_now).
_INSERT_EVENT = insert(AuditEvent.__table__)
