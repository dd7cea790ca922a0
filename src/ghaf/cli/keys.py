"""``ghaf keys``: list, rotate and destroy KEK versions; trust public keys for signatures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import InvalidInputError, NotFoundError

app = typer.Typer(
    help="Keys: artifact encryption keys and trusted signing keys.", no_args_is_help=True
)


@app.command("list")
def list_(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """Show the KEK versions and the trusted public keys (never key material).

    JSON: {"kek", "versions": [{"version", "state", "current"}], "rotation_pending",
    "trusted": [{"name", "file", "this_home"}]}.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        keys = client.keys()
    else:
        from ghaf.access.keyring import describe_keys

        keys = to_jsonable(describe_keys(cli.platform()))
    if output is Output.json:
        emit_json(keys)
        return
    table = Table("KEK", "version", "state")
    for version in keys["versions"]:
        current = " (current)" if version["current"] else ""
        table.add_row(keys["kek"], str(version["version"]), version["state"] + current)
    cli.console.print(table)
    pending = keys["rotation_pending"]
    if pending is not None:
        cli.console.print(f"rotation to version {pending} is unfinished: run `ghaf keys rotate`")
    trust = Table("trusted public key", "file")
    for key in keys["trusted"]:
        trust.add_row(key["name"] + (" (this home)" if key["this_home"] else ""), key["file"])
    cli.console.print(trust)


@app.command("rotate")
def rotate(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """Make a new KEK version (in the key file, or a new KMS key) and re-wrap every artifact
    header and encrypted prediction log file (resumes an unfinished one).

    JSON: {"version", "artifacts", "rewrapped", "resumed", "shredded", "log_files",
    "log_rewrapped", "log_unreadable"}.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        result: dict[str, Any] = client.rotate_keys()
    else:
        from ghaf.access.rotation import rotate_keys

        platform = cli.platform()
        with cli.console.status("re-wrapping artifact keys"):
            result = to_jsonable(rotate_keys(platform, cli.actor()))
    if output is Output.json:
        emit_json(result)
        return
    verb = "finished the interrupted rotation to" if result["resumed"] else "rotated to"
    shredded = result["shredded"]
    cli.console.print(
        f"{verb} KEK version {result['version']}: {result['artifacts']} artifacts, "
        f"{result['rewrapped']} re-wrapped"
        + (f", {shredded} unreadable (crypto-shredded)" if shredded else "")
        + (
            f"; {result.get('log_files', 0)} prediction log files, "
            f"{result.get('log_rewrapped', 0)} re-wrapped"
            if result.get("log_files")
            else ""
        )
    )


@app.command("destroy-version")
def destroy_version(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument(help="The KEK version to destroy.")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
    output: OutputOption = Output.table,
) -> None:
    """Destroy a KEK version: artifacts not re-wrapped since become unreadable (crypto-shredding).

    The key file deletes the version's material; KMS schedules its key's deletion
    (keys.kms_deletion_window_days) and refuses the key from now on.

    JSON: {"version", "shredded": [digest]}.
    """
    if not yes:
        raise InvalidInputError(
            f"destroying KEK version {version} is irreversible",
            hint="run `ghaf keys rotate` first, then repeat with --yes",
        )
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        shredded = client.destroy_key_version(version)
    else:
        from ghaf.access.rotation import destroy_key_version

        shredded = destroy_key_version(cli.platform(), cli.actor(), version)
    if output is Output.json:
        emit_json({"version": version, "shredded": shredded})
        return
    cli.console.print(
        f"destroyed KEK version {version}; {len(shredded)} artifacts are now unreadable"
    )


@app.command("trust")
def trust(
    ctx: typer.Context,
    public_key: Annotated[Path, typer.Argument(help="PEM public key (ECDSA P-256/384/521).")],
    output: OutputOption = Output.table,
) -> None:
    """Accept model signatures made with this public key (against a server: the key file
    is read here and sent).

    JSON: {"fingerprint"}.
    """
    cli = state(ctx)
    try:  # read here in both modes: the same errors, and the server never sees a path
        pem = public_key.read_bytes()
    except OSError as exc:
        raise NotFoundError(
            f"cannot read public key file {public_key}: {exc.strerror}",
            hint="pass the path of a PEM public key (e.g. another home's keys/signing.pub.pem)",
        ) from exc
    client = cli.remote()
    if client is not None:
        print_fp = client.trust_key(pem)
    else:
        from ghaf.access.rotation import trust_key

        print_fp = trust_key(cli.platform(), cli.actor(), pem)
    if output is Output.json:
        emit_json({"fingerprint": print_fp})
        return
    cli.console.print(f"trusted public key {print_fp[:16]}")
