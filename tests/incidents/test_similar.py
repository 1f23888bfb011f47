"""Similar-report suggestions (app.incidents.similar): which open reports and open
incidents a ticket page suggests, why, in what order, what never shows up, and who may ask.

Runs on SQLite and PostgreSQL alike, except the tests of pg_trgm's own behaviour (typos,
other projects, the indexes the queries are written for), which need PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event, func, select, text

from app.audit.models import AuditEvent
from app.auth.models import Role
from app.core.clock import frozen
from app.core.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from app.extensions import db
from app.incidents import similar
from app.incidents.models import Incident, IncidentReport, IncidentStatus, Severity
from app.projects.service import create_project
from app.reports.models import Reason, Report, Status

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

INSULT = "The assistant insulted me and called me stupid when I asked about my refund."
INSULT_AGAIN = "The assistant insulted me and called me stupid after I asked about the refund."
UNRELATED = "It gave the wrong capital of Australia and then a wrong population figure."

_numbers = itertools.count()

# What the lead's migration creates (see the report of helper I6b); the same text.
INDEXES = (
    "CREATE EXTENSION IF NOT EXISTS btree_gin",
    "CREATE INDEX IF NOT EXISTS ix_reports_open_wording ON reports USING gin "
    "(((timezone('UTC', received_at))::date), left(description, 100) gin_trgm_ops) "
    "WHERE merged_into_id IS NULL "
    "AND status IN ('new', 'triaged', 'in_progress', 'waiting_on_reporter')",
    "CREATE INDEX IF NOT EXISTS ix_reports_open_flagged_model ON reports "
    "(model_name, received_at, id) WHERE merged_into_id IS NULL "
    "AND status IN ('new', 'triaged', 'in_progress', 'waiting_on_reporter') "
    "AND flagged_categories <> '[]'::jsonb",
)


def postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


needs_postgresql = pytest.mark.skipif(
    sa.make_url(os.environ.get("TEST_DATABASE_URL") or "sqlite://").get_backend_name()
    != "postgresql",
    reason="pg_trgm (trigram similarity) and these indexes exist only on PostgreSQL; "
           "SQLite uses the word-overlap fallback, which the other tests cover",
)


@pytest.fixture(autouse=True)
def _setting(_rolled_back: None) -> Iterator[None]:
    """Frozen time; on PostgreSQL the pg_trgm extension the migration creates (made here
    when the test database predates it; inside the test's transaction, so rolled back)."""
    if postgresql():
        db.session.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    with frozen(NOW):
        yield


@pytest.fixture
def responder(make_user):
    return make_user(Role.RESPONDER)


def report(project, *, description: str = "", model: str | None = "gpt-4o",
           response_id: str | None = None, categories: tuple[str, ...] = (),
           status: Status = Status.NEW, received: datetime | None = None,
           merged_into: Report | None = None) -> Report:
    """A stored report with exactly these fields (what tagging and triage would leave)."""
    at = received or NOW - HOUR
    row = Report(public_id=f"rep_sim{next(_numbers):08d}", project_id=project.id,
                 reason=Reason.OTHER, description=description, model_name=model,
                 response_id=response_id, flagged_categories=list(categories), status=status,
                 received_at=at, updated_at=at, status_token_hash="0" * 64,
                 merged_into_id=merged_into.id if merged_into else None)
    db.session.add(row)
    db.session.flush()
    return row


def incident(*reports: Report, status: IncidentStatus = IncidentStatus.INVESTIGATING,
             title: str = "Refund bot insults users") -> Incident:
    row = Incident(public_id=f"inc_sim{next(_numbers):08d}", title=title,
                   severity=Severity.SEV2, status=status, affected_models=["gpt-4o"])
    db.session.add(row)
    db.session.flush()
    db.session.add_all(IncidentReport(incident_id=row.id, report_id=r.id) for r in reports)
    db.session.flush()
    return row


def suggest(actor, ticket: Report, limit: int = 10) -> similar.Suggestions:
    db.session.commit()  # what the ticket page sees: stored rows (a savepoint here)
    return similar.similar_to(actor=actor, public_id=ticket.public_id, limit=limit)


def ids(suggestions: similar.Suggestions) -> list[str]:
    return [s.report.public_id for s in suggestions.reports]


# --- the signals -----------------------------------------------------------------------


def test_the_same_response_id_wins_over_model_categories_and_wording(project, responder):
    ticket = report(project, response_id="resp_shared", categories=("harassment",),
                    description=INSULT)
    same_answer = report(project, response_id="resp_shared", description=UNRELATED,
                         received=NOW - 5 * HOUR)
    # Same model, same category and nearly the same words: the most a ticket can share
    # without being a report of the same answer.
    look_alike = report(project, response_id="resp_other", categories=("harassment",),
                        description=INSULT_AGAIN)

    found = suggest(responder, ticket)

    assert ids(found) == [same_answer.public_id, look_alike.public_id]
    first, second = found.reports
    assert first.reasons == ["Same response id resp_shared"]
    assert second.reasons[0] == "Same model gpt-4o · both flagged harassment"
    assert re.fullmatch(r"Similar wording \(0\.\d\d\)", second.reasons[1])
    assert first.score > second.score
    assert found.incidents == []


def test_same_model_and_shared_top_categories(project, responder):
    ticket = report(project, categories=("harassment", "hate", "violence", "sexual"))
    two_shared = report(project, categories=("hate", "harassment"))
    one_shared = report(project, categories=("violence",), received=NOW - 2 * HOUR)
    # Not suggested: another model; no flags; no category among the ticket's top three
    # (sexual is its fourth); older than the window.
    other_model = report(project, model="claude-3", categories=("harassment",))
    unflagged = report(project)
    beyond_top = report(project, categories=("sexual",))
    too_old = report(project, categories=("harassment",),
                     received=NOW - similar.WINDOW - HOUR)

    found = suggest(responder, ticket)

    assert ids(found) == [two_shared.public_id, one_shared.public_id]
    assert found.reports[0].reasons == ["Same model gpt-4o · both flagged harassment, hate"]
    assert found.reports[1].reasons == ["Same model gpt-4o · both flagged violence"]
    assert found.reports[0].score > found.reports[1].score
    left_out = {other_model.public_id, unflagged.public_id, beyond_top.public_id,
                too_old.public_id}
    assert left_out.isdisjoint(ids(found))


def test_a_ticket_without_model_or_flags_gets_no_model_suggestions(project, responder):
    ticket = report(project, model=None, categories=("harassment",))
    report(project, model=None, categories=("harassment",))
    report(project, categories=("harassment",))
    assert suggest(responder, ticket).reports == []


def test_similar_wording(project, responder):
    ticket = report(project, model="model-a", description=INSULT)
    alike = report(project, model="model-b", description=INSULT_AGAIN)
    unrelated = report(project, model="model-b", description=UNRELATED)
    too_old = report(project, model="model-b", description=INSULT,
                     received=NOW - similar.WINDOW - HOUR)

    found = suggest(responder, ticket)

    assert ids(found) == [alike.public_id]
    (suggestion,) = found.reports
    (reason,) = suggestion.reasons
    value = float(re.fullmatch(r"Similar wording \((0\.\d\d)\)", reason).group(1))
    if postgresql():  # pg_trgm's own number
        expected = db.session.scalar(select(func.similarity(INSULT_AGAIN, INSULT)))
    else:  # word overlap: 9 shared of 11 distinct words of 3+ letters
        expected = 9 / 11
    assert value == round(expected, 2) >= similar.TEXT_THRESHOLD
    assert {unrelated.public_id, too_old.public_id}.isdisjoint(ids(found))


def test_wording_is_compared_over_the_openings(project, responder):
    """The first TEXT_CHARS characters: what follows them does not count."""
    filler = "x" * similar.TEXT_CHARS
    ticket = report(project, model="model-a", description=INSULT.ljust(similar.TEXT_CHARS)
                    + " Also the page was slow and the colours were off.")
    same_opening = report(project, model="model-b", description=INSULT.ljust(
        similar.TEXT_CHARS) + " " + UNRELATED)
    same_ending = report(project, model="model-b", description=filler + " " + INSULT)
    found = suggest(responder, ticket)
    assert ids(found) == [same_opening.public_id]
    assert found.reports[0].reasons == ["Similar wording (1.00)"]
    assert same_ending.public_id not in ids(found)


def test_short_descriptions_are_not_compared(project, responder):
    ticket = report(project, model="model-a", description="Wrong!")
    report(project, model="model-b", description="Wrong!")
    assert suggest(responder, ticket).reports == []


def test_report_text_is_only_data(project, responder):
    hostile = "100% _wrong_ '); DROP TABLE reports; -- \\ %s %(x)s {0} $1 \x01"
    ticket = report(project, model="model-a", description=hostile)
    twin = report(project, model="model-b", description=hostile)
    found = suggest(responder, ticket)
    assert ids(found) == [twin.public_id]
    assert found.reports[0].reasons == ["Similar wording (1.00)"]
    assert db.session.scalar(select(func.count()).select_from(Report)) >= 2


@needs_postgresql
def test_trigrams_catch_typos_in_every_project(project, responder):
    """pg_trgm compares letter trigrams, so misspelt words still count, and it searches
    every project; SQLite's fallback compares whole words within the ticket's project."""
    other_project = create_project(name="Other", origins=["https://other.example.com"])
    ticket = report(project, model="model-a", description=INSULT)
    typos = report(other_project, model="model-b",
                   description="The asistant insultd me and caled me stupd when I askd "
                               "about my refnd.")
    found = suggest(responder, ticket)
    assert ids(found) == [typos.public_id]
    score = db.session.scalar(select(func.similarity(typos.description, INSULT)))
    assert found.reports[0].reasons == [f"Similar wording ({score:.2f})"]


# 20,000 reports, most closed, over 100 days, seven models, a quarter flagged hate, each
# worded differently: enough for the planner to weigh the indexes as it would in production.
FILLER = """
INSERT INTO reports (public_id, project_id, received_at, updated_at, reason, description,
  conversation, extra, contact_consent, status_token_hash, status, priority, tagging_state,
  tagging_attempts, flagged_categories, model_name, response_id)
SELECT 'rep_fill' || i, :project, :now - i * interval '7 minutes',
  :now - i * interval '7 minutes', 'other', 'Report ' || i || ' says ' || md5(i::text),
  '[]', '{}', false, repeat('0', 64),
  CASE WHEN i % 10 = 0 THEN 'new' ELSE 'resolved' END, 'P4', 'tagged', 1,
  CASE WHEN i % 4 = 0 THEN '["hate"]'::jsonb ELSE '[]'::jsonb END,
  'model-' || i % 7, 'resp_fill_' || i
FROM generate_series(1, 20000) AS i
"""


@needs_postgresql
def test_the_queries_can_use_the_indexes_written_for_them(project, responder):
    """Each signal's query matches the index written for it (the partial indexes' WHERE
    clauses, the trigram index's expressions): EXPLAIN, with table scans discouraged, on a
    table of realistic shape. The indexes are created here when the test database
    predates them (rolled back with the test)."""
    for statement in INDEXES:
        db.session.execute(text(statement))
    db.session.execute(text(FILLER), {"project": project.id, "now": NOW})
    db.session.execute(text("ANALYZE reports"))
    ticket = report(project, response_id="resp_x", categories=("hate",), description=INSULT)
    report(project, response_id="resp_x", categories=("hate",), description=INSULT_AGAIN)
    db.session.commit()
    statements: list[tuple[str, object]] = []
    engine = db.session.get_bind().engine

    def keep(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        found = similar.similar_to(actor=responder, public_id=ticket.public_id)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    assert len(found.reports) == 1
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    plans = {}
    for signal, marker, index in (
            ("response", "reports.response_id =", "ix_reports_response_id"),
            ("model", "?|", "ix_reports_open_flagged_model"),
            ("text", "similarity(", "ix_reports_open_wording")):
        if signal == "text":
            # A few thousand open rows are cheaper to filter than to look up: the planner
            # prefers the board's indexes here (the bench's plans show the choice at a
            # million rows). Without them, only an index that matches can be used.
            for name in ("ix_reports_board_open", "ix_reports_board_due",
                         "ix_reports_board_closed", "ix_reports_received",
                         "ix_reports_merged_into_id"):
                db.session.execute(text(f"DROP INDEX {name}"))
        (statement, parameters), = [(s, p) for s, p in statements if marker in s]
        # What the partial indexes' WHERE clauses and the trigram index's expression need
        # written as constants: a generic plan (psycopg prepares a statement after five
        # runs) cannot match an index through a bound parameter.
        assert "IN ('new', 'triaged', 'in_progress', 'waiting_on_reporter')" in statement
        if signal == "text":
            assert "left(reports.description, 100) %%" in statement
            assert "CAST(timezone('UTC', reports.received_at) AS DATE) >=" in statement
        plan = db.session.connection().exec_driver_sql("EXPLAIN " + statement, parameters)
        plans[signal] = "\n".join(row[0] for row in plan)
        assert re.search(rf"Index Scan (Backward )?(using|on) {index} ", plans[signal]), \
            plans[signal]
    # The model signal's order is the index's: read backwards, no sort, stops at its LIMIT.
    assert "Sort" not in plans["model"], plans["model"]


# --- what is never suggested -------------------------------------------------------------


def test_closed_merged_linked_and_the_ticket_itself_are_left_out(project, responder):
    ticket = report(project, response_id="resp_same")
    survivor = report(project, response_id="resp_elsewhere")
    left_out = [
        report(project, response_id="resp_same", status=Status.RESOLVED),
        report(project, response_id="resp_same", status=Status.DISMISSED),
        report(project, response_id="resp_same", merged_into=survivor),
    ]
    in_closed_incident = report(project, response_id="resp_same")
    incident(in_closed_incident, status=IncidentStatus.CLOSED)
    in_resolved_incident = report(project, response_id="resp_same")
    incident(in_resolved_incident, status=IncidentStatus.RESOLVED)
    waiting = report(project, response_id="resp_same", status=Status.WAITING_ON_REPORTER)

    found = suggest(responder, ticket)

    assert ids(found) == [waiting.public_id]
    assert ticket.public_id not in ids(found)
    assert {r.public_id for r in left_out}.isdisjoint(ids(found))
    assert found.incidents == []


def test_suggesting_links_nothing_and_writes_nothing(project, responder):
    ticket = report(project, response_id="resp_same")
    report(project, response_id="resp_same")
    incident(report(project, response_id="resp_same"))
    links = db.session.scalar(select(func.count()).select_from(IncidentReport))
    events = db.session.scalar(select(func.count()).select_from(AuditEvent))

    found = suggest(responder, ticket)

    assert len(found.reports) == 1 and len(found.incidents) == 1
    assert db.session.scalar(select(func.count()).select_from(IncidentReport)) == links
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events


# --- open incidents --------------------------------------------------------------------


def test_open_incidents_are_suggested_with_their_reasons(project, responder):
    ticket = report(project, response_id="resp_bad", categories=("harassment", "hate"),
                    description=INSULT)
    loose = report(project, response_id="resp_bad")
    by_answer = incident(report(project, response_id="resp_bad"),
                         report(project, response_id="resp_bad"),
                         report(project, description=UNRELATED, model="model-z"),
                         title="One bad answer", status=IncidentStatus.MONITORING)
    by_model = incident(report(project, categories=("hate",)),
                        report(project, categories=("harassment", "hate")),
                        title="Hateful replies", status=IncidentStatus.IDENTIFIED)
    by_words = incident(report(project, model="model-b", description=INSULT_AGAIN),
                        title="Refund insults")
    incident(report(project, response_id="resp_bad"), status=IncidentStatus.RESOLVED,
             title="Over already")

    found = suggest(responder, ticket)

    assert ids(found) == [loose.public_id]
    assert [s.incident.public_id for s in found.incidents] == [
        by_answer.public_id, by_model.public_id, by_words.public_id]
    answer, model, words = found.incidents
    assert answer.reasons == ["2 linked reports with the same response id resp_bad"]
    assert answer.matching == 2
    assert model.reasons == ["2 linked reports on the same model gpt-4o · also flagged "
                             "harassment, hate"]
    (reason,) = words.reasons
    assert re.fullmatch(r"1 linked report with similar wording \(up to 0\.\d\d\)", reason)


def test_the_tickets_own_incident_is_not_suggested(project, responder):
    ticket = report(project, response_id="resp_bad")
    own = incident(ticket, report(project, response_id="resp_bad"))
    other = incident(report(project, response_id="resp_bad"), title="Another one")
    found = suggest(responder, ticket)
    assert [s.incident.public_id for s in found.incidents] == [other.public_id]
    assert own.public_id not in [s.incident.public_id for s in found.incidents]


def test_limit_applies_to_each_list(project, responder):
    ticket = report(project, response_id="resp_many")
    newest_first = [report(project, response_id="resp_many") for _ in range(12)][::-1]
    for n in range(4):
        incident(report(project, response_id="resp_many"), title=f"Incident {n}")
    found = suggest(responder, ticket, limit=3)
    # Equal scores: the most recent reports first.
    assert ids(found) == [r.public_id for r in newest_first[:3]]
    assert len(found.incidents) == 3


# --- who may ask, and bad input --------------------------------------------------------


@pytest.mark.parametrize("role", [Role.RESPONDER, Role.LEAD, Role.ADMIN])
def test_responders_and_above_may_ask(project, make_user, role):
    ticket = report(project, response_id="resp_same")
    other = report(project, response_id="resp_same")
    assert ids(suggest(make_user(role), ticket)) == [other.public_id]


def test_viewers_and_strangers_are_refused(project, make_user):
    ticket = report(project)
    with pytest.raises(Forbidden):
        similar.similar_to(actor=make_user(Role.VIEWER), public_id=ticket.public_id)
    with pytest.raises(Unauthorized):
        similar.similar_to(actor=None, public_id=ticket.public_id)


def test_unknown_ticket_and_bad_limits(project, responder):
    for public_id in ("rep_missing", "rep_\x00nul"):
        with pytest.raises(NotFound):
            similar.similar_to(actor=responder, public_id=public_id)
    ticket = report(project)
    for limit in (0, similar.MAX_LIMIT + 1):
        with pytest.raises(ValidationFailed):
            similar.similar_to(actor=responder, public_id=ticket.public_id, limit=limit)
