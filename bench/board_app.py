"""The app-side half of bench/board.py, run in a subprocess with the bench's environment
(DATABASE_URL and the rest), so that the bench process itself never imports app code:

    python -m bench.board_app seed --password PW          # projects and staff; JSON out
    python -m bench.board_app profile --email E --password PW --page 'category=hate&…'
                                      [--requests 20] [--plans FILE]   # JSON out

`seed` creates the 20 projects and the staff through the app's own services
(create_project with its default routing rules, create_user with its Argon2 hashes), as
`flask projects create` and `flask users create` would.

`profile` signs in through the real /login form in Flask's test client and requests the
board page, recording every SQL statement the request runs and how long each took; then
runs EXPLAIN (ANALYZE, BUFFERS) on each SELECT of the last request, with its parameters
inlined, and writes the plans to --plans. It reads; it changes nothing but the sign-in's
audit row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

PROJECTS = (
    "Chat Web", "Chat iOS", "Chat Android", "Assistant API", "Docs Copilot", "Support Bot",
    "Code Assistant", "Search Answers", "Voice Assistant", "Email Drafts", "Translate",
    "Meeting Summaries", "Kids Tutor", "Health Q&A", "Legal Helper", "Shopping Assistant",
    "Travel Planner", "HR Helpdesk", "Finance Copilot", "Internal Playground",
)
# (name, role): two leads and eight responders; the bench signs in as the first responder.
STAFF = (
    ("Bench Responder", "responder"), ("Ada Okafor", "responder"), ("Bruno Keller", "responder"),
    ("Chen Wei", "responder"), ("Dana Levi", "responder"), ("Emil Novak", "responder"),
    ("Farah Haddad", "responder"), ("Grace Tanaka", "responder"), ("Hugo Lindqvist", "lead"),
    ("Ines Moreau", "lead"),
)
LOGIN_EMAIL = "bench-responder@example.com"


def _email(name: str) -> str:
    return f"{name.lower().replace(' ', '-')}@example.com"


def seed(password: str) -> dict[str, Any]:
    from app import create_app
    from app.auth.models import Role
    from app.auth.service import create_user
    from app.extensions import db
    from app.projects.service import create_project

    app = create_app()
    with app.app_context():
        projects = [create_project(name=name, origins=[
            f"https://{name.lower().replace(' ', '-').replace('&', 'and')}.example.com"]).id
            for name in PROJECTS]
        staff = [create_user(email=_email(name), name=name, role=Role(role),
                             password=password)[0].id for name, role in STAFF]
        db.session.remove()
    return {"projects": projects, "staff": staff, "login": _email(STAFF[0][0])}


def profile(email: str, password: str, page: str, requests: int,
            plans_path: str | None) -> dict[str, Any]:
    import psycopg
    from sqlalchemy import event

    from app import create_app
    from app.extensions import db

    # CSRF is this process's only difference from the served app: the test client does not
    # parse forms. The served app (what bench/board.py times) keeps it on.
    app = create_app({"WTF_CSRF_ENABLED": False})
    client = app.test_client()
    answer = client.post("/login", data={"email": email, "password": password})
    if answer.status_code != 302:
        raise SystemExit(f"sign-in failed: HTTP {answer.status_code}")

    recorded: list[tuple[str, Any, float]] = []

    with app.app_context():
        engine = db.engine

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
        recorded.append((statement, parameters,
                         time.perf_counter() - conn.info.pop("bench_started")))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    url = "/board" + (f"?{page}" if page else "")
    totals, sql_totals, counts = [], [], []
    last: list[tuple[str, Any, float]] = []
    for _ in range(requests):
        recorded.clear()
        started = time.perf_counter()
        answer = client.get(url)
        totals.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise SystemExit(f"GET {url} answered {answer.status_code}")
        sql_totals.append(sum(seconds for _, _, seconds in recorded))
        counts.append(len(recorded))
        last = list(recorded)
    event.remove(engine, "before_cursor_execute", before)
    event.remove(engine, "after_cursor_execute", after)

    statements = []
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            connection = raw.driver_connection
            assert isinstance(connection, psycopg.Connection)
            for statement, parameters, seconds in last:
                entry: dict[str, Any] = {"ms": round(1000 * seconds, 2)}
                sql = psycopg.ClientCursor(connection).mogrify(statement, parameters)
                entry["sql"] = sql
                if sql.lstrip().upper().startswith("SELECT"):
                    with connection.cursor() as cursor:
                        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                        entry["plan"] = [row[0] for row in cursor.fetchall()]
                statements.append(entry)
            connection.rollback()
        finally:
            raw.close()
        db.engine.dispose()

    result = {
        "page": url, "requests": requests,
        "request_ms_median": round(1000 * statistics.median(totals), 1),
        "sql_ms_median": round(1000 * statistics.median(sql_totals), 1),
        "statements_per_request": max(counts),
        "statements": statements,
    }
    if plans_path:
        with open(plans_path, "a", encoding="utf-8") as out:
            out.write(f"=== GET {url}  (in-process, after {requests} requests: median "
                      f"{result['request_ms_median']} ms per request, of which SQL "
                      f"{result['sql_ms_median']} ms in {result['statements_per_request']} "
                      "statements)\n\n")
            for number, entry in enumerate(statements, 1):
                out.write(f"--- statement {number}: {entry['ms']} ms in the request\n"
                          f"{entry['sql']}\n\n")
                if "plan" in entry:
                    out.write("\n".join(entry["plan"]) + "\n\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seeding = sub.add_parser("seed")
    seeding.add_argument("--password", required=True)
    profiling = sub.add_parser("profile")
    profiling.add_argument("--email", default=LOGIN_EMAIL)
    profiling.add_argument("--password", required=True)
    profiling.add_argument("--page", default="", help="the board's query string")
    profiling.add_argument("--requests", type=int, default=20)
    profiling.add_argument("--plans", default=None, help="append the plans to this file")
    args = parser.parse_args(argv)
    if args.command == "seed":
        result = seed(args.password)
    else:
        result = profile(args.email, args.password, args.page, args.requests, args.plans)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
