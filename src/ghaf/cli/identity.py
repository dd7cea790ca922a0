"""``ghaf whoami`` and ``ghaf login``: who the CLI speaks as, and OIDC client-credentials login."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ghaf.access.http_auth import authenticate
from ghaf.cli.context import state
from ghaf.cli.main import app
from ghaf.errors import InvalidInputError
from ghaf.security.rbac import bound_roles

CREDENTIAL_FILE = "credentials/token"


def _credential_path(home: Path) -> Path:
    return home / CREDENTIAL_FILE


@app.command()
def whoami(
    ctx: typer.Context,
    token_file: Annotated[
        Path | None, typer.Option(help="A file holding a token or JWT (default: `ghaf login`'s).")
    ] = None,
) -> None:
    """Show who you are and your roles: the credential's, or the embedded admin's."""
    cli = state(ctx)
    platform = cli.platform()
    path = token_file or _credential_path(cli.settings.home)
    if path.exists():
        token = path.read_text().strip()
        actor = authenticate(platform, {"authorization": f"Bearer {token}"}, source="cli")
        grants = sorted(r for r in actor.roles if not r.startswith("@"))
        cli.console.print(f"{actor.name} ({actor.kind}, from {path})", highlight=False)
    else:
        name = cli.actor().name
        with platform.read_session() as session:
            grants = sorted(bound_roles(session, name))
        cli.console.print(f"{name} (home admin, embedded mode: every right)", highlight=False)
    for grant in grants:
        cli.console.print(f"  {grant}", highlight=False)


@app.command()
def login(
    ctx: typer.Context,
    client_credentials: Annotated[
        bool, typer.Option("--client-credentials", help="Log in as identity.client_id (a service).")
    ] = False,
    device: Annotated[
        bool, typer.Option("--device", help="Log in a person: open a URL, enter a code.")
    ] = False,
) -> None:
    """Log in to the identity provider and keep the access token (0600) in the home."""
    from ghaf.security.oidc import client_credentials_token, device_code_token

    cli = state(ctx)
    if client_credentials == device:
        raise InvalidInputError(
            "choose one login flow", hint="ghaf login --device, or --client-credentials"
        )
    if device:

        def show(url: str, code: str) -> None:
            cli.console.print(f"open {url} and enter the code {code}", highlight=False)

        token = device_code_token(cli.settings.identity, show)
    else:
        token = client_credentials_token(cli.settings.identity)
    actor = authenticate(cli.platform(), {"authorization": f"Bearer {token}"}, source="cli")
    path = _credential_path(cli.settings.home)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token)
    cli.console.print(f"logged in as {actor.name}; token kept in {path}", highlight=False)
