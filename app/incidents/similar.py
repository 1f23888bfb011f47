"""Similar reports: the open tickets and open incidents that look like the same problem as
one ticket, best first, each with the reasons why. It only suggests; a person links
(service.link_reports).

Three signals, each one indexed query with a LIMIT, so that none grows with the table:

* the same response id: several users reporting one answer (the strongest signal);
* the same model and a shared top flagged category, among reports of the last 30 days
  (index ix_reports_open_flagged_model on PostgreSQL);
* similar wording of the openings of the descriptions (their first TEXT_CHARS = 100
  characters, the whole of most), among reports of the last 30 days:
  - PostgreSQL: pg_trgm. `left(description, 100) % :opening` finds the matches, in
    every project, through the GIN index ix_reports_open_wording on (the UTC day of
    received_at, left(description, 100) gin_trgm_ops) (btree_gin makes the day a GIN
    column, so the search skips the days before the window); the threshold is
    TEXT_THRESHOLD, set for the query; the first TEXT_CANDIDATES matches found are
    ranked by similarity();
  - SQLite (the embedded default, for small installations): no trigram index, so a
    bounded fallback: the SQLITE_TEXT_ROWS most recent open reports of the same project,
    compared in Python by word overlap (Jaccard over the sets of lower-cased words of 3+
    characters, at JACCARD_THRESHOLD). It looks at fewer reports (one project, a few
    hundred rows), misses misspelt words, and its scores are not trigram scores: the two
    backends may suggest different reports.

Candidates are open (new, triaged, in progress, waiting on reporter), not merged, not the
ticket itself. A candidate linked to no incident is suggested as a report; one linked to
an open incident (not resolved or closed) makes that incident a suggestion (unless the
ticket is already in it); one linked to a closed incident is left out.

Report text is only ever a bound parameter here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    Select,
    String,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from app.auth.models import User
from app.auth.service import require
from app.core.clock import now
from app.core.errors import ValidationFailed
from app.extensions import db
from app.incidents.models import Incident, IncidentReport, IncidentStatus
from app.reports.models import Report, Status
from app.reports.service import find as find_report

OPEN_REPORT = (Status.NEW, Status.TRIAGED, Status.IN_PROGRESS, Status.WAITING_ON_REPORTER)
OPEN_INCIDENT = (IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED,
                 IncidentStatus.MONITORING)
WINDOW = timedelta(days=30)  # model and text signals look this far back
TOP_CATEGORIES = 3  # a ticket's most confident flagged categories that count
PER_SIGNAL = 50  # candidates one signal may bring
MAX_LIMIT = 50
TEXT_MIN_CHARS = 12  # shorter descriptions ("wrong!") say too little to compare
# Wording is compared over the openings of the descriptions, the first TEXT_CHARS
# characters (the whole of most descriptions): the trigram index is built on exactly this
# expression, and the cost of a trigram search grows with the length of the text sought.
TEXT_CHARS = 100
TEXT_THRESHOLD = 0.5  # pg_trgm similarity of the openings
TEXT_CANDIDATES = 300  # trigram matches ranked (PostgreSQL)
JACCARD_THRESHOLD = 0.3  # SQLite's word overlap
SQLITE_TEXT_ROWS = 300

# A shared response id outranks anything the other two signals can add up to (2.0).
RESPONSE_WEIGHT = 3.0
MODEL_WEIGHT = 1.0  # times the share of the ticket's top categories the candidate shares
TEXT_WEIGHT = 1.0  # times the similarity

_WORD = re.compile(r"\w{3,}")


@dataclass
class SimilarReport:
    report: Report
    score: float
    reasons: list[str]


@dataclass
class SimilarIncident:
    incident: Incident
    score: float
    reasons: list[str]
    matching: int  # of its linked reports, how many matched (among those looked at)


@dataclass
class Suggestions:
    reports: list[SimilarReport] = field(default_factory=list)
    incidents: list[SimilarIncident] = field(default_factory=list)


@dataclass
class _Candidate:
    """What the signals found out about one report."""

    report_id: int
    incident_id: int | None = None  # the incident it is linked to, if any
    response_id: str | None = None
    model: str | None = None
    shared: list[str] = field(default_factory=list)  # shared top categories, ticket's order
    model_share: float = 0.0
    similarity: float = 0.0

    @property
    def score(self) -> float:
        return ((RESPONSE_WEIGHT if self.response_id else 0.0)
                + MODEL_WEIGHT * self.model_share + TEXT_WEIGHT * self.similarity)

    def reasons(self) -> list[str]:
        reasons = []
        if self.response_id:
            reasons.append(f"Same response id {self.response_id}")
        if self.shared:
            reasons.append(f"Same model {self.model} · both flagged {', '.join(self.shared)}")
        if self.similarity:
            reasons.append(f"Similar wording ({self.similarity:.2f})")
        return reasons


def similar_to(*, actor: User, public_id: str, limit: int = 10) -> Suggestions:
    """Up to `limit` open reports and `limit` open incidents that look like the same
    problem as ticket `public_id`, best first, each with its reasons. Links nothing."""
    require(actor, "incidents:read")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"Ask for 1 to {MAX_LIMIT} suggestions.",
                               fields={"limit": [f"Between 1 and {MAX_LIMIT}."]})
    ticket = find_report(public_id)
    since = now() - WINDOW
    found: dict[int, _Candidate] = {}
    truncated: set[str] = set()
    if _same_response(ticket, found):
        truncated.add("response")
    if _same_model(ticket, since, found):
        truncated.add("model")
    if _similar_text(ticket, since, found):
        truncated.add("text")
    own_incident = _link(ticket, found)

    loose = sorted((c for c in found.values() if c.incident_id is None),
                   key=lambda c: (-c.score, -c.report_id))[:limit]
    reports = {r.id: r for r in db.session.scalars(
        select(Report).where(Report.id.in_([c.report_id for c in loose])))} if loose else {}
    suggestions = Suggestions(reports=[
        SimilarReport(report=reports[c.report_id], score=round(c.score, 3),
                      reasons=c.reasons()) for c in loose if c.report_id in reports])
    suggestions.incidents = _incidents(ticket, own_incident, found, truncated, limit)
    return suggestions


def _link(ticket: Report, found: dict[int, _Candidate]) -> int | None:
    """Note the incident of each candidate (one lookup by the unique report_id); returns
    the ticket's own incident (only asked when there are candidates to compare it to)."""
    if not found:
        return None
    links = dict(db.session.execute(
        select(IncidentReport.report_id, IncidentReport.incident_id)
        .where(IncidentReport.report_id.in_([ticket.id, *found]))).all())
    for report_id, candidate in found.items():
        candidate.incident_id = links.get(report_id)
    return links.get(ticket.id)


def _postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _open(ticket: Report) -> list[Any]:
    """Open, unmerged reports other than the ticket.

    The open statuses are written into the SQL as constants (they are ours, not user
    data), so that PostgreSQL matches the partial indexes' WHERE clauses whatever plan it
    caches."""
    statuses = bindparam("open_statuses", [s.value for s in OPEN_REPORT], expanding=True,
                         literal_execute=True, type_=String)
    return [Report.id != ticket.id, Report.merged_into_id.is_(None), Report.status.in_(statuses)]


def _open_candidates(ticket: Report, *columns: Any) -> Select:
    return select(Report.id, *columns).where(*_open(ticket))


def _take(rows: Iterable[Any], found: dict[int, _Candidate]) -> list[_Candidate]:
    taken = []
    for row in rows:
        candidate = found.get(row.id)
        if candidate is None:
            candidate = found[row.id] = _Candidate(report_id=row.id)
        taken.append(candidate)
    return taken


def _same_response(ticket: Report, found: dict[int, _Candidate]) -> bool:
    """Reports of the same answer (ix_reports_response_id). True when the LIMIT cut."""
    if not ticket.response_id:
        return False
    rows = db.session.execute(
        _open_candidates(ticket).where(Report.response_id == ticket.response_id)
        .order_by(Report.id.desc()).limit(PER_SIGNAL)).all()
    for candidate in _take(rows, found):
        candidate.response_id = ticket.response_id
    return len(rows) == PER_SIGNAL


def _same_model(ticket: Report, since: datetime, found: dict[int, _Candidate]) -> bool:
    """Recent reports of the same model flagged with one of the ticket's top categories
    (ix_reports_open_flagged_model on PostgreSQL). True when the LIMIT cut."""
    top = list(ticket.flagged_categories or [])[:TOP_CATEGORIES]
    if not ticket.model_name or not top:
        return False
    query = _open_candidates(ticket, Report.flagged_categories).where(
        Report.model_name == ticket.model_name, Report.received_at >= since)
    if _postgresql():
        # The index's predicate, word for word, then the overlap (jsonb ?| text[]).
        query = query.where(text("reports.flagged_categories <> '[]'::jsonb"),
                            type_coerce(Report.flagged_categories, JSONB).has_any(
                                bindparam("top", top, type_=ARRAY(String))))
    else:
        flags = func.json_each(Report.flagged_categories).table_valued("value")
        query = query.where(exists(select(literal_column("1")).select_from(flags)
                                   .where(flags.c.value.in_(top))))
    rows = db.session.execute(query.order_by(Report.received_at.desc(), Report.id.desc())
                              .limit(PER_SIGNAL)).all()
    for candidate, row in zip(_take(rows, found), rows, strict=True):
        flagged = set(row.flagged_categories or [])
        shared = [c for c in top if c in flagged]
        candidate.model, candidate.shared = ticket.model_name, shared
        candidate.model_share = len(shared) / len(top)
    return len(rows) == PER_SIGNAL


def _similar_text(ticket: Report, since: datetime, found: dict[int, _Candidate]) -> bool:
    """Recent reports worded like the ticket. True when the LIMIT cut."""
    wording = (ticket.description or "")[:TEXT_CHARS]
    if len(wording.strip()) < TEXT_MIN_CHARS:
        return False
    if _postgresql():
        return _similar_text_trigram(ticket, wording, since, found)
    return _similar_text_words(ticket, wording, since, found)


def _similar_text_trigram(ticket: Report, wording: str, since: datetime,
                          found: dict[int, _Candidate]) -> bool:
    # `%` compares against pg_trgm.similarity_threshold, and so does the GIN index scan:
    # set for the rest of this transaction only (nothing else here uses `%`).
    db.session.execute(text("SELECT set_config('pg_trgm.similarity_threshold', :value, true)"),
                       {"value": str(TEXT_THRESHOLD)})
    words = bindparam("wording", wording)
    # The index finds every match at once (a bitmap), but checking and ranking a match
    # costs a heap row and a similarity() each: only the first TEXT_CANDIDATES matches
    # found (in table order, so the oldest of the window first) are ranked.
    matches = (select(Report.id, _opening(Report.description).label("opening"))
               .where(*_open(ticket), _received_day(Report.received_at) >= since.date(),
                      Report.received_at >= since,
                      _opening(Report.description).op("%")(words))
               .limit(TEXT_CANDIDATES).subquery("matches"))
    similarity = func.similarity(matches.c.opening, words)
    rows = db.session.execute(
        select(matches.c.id, similarity.label("similarity"), func.count().over().label("matches"))
        .order_by(similarity.desc(), matches.c.id.desc()).limit(PER_SIGNAL)).all()
    for candidate, row in zip(_take(rows, found), rows, strict=True):
        candidate.similarity = round(float(row.similarity), 2)
    return bool(rows) and (len(rows) == PER_SIGNAL or rows[0].matches == TEXT_CANDIDATES)


def _opening(description: Any) -> Any:
    """left(description, TEXT_CHARS), written as the index expression is (a constant
    length, not a bound parameter, or PostgreSQL would not match the index)."""
    return func.left(description, literal_column(str(TEXT_CHARS)))


def _received_day(received_at: Any) -> Any:
    """The UTC day of received_at, as the index's first column: the trigram search skips
    the index entries of the days before the window."""
    return cast(func.timezone(literal_column("'UTC'"), received_at), Date)


def _words(wording: str) -> set[str]:
    return set(_WORD.findall(wording.casefold()))


def _similar_text_words(ticket: Report, wording: str, since: datetime,
                        found: dict[int, _Candidate]) -> bool:
    mine = _words(wording)
    if not mine:
        return False
    rows = db.session.execute(
        _open_candidates(ticket, Report.description)
        .where(Report.project_id == ticket.project_id, Report.received_at >= since,
               Report.description != "")
        .order_by(Report.received_at.desc(), Report.id.desc())
        .limit(SQLITE_TEXT_ROWS)).all()
    scored = []
    for row in rows:
        theirs = _words((row.description or "")[:TEXT_CHARS])
        overlap = len(mine & theirs) / len(mine | theirs) if theirs else 0.0
        if overlap >= JACCARD_THRESHOLD:
            scored.append((overlap, row))
    scored.sort(key=lambda pair: (-pair[0], -pair[1].id))
    kept = scored[:PER_SIGNAL]
    for candidate, (overlap, _) in zip(_take([row for _, row in kept], found), kept,
                                       strict=True):
        candidate.similarity = round(overlap, 2)
    return len(scored) > PER_SIGNAL or len(rows) == SQLITE_TEXT_ROWS


def _incidents(ticket: Report, own_incident: int | None, found: dict[int, _Candidate],
               truncated: set[str], limit: int) -> list[SimilarIncident]:
    """Open incidents holding candidates, scored by their best one."""
    by_incident: dict[int, list[_Candidate]] = {}
    for candidate in found.values():
        if candidate.incident_id is not None:
            by_incident.setdefault(candidate.incident_id, []).append(candidate)
    by_incident.pop(own_incident, None)  # nothing to suggest: the ticket is in it already
    if not by_incident:
        return []
    incidents = {i.id: i for i in db.session.scalars(
        select(Incident).where(Incident.id.in_(list(by_incident)),
                               Incident.status.in_(OPEN_INCIDENT)))}
    ranked = sorted(((max(c.score for c in members), len(members), incident_id)
                     for incident_id, members in by_incident.items()
                     if incident_id in incidents), reverse=True)[:limit]
    return [SimilarIncident(incident=incidents[incident_id], score=round(score, 3),
                            reasons=_incident_reasons(ticket, by_incident[incident_id],
                                                      truncated),
                            matching=count)
            for score, count, incident_id in ranked]


def _count(members: Sequence[_Candidate], signal: str, truncated: set[str]) -> str:
    # A signal cut by its LIMIT may have left more of the incident's reports unseen.
    n = len(members)
    more = "+" if signal in truncated else ""
    return f"{n}{more} linked report{'' if n == 1 and not more else 's'}"


def _incident_reasons(ticket: Report, members: list[_Candidate],
                      truncated: set[str]) -> list[str]:
    reasons = []
    same_response = [c for c in members if c.response_id]
    if same_response:
        reasons.append(f"{_count(same_response, 'response', truncated)} with the same "
                       f"response id {same_response[0].response_id}")
    same_model = [c for c in members if c.shared]
    if same_model:
        # In the ticket's order: most confident first.
        top = list(ticket.flagged_categories or [])[:TOP_CATEGORIES]
        shared = [s for s in top if any(s in c.shared for c in same_model)]
        reasons.append(f"{_count(same_model, 'model', truncated)} on the same model "
                       f"{same_model[0].model} · also flagged {', '.join(shared)}")
    worded = [c for c in members if c.similarity]
    if worded:
        best = max(c.similarity for c in worded)
        reasons.append(f"{_count(worded, 'text', truncated)} with similar wording "
                       f"(up to {best:.2f})")
    return reasons
