"""flask projects …"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.core.errors import AppError
from app.projects import service

projects = AppGroup("projects", help="Projects and their public keys.")


@projects.command("create")
@click.option("--name", required=True)
@click.option("--origin", "origins", multiple=True,
              help="An origin allowed to send reports (repeatable), e.g. https://app.example.")
def create_project(name: str, origins: tuple[str, ...]) -> None:
    """Create a project and print its public key."""
    try:
        project = service.create_project(name=name, origins=list(origins))
    except AppError as error:
        raise click.ClickException(error.message) from error
    click.echo(f"Created project {project.id} {project.name!r}: key {project.public_key}")
