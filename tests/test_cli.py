"""The commands an operator runs: users, tokens, projects, the demo, classification."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from app.auth.models import ApiToken, User
from app.auth.service import authenticate_token, find_user, verify_password
from app.demo import SAMPLE_REPORTS
from app.extensions import db
from app.projects.models import Project
from app.reports.models import Report


def test_users_create_prints_a_generated_password_once(runner):
    result = runner.invoke(args=["users", "create", "--email", "Lead@Example.com",
                                 "--role", "lead"])
    assert result.exit_code == 0, result.output
    password = result.output.strip().rsplit(" ", 1)[-1]
    user = find_user("lead@example.com")
    assert user.role == "lead"
    assert verify_password(user, password)
    assert password not in user.password_hash
    assert user.password_hash.startswith("$argon2id$")


def test_users_create_refuses_a_duplicate_and_a_bad_role(runner):
    runner.invoke(args=["users", "create", "--email", "a@example.com"])
    again = runner.invoke(args=["users", "create", "--email", "a@example.com"])
    assert again.exit_code != 0 and "exists already" in again.output
    bad = runner.invoke(args=["users", "create", "--email", "b@example.com", "--role", "god"])
    assert bad.exit_code != 0
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_tokens_create_prints_a_token_that_authenticates(runner, make_user):
    user = make_user(email="r@example.com")
    result = runner.invoke(args=["tokens", "create", "--email", "r@example.com"])
    assert result.exit_code == 0, result.output
    raw = result.output.strip()
    assert raw.startswith("fdk_")
    assert authenticate_token(raw).id == user.id
    stored = db.session.scalar(select(ApiToken))
    assert raw not in (stored.token_hash, stored.prefix)


def test_tokens_create_for_an_unknown_user_fails(runner):
    result = runner.invoke(args=["tokens", "create", "--email", "ghost@example.com"])
    assert result.exit_code != 0 and "No user" in result.output


def test_projects_create(runner):
    result = runner.invoke(args=["projects", "create", "--name", "Support bot",
                                 "--origin", "https://Help.Example.com:443/"])
    assert result.exit_code == 0, result.output
    project = db.session.scalar(select(Project))
    assert project.public_key in result.output
    assert project.allowed_origins == ["https://help.example.com"]
    assert len(project.routing_rules) > 0
    bad = runner.invoke(args=["projects", "create", "--name", "X", "--origin", "ftp://x"])
    assert bad.exit_code != 0 and "not an http(s) origin" in bad.output


def test_demo_creates_a_project_with_tagged_samples_and_an_admin_once(runner):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    project = db.session.scalar(select(Project))
    assert f"key: {project.public_key}" in first.output
    assert "password (shown once)" in first.output
    reports = db.session.scalars(select(Report)).all()
    assert len(reports) == len(SAMPLE_REPORTS)
    assert {r.tagging_state for r in reports} == {"tagged"}
    second = runner.invoke(args=["demo"])
    assert "shown once" not in second.output
    assert db.session.scalar(select(func.count()).select_from(Project)) == 1
    assert db.session.scalar(select(func.count()).select_from(Report)) == len(SAMPLE_REPORTS)
    assert find_user("admin@flagdesk.local").role == "admin"


def test_moderation_classify_reads_and_writes_json_lines(runner):
    lines = "\n".join(json.dumps({"text": t}) for t in
                      ["Thanks, that recipe was lovely.", "I will hunt you down and kill you."])
    result = runner.invoke(args=["moderation", "classify", "--backend", "local"], input=lines)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 2
    assert set(rows[0]) == {"scores", "flagged"}
    assert rows[1]["scores"]["violence"] > rows[0]["scores"]["violence"]
    assert all(c in rows[1]["scores"] for c in rows[1]["flagged"])


def test_moderation_classify_reports_a_bad_line(runner):
    result = runner.invoke(args=["moderation", "classify"], input='{"text": "ok"}\nnot json\n')
    assert result.exit_code != 0
    assert "line 2" in result.output
