"""Flagdesk: where users report what an AI product did wrong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: configuration, extensions, blueprints, error handlers, CLI."""
    from config import load_config

    app = Flask(__name__, instance_relative_config=True)
    app.config.update(load_config())
    app.config.update(config or {})

    if app.config["TRUSTED_PROXY_COUNT"]:
        count = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)

    from app.core.sessions import PagesOnlySessionInterface

    app.session_interface = PagesOnlySessionInterface()
    _init_extensions(app)
    _register_blueprints(app)

    from app.core.errors import register_error_handlers
    from app.core.security import register_security_headers

    register_error_handlers(app)
    register_security_headers(app)

    from app.cli import register_commands

    register_commands(app)

    from app.moderation import build_moderator

    app.extensions["flagdesk.moderator"] = build_moderator(
        app.config["MODERATION_BACKEND"],
        openai_api_key=app.config["OPENAI_API_KEY"],
        openai_base_url=app.config["OPENAI_BASE_URL"],
        openai_model=app.config["OPENAI_MODERATION_MODEL"],
        timeout=app.config["MODERATION_TIMEOUT_SECONDS"],
        max_retries=app.config["MODERATION_MAX_RETRIES"],
    )

    from app import sla

    sla.init_app(app)  # SLA clocks follow the reports domain's signals

    from app.tasks import celery_init_app

    celery_init_app(app)
    return app


def _init_extensions(app: Flask) -> None:
    from app.core import ratelimit
    from app.extensions import api, csrf, db, login_manager, migrate

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            from app.core.db import configure_sqlite

            configure_sqlite(db.engine)
    migrate.init_app(app, db, directory=app.config.get("MIGRATIONS_DIR", _migrations_dir()))
    login_manager.init_app(app)
    csrf.init_app(app)
    ratelimit.init_app(app)
    api.init_app(app)

    from app.auth.service import configure_password_hashing, load_user

    configure_password_hashing(time_cost=app.config["ARGON2_TIME_COST"],
                               memory_cost=app.config["ARGON2_MEMORY_COST_KIB"],
                               parallelism=app.config["ARGON2_PARALLELISM"])
    login_manager.user_loader(load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to see this page."


def _register_blueprints(app: Flask) -> None:
    from app.auth.admin_views import admin
    from app.auth.views import auth_pages
    from app.extensions import api, csrf
    from app.notify.views import notify_admin
    from app.reports.api import blp as reports_api
    from app.reports.views import status_pages
    from app.sla.stats_views import stats_pages
    from app.sla.views import sla_admin
    from app.triage.ticket_views import tickets
    from app.triage.views import triage
    from app.views import home
    from app.widget.views import widget

    # The reports API reads no cookies (a project key, or a bearer token), so a forged
    # cross-site request has nothing to ride on: CSRF tokens do not apply there.
    csrf.exempt(reports_api)
    api.register_blueprint(reports_api)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "fdk_… API token"})
    for blueprint in (status_pages, home, auth_pages, triage, tickets, admin, notify_admin,
                      widget):
        app.register_blueprint(blueprint)
    for blueprint in (sla_admin, stats_pages):  # the SLA editor (admins) and /stats (leads)
        app.register_blueprint(blueprint)
    from app.incidents.views import incidents

    app.register_blueprint(incidents)  # also adds its section to /stats (STATS_SECTIONS)


def _migrations_dir() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent / "migrations")
