"""``ghaf keys``: list, rotate and destroy KEK versions; trust public keys for signatures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.errors import InvalidInputError

app = typer.Typer(
    help="Keys: artifact encryption keys and trusted signing keys.", no_args_is_help=True
)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Show the KEK versions and the trusted public keys."""
    from ghaf.access.rotation import local_keys
    from ghaf.security.homekeys import fingerprint, public_key_path, trusted_keys

    cli = state(ctx)
    keys = local_keys(cli.platform())
    table = Table("KEK", "version", "state")
    for version, status in keys.versions().items():
        current = " (current)" if version == keys.current_version() else ""
        table.add_row(keys.key_id, str(version), status + current)
    cli.console.print(table)
    pending = keys.rotation_pending()
    if pending is not None:
        cli.console.print(f"rotation to version {pending} is unfinished: run `ghaf keys rotate`")
    own = public_key_path(cli.settings)
    mine = fingerprint(own.read_bytes())[:16] if own.exists() else ""
    trust = Table("trusted public key", "file")
    for path in trusted_keys(cli.settings):
        label = path.stem + (" (this home)" if path.stem == mine else "")
        trust.add_row(label, str(path))
    cli.console.print(trust)


@app.command("rotate")
def rotate(ctx: typer.Context) -> None:
    """Make a new KEK version and re-wrap every artifact header (resumes an unfinished one)."""
    from ghaf.access.rotation import rotate_keys

    cli = state(ctx)
    platform = cli.platform()
    with cli.console.status("re-wrapping artifact keys"):
        result = rotate_keys(platform, cli.actor())
    verb = "finished the interrupted rotation to" if result.resumed else "rotated to"
    cli.console.print(
        f"{verb} KEK version {result.version}: {result.artifacts} artifacts, "
        f"{result.rewrapped} re-wrapped"
        + (f", {result.shredded} unreadable (crypto-shredded)" if result.shredded else "")
    )


@app.command("destroy-version")
def destroy_version(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument(help="The KEK version to destroy.")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
) -> None:
    """Delete a KEK version: artifacts not re-wrapped since become unreadable (crypto-shredding)."""
    from ghaf.access.rotation import destroy_key_version

    if not yes:
        raise InvalidInputError(
            f"destroying KEK version {version} is irreversible",
            hint="run `ghaf keys rotate` first, then repeat with --yes",
        )
    cli = state(ctx)
    platform = cli.platform()
    shredded = destroy_key_version(platform, cli.actor(), version)
    cli.console.print(
        f"destroyed KEK version {version}; {len(shredded)} artifacts are now unreadable"
    )


@app.command("trust")
def trust(
    ctx: typer.Context,
    public_key: Annotated[Path, typer.Argument(help="PEM public key (ECDSA P-256/384/521).")],
) -> None:
    """Accept model signatures made with this public key."""
    from ghaf.access.rotation import trust_key

    cli = state(ctx)
    platform = cli.platform()
    print_fp = trust_key(platform, cli.actor(), public_key)
    cli.console.print(f"trusted public key {print_fp[:16]}")
