"""``ghaf projects``: create and list projects."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ghaf.cli.context import state

app = typer.Typer(help="Projects: the units of ownership.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    description: Annotated[str, typer.Option(help="What the project is for.")] = "",
    region: Annotated[str | None, typer.Option(help="Region its data stays in.")] = None,
) -> None:
    """Create a project."""
    from ghaf.projects import create_project

    cli = state(ctx)
    platform = cli.platform()
    project = create_project(platform, cli.actor(), name, description=description, region=region)
    cli.console.print(f"created project {project.name} (region {project.region})")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List projects."""
    from ghaf.projects import list_projects

    cli = state(ctx)
    table = Table("name", "region", "created by", "created at", "description")
    for p in list_projects(cli.platform()):
        table.add_row(p.name, p.region, p.created_by, p.created_at.isoformat(), p.description)
    cli.console.print(table)
