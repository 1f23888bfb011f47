"""The schema comes from the migrations, and they agree with the models."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from flask.cli import ScriptInfo

from app import create_app
from app.extensions import db
from tests.conftest import app_config


def test_models_and_migrations_agree():
    connection = db.session.connection()
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    assert compare_metadata(context, db.metadata) == []


def _fresh_database_url(base_url: str, tmp_path) -> tuple[str, Callable[[], None]]:
    """An empty database of the same kind as the test database, and how to drop it."""
    url = sa.make_url(base_url)
    if url.get_backend_name() != "postgresql":
        return f"sqlite:///{tmp_path / 'fresh.sqlite3'}", lambda: None
    name = f"flagdesk_fresh_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def test_flask_db_upgrade_works_from_empty_and_downgrades(app, tmp_path):
    url, drop = _fresh_database_url(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path)
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
