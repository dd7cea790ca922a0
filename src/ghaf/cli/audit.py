"""``ghaf audit``: verify the tamper-evident trail, export it, show a resource's history."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from ghaf.access.audit import create_checkpoint
from ghaf.cli.context import state
from ghaf.errors import IntegrityError, InvalidInputError
from ghaf.security.audit import AuditLog
from ghaf.security.checkpoints import export_records, verify_audit

app = typer.Typer(help="Audit: the hash-chained record of every operation.", no_args_is_help=True)


@app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Recompute the chain and the signed checkpoints; name the first bad record."""
    cli = state(ctx)
    platform = cli.platform()
    with platform.read_session() as session:
        report = verify_audit(cli.settings, session)
    if not report.ok:
        raise IntegrityError(
            f"audit trail is broken at record {report.first_bad_seq}: {report.problem}",
            hint="restore the metadata database from a backup and investigate who changed it",
        )
    cli.console.print(
        f"audit trail valid: {report.records} records, {report.checkpoints} signed checkpoints"
    )


@app.command("checkpoint")
def checkpoint(ctx: typer.Context) -> None:
    """Sign a checkpoint over every record so far and append it to the checkpoint file."""
    cli = state(ctx)
    platform = cli.platform()
    made = create_checkpoint(platform, cli.actor())
    cli.console.print(f"checkpoint at {made.size} records, root {made.root}")


@app.command("export")
def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="Output format: jsonl.")] = "jsonl",
    resource: Annotated[str | None, typer.Option(help="Only records of this resource.")] = None,
) -> None:
    """Write every record as JSON lines to standard output (for a SIEM)."""
    if fmt != "jsonl":
        raise InvalidInputError(f"--format {fmt!r} is not supported", hint="use --format jsonl")
    cli = state(ctx)
    with cli.platform().read_session() as session:
        for line in export_records(session, resource=resource):
            sys.stdout.buffer.write(line)
    sys.stdout.flush()


@app.command("show")
def show(
    ctx: typer.Context,
    resource: Annotated[str, typer.Option(help="Resource, e.g. project:fraud or kek:home.")],
) -> None:
    """Show the records of one resource, oldest first."""
    cli = state(ctx)
    table = Table("seq", "time (UTC)", "actor", "action", "outcome", "details")
    with cli.platform().read_session() as session:
        for row in AuditLog().records(session, resource=resource):
            table.add_row(
                str(row.seq), row.ts.isoformat(), row.actor, row.action, row.outcome, row.details
            )
    if not table.rows:
        cli.console.print(f"no audit records for resource {resource!r}")
        return
    cli.console.print(table)
