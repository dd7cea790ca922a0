"""``ghaf backup DEST`` and ``ghaf restore SRC``: a home's metadata, artifacts, wrapped keys
and audit checkpoints, copied while it runs and put back into a fresh home."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ghaf.cli.context import state
from ghaf.errors import ConfigError, IntegrityError


class Output(StrEnum):
    text = "text"
    json = "json"


def backup(
    ctx: typer.Context,
    destination: Annotated[
        str,
        typer.Argument(
            help="A new (or empty) directory, or s3://BUCKET/PREFIX on the configured S3 "
            "endpoint, in the artifacts' region."
        ),
    ],
    output: Annotated[
        Output, typer.Option("--output", "-o", help="text for people, json for scripts.")
    ] = Output.text,
) -> None:
    """Back the home up: metadata, artifacts, wrapped keys and audit checkpoints.

    The home may keep running: the metadata is one snapshot, and every artifact and
    checkpoint it refers to is copied. The KEK is never copied (keep keys/kek.json apart
    from the backups; a KMS home has none). JSON: {id, destination, created_at, audit_seq,
    tables: {table: rows}, blobs, artifacts, checkpoints, bytes}.
    """
    from ghaf.backup import create_backup

    cli = state(ctx)
    platform = cli.platform()
    result = create_backup(platform, cli.actor(), destination)
    if output is Output.json:
        typer.echo(json.dumps(result.to_json()))
        return
    rows = sum(result.tables.values())
    cli.console.print(
        f"backup {result.id} written to {escape(result.destination)}: {rows} rows of "
        f"{len(result.tables)} tables (audit record {result.audit_seq}), {result.artifacts} "
        f"artifacts in {result.blobs} blobs, {result.checkpoints} checkpoints, "
        f"{result.bytes} bytes",
        highlight=False,
        soft_wrap=True,
    )


def restore(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The backup: its directory or s3://BUCKET/PREFIX.")],
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="The new home (absent, or holding only its ghaf.toml); default: ghaf --home.",
        ),
    ] = None,
    kek_file: Annotated[
        Path | None,
        typer.Option(
            "--kek-file",
            help="The backed-up home's keys/kek.json, when its KEK is a key file (copied "
            "into the new home); a KMS home's KEK comes from the new home's settings.",
        ),
    ] = None,
    output: Annotated[
        Output, typer.Option("--output", "-o", help="text for people, json for scripts.")
    ] = Output.text,
) -> None:
    """Restore a backup into a fresh home, database and artifact store; exit 8 if it fails
    to verify.

    Before writing anything it checks the target is empty, the KEK is the backup's, the
    manifest's signature and every file's SHA-256 (a damaged file is named). Then it
    loads the rows, signs a checkpoint, and verifies the audit trail and every artifact.
    JSON: {id, source, home, audit_seq, tables, blobs, audit: (as ghaf audit verify),
    artifacts: {checked, failures: [{digest, error}]}, ok}.
    """
    from ghaf.backup import restore_backup
    from ghaf.settings import load_settings

    cli = state(ctx)
    if cli.remote_url is not None:
        raise ConfigError(
            "a restore writes a new home on this machine; GHAF_URL names a server "
            f"({cli.remote_url})",
            hint="unset GHAF_URL (or drop --url): restore is not offered over HTTP",
        )
    settings = cli.settings if home is None else load_settings(home=home)
    result = restore_backup(settings, source, kek_file=kek_file)
    if output is Output.json:
        typer.echo(json.dumps(result.to_json()))
    else:
        rows = sum(result.tables.values())
        cli.console.print(
            f"restored backup {result.id} into {escape(result.home)}: {rows} rows, "
            f"{result.blobs} blobs; audit trail {result.audit.status} "
            f"({result.audit.records} records), {result.artifacts.checked} artifacts "
            f"verified",
            highlight=False,
            soft_wrap=True,
        )
    if not result.ok:
        failures = [f"artifact {d}: {e}" for d, e in result.artifacts.failures]
        if not result.audit.ok:
            failures.insert(0, result.audit.headline)
        raise IntegrityError(
            f"the restored home does not verify: {failures[0]}",
            hint="run `ghaf audit verify` on it; restore from another backup",
        )
