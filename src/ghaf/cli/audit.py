"""``ghaf audit``: verify the tamper-evident trail, export it, show a resource's history."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ghaf.cli.context import state
from ghaf.errors import IntegrityError, InvalidInputError

app = typer.Typer(help="Audit: the hash-chained record of every operation.", no_args_is_help=True)


@app.command("verify")
def verify(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", help="text or json.")] = "text",
) -> None:
    """Recompute the chain against the signed checkpoints and their copies.

    Names the first bad record, or the range of records a problem concerns. Records
    after the newest checkpoint are a warning while younger than the checkpoint
    interval (plus slack) and a failure after. JSON: {status: valid|pending|broken,
    records, checkpoints, copies, findings: [{severity, seq, range, message}]}.
    """
    from ghaf.access.audit import verify_trail

    if output not in ("text", "json"):
        raise InvalidInputError(f"--output {output!r} is not supported", hint="use text or json")
    cli = state(ctx)
    report = verify_trail(cli.platform())
    if output == "json":
        typer.echo(json.dumps(report.to_json()))
    else:
        for finding in report.warnings:
            cli.console.print(f"warning: {finding.message}", highlight=False, soft_wrap=True)
    if not report.ok:
        err = Console(stderr=True)
        for finding in report.failures[1:]:
            err.print(f"also: {finding.message}", highlight=False, soft_wrap=True)
        raise IntegrityError(report.headline, hint=report.failures[0].hint)
    if output == "text":
        copies = "" if report.copies is None else f", {report.copies} copies"
        cli.console.print(
            f"audit trail valid: {report.records} records, {report.checkpoints} signed "
            f"checkpoints{copies}",
            highlight=False,
        )


@app.command("checkpoint")
def checkpoint(ctx: typer.Context) -> None:
    """Sign a checkpoint over every record so far; append it to the log and copy it."""
    from ghaf.access.audit import create_checkpoint

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
    from ghaf.security.audit import export_records

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
    from ghaf.security.audit import AuditLog

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
