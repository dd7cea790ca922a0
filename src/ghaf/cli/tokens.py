"""``ghaf tokens``: create (shown once), list and revoke API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from ghaf.cli.context import state
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
) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    from ghaf.access.tokens import create_token

    cli = state(ctx)
    platform = cli.platform()
    new = create_token(
        platform,
        cli.actor(),
        principal,
        project=project,
        roles=tuple(role or ()),
        ttl=parse_duration(expires_in),
        description=description,
    )
    info = new.info
    cli.console.print(
        f"created token {info.token_id} for {info.principal} in {info.project} "
        f"(roles {', '.join(info.roles)}; expires {info.expires_at:%Y-%m-%d %H:%M} UTC)",
        highlight=False,
    )
    cli.console.print("store it now, it is not shown again:", style="bold")
    typer.echo(new.secret)


@app.command("list")
def list_(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Option(help="Only this principal's.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project's.")] = None,
) -> None:
    """List tokens (never their secrets)."""
    from ghaf.access.tokens import list_tokens

    cli = state(ctx)
    table = Table("id", "principal", "project", "roles", "expires", "state", "description")
    for t in list_tokens(cli.platform(), principal=principal, project=project):
        status = "revoked" if t.revoked_at else ("active" if t.active else "expired")
        table.add_row(
            t.token_id,
            t.principal,
            t.project,
            ", ".join(t.roles),
            f"{t.expires_at:%Y-%m-%d %H:%M}",
            status,
            t.description,
        )
    cli.console.print(table)


@app.command("revoke")
def revoke(ctx: typer.Context, token_id: str) -> None:
    """Revoke a token; the next request with it is refused."""
    from ghaf.access.tokens import get_token, revoke_token

    cli = state(ctx)
    platform = cli.platform()
    info = get_token(platform, token_id)
    revoke_token(platform, cli.actor(), token_id, project=info.project)
    cli.console.print(f"revoked token {token_id} of {info.principal}", highlight=False)
