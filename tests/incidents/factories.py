"""Plain helpers for the incident tests (helper I6a's): reports made at a given instant,
counting SQL statements. Not fixtures, so other test modules here are not affected."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event

from app.core.clock import now
from app.extensions import db
from app.projects.models import Project
from app.reports.models import Priority, Reason, Report, Status, TaggingState

# Monday 5 January 2026, 10:00 UTC: inside the default SLA calendar's hours.
MONDAY = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant in January 2026, UTC (5 = Monday)."""
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def make_report(project: Project, *, received_at: datetime | None = None,
                reason: Reason | str = Reason.INACCURATE, categories: Sequence[str] = (),
                model: str | None = "gpt-test-1", priority: str = "P2",
                description: str = "It said the Eiffel Tower is in Rome.",
                route: bool = False, commit: bool = True) -> Report:
    """A report as intake and tagging would leave it; `route` starts its SLA clocks."""
    received = received_at or now()
    report = Report(public_id=f"rep_inc{next(_numbers):07d}", project_id=project.id,
                    reason=Reason(reason), description=description,
                    status_token_hash="0" * 64, status=Status.NEW,
                    priority=Priority(priority), flagged_categories=list(categories),
                    model_name=model, received_at=received, updated_at=received,
                    tagging_state=TaggingState.TAGGED)
    db.session.add(report)
    db.session.flush()
    if route:
        from app.sla import service as sla

        sla.routed(report)
    if commit:
        db.session.commit()
    return report


@contextmanager
def count_queries() -> Iterator[list[str]]:
    """The SQL statements run inside the block (savepoint bookkeeping left out)."""
    statements: list[str] = []
    engine = db.engine

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "SAVEPOINT" not in statement.upper():
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
