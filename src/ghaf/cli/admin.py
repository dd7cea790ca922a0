"""``ghaf admin``: the home itself: who owns it, and handing it to another OS account."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ghaf.cli.context import state

app = typer.Typer(help="The home: its owner and handing it over.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", help="table or json.")] = "table",
) -> None:
    """Show the home's path and owner (the OS account fixed at `ghaf init`)."""
    cli = state(ctx)
    owner = cli.platform().home_owner()
    if output == "json":
        typer.echo(json.dumps({"home": str(cli.settings.home), "owner": owner}))
        return
    cli.console.print(f"home {cli.settings.home} owned by {owner or '(not initialised)'}")


@app.command("transfer")
def transfer(
    ctx: typer.Context,
    new_owner: Annotated[str, typer.Argument(help="Login name of the OS account taking over.")],
) -> None:
    """Hand the home to another OS account (audited; only its owner may)."""
    from ghaf.home import transfer_home

    cli = state(ctx)
    previous = transfer_home(cli.platform(), cli.actor(), new_owner)
    cli.console.print(
        f"the home now belongs to {new_owner} (was {previous}); "
        f"give them the files too: chown -R {new_owner} {cli.settings.home}",
        highlight=False,
    )
