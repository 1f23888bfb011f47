"""Similar-report suggestions benchmark: similar_to() for one ticket among a million reports.

    .venv/bin/python bench/similar.py [--reports 1000000] [--tickets 200] [--reuse] [--keep]

1. Creates the PostgreSQL database flagdesk_bench_similar (--database; the name must start
   with flagdesk_bench), migrates it and fills it exactly as bench/board.py does (its
   projects, staff and set-based fill of a year of reports with their moderation tags),
   then adds what suggestions feed on: 2% of the reports share their response id (and
   model) with a report received shortly before (several users reporting one bad answer),
   and 40 incidents with linked reports, the 8 most recent open (one open incident links
   10,000 reports, as in bench/incidents.py).
2. Makes sure the indexes similar.py relies on exist (SIMILAR_INDEXES below: the pg_trgm
   extension and the two partial indexes the migration is to create; IF NOT EXISTS, so
   a database migrated with them is left alone), then VACUUM ANALYZE.
3. In this process, with production settings: `app.incidents.similar.similar_to()` as a
   responder for --tickets random open tickets (seeded), after a warm-up, one fresh
   session per call as in a request. Prints p50/p95/p99/max against the target
   (p95 <= 200 ms), the SQL statements per call and their time, how often each signal
   found something, and writes the EXPLAIN (ANALYZE, BUFFERS) of every statement of the
   median and the slowest call to bench/results/similar-plans.txt.

Run it as a script, as above: it imports bench/board.py's fill and bench/intake.py's
helpers as `board` and `intake`. The database is dropped at the end unless --keep; --reuse
skips the fill when the database is already filled to the requested size.

A missed target is a measurement, not a failure: the exit status is non-zero only when
the run itself broke (2) or was interrupted (130).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from board import (
    FILL_VERSION,
    RESULTS,
    admin_connection,
    app_database_url,
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
from intake import APP_ENV_KEYS, REPO
from psycopg.types.json import Jsonb

DEFAULT_DATABASE = "flagdesk_bench_similar"
# Bumped whenever this bench's additions to board.py's fill change.
SIMILAR_FILL_VERSION = "similar-fill-1"
TARGET_P95_MS = 200.0
SHAPE_STATEMENT_TIMEOUT = "30min"

# The indexes app/incidents/similar.py relies on, as the migration is to create them
# (created here by hand while they are not in a migration; IF NOT EXISTS otherwise).
SIMILAR_INDEXES = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
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

# One bad answer, several reporters: every 50th report (from the 401st) takes the response
# id and model of a report received up to 40 reports before it.
SHARE_RESPONSE_IDS = """
UPDATE reports r SET response_id = s.response_id, model_name = s.model_name
FROM reports s
WHERE r.id > 400 AND r.id % 50 = 3 AND s.id = r.id - 1 - (r.id::bigint * 7919) % 40
"""

# (age of the newest linked report in days, span in days, size, status): the open ones
# first. The 10,000-report one links any report of its model in its span; the others the
# reports of their model flagged with their category.
INCIDENTS = [
    (0, 40, 10_000, "investigating"), (1, 10, 2_000, "identified"), (2, 14, 500, "monitoring"),
    (3, 7, 200, "investigating"), (5, 5, 100, "identified"), (8, 4, 50, "monitoring"),
    (12, 3, 20, "investigating"), (20, 2, 5, "identified"),
] + [(30 + 10 * k, 1 + k % 9, (5, 20, 50, 200, 1000, 2000)[k % 6],
      "closed" if k % 3 else "resolved") for k in range(32)]
CATEGORIES = ("harassment", "hate", "violence", "sexual", "self-harm", "violence/graphic")

INSERT_INCIDENT = """
INSERT INTO incidents (public_id, title, severity, status, affected_models, started_at,
                       detected_at, mitigated_at, resolved_at, created_at, updated_at,
                       created_by_id, lead_id)
VALUES (%(public_id)s, %(title)s, %(severity)s, %(status)s, %(models)s, %(started)s,
        %(started)s + interval '2 hours', %(mitigated)s, %(resolved)s,
        %(started)s + interval '3 hours', now(), %(lead)s, %(lead)s)
RETURNING id
"""
LINK_REPORTS = """
INSERT INTO incident_reports (incident_id, report_id, linked_at, linked_by_id)
SELECT %(incident)s, r.id, r.received_at + interval '4 hours', %(lead)s
FROM reports r
WHERE r.model_name = %(model)s AND r.received_at >= %(since)s AND r.received_at < %(until)s
  AND r.merged_into_id IS NULL AND (%(any)s OR r.flagged_categories ? %(category)s)
  AND NOT EXISTS (SELECT 1 FROM incident_reports l WHERE l.report_id = r.id)
ORDER BY r.received_at DESC
LIMIT %(size)s
"""

SUMMARY_SQL = """
SELECT
  (SELECT count(*) FROM reports WHERE merged_into_id IS NULL
     AND status IN ('new', 'triaged', 'in_progress', 'waiting_on_reporter')) AS open,
  (SELECT count(*) FROM reports WHERE merged_into_id IS NULL
     AND status IN ('new', 'triaged', 'in_progress', 'waiting_on_reporter')
     AND received_at >= now() - interval '30 days') AS open_30d,
  (SELECT count(*) FROM (SELECT response_id FROM reports GROUP BY 1 HAVING count(*) > 1) d)
    AS shared_response_ids,
  (SELECT count(*) FROM incidents
     WHERE status NOT IN ('resolved', 'closed')) AS open_incidents,
  (SELECT count(*) FROM incidents) AS incidents,
  (SELECT count(*) FROM incident_reports) AS linked,
  (SELECT count(DISTINCT description) FROM reports) AS distinct_descriptions,
  pg_relation_size('ix_reports_open_wording') / 1048576 AS wording_index_mb,
  pg_relation_size('ix_reports_open_flagged_model') / 1048576 AS flagged_model_index_mb
"""


def marker(reports: int) -> str:
    return f"{FILL_VERSION} {SIMILAR_FILL_VERSION} reports={reports}"


def filled_marker(database: str) -> str | None:
    with admin_connection() as admin:
        row = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                            "WHERE datname = %s", [database]).fetchone()
    return None if row is None else (row[0] or "")


def shape(database: str, staff: list[int], log: bool = True) -> list[tuple[str, float]]:
    """Shared response ids and incidents with linked reports, on top of board.py's fill."""
    steps: list[tuple[str, float]] = []
    rng = random.Random(2024)
    with psycopg.connect(server_url(database), autocommit=True) as connection:
        connection.execute(f"SET statement_timeout = '{SHAPE_STATEMENT_TIMEOUT}'")
        connection.execute("SET synchronous_commit = off")

        def step(name: str, sql: str, params: dict[str, object] | None = None) -> None:
            begun = time.monotonic()
            connection.execute(sql, params)
            steps.append((name, time.monotonic() - begun))
            if log:
                print(f"#   {name}: {steps[-1][1]:.1f} s", flush=True)

        step("share response ids", SHARE_RESPONSE_IDS)
        models = [r[0] for r in connection.execute(
            "SELECT DISTINCT model_name FROM reports WHERE model_name IS NOT NULL ORDER BY 1")]
        leads = staff[-2:] or [None]
        begun = time.monotonic()
        for number, (age, span, size, status) in enumerate(INCIDENTS, 1):
            model, category = rng.choice(models), rng.choice(CATEGORIES)
            until = connection.execute("SELECT now() - %s * interval '1 day'",
                                       [age]).fetchone()[0]
            since = connection.execute("SELECT %s - %s * interval '1 day'",
                                       [until, span]).fetchone()[0]
            closed = status in ("resolved", "closed")
            incident = connection.execute(INSERT_INCIDENT, {
                "public_id": f"inc_bench{number:04d}{secrets.token_hex(4)}",
                "title": f"{model}: {category} reports ({number})",
                "severity": f"SEV{1 + number % 4}", "status": status,
                "models": Jsonb([model]), "started": since,
                "mitigated": until if closed else None, "resolved": until if closed else None,
                "lead": rng.choice(leads)}).fetchone()[0]
            connection.execute(LINK_REPORTS, {
                "incident": incident, "lead": rng.choice(leads), "model": model,
                "since": since, "until": until, "any": size >= 10_000, "category": category,
                "size": size})
        steps.append(("incidents and links", time.monotonic() - begun))
        if log:
            print(f"#   incidents and links: {steps[-1][1]:.1f} s", flush=True)
        for statement in SIMILAR_INDEXES:
            step(statement.split(" ON ")[0].replace("IF NOT EXISTS ", "").lower(), statement)
        step("vacuum analyze", "VACUUM ANALYZE")
    return steps


def summary(database: str) -> dict[str, int]:
    with psycopg.connect(server_url(database)) as connection, connection.cursor() as cursor:
        cursor.execute(SUMMARY_SQL)
        names = [d.name for d in cursor.description or []]
        return dict(zip(names, cursor.fetchone() or (), strict=True))


def prepare(args: argparse.Namespace, workdir: Path) -> None:
    """A migrated, filled database: reused when asked and already complete."""
    env = app_env(args.database, workdir)
    wanted = marker(args.reports)
    if args.reuse and filled_marker(args.database) == wanted:
        print(f"# reusing {args.database} ({wanted}); migrating it to the current head",
              flush=True)
        migrate(env)
        with psycopg.connect(server_url(args.database), autocommit=True) as connection:
            for statement in SIMILAR_INDEXES:
                connection.execute(statement)
        return
    print(f"# creating {args.database} and filling it with {args.reports:,} reports",
          flush=True)
    create_database(args.database)
    started = time.monotonic()
    migrate(env)
    seeded = seed_app(env)
    setup = time.monotonic() - started
    projects, staff = seeded["projects"], seeded["staff"]
    assert isinstance(projects, list) and isinstance(staff, list)
    report = fill(args.database, args.reports, projects, staff)
    report.steps.insert(0, ("migrate and seed", setup))
    report.seconds += setup
    steps = shape(args.database, staff)
    report.steps += steps
    report.seconds += sum(seconds for _, seconds in steps)
    with admin_connection() as admin:
        admin.execute(f"COMMENT ON DATABASE \"{args.database}\" IS '{wanted}'")
    print_fill(report)


# --- the measurement, in this process -------------------------------------------------------


def make_app(database: str, workdir: Path):  # noqa: ANN201 - a Flask app
    """The app with production settings against the bench database (secrets made up)."""
    for key in APP_ENV_KEYS:
        os.environ.pop(key, None)
    os.environ.update({
        "FLAGDESK_ENV": "production", "FLAGDESK_INSTANCE_DIR": str(workdir),
        "DATABASE_URL": app_database_url(database),
        "SECRET_KEY": secrets.token_urlsafe(48), "END_USER_PEPPER": secrets.token_urlsafe(48),
        "MODERATION_BACKEND": "local", "SESSION_COOKIE_SECURE": "false",
    })
    sys.path.insert(0, str(REPO))
    from app import create_app

    return create_app()


@dataclass
class Call:
    ticket: str
    seconds: float
    statements: list[tuple[str, Any, float]]  # (SQL, parameters, seconds)
    reports: int
    incidents: int
    signals: set[str] = field(default_factory=set)  # which signals found something


def pick_tickets(database: str, count: int, seed: int) -> list[str]:
    """Random open tickets (what responders open), reproducibly."""
    with psycopg.connect(server_url(database)) as connection:
        connection.execute("SELECT setseed(%s)", [seed / 2**31])
        return [row[0] for row in connection.execute(
            "SELECT public_id FROM reports WHERE merged_into_id IS NULL AND status IN "
            "('new', 'triaged', 'in_progress', 'waiting_on_reporter') "
            "ORDER BY random() LIMIT %s", [count])]


def measure(app, tickets: list[str], warmup: int) -> list[Call]:  # noqa: ANN001
    from sqlalchemy import event, select

    from app.auth.models import User
    from app.extensions import db
    from app.incidents.similar import similar_to

    recorded: list[tuple[str, Any, float]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
        recorded.append((statement, parameters,
                         time.perf_counter() - conn.info.pop("bench_started")))

    calls = []
    with app.app_context():
        email = db.session.scalar(select(User.email).where(User.role == "responder")
                                  .order_by(User.id))
        engine = db.engine
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        try:
            for number, public_id in enumerate(tickets):
                db.session.remove()  # a fresh session per call, as in a request
                actor = db.session.scalar(select(User).where(User.email == email))
                recorded.clear()
                started = time.perf_counter()
                found = similar_to(actor=actor, public_id=public_id)
                seconds = time.perf_counter() - started
                db.session.rollback()
                if number < warmup:
                    continue
                signals = {reason.split(" ")[0] for s in found.reports for reason in s.reasons}
                calls.append(Call(public_id, seconds, list(recorded[:]), len(found.reports),
                                  len(found.incidents), signals))
        finally:
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
            db.session.remove()
    return calls


def explain(app, call: Call, title: str, out) -> None:  # noqa: ANN001
    """EXPLAIN (ANALYZE, BUFFERS) of every SELECT of one call, parameters inlined."""
    from app.extensions import db

    out.write(f"=== {title}: similar_to(public_id={call.ticket!r}) took "
              f"{1000 * call.seconds:.1f} ms in {len(call.statements)} statements "
              f"({call.reports} reports, {call.incidents} incidents suggested)\n\n")
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            connection = raw.driver_connection
            assert isinstance(connection, psycopg.Connection)
            for number, (statement, parameters, seconds) in enumerate(call.statements, 1):
                sql = psycopg.ClientCursor(connection).mogrify(statement, parameters)
                out.write(f"--- statement {number}: {1000 * seconds:.2f} ms in the call\n"
                          f"{sql}\n\n")
                if sql.lstrip().upper().startswith("SELECT") and "set_config" not in sql:
                    if "similarity(" in sql:  # the threshold the call set for its query
                        connection.execute(
                            "SELECT set_config('pg_trgm.similarity_threshold', %s, true)",
                            [next(p for s, p, _ in call.statements if "set_config" in s)
                             ["value"]])
                    with connection.cursor() as cursor:
                        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                        out.write("\n".join(row[0] for row in cursor.fetchall()) + "\n\n")
            connection.rollback()
        finally:
            raw.close()


def percentile_ms(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value at or above a share q of them."""
    ordered = sorted(values)
    return 1000 * ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def kind_of(statement: str) -> str:
    if "set_config" in statement:
        return "set trigram threshold"
    if "similarity(" in statement:
        return "similar wording (trigram)"
    if "?|" in statement:
        return "same model + categories"
    if "reports.response_id =" in statement:
        return "same response id"
    if "FROM incidents" in statement:
        return "load incidents"
    if "FROM incident_reports" in statement:
        return "incidents of the candidates"
    if "reports.id IN" in statement:
        return "load suggested reports"
    if "reports.public_id =" in statement:
        return "load the ticket"
    return " ".join(statement.split())[:40]


def print_report(calls: list[Call]) -> None:
    seconds = [c.seconds for c in calls]
    p95 = percentile_ms(seconds, 0.95)
    print(f"{'similar_to()':<28}{'n':>5}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}"
          f"  p95<={TARGET_P95_MS:.0f}ms")
    print(f"{'one ticket, 1M reports':<28}{len(calls):>5}{percentile_ms(seconds, 0.5):>8.1f}"
          f"{p95:>8.1f}{percentile_ms(seconds, 0.99):>8.1f}{percentile_ms(seconds, 1.0):>8.1f}"
          f"  {'PASS' if p95 <= TARGET_P95_MS else 'FAIL'}")
    by_kind: dict[str, list[float]] = {}
    for call in calls:
        for statement, _, spent in call.statements:
            by_kind.setdefault(kind_of(statement), []).append(spent)
    print(f"statements per call: {min(len(c.statements) for c in calls)}-"
          f"{max(len(c.statements) for c in calls)}; SQL time by statement (ms):")
    for kind, spent in sorted(by_kind.items(), key=lambda item: -sum(item[1])):
        print(f"  {kind:<28}{len(spent):>5} x  p50 {percentile_ms(spent, 0.5):>7.2f}  "
              f"p95 {percentile_ms(spent, 0.95):>7.2f}  max {percentile_ms(spent, 1.0):>7.2f}")
    found = [c for c in calls if c.reports or c.incidents]
    print(f"suggestions: {len(found)} of {len(calls)} tickets got some; reports per ticket "
          f"{statistics.mean(c.reports for c in calls):.1f}, incidents per ticket "
          f"{statistics.mean(c.incidents for c in calls):.2f}; tickets whose report "
          "suggestions include: " + ", ".join(
              f"{label} {sum(1 for c in calls if word in c.signals)}" for label, word in
              (("same response id", "Same"), ("similar wording", "Similar"))))


def run(args: argparse.Namespace, workdir: Path) -> int:
    prepare(args, workdir)
    counts = summary(args.database)
    print("data: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counts.items()))
    tickets = pick_tickets(args.database, args.tickets + args.warmup, args.seed)
    app = make_app(args.database, workdir)
    quiet, waited = wait_for_quiet(args.max_load, args.wait_load)
    print(f"# load average {load_average()} (waited {waited:.0f} s"
          f"{'' if quiet else f', still >= {args.max_load}'}); {args.tickets} tickets after "
          f"{args.warmup} warm-up, sequential, in process; {os.cpu_count()} CPUs", flush=True)
    calls = measure(app, tickets, args.warmup)
    print(f"# load average after: {load_average()}")
    print_report(calls)
    RESULTS.mkdir(exist_ok=True)
    plans = RESULTS / "similar-plans.txt"
    ordered = sorted(calls, key=lambda c: c.seconds)
    with plans.open("w", encoding="utf-8") as out:
        out.write(f"# bench/similar.py, {time.strftime('%Y-%m-%d %H:%M:%S')}, "
                  f"{args.database}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                  + "\n# Plans of the median call, the slowest call and a call where all "
                  "three signals ran (EXPLAIN ANALYZE runs each statement again, so its "
                  "times are those of a warm second run).\n\n")
        explain(app, ordered[len(ordered) // 2], "median call", out)
        explain(app, ordered[-1], "slowest call", out)
        every = [c for c in ordered if {"same response id", "same model + categories",
                                        "similar wording (trigram)"}
                 <= {kind_of(s) for s, _, _ in c.statements}]
        if every:
            explain(app, every[len(every) // 2], "a call where every signal ran", out)
    print(f"# plans: {plans.relative_to(REPO)}")
    with app.app_context():
        from app.extensions import db

        db.engines[None].dispose()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE,
                        help="created (and dropped) by the bench; must start with "
                             "flagdesk_bench")
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--tickets", type=int, default=200, help="measured calls")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured calls first")
    parser.add_argument("--seed", type=int, default=7, help="of the ticket choice")
    parser.add_argument("--reuse", action="store_true",
                        help="keep an already filled database of the same size")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--max-load", type=float, default=1.5,
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
    return run_bench("similar.py", f"{args.reports:,} reports", args, run)

if __name__ == "__main__":
    sys.exit(main())
