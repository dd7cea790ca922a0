"""``ghaf server``: the governed control plane over HTTP, for a team."""

from __future__ import annotations

from typing import Annotated

import typer

from ghaf.cli.context import state
from ghaf.errors import ConfigError


def server(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8700,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    rate: Annotated[
        float, typer.Option(min=0, help="Requests a second per principal and worker (0: off).")
    ] = 200.0,
    burst: Annotated[int, typer.Option(min=1, help="Requests a principal may send at once.")] = 400,
    max_body_mb: Annotated[
        int, typer.Option(min=1, max=4096, help="Largest request body, in MiB.")
    ] = 64,
    max_artifact_gb: Annotated[
        float, typer.Option(min=0.001, max=1024, help="Largest artifact upload, in GiB.")
    ] = 16.0,
) -> None:
    """Run the governed control-plane server: every resource over HTTP, callers proven by
    token or OIDC, every write authorized and audited. TLS unless on loopback."""
    from ghaf.server.app import ServerOptions
    from ghaf.server.run import ServerConfig, serve_forever

    cli = state(ctx)
    if cli.platform().home_owner() is None:  # workers serve a home that `ghaf init` made
        raise ConfigError(
            f"{cli.settings.home} is not an initialised Ghaf home", hint="run `ghaf init` first"
        )
    options = ServerOptions(
        max_body=max_body_mb * 1024 * 1024,
        max_artifact_bytes=int(max_artifact_gb * 1024**3),
        rate=rate,
        burst=burst,
    )
    serve_forever(ServerConfig(str(cli.settings.home), host, port, workers, options))
