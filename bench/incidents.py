"""Incidents benchmark: a large incident's page and exports, and similar-report suggestions.

    .venv/bin/python bench/incidents.py [--reports 1000000] [--requests 50] [--reuse] [--keep]

1. Creates the PostgreSQL database flagdesk_bench_incidents (--database; the name must
   start with flagdesk_bench) and fills it as bench/similar.py does, with its and
   bench/board.py's functions (a year of reports with their tags, shared response ids, 40
   incidents, the largest linking 10,000 reports, the indexes the suggestions use), then
   gives that incident what a long incident gathers: 50,000 timeline events (1,000 of the
   incident itself, 40,000 of its linked reports: status changes, assignments, notes,
   replies, SLA breaches, and 9,000 entries people wrote, 100 of them hidden), a draft
   retrospective and action items; and one "report.received" audit event per report, the
   noise the timeline's queries must step over.
2. Serves Flagdesk under gunicorn on loopback with production settings, signs in as a
   lead through the real login form, and requests, one at a time after a warm-up:
   the incident page (target p95 <= 300 ms) and its facts panel, which the page loads
   after itself (300 ms too), its Markdown export (<= 1 s) and its PDF export (<= 5 s);
   and, for comparison, the incident's timeline page and second page of linked reports
   (300 ms too). Prints p50/p95/max against the targets, and the
   SQL each of the incident page and the Markdown export runs (count, time, the slowest).
3. Measures similar-report suggestions for random open tickets among all the reports
   (target p95 <= 200 ms) with bench/similar.py's own measurement, in process.

Run it as a script, as above: it imports bench/similar.py, bench/board.py and
bench/intake.py as `similar`, `board` and `intake`. The database is dropped at the end
unless --keep; --reuse skips the fill when the database is already filled to the requested
size (filling a million reports takes several minutes).

A missed target is a measurement, not a failure: the exit status is non-zero only when
the run itself broke (2: set-up failed, a server did not start) or was interrupted (130).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import similar
from board import (
    CSRF_FIELD,
    PASSWORD,
    RESULTS,
    admin_connection,
    app_env,
    create_database,
    fill,
    load_average,
    migrate,
    print_fill,
    run_bench,
    seed_app,
    server_url,
    wait_for_quiet,
)
from intake import (
    HOST,
    GunicornSettings,
    SetupError,
    client_seconds,
    machine_busy_seconds,
    serving,
)
from psycopg.types.json import Jsonb

DEFAULT_DATABASE = "flagdesk_bench_incidents"
# Bumped whenever this bench's additions to similar.py's fill change.
INCIDENTS_FILL_VERSION = "incidents-fill-1"
LEAD_EMAIL = "hugo-lindqvist@example.com"  # a lead of bench/board_app.py's staff
LINKED = 10_000
INCIDENT_EVENTS, REPORT_EVENTS_PER_REPORT, ENTRIES, HIDDEN = 1_000, 4, 9_000, 100
REQUEST_TIMEOUT = 60.0
STATEMENT_TIMEOUT = "30min"


@dataclass(frozen=True)
class Target:
    name: str
    path: str  # with {incident}
    target_ms: float
    requests: int  # a share of --requests (the PDF takes seconds)


# --- the data ---------------------------------------------------------------------------

TOP_UP_LINKS = """
INSERT INTO incident_reports (incident_id, report_id, linked_at, linked_by_id)
SELECT %(incident)s, r.id, r.received_at + interval '1 hour', %(lead)s
FROM reports r
WHERE r.merged_into_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM incident_reports l WHERE l.report_id = r.id)
ORDER BY r.id DESC
LIMIT %(missing)s
"""

# Noise: what intake writes for every report. Not a timeline event, but in the same index.
RECEIVED_EVENTS = """
INSERT INTO audit_events (at, actor_type, actor_id, action, subject_type, subject_id,
                          before, after)
SELECT received_at, 'reporter', NULL, 'report.received', 'report', public_id, NULL,
       jsonb_build_object('reason', reason, 'priority', priority)
FROM reports
"""

# Four events per linked report, spread over the incident: triaged, assigned, a note, and
# a reply, an SLA breach or a new priority.
REPORT_EVENTS = """
INSERT INTO audit_events (at, actor_type, actor_id, action, subject_type, subject_id,
                          before, after)
SELECT r.received_at + (k * interval '37 minutes') + (r.id %% 600) * interval '1 second',
       CASE WHEN k = 3 AND r.id %% 3 = 1 THEN 'system' ELSE 'user' END,
       CASE WHEN k = 3 AND r.id %% 3 = 1 THEN NULL
            ELSE (%(staff)s::int[])[1 + (r.id + k) %% cardinality(%(staff)s::int[])] END,
       CASE k WHEN 0 THEN 'report.status_changed' WHEN 1 THEN 'report.assigned'
              WHEN 2 THEN 'report.note_added'
              ELSE (ARRAY['report.replied', 'sla.breached', 'report.priority_changed'])
                   [1 + r.id %% 3] END,
       'report', r.public_id,
       CASE k WHEN 0 THEN jsonb_build_object('status', 'new')
              WHEN 1 THEN jsonb_build_object('assignee_id', NULL)
              WHEN 3 THEN CASE r.id %% 3 WHEN 2 THEN jsonb_build_object('priority', 'P3')
                                        ELSE NULL END
              ELSE NULL END,
       CASE k WHEN 0 THEN jsonb_build_object('status', 'triaged')
              WHEN 1 THEN jsonb_build_object('assignee_id',
                  (%(staff)s::int[])[1 + r.id %% cardinality(%(staff)s::int[])])
              WHEN 2 THEN jsonb_build_object('comment_id', r.id, 'public', false)
              ELSE CASE r.id %% 3
                WHEN 0 THEN jsonb_build_object('comment_id', r.id, 'public', true)
                WHEN 1 THEN jsonb_build_object('metric', 'first_response', 'state', 'breached',
                                               'target_minutes', 240, 'sequence', 0)
                ELSE jsonb_build_object('priority', 'P1') END END
FROM incident_reports l JOIN reports r ON r.id = l.report_id
CROSS JOIN generate_series(0, %(per_report)s - 1) AS k
WHERE l.incident_id = %(incident)s
"""

INCIDENT_AUDIT = """
INSERT INTO audit_events (at, actor_type, actor_id, action, subject_type, subject_id,
                          before, after)
SELECT %(started)s + n * (now() - %(started)s) / %(count)s, 'user', %(lead)s,
       CASE WHEN n %% 2 = 0 THEN 'incident.status_changed' ELSE 'incident.updated' END,
       'incident', %(public_id)s,
       CASE WHEN n %% 2 = 0 THEN jsonb_build_object('status', 'investigating')
            ELSE jsonb_build_object('title', 'Before') END,
       CASE WHEN n %% 2 = 0 THEN jsonb_build_object('status', 'identified')
            ELSE jsonb_build_object('title', 'After') END
FROM generate_series(1, %(count)s - 2) AS n
"""

ENTRIES_SQL = """
INSERT INTO timeline_entries (incident_id, at, author_id, kind, body, created_at)
SELECT %(incident)s, %(started)s + n * (now() - %(started)s) / %(count)s,
       (%(staff)s::int[])[1 + n %% cardinality(%(staff)s::int[])],
       (ARRAY['note', 'action', 'decision', 'communication', 'detection', 'mitigation'])
       [1 + n %% 6],
       'Entry ' || n || ': checked the rollout of the ' || %(model)s::text || ' fine-tune; '
       || (ARRAY['error rates flat', 'reports still coming in', 'rollback queued',
                 'status page updated', 'eval set re-run', 'waiting on the vendor'])[1 + n %% 6],
       now()
FROM generate_series(1, %(count)s) AS n
"""

HIDE_SQL = """
INSERT INTO timeline_hidden (incident_id, source, source_id)
SELECT %(incident)s, 'entry', id FROM timeline_entries
WHERE incident_id = %(incident)s ORDER BY id LIMIT %(count)s
"""

RETROSPECTIVE_SQL = """
INSERT INTO retrospectives (incident_id, state, sections, machine_written, version,
                            updated_at, updated_by_id)
VALUES (%(incident)s, 'draft', %(sections)s, '[]'::jsonb, 1, now(), %(lead)s)
"""

ACTION_ITEMS_SQL = """
INSERT INTO action_items (incident_id, title, owner_id, due_date, status, link, created_at,
                          updated_at)
SELECT %(incident)s, 'Action ' || n || ': add the geography set to the release gate',
       (%(staff)s::int[])[1 + n %% cardinality(%(staff)s::int[])], current_date + n,
       (ARRAY['open', 'in_progress', 'done'])[1 + n %% 3],
       'https://tracker.example.com/GEO-' || n, now(), now()
FROM generate_series(1, 12) AS n
"""

SECTIONS = {
    "summary": "For **six weeks** answers of one model named wrong capitals; "
               "10,000 users reported it.",
    "impact": "- 10,000 reports\n- mostly *inaccurate*, some flagged",
    "root_cause": "A fine-tune dropped the geography evaluation set.",
    "contributing_factors": "- no release gate on geography\n- alerts on report volume only",
    "detection": "Reports, then the volume alert.",
    "response_recovery": "Rolled back, re-ran the evals.",
    "went_well": "Triage grouped the reports within an hour.",
    "went_poorly": "The rollback took two days.",
    "got_lucky": "It was geography, not medicine.",
    "lessons": "Gate releases on every evaluation set.",
}

SUMMARY_SQL = """
SELECT
  (SELECT count(*) FROM incident_reports WHERE incident_id = %(incident)s) AS linked,
  (SELECT count(*) FROM audit_events WHERE subject_type = 'incident'
     AND subject_id = %(public_id)s) AS incident_events,
  (SELECT count(*) FROM audit_events a JOIN reports r ON r.public_id = a.subject_id
     JOIN incident_reports l ON l.report_id = r.id
   WHERE a.subject_type = 'report' AND l.incident_id = %(incident)s
     AND a.action <> 'report.received') AS report_events,
  (SELECT count(*) FROM timeline_entries WHERE incident_id = %(incident)s) AS entries,
  (SELECT count(*) FROM timeline_hidden WHERE incident_id = %(incident)s) AS hidden,
  (SELECT count(*) FROM audit_events) AS audit_events,
  (SELECT count(*) FROM reports) AS reports
"""


def marker(reports: int) -> str:
    return f"{similar.marker(reports)} {INCIDENTS_FILL_VERSION}"


def the_incident(database: str) -> tuple[int, str]:
    """The largest incident of similar.py's fill (the one this bench measures)."""
    with psycopg.connect(server_url(database)) as connection:
        row = connection.execute(
            "SELECT i.id, i.public_id FROM incidents i JOIN incident_reports l "
            "ON l.incident_id = i.id GROUP BY i.id ORDER BY count(*) DESC, i.id LIMIT 1"
        ).fetchone()
    if row is None:
        raise SetupError("the fill made no incident")
    return row[0], row[1]


def grow(database: str) -> list[tuple[str, float]]:
    """The 10,000 reports and 50,000 timeline events of the measured incident."""
    steps: list[tuple[str, float]] = []
    incident, public_id = the_incident(database)
    with psycopg.connect(server_url(database), autocommit=True) as connection:
        connection.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
        connection.execute("SET synchronous_commit = off")

        def step(name: str, sql: str, params: dict[str, object] | None = None) -> None:
            begun = time.monotonic()
            connection.execute(sql, params)
            steps.append((name, time.monotonic() - begun))
            print(f"#   {name}: {steps[-1][1]:.1f} s", flush=True)

        staff = [r[0] for r in connection.execute(
            "SELECT id FROM users WHERE role IN ('responder', 'lead') ORDER BY id")]
        lead = connection.execute("SELECT id FROM users WHERE email = %s",
                                  [LEAD_EMAIL]).fetchone()[0]
        linked = connection.execute("SELECT count(*) FROM incident_reports WHERE "
                                    "incident_id = %s", [incident]).fetchone()[0]
        if linked < LINKED:
            step(f"link {LINKED - linked} more reports", TOP_UP_LINKS,
                 {"incident": incident, "lead": lead, "missing": LINKED - linked})
        started, model = connection.execute(
            "SELECT coalesce(started_at, created_at), affected_models->>0 FROM incidents "
            "WHERE id = %s", [incident]).fetchone()
        connection.execute("UPDATE incidents SET lead_id = %s WHERE id = %s", [lead, incident])
        connection.execute("INSERT INTO incident_participants (incident_id, user_id) "
                           "SELECT %s, unnest(%s::int[]) ON CONFLICT DO NOTHING",
                           [incident, staff[:6]])
        step("one report.received event per report (noise)", RECEIVED_EVENTS)
        step(f"{REPORT_EVENTS_PER_REPORT} events per linked report", REPORT_EVENTS,
             {"incident": incident, "staff": staff, "per_report": REPORT_EVENTS_PER_REPORT})
        # The incident's own events: opened, the links (one event naming every report),
        # and status changes and edits across the weeks.
        ids = [r[0] for r in connection.execute(
            "SELECT r.public_id FROM incident_reports l JOIN reports r ON r.id = l.report_id "
            "WHERE l.incident_id = %s ORDER BY r.id", [incident])]
        connection.execute(
            "INSERT INTO audit_events (at, actor_type, actor_id, action, subject_type, "
            "subject_id, before, after) VALUES (%(at)s, 'user', %(lead)s, 'incident.opened', "
            "'incident', %(id)s, NULL, %(opened)s), (%(at)s, 'user', %(lead)s, "
            "'incident.reports_linked', 'incident', %(id)s, NULL, %(linked)s)",
            {"at": started, "lead": lead, "id": public_id,
             "opened": Jsonb({"title": "Geography", "severity": "SEV2"}),
             "linked": Jsonb({"reports": ids})})
        step(f"{INCIDENT_EVENTS} incident events", INCIDENT_AUDIT,
             {"started": started, "count": INCIDENT_EVENTS, "lead": lead, "public_id": public_id})
        step(f"{ENTRIES} timeline entries", ENTRIES_SQL,
             {"incident": incident, "started": started, "count": ENTRIES, "staff": staff,
              "model": model or "gpt"})
        step(f"hide {HIDDEN} of them", HIDE_SQL, {"incident": incident, "count": HIDDEN})
        connection.execute(RETROSPECTIVE_SQL, {"incident": incident, "lead": lead,
                                               "sections": Jsonb(SECTIONS)})
        connection.execute(ACTION_ITEMS_SQL, {"incident": incident, "staff": staff})
        step("vacuum analyze", "VACUUM ANALYZE")
    return steps


# Partial indexes the migrations create on reports that board.fill's drop-and-rebuild
# check cannot compare (PostgreSQL prints their IN lists differently once rebuilt):
# dropped before the fill, made again by similar.shape (SIMILAR_INDEXES).
REBUILT_BY_SHAPE = ("ix_reports_open_wording", "ix_reports_open_flagged_model")


def fill_as_similar_does(database: str, reports: int, workdir: Path) -> None:
    """similar.prepare's fill (board.py's reports, then similar.shape), with the partial
    indexes above left to similar.shape."""
    print(f"# creating {database} and filling it with {reports:,} reports", flush=True)
    env = app_env(database, workdir)
    create_database(database)
    started = time.monotonic()
    migrate(env)
    seeded = seed_app(env)
    with psycopg.connect(server_url(database), autocommit=True) as connection:
        for name in REBUILT_BY_SHAPE:
            connection.execute(f'DROP INDEX IF EXISTS "{name}"')
    setup = time.monotonic() - started
    projects, staff = seeded["projects"], seeded["staff"]
    assert isinstance(projects, list) and isinstance(staff, list)
    report = fill(database, reports, projects, staff)
    report.steps.insert(0, ("migrate and seed", setup))
    report.seconds += setup
    steps = similar.shape(database, staff)
    report.steps += steps
    report.seconds += sum(seconds for _, seconds in steps)
    print_fill(report)


def prepare(args: argparse.Namespace, workdir: Path) -> None:
    """similar.py's database, grown: reused when asked and already complete."""
    wanted = marker(args.reports)
    if args.reuse and similar.filled_marker(args.database) == wanted:
        print(f"# reusing {args.database} ({wanted}); migrating it to the current head",
              flush=True)
        migrate(app_env(args.database, workdir))
        with psycopg.connect(server_url(args.database), autocommit=True) as connection:
            for statement in similar.SIMILAR_INDEXES:
                connection.execute(statement)
        return
    fill_as_similar_does(args.database, args.reports, workdir)
    print("# the measured incident: 10,000 reports and 50,000 timeline events", flush=True)
    grow(args.database)
    with admin_connection() as admin:
        admin.execute(f"COMMENT ON DATABASE \"{args.database}\" IS '{wanted}'")


def data_summary(database: str) -> dict[str, int]:
    incident, public_id = the_incident(database)
    with psycopg.connect(server_url(database)) as connection, connection.cursor() as cursor:
        cursor.execute(SUMMARY_SQL, {"incident": incident, "public_id": public_id})
        names = [d.name for d in cursor.description or []]
        return dict(zip(names, cursor.fetchone() or (), strict=True))


# --- over HTTP ----------------------------------------------------------------------------


@dataclass
class PageStats:
    target: Target
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    sizes: list[int] = field(default_factory=list)

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return 1000 * ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    @property
    def failures(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)


def sign_in(client: httpx.Client, email: str) -> None:
    """Through the real login form (board.sign_in's, as a lead)."""
    page = client.get("/login")
    match = CSRF_FIELD.search(page.text)
    if page.status_code != 200 or match is None:
        raise SetupError(f"GET /login answered {page.status_code} without a CSRF token")
    answer = client.post("/login", data={"csrf_token": match.group(1), "email": email,
                                         "password": PASSWORD})
    if answer.status_code != 302:
        raise SetupError(f"POST /login answered {answer.status_code}, not a redirect")


def measure_http(client: httpx.Client, pages: list[PageStats], warmup: int,
                 incident: str) -> None:
    """Each page in turn: warm-up requests, then the measured ones, one at a time."""
    for page in pages:
        path = page.target.path.format(incident=incident)
        for number in range(warmup + page.target.requests):
            started = time.perf_counter()
            answer = client.get(path)
            elapsed = time.perf_counter() - started
            if number == 0 and answer.status_code != 200:
                raise SetupError(f"GET {path} answered {answer.status_code}: "
                                 f"{answer.text[:300]}")
            if number >= warmup:
                page.latencies.append(elapsed)
                page.statuses[answer.status_code] += 1
                page.sizes.append(len(answer.content))


def print_table(pages: list[PageStats]) -> None:
    print(f"{'request':<34}{'n':>4}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'non-200':>8}"
          f"{'KB':>7}  target")
    for page in pages:
        p95 = page.percentile_ms(0.95)
        kb = sum(page.sizes) / len(page.sizes) / 1024 if page.sizes else 0
        verdict = "PASS" if p95 <= page.target.target_ms and not page.failures else "FAIL"
        print(f"{page.target.name:<34}{len(page.latencies):>4}{page.percentile_ms(0.5):>9.1f}"
              f"{p95:>9.1f}{page.percentile_ms(1.0):>9.1f}{page.failures:>8}{kb:>7.0f}  "
              f"p95<={page.target.target_ms:.0f}ms {verdict}")


# --- in process: the SQL of one page ---------------------------------------------------------


def profile(app: Any, path: str, runs: int = 5) -> dict[str, Any]:
    """Sign in through the form with the test client, then GET `path` `runs` times,
    recording every SQL statement; the median run's statements."""
    from sqlalchemy import event

    from app.extensions import db

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = CSRF_FIELD.search(page)
    if token is None:
        raise SetupError("the in-process /login page has no CSRF token")
    # The test client speaks the preferred scheme (https in production), and over https
    # the CSRF check wants a same-site Referer, as a browser sends.
    signed = client.post("/login", data={"csrf_token": token.group(1), "email": LEAD_EMAIL,
                                         "password": PASSWORD},
                         headers={"Referer": "https://localhost/login"})
    if signed.status_code != 302:
        raise SetupError(f"in-process sign-in answered {signed.status_code}")
    recorded: list[tuple[str, float]] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        recorded.append((statement, time.perf_counter() - conn.info.pop("bench_started")))

    runs_seen = []
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for _ in range(runs):
            recorded.clear()
            started = time.perf_counter()
            answer = client.get(path)
            seconds = time.perf_counter() - started
            if answer.status_code != 200:
                raise SetupError(f"in-process GET {path} answered {answer.status_code}")
            runs_seen.append((seconds, list(recorded)))
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    seconds, statements = sorted(runs_seen, key=lambda run: run[0])[len(runs_seen) // 2]
    return {"ms": 1000 * seconds, "sql_ms": 1000 * sum(s for _, s in statements),
            "statements": statements}


def print_profile(name: str, found: dict[str, Any]) -> None:
    statements = found["statements"]
    print(f"{name}: in process {found['ms']:.0f} ms (median of 5), SQL {found['sql_ms']:.0f} ms "
          f"in {len(statements)} statements; slowest:")
    for statement, seconds in sorted(statements, key=lambda s: -s[1])[:3]:
        print(f"  {1000 * seconds:>7.1f} ms  {' '.join(statement.split())[:110]}…")


# --- the run ------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> int:
    prepare(args, workdir)
    counts = data_summary(args.database)
    print("data: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counts.items()))
    _, incident = the_incident(args.database)
    base = f"/incidents/{incident}"
    targets = [
        Target("incident page", base, 300.0, args.requests),
        Target("its facts (loaded after it)", base + "/facts", 300.0, args.requests),
        Target("Markdown export", base + "/export/md", 1000.0, max(5, args.requests // 5)),
        Target("PDF export", base + "/export/pdf", 5000.0, max(3, args.requests // 10)),
        Target("timeline page (200 items)", base + "/timeline", 300.0, args.requests),
        Target("linked reports page 2", base + "/reports?page=2", 300.0, args.requests),
    ]
    pages = [PageStats(t) for t in targets]
    env = app_env(args.database, workdir)
    settings = GunicornSettings(args.workers, "sync", 1)
    with serving("wsgi:app", settings, env, workdir, "incidents") as server, \
            httpx.Client(base_url=f"http://{HOST}:{server.port}", timeout=REQUEST_TIMEOUT,
                         follow_redirects=False) as client:
        sign_in(client, LEAD_EMAIL)
        quiet, waited = wait_for_quiet(args.max_load, args.wait_load)
        load_before = load_average()
        cpu_before = (server.cpu_seconds(), client_seconds(), machine_busy_seconds(),
                      time.monotonic())
        measure_http(client, pages, args.warmup, incident)
        cpu_after = (server.cpu_seconds(), client_seconds(), machine_busy_seconds(),
                     time.monotonic())
        load_after = load_average()
    server_cpu, client_cpu, machine, elapsed = (
        b - a for a, b in zip(cpu_before, cpu_after, strict=True))
    rest = max(0.0, machine - server_cpu - client_cpu)
    print(f"# {settings.describe()}; signed in as a lead; {args.warmup} warm-up requests per "
          f"row, then sequential; {os.cpu_count()} CPUs")
    print(f"# load average before {load_before} (waited {waited:.0f} s"
          f"{'' if quiet else f', still >= {args.max_load}'}), after {load_after}; cpu over "
          f"{elapsed:.0f} s: server {100 * server_cpu / elapsed:.0f}%, client "
          f"{100 * client_cpu / elapsed:.0f}%, rest (PostgreSQL and anything else) "
          f"{100 * rest / elapsed:.0f}%")
    print_table(pages)

    app = similar.make_app(args.database, workdir)
    if not args.no_profile:
        print_profile("incident page", profile(app, base))
        print_profile("Markdown export", profile(app, base + "/export/md"))

    tickets = similar.pick_tickets(args.database, args.tickets + args.warmup, args.seed)
    quiet, waited = wait_for_quiet(args.max_load, args.wait_load)
    print(f"# similar-report suggestions (bench/similar.py's measurement): load average "
          f"{load_average()}; {args.tickets} random open tickets after {args.warmup} "
          "warm-up, in process")
    calls = similar.measure(app, tickets, args.warmup)
    similar.print_report(calls)
    with app.app_context():
        from app.extensions import db

        db.engines[None].dispose()
    summary = {page.target.name: round(page.percentile_ms(0.95)) for page in pages}
    summary["similar_to() p95"] = round(similar.percentile_ms([c.seconds for c in calls], 0.95))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "incidents-latest.txt").write_text(
        f"# bench/incidents.py, {time.strftime('%Y-%m-%d %H:%M:%S')}: p95 in ms\n"
        + "".join(f"{name}: {value}\n" for name, value in summary.items()))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE,
                        help="created (and dropped) by the bench; must start with "
                             "flagdesk_bench")
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50,
                        help="measured per page (a fifth of it for Markdown, a tenth for PDF)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured, per row")
    parser.add_argument("--tickets", type=int, default=200, help="similar_to() calls")
    parser.add_argument("--seed", type=int, default=7, help="of the ticket choice")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reuse", action="store_true",
                        help="keep an already filled database of the same size")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the in-process SQL profile of the page and the export")
    parser.add_argument("--max-load", type=float, default=2.0,
                        help="wait until the 1-minute load average is below this")
    parser.add_argument("--wait-load", type=float, default=900.0,
                        help="wait at most this many seconds for it (then measure anyway)")
    args = parser.parse_args(argv)
    if not args.database.startswith("flagdesk_bench"):
        parser.error("the database is dropped and recreated: its name must start with "
                     "flagdesk_bench")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench("incidents.py", f"{args.reports:,} reports", args, run)

if __name__ == "__main__":
    sys.exit(main())

