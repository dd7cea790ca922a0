"""``ghaf projects``: create and list projects."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable

app = typer.Typer(help="Projects: the units of ownership.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    description: Annotated[str, typer.Option(help="What the project is for.")] = "",
    region: Annotated[str | None, typer.Option(help="Region its data stays in.")] = None,
    output: OutputOption = Output.table,
) -> None:
    """Create a project."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        body = {"name": name, "description": description, "region": region}
        project = client.post("/projects", body)
    else:
        from ghaf.projects import create_project

        made = create_project(
            cli.platform(), cli.actor(), name, description=description, region=region
        )
        project = to_jsonable(made)
    if output is Output.json:
        emit_json(project)
        return
    cli.console.print(f"created project {project['name']} (region {project['region']})")


@app.command("list")
def list_(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """List projects (against a server: those you hold a role in)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        projects = client.projects()
    else:
        from ghaf.projects import list_projects

        projects = to_jsonable(list_projects(cli.platform()))
    if output is Output.json:
        emit_json({"projects": projects})
        return
    table = Table("name", "region", "created by", "created at", "description")
    for p in projects:
        table.add_row(p["name"], p["region"], p["created_by"], p["created_at"], p["description"])
    cli.console.print(table)
