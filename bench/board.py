"""Board benchmark: the triage board's first page and filtered pages over a million reports.

    .venv/bin/python bench/board.py [--reports 1000000] [--requests 200] [--reuse] [--keep]

Fills a PostgreSQL database of its own (flagdesk_bench_board) with 20 projects, ten staff
and a year of reports with their moderation tags (set-based SQL, timed), serves Flagdesk
under gunicorn on loopback with production settings, signs in through the real login form
and requests each board page sequentially, after a warm-up, timing every request from the
client. Prints p50/p95/p99/max per page against the target (p95 <= 150 ms), the SQL the
page runs with its time in process, and writes the EXPLAIN (ANALYZE, BUFFERS) of every
statement to bench/results/board-plans.txt.

Run it as a script, as above: it imports bench/intake.py's helpers (gunicorn, settings)
as `intake`. The database is dropped at the end unless --keep; --reuse skips the fill
when the database is already filled to the requested size (filling takes a few minutes).

A missed target is a measurement, not a failure: the exit status is non-zero only when
the run itself broke (2: set-up failed, a server did not start) or was interrupted (130).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg
from intake import (
    COMPLAINTS,
    EXCHANGES,
    HOST,
    LOCALES,
    MODELS,
    PLANS,
    REPO,
    GunicornSettings,
    SetupError,
    clean_env,
    client_seconds,
    machine_busy_seconds,
    serving,
    unwind_on_termination,
)
from psycopg.types.json import Jsonb

PG_SERVER = "postgres@127.0.0.1:5432"
DEFAULT_DATABASE = "flagdesk_bench_board"
# Bumped whenever the generated data changes, so that --reuse refills an older database.
FILL_VERSION = "board-fill-3"
PASSWORD = "bench-board-password"  # of every staff user in the bench database only
RESULTS = REPO / "bench" / "results"

TARGET_P95_MS = 150.0

SETUP_TIMEOUT = 600.0  # one subprocess (seeding, profiling); the fill runs in this process
FILL_STATEMENT_TIMEOUT = "30min"
REQUEST_TIMEOUT = 30.0

# The pages measured: (name, query string).
PAGES = {
    "first": ("first page", ""),
    "filtered": ("hate + P1 + unassigned",
                 urlencode([("category", "hate"), ("priority", "P1"), ("assignee", "none")])),
    "filtered2": ("hate + P0,P1 + unassigned",
                  urlencode([("category", "hate"), ("priority", "P0"), ("priority", "P1"),
                             ("assignee", "none")])),
    "search": ("q=citation", urlencode([("q", "citation")])),
    "due": ("due soonest", urlencode([("sort", "due")])),
}
DEFAULT_PAGES = "first,filtered,filtered2,due"


# --- the data ---------------------------------------------------------------------------
#
# What a year of a busy product looks like, written down as probabilities. The fill draws
# every report's fate in SQL from these, so a million rows take a minute, not an hour.

# The eight categories the local classifier scores, in its order (CATEGORIES order).
TAG_CATEGORIES = ("harassment", "hate", "hate/threatening", "self-harm", "sexual",
                  "sexual/minors", "violence", "violence/graphic")
# How often each is flagged in a report that is flagged at all; a refinement only ever
# with its parent (hate/threatening in 20% of the reports flagged hate). A flagged report
# with none of the five drawn is flagged harassment.
FLAG_CHANCES = {"harassment": 0.55, "hate": 0.30, "hate/threatening": 0.20, "violence": 0.20,
                "violence/graphic": 0.30, "sexual": 0.15, "sexual/minors": 0.05,
                "self-harm": 0.10}
# Share of reports flagged at all, by the reason the user gave (~12% overall).
REASONS = (  # (reason, share of reports, chance of some flag, priority by default routing)
    ("inaccurate", 0.38, 0.03, 3),
    ("other", 0.20, 0.08, 4),
    ("harmful_or_offensive", 0.14, 0.45, 3),
    ("biased", 0.09, 0.10, 3),
    ("unsafe_advice", 0.07, 0.12, 2),
    ("privacy", 0.06, 0.05, 2),
    ("jailbreak_or_prompt_injection", 0.06, 0.15, 2),
)
SENTENCES = COMPLAINTS + (
    "It answered in French although the whole conversation was in English.",
    "The model called me an idiot when I pointed out its mistake.",
    "It produced a joke about a religious group that is plainly hateful.",
    "It described in detail how to hurt someone, after I asked about self-defence.",
    "My teenager got sexual content from the homework helper.",
    "It told me that people like me should not be allowed to vote.",
    "It kept insulting the person in the photo I uploaded.",
    "When I said I felt hopeless it gave me a list of methods instead of help.",
    "It suggested a dose of paracetamol that is well above the safe limit.",
    "The recipe it gave mixes bleach and ammonia.",
    "It leaked what looks like another customer's order number and address.",
    "The citation links to a page that does not exist.",
    "It claims the law changed in 2021; it did not.",
    "The generated SQL drops the production table instead of the temporary one.",
    "It wrote a product review that reads like harassment of the seller.",
    "It repeated a racial slur that was in my quoted text, unprompted, three times.",
    "The image description invents people who are not in the picture.",
    "It refuses to answer anything about contraception, even general facts.",
    "The answer is fine but extremely slow and cut off in the middle.",
    "It pretended to be a human support agent and asked for my password.",
    "The assistant threatened to report me to the police for asking about a movie plot.",
    "It gave stock advice as if it were certain, with made-up figures.",
    "It summarised the contract and left out the termination clause.",
    "The tone was sarcastic and rude during a complaint about a delayed refund.",
    "It produced violent fan fiction when asked for a bedtime story.",
    "The chatbot shared a phone number it says belongs to my neighbour.",
    "It described the weather in the wrong city and then insisted it was right.",
    "It followed instructions hidden in a PDF and emailed my draft to a stranger.",
    "Output contained graphic injury descriptions in a first-aid answer.",
    "It used a stereotype about older workers in a hiring letter.",
    "The answer contradicts itself between the first and the last paragraph.",
    "It said my symptoms are nothing to worry about; my doctor disagreed strongly.",
    "The translation of the medical leaflet swaps the dosage units.",
    "It mocked my accent after I used voice input.",
    "I asked for a summary and got a poem.",
    "It invented a quote and attributed it to a real journalist.",
)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
)


def conversations(count: int = 60, seed: int = 7) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        turns: list[dict[str, str]] = []
        while len(turns) < rng.randint(2, 6):
            question, answer = rng.choice(EXCHANGES)
            turns += [{"role": "user", "content": question},
                      {"role": "assistant", "content": answer}]
        made.append(turns)
    return made


def _cases(draw: str, choices: list[tuple[float, str]]) -> str:
    """A CASE that picks each SQL expression with its probability, from a uniform draw."""
    whens, edge = [], 0.0
    for share, expression in choices[:-1]:
        edge += share
        whens.append(f"WHEN {draw} < {edge:.6f} THEN {expression}")
    return f"CASE {' '.join(whens)} ELSE {choices[-1][1]} END"


def seed_sql(n: int) -> str:
    """One row per report with every random decision made: the plan of the fill.

    Ids follow arrival order (as intake gives them); volume grows over the year (twice as
    many reports a day now as a year ago). Most reports are closed; the open ones are mostly
    recent. Merged duplicates point at an earlier, unmerged report (ids divisible by 7 are
    never merged, and are the only ones merged into) and keep the status they had, as merge()
    leaves it. The last ten minutes, and 0.2% that failed, are not tagged yet.
    """
    reason = _cases("r_reason", [(share, f"'{name}'") for name, share, _, _ in REASONS])
    toxic = _cases("r_reason", [(share, f"{chance}") for _, share, chance, _ in REASONS])
    reason_priority = _cases("r_reason", [(share, f"{p}") for _, share, _, p in REASONS])
    draws = ", ".join(f"random() < {FLAG_CHANCES[category]} AS {name}" for name, category in (
        ("d_har", "harassment"), ("d_hate", "hate"), ("d_thr", "hate/threatening"),
        ("d_viol", "violence"), ("d_gr", "violence/graphic"), ("d_sex", "sexual"),
        ("d_min", "sexual/minors"), ("d_self", "self-harm")))
    score = "0.5 + 0.5 * power(random(), 1.5)"
    scores = ", ".join(f"CASE WHEN {flag} THEN {score} ELSE 0 END" for flag in (
        "f_har", "f_hate", "f_thr", "f_self", "f_sex", "f_min", "f_viol", "f_gr"))
    return f"""
CREATE TEMP TABLE seed AS
SELECT d.*,
    ARRAY[{scores}]::float8[] AS scores,
    least(CASE WHEN f_min THEN 0 WHEN f_self THEN 1 WHEN f_gr OR f_thr THEN 2
               WHEN toxic THEN 3 ELSE 4 END, reason_priority) AS routed
FROM (
  SELECT c.*,
    toxic AND (d_har OR NOT (d_hate OR d_viol OR d_sex OR d_self)) AS f_har,
    toxic AND d_hate AS f_hate, toxic AND d_hate AND d_thr AS f_thr,
    toxic AND d_self AS f_self, toxic AND d_sex AS f_sex, toxic AND d_sex AND d_min AS f_min,
    toxic AND d_viol AS f_viol, toxic AND d_viol AND d_gr AS f_gr,
    CASE WHEN NOT (has_desc AND has_conv) THEN CASE WHEN has_desc THEN 1 ELSE 2 END
         WHEN r_where < 0.5 THEN 1 WHEN r_where < 0.8 THEN 2 ELSE 3 END AS flag_where,
    CASE WHEN status IN ('new', 'in_progress', 'triaged', 'waiting_on_reporter')
         THEN received_at + (now() - received_at) * power(r_upd, 3)
         ELSE least(received_at + interval '1 hour' * 40 * -ln(1 - r_upd * 0.999), now())
         END AS updated_at,
    CASE WHEN r_assign < CASE status WHEN 'new' THEN 0.50 WHEN 'triaged' THEN 0.25
                                     WHEN 'in_progress' THEN 0.05
                                     WHEN 'waiting_on_reporter' THEN 0.10
                                     WHEN 'resolved' THEN 0.08 ELSE 0.45 END
         THEN 0 ELSE 1 + floor(power(r_who, 1.3) * 10)::int END AS assignee_k
  FROM (
    SELECT b.*,
      CASE WHEN merged THEN {_cases("r_col", [(0.65, "'new'"), (0.25, "'triaged'"),
                                               (0.05, "'in_progress'"), (0.05, "'dismissed'")])}
           WHEN r_status < 0.045 + 0.70 * exp(-age_days / 30) THEN
             CASE WHEN r_col < new_share THEN 'new'
                  WHEN r_col < new_share + (1 - new_share) * 0.4167 THEN 'triaged'
                  WHEN r_col < new_share + (1 - new_share) * 0.8333 THEN 'in_progress'
                  ELSE 'waiting_on_reporter' END
           WHEN r_col < 0.65 THEN 'resolved' ELSE 'dismissed' END AS status,
      NOT pending AND r_tox < toxic_chance AS toxic
    FROM (
      SELECT a.*,
        now() - interval '1 day' * age_days - interval '1 second' * 30 * r_jitter
          AS received_at,
        0.40 + 0.45 * exp(-age_days / 2) AS new_share,
        i % 7 <> 0 AND i > 400 AND r_merge < 0.035 AS merged,
        age_days < 10.0 / 1440 OR r_pending < 0.002 AS pending,
        r_fields >= 0.03 AS has_desc, r_fields < 0.78 AS has_conv,
        {reason} AS reason, {toxic} AS toxic_chance, {reason_priority} AS reason_priority,
        1 + floor(power(r_proj, 1.8) * 20)::int AS project_k
      FROM (
        SELECT i, 365 * (1 - (sqrt(1 + 8 * (i - 0.5) / {n}) - 1) / 2) AS age_days,
          random() AS r_jitter, random() AS r_status, random() AS r_col,
          random() AS r_reason, random() AS r_tox, random() AS r_proj, random() AS r_assign,
          random() AS r_who, random() AS r_merge, random() AS r_fix, random() AS r_fields,
          random() AS r_where, random() AS r_pending, random() AS r_upd,
          {draws}
        FROM generate_series(1, {n}) AS i
      ) a
    ) b
  ) c
) d
"""


# Staff correct the routed priority on tickets they touch: 10% one step less urgent,
# 1% escalated to P1, 0.2% to P0.
PRIORITY = """'P' || CASE WHEN status = 'new' THEN routed
                   WHEN r_fix < 0.10 THEN least(routed + 1, 4)
                   WHEN r_fix < 0.11 THEN least(routed, 1)
                   WHEN r_fix < 0.112 THEN 0 ELSE routed END"""

INSERT_REPORTS = f"""
INSERT INTO reports (
  id, public_id, project_id, received_at, updated_at, reason, description, conversation,
  model_name, response_id, page_url, locale, user_agent, widget_version, extra,
  end_user_hash, contact_email, contact_consent, idempotency_key, request_fingerprint,
  status_token_hash, status, priority, tagging_state, tagging_attempts, tagging_error,
  next_tagging_at, tagged_at, flagged_categories, assignee_id, merged_into_id)
SELECT
  i, 'rep_' || substr(md5('public-id ' || i), 1, 16), (%(projects)s::int[])[project_k],
  received_at, updated_at, reason,
  CASE WHEN has_desc THEN
    (%(sentences)s::text[])[1 + floor(random() * %(n_sentences)s)::int]
    || CASE WHEN random() < 0.7 THEN ' ' || (%(sentences)s::text[])[
         1 + floor(random() * %(n_sentences)s)::int] ELSE '' END
    || CASE WHEN random() < 0.3 THEN ' ' || (%(sentences)s::text[])[
         1 + floor(random() * %(n_sentences)s)::int] ELSE '' END
  ELSE '' END,
  CASE WHEN has_conv
       THEN (%(conversations)s::jsonb[])[1 + floor(random() * %(n_conversations)s)::int]
       ELSE '[]'::jsonb END,
  (%(models)s::text[])[1 + floor(random() * %(n_models)s)::int],
  'resp_' || substr(md5('response ' || i), 1, 24),
  'https://app.example.com/c/' || floor(random() * 10000000)::int,
  (%(locales)s::text[])[1 + floor(random() * %(n_locales)s)::int],
  (%(agents)s::text[])[1 + floor(random() * %(n_agents)s)::int],
  CASE WHEN age_days < 120 THEN '1.5.0' ELSE '1.4.2' END,
  jsonb_build_object('plan', (%(plans)s::text[])[1 + floor(random() * %(n_plans)s)::int],
                     'app_version', '3.' || floor(random() * 10)::int || '.' || i %% 7,
                     'streaming', random() < 0.8),
  CASE WHEN random() < 0.9 THEN md5('end user ' || floor(random() * 200000)::int)
                                || md5('pepper ' || floor(random() * 200000)::int) END,
  CASE WHEN random() < 0.12 THEN 'reporter' || i || '@example.org' END,
  random() < 0.12,
  CASE WHEN random() < 0.9 THEN 'idem-' || md5('key ' || i) END,
  md5('fingerprint ' || i) || md5('body ' || i),
  md5('token ' || i) || md5('status ' || i),
  status, {PRIORITY},
  CASE WHEN pending THEN 'pending' ELSE 'tagged' END,
  CASE WHEN pending AND age_days >= 10.0 / 1440 THEN 1 + floor(random() * 4)::int
       WHEN pending THEN 0 ELSE 1 END,
  CASE WHEN pending AND age_days >= 10.0 / 1440
       THEN 'moderation backend unavailable: timed out after 10 s' END,
  CASE WHEN pending AND age_days >= 10.0 / 1440
       THEN now() + interval '1 minute' * floor(random() * 60) END,
  CASE WHEN NOT pending THEN received_at + interval '1 second' * (1 + 4 * random()) END,
  coalesce((SELECT jsonb_agg(category ORDER BY score DESC, category)
            FROM unnest(%(categories)s::text[], scores) AS u(category, score)
            WHERE score > 0), '[]'::jsonb),
  CASE WHEN assignee_k > 0 THEN (%(staff)s::int[])[assignee_k] END,
  CASE WHEN merged THEN greatest(7, 7 * ((i - 1 - floor(r_merge * 8000)::int) / 7)) END
FROM seed
ORDER BY i
"""

# A tag per classified field and category, a report's tags together and in the order
# tagging writes them (fields, then categories), as the rows of one transaction would lie.
# The field(s) that flagged a category carry its score (>= 0.5); the other field, when
# both flagged, a bit less; every other score is low and skewed to zero. flagged is
# exactly score >= 0.5, as the classifier decides. The lateral series keeps the seed the
# outer loop, so the rows come out in report order without a sort.
INSERT_TAGS = """
INSERT INTO moderation_tags (report_id, field, category, score, flagged, source, model,
                             created_at)
SELECT report_id, field, category, score, score >= 0.5, 'local', %(model)s, created_at
FROM (
  SELECT s.i AS report_id,
    CASE WHEN f.code = 1 THEN 'description' ELSE 'conversation' END AS field,
    (%(categories)s::text[])[f.k] AS category,
    CASE WHEN s.scores[f.k] > 0 AND (s.flag_where = f.code OR s.flag_where = 3)
         THEN CASE WHEN s.flag_where = 3 AND f.code = 2
                   THEN s.scores[f.k] * (0.75 + 0.25 * random()) ELSE s.scores[f.k] END
         ELSE 0.45 * power(random(), 4) END AS score,
    s.received_at + interval '3 seconds' AS created_at
  FROM seed s
  CROSS JOIN LATERAL (
    SELECT CASE WHEN s.has_desc THEN 1 + (g - 1) / %(per_field)s ELSE 2 END AS code,
           1 + (g - 1) %% %(per_field)s AS k
    FROM generate_series(1, %(per_field)s * (s.has_desc::int + s.has_conv::int)) AS g
  ) f
  WHERE NOT s.pending
) t
"""

SUMMARY_SQL = """
SELECT
  count(*) AS reports,
  avg((status IN ('resolved', 'dismissed'))::int) AS closed,
  avg((assignee_id IS NULL)::int) FILTER (WHERE status NOT IN ('resolved', 'dismissed'))
    AS open_unassigned,
  avg((merged_into_id IS NOT NULL)::int) AS merged,
  avg((tagging_state = 'pending')::int) AS untagged,
  avg((flagged_categories <> '[]')::int) AS flagged,
  avg((flagged_categories ? 'hate')::int) AS hate,
  avg((flagged_categories ? 'harassment')::int) AS harassment
FROM reports
"""
SHARES_SQL = "SELECT {column}, count(*) FROM reports GROUP BY 1 ORDER BY 1"

# Flags in the reports' flagged_categories agree with the flagged tag rows.
CONSISTENCY_SQL = """
SELECT count(*) FROM reports r
WHERE (flagged_categories <> '[]') <> EXISTS (
  SELECT 1 FROM moderation_tags t WHERE t.report_id = r.id AND t.flagged)
"""


def local_model_id() -> str:
    path = REPO / "app" / "moderation" / "local_model" / "model.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        return json.loads(path.read_text())["metadata"]["model_id"]
    with contextlib.suppress(OSError):
        match = re.search(r'"model_id":\s*"([^"]+)"', path.read_text())
        if match:
            return match.group(1)
    return "flagdesk-local"


# --- the database -----------------------------------------------------------------------


def server_url(database: str) -> str:
    return f"postgresql://{PG_SERVER}/{database}"


def app_database_url(database: str, options: str = "") -> str:
    """The app's URL; `options` (e.g. "-c jit=off") go to every connection it opens."""
    query = f"?{urlencode({'options': options})}" if options else ""
    return f"postgresql+psycopg://{PG_SERVER}/{database}{query}"


def admin_connection() -> psycopg.Connection:
    try:
        return psycopg.connect(server_url("postgres"), autocommit=True, connect_timeout=5)
    except psycopg.Error as error:
        raise SetupError(f"PostgreSQL at {PG_SERVER} does not answer: {error}") from error


def fill_marker(reports: int) -> str:
    return f"{FILL_VERSION} reports={reports}"


def filled_marker(database: str) -> str | None:
    with admin_connection() as admin:
        row = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                            "WHERE datname = %s", [database]).fetchone()
    return None if row is None else (row[0] or "")


def create_database(database: str) -> None:
    with admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')


def drop_database(database: str) -> None:
    with admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@dataclass
class SecondaryIndex:
    """An index the fill drops and rebuilds (bulk building beats row-by-row upkeep)."""

    table: str
    name: str
    definition: str  # CREATE INDEX … or the UNIQUE (…) of a constraint
    constraint: bool

    def drop(self) -> str:
        if self.constraint:
            return f'ALTER TABLE {self.table} DROP CONSTRAINT "{self.name}"'
        return f'DROP INDEX "{self.name}"'

    def create(self) -> str:
        if self.constraint:
            return f'ALTER TABLE {self.table} ADD CONSTRAINT "{self.name}" {self.definition}'
        return self.definition


def secondary_indexes(connection: psycopg.Connection, tables: tuple[str, ...]) -> list[
        SecondaryIndex]:
    rows = connection.execute("""
        SELECT i.indrelid::regclass::text, c.relname, pg_get_indexdef(i.indexrelid),
               con.contype, pg_get_constraintdef(con.oid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid
                                   AND con.contype IN ('p', 'u', 'x')
        WHERE i.indrelid::regclass::text = ANY(%s) ORDER BY 1, 2""", [list(tables)])
    found = []
    for table, name, index_def, kind, constraint_def in rows:
        if kind == "p":
            continue  # the primary key stays: ids arrive in order, appending is cheap
        found.append(SecondaryIndex(table, name, constraint_def if kind else index_def,
                                    kind is not None))
    return found


@dataclass
class FillReport:
    seconds: float
    steps: list[tuple[str, float]]
    summary: dict[str, object]
    tags: int
    inconsistent: int


# Every open, unmerged ticket gets a first-response and a resolution clock, as app/sla
# starts them (targets of app.sla.policies' defaults, counted around the clock here: the
# board only reads due instants and states). Old open tickets are breached, as they would
# be; a first response is achieved once a ticket left New.
INSERT_CLOCKS = """
INSERT INTO sla_clocks (report_id, metric, sequence, state, priority, target_minutes,
                        always_on, started_at, at_risk_at, due_at, pauses, paused_seconds,
                        breached_at, outcome_at, stopped_at, updated_at)
SELECT r.id, t.metric, 0, c.state, r.priority, t.minutes, r.priority = 'P0', r.received_at,
       c.at_risk_at, c.due_at, '[]'::jsonb, 0,
       CASE WHEN c.state = 'breached' THEN c.due_at END,
       CASE WHEN c.state IN ('breached', 'achieved') THEN least(c.due_at, now()) END,
       CASE WHEN c.state = 'achieved' THEN r.updated_at END, now()
FROM reports r
JOIN (VALUES ('P0', 'first_response', 15), ('P1', 'first_response', 60),
             ('P2', 'first_response', 240), ('P3', 'first_response', 1440),
             ('P4', 'first_response', 4320), ('P0', 'resolution', 240),
             ('P1', 'resolution', 1440), ('P2', 'resolution', 4320),
             ('P3', 'resolution', 10080), ('P4', 'resolution', 20160))
     AS t (priority, metric, minutes) ON t.priority = r.priority
CROSS JOIN LATERAL (
    SELECT r.received_at + make_interval(mins => t.minutes) AS due_at,
           r.received_at + make_interval(secs => t.minutes * 45) AS at_risk_at) d
CROSS JOIN LATERAL (
    SELECT d.due_at, d.at_risk_at,
           CASE WHEN t.metric = 'first_response' AND r.status <> 'new' THEN 'achieved'
                WHEN d.due_at <= now() THEN 'breached'
                WHEN d.at_risk_at <= now() THEN 'at_risk'
                ELSE 'running' END AS state) c
WHERE r.merged_into_id IS NULL
  AND r.status IN ('new', 'triaged', 'in_progress', 'waiting_on_reporter')
"""

UPDATE_SLA_COLUMNS = """
UPDATE reports r SET sla_rank = s.rank, sla_due_at = s.due
FROM (SELECT report_id,
             min(CASE state WHEN 'breached' THEN 0 WHEN 'at_risk' THEN 1 ELSE 2 END) AS rank,
             min(due_at) FILTER (WHERE state IN ('running', 'at_risk')) AS due
      FROM sla_clocks GROUP BY report_id) s
WHERE s.report_id = r.id
"""


def fill(database: str, reports: int, projects: list[int], staff: list[int],
         log: bool = True) -> FillReport:
    """Fill the migrated, seeded database with `reports` reports and their tags."""
    steps: list[tuple[str, float]] = []
    started = time.monotonic()

    def step(name: str, sql: str, params: dict[str, object] | None = None) -> None:
        begun = time.monotonic()
        connection.execute(sql, params)
        steps.append((name, time.monotonic() - begun))
        if log:
            print(f"#   {name}: {steps[-1][1]:.1f} s", flush=True)

    with psycopg.connect(server_url(database), autocommit=True) as connection:
        connection.execute("SET synchronous_commit = off")
        connection.execute("SET maintenance_work_mem = '1GB'")
        connection.execute("SET work_mem = '256MB'")
        connection.execute(f"SET statement_timeout = '{FILL_STATEMENT_TIMEOUT}'")
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            # The rows are consistent by construction: skip the per-row foreign-key
            # triggers (superuser only; without it the fill is slower, not wrong).
            connection.execute("SET session_replication_role = replica")
        connection.execute("SELECT setseed(0.2024)")
        indexes = secondary_indexes(connection, ("reports", "moderation_tags"))
        before = sorted((i.name, i.create()) for i in indexes)
        for index in indexes:
            connection.execute(index.drop())
        step("plan every report (seed table)", seed_sql(reports))
        convs = conversations()
        step("insert reports", INSERT_REPORTS, {
            "projects": projects, "staff": staff, "categories": list(TAG_CATEGORIES),
            "sentences": list(SENTENCES), "n_sentences": len(SENTENCES),
            "conversations": [Jsonb(c) for c in convs], "n_conversations": len(convs),
            "models": list(MODELS), "n_models": len(MODELS), "locales": list(LOCALES),
            "n_locales": len(LOCALES), "agents": list(USER_AGENTS),
            "n_agents": len(USER_AGENTS), "plans": list(PLANS), "n_plans": len(PLANS)})
        step("insert moderation tags", INSERT_TAGS,
             {"categories": list(TAG_CATEGORIES), "per_field": len(TAG_CATEGORIES),
              "model": local_model_id()})
        step("insert SLA clocks of open tickets", INSERT_CLOCKS)
        step("keep the board's SLA columns", UPDATE_SLA_COLUMNS)
        connection.execute("DROP TABLE seed")
        for table in ("reports", "moderation_tags"):
            connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))")
        begun = time.monotonic()
        for index in indexes:
            connection.execute(index.create())
        steps.append(("rebuild indexes", time.monotonic() - begun))
        if log:
            print(f"#   rebuild indexes: {steps[-1][1]:.1f} s", flush=True)
        # By name: PostgreSQL may print a recreated expression index's predicate differently.
        tables = ("reports", "moderation_tags")
        after = sorted(i.name for i in secondary_indexes(connection, tables))
        if after != [name for name, _ in before]:
            raise SetupError(f"indexes differ after the rebuild:\n{before}\n{after}")
        step("vacuum analyze", "VACUUM ANALYZE")
        seconds = time.monotonic() - started
        with connection.cursor() as cursor:
            cursor.execute(SUMMARY_SQL)
            columns = [d.name for d in cursor.description or []]
            summary: dict[str, object] = dict(zip(columns, cursor.fetchone() or (),
                                                  strict=False))
        for column in ("status", "priority"):
            summary[column] = dict(connection.execute(SHARES_SQL.format(column=column)))
        tags = connection.execute("SELECT count(*) FROM moderation_tags").fetchone()[0]
        inconsistent = connection.execute(CONSISTENCY_SQL).fetchone()[0]
        connection.execute(f"COMMENT ON DATABASE \"{database}\" IS '{fill_marker(reports)}'")
    return FillReport(seconds, steps, summary, tags, inconsistent)


# --- the app: seeding, profiling, serving ---------------------------------------------------


def app_env(database: str, workdir: Path, pg_options: str = "") -> dict[str, str]:
    """Production settings against the bench database. Secrets are made up for the run; the
    session cookie is not Secure because the bench talks plain HTTP on loopback."""
    env = clean_env()
    env.update({
        "FLAGDESK_ENV": "production",
        "FLAGDESK_INSTANCE_DIR": str(workdir),
        "DATABASE_URL": app_database_url(database, pg_options),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "END_USER_PEPPER": secrets.token_urlsafe(48),
        "MODERATION_BACKEND": "local",  # built lazily; the board never classifies
        "SESSION_COOKIE_SECURE": "false",
    })
    return env


def run_app(args: list[str], env: dict[str, str], timeout: float = SETUP_TIMEOUT) -> str:
    command = [sys.executable, *args]
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise SetupError(f"{' '.join(args[:3])} took over {timeout:.0f} s") from error
    if done.returncode != 0:
        raise SetupError(f"{' '.join(args[:3])} failed:\n{done.stdout[-2000:]}"
                         f"{done.stderr[-4000:]}")
    return done.stdout


def migrate(env: dict[str, str]) -> None:
    run_app(["-m", "flask", "--app", "wsgi", "db", "upgrade"], env)


def seed_app(env: dict[str, str]) -> dict[str, object]:
    """Projects (with their routing rules) and staff, through the app's services."""
    return json.loads(run_app(["-m", "bench.board_app", "seed", "--password", PASSWORD], env))


def staff_and_projects(database: str) -> dict[str, object]:
    """What seed_app made, read back from a reused database."""
    with psycopg.connect(server_url(database)) as connection:
        projects = [r[0] for r in connection.execute("SELECT id FROM projects ORDER BY id")]
        staff = [r[0] for r in connection.execute(
            "SELECT id FROM users WHERE role IN ('responder', 'lead') ORDER BY id")]
    return {"projects": projects, "staff": staff}


def profile_page(env: dict[str, str], query: str, plans: Path) -> dict[str, object]:
    return json.loads(run_app(["-m", "bench.board_app", "profile", "--password", PASSWORD,
                               "--page", query, "--requests", "20", "--plans", str(plans)],
                              env))


# --- the client ---------------------------------------------------------------------------


CSRF_FIELD = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


def sign_in(client: httpx.Client, email: str) -> None:
    """Through the real form: GET /login for the CSRF token and session, then POST it."""
    page = client.get("/login")
    match = CSRF_FIELD.search(page.text)
    if page.status_code != 200 or match is None:
        raise SetupError(f"GET /login answered {page.status_code} without a CSRF token")
    answer = client.post("/login", data={"csrf_token": match.group(1), "email": email,
                                         "password": PASSWORD})
    if answer.status_code != 302:
        raise SetupError(f"POST /login answered {answer.status_code}, not a redirect")
    board = client.get("/board")
    if board.status_code != 200:
        raise SetupError(f"GET /board after signing in answered {board.status_code}")


@dataclass
class PageStats:
    name: str
    path: str
    latencies: list[float] = field(default_factory=list)  # seconds, every answer
    statuses: Counter[int] = field(default_factory=Counter)
    sizes: list[int] = field(default_factory=list)

    def percentile_ms(self, q: float) -> float:
        """Nearest rank: the smallest latency at or above a share q of the requests."""
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return 1000 * ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    @property
    def failures(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)


def measure(client: httpx.Client, pages: list[PageStats], requests: int,
            warmup: int) -> None:
    """Round-robin over the pages, one request at a time, so that a change in the
    machine's load falls on every page alike."""
    for round_number in range(warmup + requests):
        for page in pages:
            started = time.perf_counter()
            answer = client.get(page.path)
            elapsed = time.perf_counter() - started
            if round_number >= warmup:
                page.latencies.append(elapsed)
                page.statuses[answer.status_code] += 1
                page.sizes.append(len(answer.content))


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def wait_for_quiet(max_load: float, max_wait: float) -> tuple[bool, float]:
    """Wait (polling every 30 s) until the 1-minute load average is below max_load."""
    started = time.monotonic()
    while os.getloadavg()[0] >= max_load:
        waited = time.monotonic() - started
        if waited >= max_wait:
            return False, waited
        print(f"# load average {load_average()} >= {max_load}: waiting "
              f"({waited:.0f} of at most {max_wait:.0f} s)", flush=True)
        time.sleep(min(30.0, max_wait - waited))
    return True, time.monotonic() - started


# --- the report ---------------------------------------------------------------------------


def print_fill(report: FillReport) -> None:
    s = report.summary
    print(f"fill: {report.seconds:.0f} s ({', '.join(f'{n} {t:.0f} s' for n, t in report.steps)})")
    print(f"data: {s['reports']:,} reports, {report.tags:,} tags; closed {s['closed']:.1%}, "
          f"open unassigned {s['open_unassigned']:.1%}, merged {s['merged']:.1%}, untagged "
          f"{s['untagged']:.2%}, flagged {s['flagged']:.1%} (harassment {s['harassment']:.1%}, "
          f"hate {s['hate']:.1%}); flags disagreeing with tags: {report.inconsistent}")
    for column in ("status", "priority"):
        shares = s[column]
        assert isinstance(shares, dict)
        total = sum(shares.values())
        print(f"  {column}: " + ", ".join(f"{k} {v / total:.1%}" for k, v in shares.items()))


def print_table(pages: list[PageStats]) -> None:
    print(f"{'page':<28}{'n':>5}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}"
          f"{'non-200':>8}{'KB':>6}  p95<={TARGET_P95_MS:.0f}ms")
    for page in pages:
        p95 = page.percentile_ms(0.95)
        kb = sum(page.sizes) / len(page.sizes) / 1024 if page.sizes else 0
        verdict = "PASS" if p95 <= TARGET_P95_MS and not page.failures else "FAIL"
        print(f"{page.name:<28}{len(page.latencies):>5}{page.percentile_ms(0.50):>8.1f}"
              f"{p95:>8.1f}{page.percentile_ms(0.99):>8.1f}{page.percentile_ms(1.0):>8.1f}"
              f"{page.failures:>8}{kb:>6.0f}  {verdict}")
    for page in pages:
        if page.failures:
            print(f"  {page.name}: {dict(page.statuses)}")


def print_profile(name: str, profile: dict[str, object]) -> None:
    print(f"{name}: in process {profile['request_ms_median']} ms per request (median of 20), "
          f"SQL {profile['sql_ms_median']} ms in {profile['statements_per_request']} "
          "statements; slowest:")
    statements = profile["statements"]
    assert isinstance(statements, list)
    for entry in sorted(statements, key=lambda e: -e["ms"])[:3]:
        plan = entry.get("plan") or []
        executed = next((line.strip() for line in plan if line.startswith("Execution Time")),
                        "")
        first = " ".join(entry["sql"].split())[:110]
        print(f"  {entry['ms']:>7.1f} ms  {first}…  [{executed}]")
        for line in plan[:1]:
            print(f"           {line.strip()[:110]}")


# --- the run ------------------------------------------------------------------------------


def prepare(args: argparse.Namespace, env: dict[str, str]) -> FillReport | None:
    """A migrated, filled database: reused when asked and already complete."""
    marker = fill_marker(args.reports)
    if args.reuse and filled_marker(args.database) == marker:
        print(f"# reusing {args.database} ({marker}); migrating it to the current head",
              flush=True)
        migrate(env)
        return None
    print(f"# creating {args.database} and filling it with {args.reports:,} reports", flush=True)
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
    return report


def run(args: argparse.Namespace, workdir: Path) -> int:
    env = app_env(args.database, workdir, args.pg_options)
    if args.pg_options:
        print(f"# the app's connections use PostgreSQL options {args.pg_options!r}")
    filled = prepare(args, env)
    if filled is not None:
        print_fill(filled)
    pages = [PageStats(PAGES[key][0], "/board" + (f"?{PAGES[key][1]}" if PAGES[key][1] else ""))
             for key in args.pages]

    RESULTS.mkdir(exist_ok=True)
    plans = RESULTS / "board-plans.txt"
    plans.write_text(f"# bench/board.py, {time.strftime('%Y-%m-%d %H:%M:%S')}, "
                     f"{args.database}\n\n")
    profiles = {}
    if not args.no_plans:
        for key in args.pages:
            profiles[key] = profile_page(env, PAGES[key][1], plans)

    settings = GunicornSettings(args.workers, args.worker_class, args.threads)
    with serving("wsgi:app", settings, env, workdir, "board") as server, \
            httpx.Client(base_url=f"http://{HOST}:{server.port}", timeout=REQUEST_TIMEOUT,
                         follow_redirects=False) as client:
        sign_in(client, "bench-responder@example.com")
        quiet, waited = wait_for_quiet(args.max_load, args.wait_load)
        load_before = load_average()
        cpu_before = (server.cpu_seconds(), client_seconds(), machine_busy_seconds(),
                      time.monotonic())
        measure(client, pages, args.requests, args.warmup)
        cpu_after = (server.cpu_seconds(), client_seconds(), machine_busy_seconds(),
                     time.monotonic())
        load_after = load_average()
    server_cpu, client_cpu, machine, elapsed = (
        b - a for a, b in zip(cpu_before, cpu_after, strict=True))
    rest = max(0.0, machine - server_cpu - client_cpu)

    print(f"# {settings.describe()}; {args.requests} requests per page after {args.warmup} "
          f"warm-up, sequential, round-robin over the pages; {os.cpu_count()} CPUs")
    print(f"# load average before {load_before} (waited {waited:.0f} s"
          f"{'' if quiet else f', still >= {args.max_load}'}), after {load_after}; cpu over "
          f"{elapsed:.0f} s: server {100 * server_cpu / elapsed:.0f}%, client "
          f"{100 * client_cpu / elapsed:.0f}%, rest (PostgreSQL and anything else) "
          f"{100 * rest / elapsed:.0f}%")
    print_table(pages)
    for key, profile in profiles.items():
        print_profile(PAGES[key][0], profile)
    if profiles:
        print(f"# plans: {plans.relative_to(REPO)}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE,
                        help="created (and dropped) by the bench; must start with "
                             "flagdesk_bench")
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="measured, per page")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured, per page")
    parser.add_argument("--pages", default=DEFAULT_PAGES,
                        help=f"comma-separated, of: {', '.join(PAGES)}")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default="sync")
    parser.add_argument("--threads", type=int, default=1, help="per worker (gthread only)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep an already filled database of the same size")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--pg-options", default="",
                        help="PostgreSQL options for the app's connections, e.g. "
                             "'-c max_parallel_workers_per_gather=0'")
    parser.add_argument("--no-plans", action="store_true",
                        help="skip the in-process SQL profile and EXPLAIN")
    parser.add_argument("--max-load", type=float, default=1.5,
                        help="wait until the 1-minute load average is below this")
    parser.add_argument("--wait-load", type=float, default=900.0,
                        help="wait at most this many seconds for it (then measure anyway)")
    args = parser.parse_args(argv)
    if not args.database.startswith("flagdesk_bench"):
        parser.error("the database is dropped and recreated: its name must start with "
                     "flagdesk_bench")
    args.pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    unknown = [p for p in args.pages if p not in PAGES]
    if unknown or not args.pages:
        parser.error(f"unknown page(s) {unknown}; choose from {', '.join(PAGES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench("board.py", f"{args.reports:,} reports", args, run)


def run_bench(script: str, what: str, args: argparse.Namespace,
              body: Callable[[argparse.Namespace, Path], int]) -> int:
    """The main of every PostgreSQL bench: `body(args, workdir)` in a temporary directory,
    exit 2 when the run itself broke and 130 when interrupted (servers stopped and the
    database dropped on SIGTERM too), and the database dropped at the end unless --keep."""
    unwind_on_termination()
    print(f"# bench/{script}: {what} in {args.database}; "
          f"{os.cpu_count()} CPUs; load average {load_average()}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"flagdesk-{Path(script).stem}-"))
    try:
        admin_connection().close()
        return body(args, workdir)
    except SetupError as error:
        print(f"bench: the run broke: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; what it started is stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.keep:
            with contextlib.suppress(SetupError, psycopg.Error):
                drop_database(args.database)
                print(f"# dropped {args.database} (--keep keeps it)", file=sys.stderr)

if __name__ == "__main__":
    sys.exit(main())
