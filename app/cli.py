"""Registers each domain's command group, and the app-wide commands."""

from __future__ import annotations

import sys
import threading

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from werkzeug.serving import run_simple

moderation = AppGroup("moderation", help="The moderation backends.")


@moderation.command("classify")
@click.option("--backend", type=click.Choice(["local", "openai"]), default=None,
              help="Defaults to MODERATION_BACKEND.")
@click.option("--batch-size", default=32, show_default=True)
def classify(backend: str | None, batch_size: int) -> None:
    """Read JSON lines {"text": …} on stdin; write {"scores", "flagged"} lines on stdout."""
    from app.moderation import build_moderator, classify_jsonl

    config = current_app.config
    if backend is None or backend == config["MODERATION_BACKEND"]:
        moderator = current_app.extensions["flagdesk.moderator"]
    else:
        try:
            moderator = build_moderator(
                backend, openai_api_key=config["OPENAI_API_KEY"],
                openai_base_url=config["OPENAI_BASE_URL"],
                openai_model=config["OPENAI_MODERATION_MODEL"],
                timeout=config["MODERATION_TIMEOUT_SECONDS"],
                max_retries=config["MODERATION_MAX_RETRIES"])
        except ValueError as error:
            raise click.ClickException(str(error)) from error
    try:
        classify_jsonl(moderator, sys.stdin, sys.stdout, batch_size=batch_size)
    except ValueError as error:
        raise click.ClickException(str(error)) from error


@click.command("demo")
def demo() -> None:
    """Create the demo project (with sample reports) and an admin if missing; their
    secrets are printed once."""
    from app.demo import ADMIN_EMAIL, seed_demo
    from app.reports.tagging import sweep_untagged

    config = current_app.config
    result = seed_demo(port=config["PORT"], pepper=config["END_USER_PEPPER"],
                       secret=config["SECRET_KEY"])
    if result.created_project:
        sweep_untagged(moderator=current_app.extensions["flagdesk.moderator"])
    click.echo(f"Project {result.project.name!r} key: {result.project.public_key}")
    if result.admin_password:
        click.echo(f"Admin: {ADMIN_EMAIL}  password (shown once): {result.admin_password}")
    else:
        click.echo(f"Admin: {ADMIN_EMAIL} (password shown when it was created)")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, envvar="PORT")
def serve(host: str, port: int) -> None:
    """Serve the embedded default: the web app plus the tagging sweep in this process."""
    from app.extensions import db
    from app.notify.service import deliver_due
    from app.reports.tagging import sweep_untagged
    from app.sla.sweep import run as sweep_sla

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    interval = app.config["TAGGING_SWEEP_SECONDS"]
    stop = threading.Event()

    def sweep_forever() -> None:
        while not stop.wait(interval):
            with app.app_context():
                try:
                    sweep_untagged(moderator=app.extensions["flagdesk.moderator"])
                except Exception:  # noqa: BLE001 - keep sweeping; the error is logged
                    app.logger.exception("tagging sweep failed")
                try:
                    sweep_sla()  # SLA clocks to at risk / breached, escalations queued
                except Exception:  # noqa: BLE001 - keep sweeping; the error is logged
                    db.session.rollback()
                    app.logger.exception("SLA sweep failed")
                try:
                    deliver_due()
                except Exception:  # noqa: BLE001 - keep sweeping; the error is logged
                    app.logger.exception("notification delivery failed")

    threading.Thread(target=sweep_forever, name="tagging-sweep", daemon=True).start()
    click.echo(f"Flagdesk on http://{host}:{port}/ — sign in at http://{host}:{port}/login "
               f"(tagging sweep every {interval} s)")
    click.echo(f"Widget demo (a host page embedding the widget): http://{host}:{port}/demo")
    try:
        # Werkzeug's threaded server: the embedded default. Production runs gunicorn.
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        stop.set()


def register_commands(app: Flask) -> None:
    from app.auth.cli import tokens, users
    from app.notify.cli import notify
    from app.projects.cli import projects
    from app.reports.cli import reports
    from app.sla.cli import sla

    for command in (users, tokens, projects, reports, notify, sla, moderation, demo, serve):
        app.cli.add_command(command)
