"""The bare-insert baseline for bench/intake.py: the least a JSON intake endpoint can do.

One POST endpoint takes the raw JSON body and inserts it into a one-table SQLite database
set up exactly as Flagdesk's (app.core.db.configure_sqlite: WAL, BEGIN IMMEDIATE, the
same wait for the write lock), then answers 201 with the row's id. Served by the same
gunicorn command as the app, it is the yardstick the intake throughput is divided by.

    gunicorn --pythonpath bench 'baseline_app:create_baseline_app()'
    (BASELINE_DATABASE_URL=sqlite:////tmp/…/baseline.sqlite3)
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from flask import Flask, jsonify, request
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, Text, create_engine

from app.core.db import configure_sqlite

metadata = MetaData()
raw_reports = Table(
    "raw_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("received_at", String(32), nullable=False),
    Column("body", Text, nullable=False),
)


def _engine(database_url: str) -> Engine:
    # The same engine options and connection set-up as Flagdesk's, so the two differ only
    # in what they do per request, not in how they talk to SQLite.
    engine = create_engine(database_url, pool_pre_ping=True)
    configure_sqlite(engine)
    return engine


def create_baseline_schema(database_url: str) -> None:
    """Create the one table; the bench runs this once, before any worker starts."""
    engine = _engine(database_url)
    metadata.create_all(engine)
    engine.dispose()


def create_baseline_app(database_url: str | None = None) -> Flask:
    """A Flask app with POST /api/v1/reports: validate JSON, insert it, answer its id."""
    engine = _engine(database_url or os.environ["BASELINE_DATABASE_URL"])
    app = Flask(__name__)

    @app.post("/api/v1/reports")
    def insert_report():  # noqa: ANN202 - a Flask view
        # Parse so that a non-JSON body is refused as the real endpoint would; store the
        # raw text, which is all the baseline promises to keep.
        if request.get_json(silent=True) is None:
            return jsonify(error="send JSON"), 400
        row = {"received_at": datetime.now(UTC).isoformat(), "body": request.get_data(as_text=True)}
        with engine.begin() as connection:
            result = connection.execute(raw_reports.insert().values(row))
        return jsonify(id=result.inserted_primary_key[0]), 201

    return app
