"""``ghaf certs dev``: a local CA, a server certificate and a client certificate (development)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ghaf.cli.context import state

app = typer.Typer(help="TLS certificates.", no_args_is_help=True)


@app.command("dev")
def dev(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help="Directory (default: <home>/tls).")] = None,
    host: Annotated[
        list[str] | None, typer.Option("--host", help="Server name or IP (repeat).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=397, help="Validity in days.")] = 30,
) -> None:
    """Make a development CA and certificates; print the settings that use them."""
    from ghaf.security.tls import make_dev_pki  # cryptography's x509

    cli = state(ctx)
    directory = out or cli.settings.home / "tls"
    pki = make_dev_pki(directory, hosts=tuple(host or ("127.0.0.1", "localhost")), days=days)
    cli.console.print(f"wrote a development CA and certificates to {directory}", highlight=False)
    for line in (
        f"GHAF_TLS__CERT_FILE={pki.server_cert}",
        f"GHAF_TLS__KEY_FILE={pki.server_key}",
        f"GHAF_TLS__CLIENT_CA_FILE={pki.ca_cert}   # mTLS; clients use {pki.client_cert}",
    ):
        typer.echo(line)
