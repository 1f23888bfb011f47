"""flask users … and flask tokens …"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.auth import service
from app.auth.models import Role
from app.core.errors import AppError

users = AppGroup("users", help="Staff users.")
tokens = AppGroup("tokens", help="Staff API tokens.")


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", default=None, help="Display name (defaults to the e-mail's local part).")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.RESPONDER.value,
              show_default=True)
@click.option("--password", default=None, help="Generated and printed once if not given.")
def create_user(email: str, name: str | None, role: str, password: str | None) -> None:
    """Create a staff user."""
    try:
        user, password = service.create_user(email=email, name=name or email.split("@")[0],
                                             role=Role(role), password=password)
    except AppError as error:
        raise click.ClickException(error.message) from error
    click.echo(f"Created {user.role} {user.email}. Password (shown once): {password}")


@tokens.command("create")
@click.option("--email", required=True, help="The user the token acts as.")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
def create_token(email: str, name: str) -> None:
    """Issue an API token; it is printed once and only its hash is kept."""
    user = service.find_user(email)
    if user is None:
        raise click.ClickException(f"No user {email}.")
    _, raw = service.create_token(user=user, name=name)
    click.echo(raw)
