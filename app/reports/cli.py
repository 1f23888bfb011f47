"""flask reports …"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.reports import tagging

reports = AppGroup("reports", help="Reports: tagging and its sweep.")


@reports.command("retag")
@click.option("--now", "retry_now", is_flag=True,
              help="Also retry reports waiting out a backoff after a failed attempt.")
@click.option("--limit", default=1000, show_default=True)
def retag(retry_now: bool, limit: int) -> None:
    """Tag pending reports (the sweep, run once)."""
    result = tagging.sweep_untagged(moderator=current_app.extensions["flagdesk.moderator"],
                                    limit=limit, include_waiting=retry_now)
    click.echo(f"tagged {result.tagged}; still pending {result.still_pending}")
