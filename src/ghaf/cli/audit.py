"""``ghaf audit``: verify the tamper-evident trail, export it, show a resource's history."""

from __future__ import annotations

import json
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
    resource: Annotated[
        str | None, typer.Option(help="Resource, e.g. project:fraud or kek:home.")
    ] = None,
    break_glass: Annotated[
        bool, typer.Option("--break-glass", help="Only break-glass requests and releases.")
    ] = False,
    outcome: Annotated[
        str | None, typer.Option(help="Only this outcome: allowed, denied or failed.")
    ] = None,
    output: Annotated[str, typer.Option("--output", help="table or json.")] = "table",
) -> None:
    """Show audit records, oldest first: of one resource, the break-glass ones, or all."""
    from ghaf.access.authorize import authorize_read
    from ghaf.registry.break_glass import BREAK_GLASS_ACTIONS

    cli = state(ctx)
    platform = cli.platform()
    authorize_read(platform, cli.actor(), "audit.read", resource or "audit")
    actions = BREAK_GLASS_ACTIONS if break_glass else None
    with platform.read_session() as session:
        rows = list(
            AuditLog().records(session, resource=resource, actions=actions, outcome=outcome)
        )
    if output == "json":
        for row in rows:
            typer.echo(
                json.dumps(
                    {
                        "seq": row.seq,
                        "ts": row.ts.isoformat(),
                        "actor": row.actor,
                        "action": row.action,
                        "resource": row.resource,
                        "project": row.project,
                        "outcome": row.outcome,
                        "details": json.loads(row.details or "{}"),
                    }
                )
            )
        return
    table = Table("seq", "time (UTC)", "actor", "action", "resource", "outcome", "details")
    for row in rows:
        table.add_row(
            str(row.seq),
            row.ts.isoformat(),
            row.actor,
            row.action,
            row.resource,
            row.outcome,
            row.details,
        )
    if not rows:
        cli.console.print("no audit records match")
        return
    cli.console.print(table)
