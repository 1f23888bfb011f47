"""SLA benchmark: the sweep over a million open tickets, and due instants for 100,000.

    .venv/bin/python bench/sla.py [--tickets 1000000] [--due-tickets 100000] [--keep]

1. Creates the PostgreSQL database flagdesk_bench_sla (--database; the name must start
   with flagdesk_bench), migrates it, and seeds through the app's own services: 20
   projects, each with the default SLA policy on one of five calendars (UTC office hours;
   Munich with Bavarian holidays; New York with US holidays; Tokyo with a lunch break;
   a London night desk 22:00-06:00), an on-call address, an escalation and a paging
   webhook; ten responders and three leads.
2. Fills it set-based (one INSERT … SELECT per table, secondary indexes dropped and
   rebuilt, timed) with --tickets open tickets received over the last 30 days and their
   clocks: first response (55% achieved, 5% breached, the rest running), resolution
   (8% paused, 5% breached, 5% already at risk, the rest running), next update for 30% of
   the answered ones. Exactly 1% of the tickets (--share) have a clock that is newly due
   at the sweep's instant: half newly at risk, half newly breached.
3. Sweep (target <= 5 s): `app.sla.sweep.run(now=T)` in this process, as `flask sla sweep`
   runs it: finds and transitions the due clocks, writes their audit events, queues their
   notifications (one notify.enqueue_many call), refreshes the tickets' SLA columns and
   commits. Checks the result against the fill, then restores the clocks and repeats
   (--repeat), and times an idle sweep (nothing due) too.
4. Due instants (target <= 5 s): for --due-tickets tickets read from the database, the
   first-response and resolution targets chosen from each ticket's policy and the
   at-risk and due instants computed in the ticket's business-hours calendar, through the
   same functions the service uses (app.sla.service.TargetIndex, instants;
   app.sla.calendars, which builds each calendar once).

Prints a table against the targets. The database is dropped at the end unless --keep.
A missed target is a measurement, not a failure: the exit status is non-zero only when
the run itself broke (2) or was interrupted (130).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from board import (
    app_database_url,
    create_database,
    load_average,
    run_bench,
    secondary_indexes,
    server_url,
    wait_for_quiet,
)
from intake import APP_ENV_KEYS, REPO

DEFAULT_DATABASE = "flagdesk_bench_sla"
TARGET_SWEEP_S = 5.0
TARGET_DUE_S = 5.0
PROJECTS = 20
FILL_STATEMENT_TIMEOUT = "30min"

# (name, timezone, week, holiday country, subdivision): the five kinds of calendar.
CALENDARS = (
    ("Bench office (UTC)", "UTC", {d: [["09:00", "17:00"]] for d in
                                   ("mon", "tue", "wed", "thu", "fri")}, None, None),
    ("Bench Munich", "Europe/Berlin", {d: [["08:00", "16:30"]] for d in
                                       ("mon", "tue", "wed", "thu", "fri")}, "DE", "BY"),
    ("Bench New York", "America/New_York", {d: [["09:00", "18:00"]] for d in
                                            ("mon", "tue", "wed", "thu", "fri")}, "US", "NY"),
    ("Bench Tokyo", "Asia/Tokyo", {d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in
                                   ("mon", "tue", "wed", "thu", "fri")}, "JP", None),
    ("Bench London nights", "Europe/London", {d: [["22:00", "06:00"]] for d in
                                              ("sun", "mon", "tue", "wed", "thu")}, "GB",
     "ENG"),
)


# --- the app, in this process ----------------------------------------------------------


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
class Seeded:
    projects: list[int]
    staff: list[int]
    calendars: list[int]  # per project


def seed(app) -> Seeded:  # noqa: ANN001
    """Projects, policies, calendars, staff and webhooks through the app's services."""
    from flask_migrate import upgrade

    from app.auth.models import Role
    from app.auth.service import create_user
    from app.notify.models import WebhookKind
    from app.notify.service import create_webhook
    from app.projects.service import create_project
    from app.sla import policies

    with app.app_context():
        upgrade()
        calendars = [policies.create_calendar(actor=None, name=name, timezone=zone, week=week,
                                              holiday_country=country,
                                              holiday_subdivision=region).id
                     for name, zone, week, country, region in CALENDARS]
        projects, per_project = [], []
        for k in range(PROJECTS):
            project = create_project(name=f"Bench SLA {k + 1:02d}", origins=[])
            policies.defaults(actor=None, project_id=project.id)
            calendar = calendars[k % len(calendars)]
            policies.update_policy(actor=None, project_id=project.id, calendar_id=calendar,
                                   oncall_email=f"oncall-{k + 1}@bench.example")
            for kind in (WebhookKind.ESCALATION, WebhookKind.PAGING):
                create_webhook(actor=None, project_id=project.id, kind=kind,
                               url=f"https://hooks.bench.example/{k + 1}/{kind}")
            projects.append(project.id)
            per_project.append(calendar)
        staff = [create_user(email=f"responder{n}@bench.example", name=f"Responder {n}",
                             role=Role.RESPONDER, password="bench-sla-password")[0].id
                 for n in range(10)]
        for n in range(3):
            create_user(email=f"lead{n}@bench.example", name=f"Lead {n}", role=Role.LEAD,
                        password="bench-sla-password")
    return Seeded(projects, staff, per_project)


# --- the fill ---------------------------------------------------------------------------

# One row per ticket with every random decision made. Ticket i is newly due at :t when
# i % :every = 0 (exactly tickets / every of them): breached when i % (2 * every) = 0,
# else at risk. Every other running clock has at_risk_at after :t.
SEED = """
CREATE TEMP TABLE seed AS
SELECT i, received_at, project_k, priority, assignee_k, due_kind, fr_state, res_state,
  fr_state = 'achieved' AND due_kind IS NULL AND r_nu < 0.30 AS has_nu,
  received_at + interval '1 minute' * (5 + 235 * r_fr) AS fr_stop,
  CASE priority WHEN 'P0' THEN 15 WHEN 'P1' THEN 60 WHEN 'P2' THEN 240 WHEN 'P3' THEN 480
                ELSE 1440 END AS fr_target,
  CASE priority WHEN 'P0' THEN 240 WHEN 'P1' THEN 480 WHEN 'P2' THEN 1440
                WHEN 'P3' THEN 2400 ELSE 4800 END AS res_target,
  r_a, r_b
FROM (
  SELECT i, :t - interval '1 minute' * floor(random() * 43200) AS received_at,
    1 + floor(random() * :projects)::int AS project_k,
    CASE WHEN r_p < 0.01 THEN 'P0' WHEN r_p < 0.06 THEN 'P1' WHEN r_p < 0.31 THEN 'P2'
         WHEN r_p < 0.80 THEN 'P3' ELSE 'P4' END AS priority,
    CASE WHEN random() < 0.5 THEN 0 ELSE 1 + floor(random() * :staff)::int END AS assignee_k,
    CASE WHEN i %% (2 * :every) = 0 THEN 'breach' WHEN i %% :every = 0 THEN 'risk' END
      AS due_kind,
    CASE WHEN i %% :every = 0 OR r_f < 0.55 THEN 'achieved' WHEN r_f < 0.60 THEN 'breached'
         ELSE 'running' END AS fr_state,
    CASE WHEN i %% :every = 0 THEN 'running' WHEN r_r < 0.08 THEN 'paused'
         WHEN r_r < 0.13 THEN 'breached' WHEN r_r < 0.18 THEN 'at_risk'
         ELSE 'running' END AS res_state,
    random() AS r_nu, random() AS r_fr, random() AS r_a, random() AS r_b
  FROM (SELECT i, random() AS r_p, random() AS r_f, random() AS r_r
        FROM generate_series(1, :tickets) AS i) g
) s
"""

INSERT_REPORTS = """
INSERT INTO reports (id, public_id, project_id, received_at, updated_at, reason, description,
  conversation, extra, contact_consent, status_token_hash, status, priority, tagging_state,
  tagging_attempts, tagged_at, flagged_categories, assignee_id, sla_rank, sla_due_at)
SELECT i, 'rep_sla' || lpad(i::text, 9, '0'), (%(projects)s::int[])[project_k], received_at,
  received_at, 'inaccurate', 'It said the Eiffel Tower is in Rome.', '[]', '{}', false,
  md5('token ' || i) || md5('status ' || i),
  CASE WHEN res_state = 'paused' THEN 'waiting_on_reporter'
       WHEN fr_state = 'running' THEN 'new' ELSE 'in_progress' END,
  priority, 'tagged', 1, received_at + interval '3 seconds', '[]',
  CASE WHEN assignee_k > 0 THEN (%(staff)s::int[])[assignee_k] END,
  CASE WHEN fr_state = 'breached' OR res_state = 'breached' THEN 0
       WHEN res_state = 'at_risk' THEN 1 ELSE 2 END,
  NULL
FROM seed ORDER BY i
"""

# Instants relative to :t. Running clocks not due: at risk between 1 minute and ~3 days
# after :t. Newly at risk: at_risk_at up to an hour before :t, due later. Newly breached:
# due up to an hour before :t.
INSERT_CLOCKS = """
INSERT INTO sla_clocks (report_id, metric, sequence, state, priority, target_minutes,
  policy_id, calendar_id, always_on, started_at, at_risk_at, due_at, paused_at, pauses,
  paused_seconds, stopped_at, breached_at, outcome_at, elapsed_seconds, updated_at)
SELECT s.i, c.metric, c.sequence, c.state, s.priority, c.target, p.id,
  CASE WHEN s.priority = 'P0' THEN NULL ELSE p.calendar_id END, s.priority = 'P0',
  c.started_at, c.at_risk_at, c.due_at,
  CASE WHEN c.state = 'paused' THEN %(t)s - interval '1 minute' * floor(1 + s.r_b * 2000) END,
  '[]', 0,
  CASE WHEN c.state = 'achieved' THEN s.fr_stop END,
  CASE WHEN c.state = 'breached' THEN c.due_at END,
  CASE WHEN c.state IN ('achieved', 'breached') THEN coalesce(
    CASE WHEN c.state = 'breached' THEN c.due_at END, s.fr_stop) END,
  CASE WHEN c.state = 'achieved' THEN extract(epoch FROM s.fr_stop - s.received_at)::int END,
  s.received_at
FROM seed s
JOIN sla_policies p ON p.project_id = (%(projects)s::int[])[s.project_k]
CROSS JOIN LATERAL (VALUES
  ('first_response', 0, s.fr_state, s.fr_target, s.received_at,
   CASE s.fr_state WHEN 'running' THEN %(t)s + interval '1 minute' * (1 + s.r_a * 4000)
                   ELSE s.received_at END,
   CASE s.fr_state WHEN 'running' THEN %(t)s + interval '1 minute' * (1 + s.r_a * 4000)
                                       + interval '1 minute' * (15 + s.r_b * 600)
                   WHEN 'breached' THEN least(s.received_at + interval '1 hour', %(t)s)
                   ELSE s.received_at + interval '1 day' END),
  ('resolution', 0, s.res_state, s.res_target, s.received_at,
   CASE WHEN s.due_kind = 'breach' THEN %(t)s - interval '1 minute' * (61 + s.r_a * 600)
        WHEN s.due_kind = 'risk' THEN %(t)s - interval '1 second' * (1 + s.r_a * 3599)
        WHEN s.res_state = 'at_risk' THEN %(t)s - interval '1 minute' * (1 + s.r_a * 600)
        WHEN s.res_state = 'breached' THEN %(t)s - interval '1 day' * (2 + s.r_a)
        ELSE %(t)s + interval '1 minute' * (1 + s.r_a * 4000) END,
   CASE WHEN s.due_kind = 'breach' THEN %(t)s - interval '1 second' * (1 + s.r_b * 3599)
        WHEN s.res_state = 'paused' THEN NULL
        WHEN s.res_state = 'breached' THEN %(t)s - interval '1 day' * (1 + s.r_a)
        ELSE %(t)s + interval '1 minute' * (2 + s.r_a * 4000 + s.r_b * 1440) END),
  ('next_update', 1, 'running', s.res_target / 2, s.fr_stop,
   %(t)s + interval '1 minute' * (1 + s.r_b * 4000),
   %(t)s + interval '1 minute' * (2 + s.r_b * 4000 + s.r_a * 600))
) AS c(metric, sequence, state, target, started_at, at_risk_at, due_at)
WHERE c.metric <> 'next_update' OR s.has_nu
ORDER BY s.i, c.metric
"""

# reports.sla_due_at as the service keeps it: the soonest due instant of a live clock.
SLA_DUE_AT = """
UPDATE reports r SET sla_due_at = d.due
FROM (SELECT report_id, min(due_at) AS due FROM sla_clocks
      WHERE state IN ('running', 'at_risk') GROUP BY report_id) d
WHERE d.report_id = r.id
"""


@dataclass
class Fill:
    seconds: float
    steps: list[tuple[str, float]]
    clocks: int
    due_tickets: int


def fill(database: str, tickets: int, every: int, at: datetime, seeded: Seeded) -> Fill:
    steps: list[tuple[str, float]] = []
    started = time.monotonic()
    params = {"t": at, "projects": seeded.projects, "staff": seeded.staff}
    with psycopg.connect(server_url(database), autocommit=True) as connection:

        def step(name: str, sql: str, values: dict[str, object] | None = None) -> None:
            begun = time.monotonic()
            connection.execute(sql, values)
            steps.append((name, time.monotonic() - begun))
            print(f"#   {name}: {steps[-1][1]:.1f} s", flush=True)

        connection.execute("SET synchronous_commit = off")
        connection.execute("SET maintenance_work_mem = '512MB'")
        connection.execute("SET work_mem = '256MB'")
        connection.execute(f"SET statement_timeout = '{FILL_STATEMENT_TIMEOUT}'")
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            connection.execute("SET session_replication_role = replica")
        connection.execute("SELECT setseed(0.5)")
        indexes = secondary_indexes(connection, ("reports", "sla_clocks"))
        for index in indexes:
            connection.execute(index.drop())
        seed_sql = (SEED.replace(":tickets", str(tickets)).replace(":every", str(every))
                    .replace(":projects", str(len(seeded.projects)))
                    .replace(":staff", str(len(seeded.staff))).replace(":t", "%(t)s"))
        step("plan every ticket (seed table)", seed_sql, {"t": at})
        step("insert reports", INSERT_REPORTS, params)
        step("insert clocks", INSERT_CLOCKS, params)
        step("reports.sla_due_at", SLA_DUE_AT)
        connection.execute("DROP TABLE seed")
        for table in ("reports", "sla_clocks"):
            connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))")
        begun = time.monotonic()
        for index in indexes:
            connection.execute(index.create())
        steps.append(("rebuild indexes", time.monotonic() - begun))
        print(f"#   rebuild indexes: {steps[-1][1]:.1f} s", flush=True)
        step("vacuum analyze", "VACUUM ANALYZE")
        clocks = connection.execute("SELECT count(*) FROM sla_clocks").fetchone()[0]
        # For a kept database: the instant its clocks are newly due at.
        connection.execute(f"COMMENT ON DATABASE \"{database}\" IS "
                           f"'bench/sla.py: sweep at {at.isoformat()}'")
    return Fill(time.monotonic() - started, steps, clocks, tickets // every)


# --- 1. the sweep ----------------------------------------------------------------------

# Undo one sweep, so the next repetition finds the same work: the clocks it moved back to
# running, the tickets' SLA columns recomputed, its audit events and deliveries gone.
RESTORE_CLOCKS = """
UPDATE sla_clocks SET state = 'running', breached_at = NULL, outcome_at = NULL
WHERE id IN (SELECT (after->>'clock_id')::int FROM audit_events
             WHERE action IN ('sla.at_risk', 'sla.breached'))
"""
RESTORE_RANK = """
UPDATE reports r SET
  sla_rank = CASE WHEN EXISTS (SELECT 1 FROM sla_clocks c WHERE c.report_id = r.id
                                AND c.state = 'breached') THEN 0
                  WHEN EXISTS (SELECT 1 FROM sla_clocks c WHERE c.report_id = r.id
                               AND c.state = 'at_risk') THEN 1 ELSE 2 END,
  sla_due_at = (SELECT min(due_at) FROM sla_clocks c WHERE c.report_id = r.id
                AND c.state IN ('running', 'at_risk'))
WHERE r.public_id IN (SELECT subject_id FROM audit_events
                      WHERE action IN ('sla.at_risk', 'sla.breached'))
"""


@dataclass
class SweepRun:
    seconds: float
    at_risk: int
    breached: int
    deliveries: int


def sweep_once(app, at: datetime) -> SweepRun:  # noqa: ANN001
    from app.sla import sweep

    with app.app_context():
        begun = time.perf_counter()
        result = sweep.run(now=at)
        seconds = time.perf_counter() - begun
    return SweepRun(seconds, result.at_risk, result.breached, result.deliveries)


def check_sweep(database: str, run: SweepRun, expected: int) -> list[str]:
    """What a correct sweep leaves behind, read back with plain SQL."""
    problems = []
    with psycopg.connect(server_url(database)) as connection:
        def one(sql: str) -> int:
            return connection.execute(sql).fetchone()[0]

        moved = run.at_risk + run.breached
        if moved != expected:
            problems.append(f"{moved} transitions, {expected} expected")
        events = one("SELECT count(*) FROM audit_events WHERE action IN "
                     "('sla.at_risk', 'sla.breached')")
        if events != moved:
            problems.append(f"{events} audit events for {moved} transitions")
        rows = one("SELECT count(*) FROM deliveries")
        if rows != run.deliveries:
            problems.append(f"{rows} deliveries stored, {run.deliveries} reported")
        keys = one("SELECT count(DISTINCT dedupe_key) FROM deliveries")
        if keys != moved:
            problems.append(f"notifications for {keys} transitions of {moved}")
        stale = one("""SELECT count(*) FROM reports r WHERE r.sla_rank <> CASE
            WHEN EXISTS (SELECT 1 FROM sla_clocks c WHERE c.report_id = r.id
                         AND c.state = 'breached') THEN 0
            WHEN EXISTS (SELECT 1 FROM sla_clocks c WHERE c.report_id = r.id
                         AND c.state = 'at_risk') THEN 1 ELSE 2 END""")
        if stale:
            problems.append(f"{stale} tickets with a stale sla_rank")
    return problems


def restore(database: str) -> None:
    with psycopg.connect(server_url(database), autocommit=True) as connection:
        connection.execute(RESTORE_CLOCKS)
        connection.execute(RESTORE_RANK)
        connection.execute("DELETE FROM audit_events WHERE action IN "
                           "('sla.at_risk', 'sla.breached')")
        connection.execute("DELETE FROM deliveries")
        connection.execute("VACUUM ANALYZE sla_clocks, reports, deliveries, audit_events")


# --- 2. due instants -------------------------------------------------------------------


@dataclass
class DueRun:
    tickets: int
    clocks: int
    business_hours: int  # clocks counted in a business-hours calendar (not P0's always-on)
    load_seconds: float
    seconds: float


def due_instants(app, count: int) -> DueRun:  # noqa: ANN001
    """Choose targets and compute at-risk and due instants as the service does when it
    starts a ticket's clocks, for `count` tickets read from the database."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from app.extensions import db
    from app.reports.models import Report
    from app.sla import calendars
    from app.sla import service as sla
    from app.sla.models import Metric, SlaPolicy

    with app.app_context():
        begun = time.perf_counter()
        policies = {p.project_id: p for p in db.session.scalars(
            select(SlaPolicy).options(selectinload(SlaPolicy.targets),
                                      selectinload(SlaPolicy.calendar)))}
        tickets = db.session.execute(
            select(Report.project_id, Report.priority, Report.received_at,
                   Report.flagged_categories).order_by(Report.id).limit(count)).all()
        loaded = time.perf_counter() - begun
        clocks = business = 0
        until = max(t.received_at for t in tickets)
        begun = time.perf_counter()
        targets = {project_id: sla.TargetIndex(policy.targets)
                   for project_id, policy in policies.items()}
        for project_id, priority, received_at, categories in tickets:
            policy = policies[project_id]
            for metric in (Metric.FIRST_RESPONSE, Metric.RESOLUTION):
                target = targets[project_id].choose(metric, priority, categories)
                if target is None:
                    continue
                calendar, always_on = calendars.for_priority(
                    policy.calendar, priority, around_the_clock_p0=policy.p0_around_the_clock,
                    first_year=received_at.year, last_year=until.year)
                sla.instants(calendar, started_at=received_at, target_minutes=target.minutes,
                             at_risk_share=policy.at_risk_share)
                clocks += 1
                business += not always_on
        seconds = time.perf_counter() - begun
    return DueRun(len(tickets), clocks, business, loaded, seconds)


# --- the report ---------------------------------------------------------------------------


def verdict(seconds: float, target: float, ok: bool = True) -> str:
    return "PASS" if ok and seconds <= target else "FAIL"


def print_report(args: argparse.Namespace, filled: Fill | None, sweeps: list[SweepRun],
                 idle: SweepRun, problems: list[str], due: DueRun) -> None:
    if filled is not None:
        steps = ", ".join(f"{n} {t:.0f} s" for n, t in filled.steps)
        print(f"fill: {filled.seconds:.0f} s ({steps})")
        print(f"data: {args.tickets:,} open tickets, {filled.clocks:,} clocks; "
              f"{filled.due_tickets:,} tickets newly due at the sweep's instant")
    median = statistics.median(s.seconds for s in sweeps)
    first = sweeps[0]
    print(f"{'measurement':<52}{'seconds':>9}{'target':>8}  result")
    print(f"{'1. sweep: find + transition + audit + notify + commit':<52}{median:>9.2f}"
          f"{TARGET_SWEEP_S:>8.1f}  {verdict(median, TARGET_SWEEP_S, not problems)}")
    print(f"{'   (each run)':<52}{'':>9}{'':>8}  "
          + ", ".join(f"{s.seconds:.2f}" for s in sweeps))
    print(f"{'   moved: at risk / breached; deliveries queued':<52}{'':>9}{'':>8}  "
          f"{first.at_risk:,} / {first.breached:,}; {first.deliveries:,}")
    print(f"{'   idle sweep (nothing due)':<52}{idle.seconds:>9.2f}")
    print(f"{'2. due instants, ' + f'{due.tickets:,} tickets ({due.clocks:,} clocks)':<52}"
          f"{due.seconds:>9.2f}{TARGET_DUE_S:>8.1f}  {verdict(due.seconds, TARGET_DUE_S)}")
    print(f"{'   business-hours clocks (rest: P0 around the clock)':<52}{'':>9}{'':>8}  "
          f"{due.business_hours:,} of {due.clocks:,}; reading the tickets took "
          f"{due.load_seconds:.2f} s (not counted)")
    for problem in problems:
        print(f"  problem: {problem}")


def run(args: argparse.Namespace, workdir: Path) -> int:
    sweep_at = datetime.now(UTC).replace(microsecond=0)
    print(f"# creating {args.database}", flush=True)
    create_database(args.database)
    app = make_app(args.database, workdir)
    seeded = seed(app)
    print(f"# filling {args.tickets:,} open tickets with their clocks", flush=True)
    filled = fill(args.database, args.tickets, round(1 / args.share), sweep_at, seeded)
    quiet, waited = wait_for_quiet(args.max_load, args.wait_load)
    print(f"# load average {load_average()} (waited {waited:.0f} s"
          f"{'' if quiet else f', still >= {args.max_load}'})", flush=True)

    sweeps, problems = [], []
    for repetition in range(args.repeat):
        if repetition:
            restore(args.database)
        result = sweep_once(app, sweep_at)
        sweeps.append(result)
        problems += [f"run {repetition + 1}: {p}" for p in
                     check_sweep(args.database, result, filled.due_tickets)]
        print(f"# sweep {repetition + 1}: {result.seconds:.2f} s", flush=True)
    idle = sweep_once(app, sweep_at)
    if idle.at_risk or idle.breached:
        problems.append(f"the second sweep moved {idle.at_risk + idle.breached} clocks again")
    due = due_instants(app, args.due_tickets)
    print(f"# load average after: {load_average()}")
    print_report(args, filled, sweeps, idle, problems, due)
    with app.app_context():
        from app.extensions import db

        db.engines[None].dispose()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE,
                        help="created (and dropped) by the bench; must start with "
                             "flagdesk_bench")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--share", type=float, default=0.01,
                        help="of the tickets, newly at risk or breached at the sweep")
    parser.add_argument("--due-tickets", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="sweeps measured")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--max-load", type=float, default=1.5,
                        help="wait until the 1-minute load average is below this")
    parser.add_argument("--wait-load", type=float, default=900.0,
                        help="wait at most this many seconds for it (then measure anyway)")
    args = parser.parse_args(argv)
    if not args.database.startswith("flagdesk_bench"):
        parser.error("the database is dropped and recreated: its name must start with "
                     "flagdesk_bench")
    if not 0 < args.share <= 0.5:
        parser.error("--share is a fraction, e.g. 0.01")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench("sla.py", f"{args.tickets:,} open tickets", args, run)

if __name__ == "__main__":
    sys.exit(main())
