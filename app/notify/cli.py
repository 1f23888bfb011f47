"""flask notify deliver, flask notify webhooks add|list|rotate|remove"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.core.errors import AppError
from app.notify import service
from app.notify.models import WebhookKind

notify = AppGroup("notify", help="Outbound notifications: signed webhooks and e-mail.")
webhooks = AppGroup("webhooks", help="Projects' webhook receivers.")
notify.add_command(webhooks)


@notify.command("deliver")
@click.option("--limit", default=100, show_default=True, help="At most this many sends.")
def deliver(limit: int) -> None:
    """Send the deliveries that are due (what the background sweep does), once."""
    run = service.deliver_due(limit=limit)
    click.echo(f"sent {run.claimed}: delivered {run.delivered}, retrying {run.retrying}, "
               f"failed {run.failed}")


@webhooks.command("add")
@click.option("--project", "project_id", type=int, required=True, help="The project's id.")
@click.option("--url", required=True, help="An http(s) URL that receives JSON POSTs.")
@click.option("--kind", type=click.Choice([k.value for k in WebhookKind]),
              default=WebhookKind.ESCALATION.value, show_default=True)
@click.option("--description", default="")
def add(project_id: int, url: str, kind: str, description: str) -> None:
    """Add a webhook; its signing secret is printed once."""
    try:
        webhook, secret = service.create_webhook(actor=None, project_id=project_id, url=url,
                                                 kind=kind, description=description)
    except AppError as error:
        raise click.ClickException(error.message) from error
    click.echo(f"Added webhook {webhook.id} ({webhook.kind}) -> {webhook.url}")
    click.echo(f"Signing secret (shown once): {secret}")


@webhooks.command("list")
@click.option("--project", "project_id", type=int, default=None)
def list_webhooks(project_id: int | None) -> None:
    """List webhooks (secrets masked)."""
    for hook in service.webhooks(actor=None, project_id=project_id):
        state = "" if hook.active else " (inactive)"
        click.echo(f"{hook.id}\t{hook.project.name}\t{hook.kind}{state}\t{hook.url}\t"
                   f"{hook.masked_secret}")


@webhooks.command("rotate")
@click.argument("webhook_id", type=int)
def rotate(webhook_id: int) -> None:
    """Give a webhook a new signing secret (printed once); the old one stops at once."""
    try:
        secret = service.rotate_secret(actor=None, webhook_id=webhook_id)
    except AppError as error:
        raise click.ClickException(error.message) from error
    click.echo(f"New signing secret (shown once): {secret}")


@webhooks.command("remove")
@click.argument("webhook_id", type=int)
def remove(webhook_id: int) -> None:
    """Remove a webhook (its past deliveries stay on record)."""
    try:
        service.delete_webhook(actor=None, webhook_id=webhook_id)
    except AppError as error:
        raise click.ClickException(error.message) from error
    click.echo(f"Removed webhook {webhook_id}")
