"""Fixtures: one app per test session on a migrated database; every test runs inside a
transaction that is rolled back (SQLAlchemy's "joining a session into an external
transaction" recipe, savepoints included), so no test sees another's rows.

TEST_DATABASE_URL picks the database (PostgreSQL in CI); the default is an SQLite file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.auth.models import Role, User
from app.auth.service import create_token, create_user
from app.core import ratelimit
from app.extensions import db
from app.moderation import Classification, ModerationUnavailable
from app.projects.models import Project
from app.projects.service import create_project

TEST_SECRET = "test-secret-key-not-for-production"
TEST_PEPPER = "test-pepper-not-for-production"
ORIGIN = "https://chat.example.com"


def database_url(tmp_dir: Path) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_dir / 'test.sqlite3'}"


def fresh_database(tmp_dir: Path, label: str) -> tuple[str, Callable[[], None]]:
    """An empty database of the kind the suite runs on (a new SQLite file, or a new
    PostgreSQL database beside TEST_DATABASE_URL's), and how to drop it."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base or sa.make_url(base).get_backend_name() != "postgresql":
        return f"sqlite:///{tmp_dir / f'{label}.sqlite3'}", lambda: None
    url = sa.make_url(base)
    name = f"flagdesk_{label}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def reset_database(url: str) -> None:
    """Start from an empty database: the schema is built by the migrations alone."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
        else:
            for table in sa.inspect(connection).get_table_names():
                connection.execute(sa.text(f'DROP TABLE "{table}"'))
    engine.dispose()


def app_config(url: str, instance_dir: Path, **overrides: Any) -> dict[str, Any]:
    config = {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "END_USER_PEPPER": TEST_PEPPER,
        "SQLALCHEMY_DATABASE_URI": url,
        "INSTANCE_DIR": str(instance_dir),
        "SERVER_NAME": "flagdesk.test",
        "PREFERRED_URL_SCHEME": "https",
        # Generous limits so ordinary tests never trip them; the rate-limit tests lower them.
        "INTAKE_LIMIT_PER_ADDRESS": "10000/minute",
        "INTAKE_LIMIT_PER_PROJECT": "10000/minute",
        "CELERY_BROKER_URL": None,
        # Cheap Argon2 so hundreds of sign-ins stay fast; production cost is in config.py.
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST_KIB": 1024,
        "ARGON2_PARALLELISM": 1,
        # The notify tests' receivers listen on loopback; tests/notify/test_egress.py
        # checks the production default (refused).
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": True,
    }
    config.update(overrides)
    return config


class ClosingClient(FlaskClient):
    """A test client that behaves like a server towards the app:

    * each request gets a fresh app context (and so a fresh `g` and session), as in
      production, rather than sharing the test's own context (where flask-login would
      remember the signed-in user from one request to the next);
    * each response is closed once sent, so work scheduled for after the response
      (in-process tagging) runs.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["buffered"] = False
        with self.application.app_context():
            response = super().open(*args, **kwargs)
            response.make_sequence()  # read the whole body while the request is alive
        # The request's context has ended (its session removed), as on a server; closing
        # the response now runs what was scheduled for after it.
        response.close()
        # The test reads what the request wrote, not what its own session remembers.
        db.session.expire_all()
        return response


def build_app(config: dict[str, Any]) -> Flask:
    app = create_app(config)
    app.test_client_class = ClosingClient
    return app


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    tmp = tmp_path_factory.mktemp("flagdesk")
    url = database_url(tmp)
    reset_database(url)
    app = build_app(app_config(url, tmp))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _rolled_back(app: Flask) -> Iterator[None]:
    """Bind the app to one connection inside a transaction that the test never commits:
    the services' commits release savepoints, and everything is rolled back at the end."""
    with app.app_context():
        engines = db.engines
        engine = engines[None]
        connection = engine.connect()
        transaction = connection.begin()
        engines[None] = connection
        db.session.remove()
        db.session.session_factory.kw["join_transaction_mode"] = "create_savepoint"
        ratelimit.reset()
        try:
            yield
        finally:
            db.session.remove()
            transaction.rollback()
            connection.close()
            engines[None] = engine


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):  # noqa: ANN201
    return app.test_cli_runner()


@pytest.fixture
def project() -> Project:
    return create_project(name="Chat", origins=[ORIGIN])


@pytest.fixture
def make_user() -> Callable[..., User]:
    counter = iter(range(10_000))

    def make(role: Role = Role.RESPONDER, **kwargs: Any) -> User:
        n = next(counter)
        user, _ = create_user(email=kwargs.pop("email", f"{role}{n}@example.com"),
                              name=kwargs.pop("name", f"{role} {n}"), role=role,
                              password=kwargs.pop("password", "correct horse battery"))
        return user

    return make


@pytest.fixture
def token_for(make_user: Callable[..., User]) -> Callable[[Role], dict[str, str]]:
    """Authorization headers for a fresh user of the given role."""

    def headers(role: Role = Role.RESPONDER) -> dict[str, str]:
        _, raw = create_token(user=make_user(role), name="test")
        return {"Authorization": f"Bearer {raw}"}

    return headers


def report_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reason": "inaccurate",
        "description": "It said the Eiffel Tower is in Rome.",
        "conversation": [
            {"role": "user", "content": "Where is the Eiffel Tower?"},
            {"role": "assistant", "content": "The Eiffel Tower is in Rome, Italy."},
        ],
        "model": "gpt-test-1",
        "response_id": "resp_123",
        "page_url": "https://chat.example.com/c/42",
        "locale": "en-GB",
    }
    body.update(overrides)
    return body


@pytest.fixture
def submit(client: FlaskClient, project: Project) -> Callable[..., Any]:
    """POST a report as the widget would; returns the response."""

    def post(body: dict[str, Any] | None = None, *, key: str | None = None,
             headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        sent = {"X-Project-Key": key or project.public_key, "Origin": ORIGIN}
        sent.update(headers or {})
        return client.post("/api/v1/reports", json=report_body() if body is None else body,
                           headers=sent, **kwargs)

    return post


class ScriptedModerator:
    """A moderation backend whose answers a test decides: scores by a word in the text.

    Tagging and routing are our code; this lets their tests name the exact categories a
    report comes back with. The real backends have tests of their own.
    """

    backend = "scripted"

    def __init__(self, rules: dict[str, dict[str, float]] | None = None,
                 threshold: float = 0.5) -> None:
        self.rules = rules or {}
        self.threshold = threshold
        self.calls: list[Sequence[str]] = []

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        self.calls.append(list(texts))
        results = []
        for text in texts:
            scores = {"hate": 0.01, "violence": 0.01, "self-harm": 0.01, "sexual/minors": 0.0}
            for word, found in self.rules.items():
                if word in text:
                    scores.update(found)
            flagged = frozenset(c for c, s in scores.items() if s >= self.threshold)
            results.append(Classification(scores=scores, flagged=flagged,
                                          backend=self.backend, model="scripted-1"))
        return results


class DownModerator:
    backend = "down"

    def __init__(self) -> None:
        self.calls = 0

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        self.calls += 1
        raise ModerationUnavailable("backend unreachable (test)")


@pytest.fixture
def use_moderator(app: Flask) -> Iterator[Callable[[Any], Any]]:
    original = app.extensions["flagdesk.moderator"]

    def use(moderator: Any) -> Any:
        app.extensions["flagdesk.moderator"] = moderator
        return moderator

    yield use
    app.extensions["flagdesk.moderator"] = original


@pytest.fixture
def secondary_app(app: Flask, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build another app (other settings) on the test's own connection, so the test's
    rollback covers it too; the shared extension objects go back to the session app after."""

    def build(**overrides: Any) -> Flask:
        other = build_app(app_config(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path,
                                       **overrides))
        with app.app_context():
            connection = db.engines[None]
        with other.app_context():
            db.engines[None].dispose()
            db.engines[None] = connection
        return other

    yield build
    app.extensions["celery"].set_default()
