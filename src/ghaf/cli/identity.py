"""``ghaf whoami`` and ``ghaf login``: who the CLI speaks as, and OIDC client-credentials login."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ghaf.cli.context import CliState, login_path, state
from ghaf.cli.credentials import save_token
from ghaf.errors import InvalidInputError


def whoami(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", help="table or json.")] = "table",
) -> None:
    """Show who you act as, how that was proven, and your roles."""
    from ghaf.security.rbac import bound_roles

    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        me = client.whoami()
        if output == "json":
            typer.echo(json.dumps(me))
            return
        cli.console.print(
            f"{me['name']} ({me['kind']}, proven by {me['credential']})", highlight=False
        )
        for grant in me["roles"]:
            cli.console.print(f"  {grant}", highlight=False)
        return
    actor = cli.actor()
    credential = actor.credential
    if credential is not None and credential.kind == "home-owner":
        with cli.platform().read_session() as session:
            grants = sorted(bound_roles(session, actor.name))
    else:
        grants = sorted(r for r in actor.roles if not r.startswith("@"))
    proof = credential.describe() if credential is not None else "none"
    if output == "json":
        typer.echo(
            json.dumps(
                {"name": actor.name, "kind": actor.kind, "credential": proof, "roles": grants}
            )
        )
        return
    cli.console.print(f"{actor.name} ({actor.kind}, proven by {proof})", highlight=False)
    for grant in grants:
        cli.console.print(f"  {grant}", highlight=False)


def login(
    ctx: typer.Context,
    client_credentials: Annotated[
        bool, typer.Option("--client-credentials", help="Log in as identity.client_id (a service).")
    ] = False,
    device: Annotated[
        bool, typer.Option("--device", help="Log in a person: open a URL, enter a code.")
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="A `ghaf server` URL: keep --token, or a --device login's token, for it.",
        ),
    ] = None,
    api_token: Annotated[
        str | None,
        typer.Option("--token", help="With --server: the token (or OIDC JWT) to keep."),
    ] = None,
) -> None:
    """Log in to the identity provider and keep the access token (0600) in the home."""
    cli = state(ctx)
    if server is not None:
        if device and api_token is None:
            api_token = _device_token_for(cli, server)
        _login_server(cli, server, api_token)
        return
    from ghaf.access.http_auth import authenticate
    from ghaf.security.oidc import client_credentials_token, device_code_token

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
    path = login_path(cli.settings.home)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token)
    cli.console.print(f"logged in as {actor.name}; token kept in {path}", highlight=False)


def _device_token_for(cli: CliState, url: str) -> str:
    """A person's access token from the OIDC provider the server at ``url`` trusts
    (device authorization grant: open a URL, enter a code)."""
    import httpx

    from ghaf.errors import BackendUnavailableError, ConfigError
    from ghaf.security.oidc import device_code_token
    from ghaf.settings import IdentitySettings

    try:
        answer = httpx.get(url.rstrip("/") + "/.well-known/ghaf-login", timeout=30)
    except httpx.HTTPError as exc:
        raise BackendUnavailableError(f"cannot reach {url}: {exc}", hint="check the URL") from exc
    if answer.status_code != 200:
        raise ConfigError(
            f"{url} offers no OIDC login", hint=f"ghaf login --server {url} --token TOKEN"
        )
    hints = answer.json()
    settings = IdentitySettings(
        issuer=str(hints["issuer"]),
        client_id=str(hints["client_id"]),
        audience=str(hints["audience"]),
    )

    def show(verification_url: str, code: str) -> None:
        cli.console.print(f"open {verification_url} and enter the code {code}", highlight=False)

    return device_code_token(settings, show)


def _login_server(cli: CliState, url: str, token: str | None) -> None:
    """Prove ``token`` to the server at ``url`` and keep it for that URL."""
    from ghaf.client.http import Client

    if not token:
        raise InvalidInputError(
            "--server needs --token or --device",
            hint="ghaf login --server URL --device (a person), or --token TOKEN",
        )
    with Client(url, token) as client:
        me = client.whoami()
    where = save_token(url, token)
    cli.console.print(
        f"logged in to {url.rstrip('/')} as {me['name']}; token kept in {where}. "
        f"Work against it with: export GHAF_URL={url.rstrip('/')}",
        highlight=False,
    )
