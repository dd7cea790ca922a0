"""``ghaf ui``: the web UI that ``ghaf server`` serves under /ui/."""

from __future__ import annotations

from typing import Annotated

import typer

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json

app = typer.Typer(help="The web UI that ghaf server serves under /ui/.", no_args_is_help=True)


@app.command("login-link")
def login_link(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option(help="Where the browser reaches ghaf server (scheme, host, port).")
    ] = "http://127.0.0.1:8700",
    output: OutputOption = Output.table,
) -> None:
    """Print a one-time link (2 minutes) that signs a browser in to the UI as the home's
    owner: run it in the owner's OS account, whose login the kernel proves (audited)."""
    from ghaf.access.web_sessions import create_login_link

    cli = state(ctx)
    made = create_login_link(cli.platform(), cli.platform().admin())
    link = url.rstrip("/") + made.path
    if output == Output.json:
        emit_json({"url": link, "expires_in_s": made.expires_in_s, "link_id": made.link_id})
        return
    typer.echo(link)
    typer.echo(f"(opens once, within {made.expires_in_s // 60} minutes)", err=True)
