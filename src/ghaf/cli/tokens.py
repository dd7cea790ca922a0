"""``ghaf tokens``: create (shown once), list and revoke API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json, format_minute, to_jsonable
from ghaf.errors import InvalidInputError

app = typer.Typer(help="API tokens: random, shown once, stored hashed.", no_args_is_help=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` or ``45s``."""
    unit = text[-1:].lower()
    if unit not in _UNITS or not text[:-1].isdigit():
        raise InvalidInputError(
            f"duration {text!r} is invalid", hint="use a number and s, m, h or d, e.g. 30d"
        )
    return timedelta(seconds=int(text[:-1]) * _UNITS[unit])


@app.command("create")
def create(
    ctx: typer.Context,
    principal: Annotated[str, typer.Argument(help="User or service account the token is for.")],
    project: Annotated[str, typer.Option(help="Project the token is scoped to.")],
    role: Annotated[
        list[str] | None, typer.Option("--role", help="Role to carry (repeat); default: all.")
    ] = None,
    expires_in: Annotated[str, typer.Option(help="Lifetime, e.g. 30d, 12h.")] = "30d",
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
    output: OutputOption = Output.table,
) -> None:
    """Create a token; it is printed once and cannot be shown again.

    JSON: {"token", "info": {"token_id", "principal", "project", "roles", "description",
    "created_by", "created_at", "expires_at", "revoked_at"}}.
    """
    ttl = parse_duration(expires_in)
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        made = client.create_token(
            principal,
            project=project,
            roles=role or (),
            expires_in_days=ttl.total_seconds() / 86400,
            description=description,
        )
    else:
        from ghaf.access.tokens import create_token

        new = create_token(
            cli.platform(),
            cli.actor(),
            principal,
            project=project,
            roles=tuple(role or ()),
            ttl=ttl,
            description=description,
        )
        made = {"token": new.secret, "info": to_jsonable(new.info)}
    if output is Output.json:
        emit_json(made)
        return
    info = made["info"]
    cli.console.print(
        f"created token {info['token_id']} for {info['principal']} in {info['project']} "
        f"(roles {', '.join(info['roles'])}; expires {format_minute(info['expires_at'])} UTC)",
        highlight=False,
    )
    cli.console.print("store it now, it is not shown again:", style="bold")
    typer.echo(made["token"])


@app.command("list")
def list_(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Option(help="Only this principal's.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project's.")] = None,
    output: OutputOption = Output.table,
) -> None:
    """List tokens, never their secrets (against a server: those of the projects you may
    read them in).

    JSON: {"tokens": [{"token_id", "principal", "project", "roles", "description",
    "created_by", "created_at", "expires_at", "revoked_at"}]}.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        found = client.tokens(project=project, principal=principal)
    else:
        from ghaf.access.tokens import list_tokens

        found = to_jsonable(list_tokens(cli.platform(), principal=principal, project=project))
    if output is Output.json:
        emit_json({"tokens": found})
        return
    now = datetime.now(UTC)
    table = Table("id", "principal", "project", "roles", "expires", "state", "description")
    for t in found:
        expired = datetime.fromisoformat(t["expires_at"]) <= now
        status = "revoked" if t["revoked_at"] else ("expired" if expired else "active")
        table.add_row(
            t["token_id"],
            t["principal"],
            t["project"],
            ", ".join(t["roles"]),
            format_minute(t["expires_at"]),
            status,
            t["description"],
        )
    cli.console.print(table)


@app.command("revoke")
def revoke(ctx: typer.Context, token_id: str) -> None:
    """Revoke a token; the next request with it is refused."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        principal = client.revoke_token(token_id)["principal"]
    else:
        from ghaf.access.tokens import get_token, revoke_token

        platform = cli.platform()
        info = get_token(platform, token_id)
        revoke_token(platform, cli.actor(), token_id, project=info.project)
        principal = info.principal
    cli.console.print(f"revoked token {token_id} of {principal}", highlight=False)
