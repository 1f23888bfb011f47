"""The schema comes from the migrations, and they agree with the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from flask.cli import ScriptInfo

from app import create_app
from app.extensions import db
from app.reports.models import MIGRATION_ONLY_INDEXES
from tests.conftest import app_config, fresh_database


def include_object(obj, name, type_, reflected, compare_to):  # as migrations/env.py does
    return not (type_ == "index" and name in MIGRATION_ONLY_INDEXES)


def test_models_and_migrations_agree():
    connection = db.session.connection()
    context = MigrationContext.configure(connection, opts={
        "compare_type": True, "include_object": include_object})
    assert compare_metadata(context, db.metadata) == []


def test_flask_db_upgrade_works_from_empty_and_downgrades(app, tmp_path):
    url, drop = fresh_database(tmp_path, "fresh")
    try:
        fresh = create_app(app_config(url, tmp_path))
        runner = CliRunner()
        info = ScriptInfo(create_app=lambda: fresh)
        with fresh.app_context():
            result = runner.invoke(fresh.cli, ["db", "upgrade"], obj=info)
        assert result.exit_code == 0, result.output
        engine = sa.create_engine(url)
        tables = set(sa.inspect(engine).get_table_names())
        assert {"reports", "moderation_tags", "projects", "users", "api_tokens",
                "audit_events", "routing_rules", "project_origins", "alembic_version"} <= tables
        with fresh.app_context():
            result = runner.invoke(fresh.cli, ["db", "downgrade", "base"], obj=info)
        assert result.exit_code == 0, result.output
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        engine.dispose()
        with fresh.app_context():
            db.engines[None].dispose()
    finally:
        drop()
