"""``ghaf audit``: verify the tamper-evident trail, export it, show a resource's history."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ghaf.cli import audit_ship
from ghaf.cli.context import state
from ghaf.errors import IntegrityError, InvalidInputError

app = typer.Typer(help="Audit: the hash-chained record of every operation.", no_args_is_help=True)
app.command("ship")(audit_ship.ship)
app.command("sinks")(audit_ship.sinks)


@app.command("verify")
def verify(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Recompute the chain against the signed checkpoints and their copies.

    Names the first bad record, or the range of records a problem concerns. Records
    after the newest checkpoint are a warning while younger than the checkpoint
    interval (plus slack) and a failure after. JSON: {status: valid|pending|broken,
    records, checkpoints, copies, findings: [{severity, seq, range, message}]}.
    """
    if output not in ("text", "json"):
        raise InvalidInputError(f"--output {output!r} is not supported", hint="use text or json")
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        report = client.verify_audit()
        hint = "compare the trail with the server's checkpoint copies; see docs/security.md"
    else:
        from ghaf.access.audit import verify_trail

        found = verify_trail(cli.platform())
        report = found.to_json()
        hint = found.failures[0].hint if found.failures else ""
    failures = [f for f in report["findings"] if f["severity"] == "error"]
    if output == "json":
        typer.echo(json.dumps(report))
    else:
        for finding in report["findings"]:
            if finding["severity"] == "warning":
                cli.console.print(f"warning: {finding['message']}", highlight=False, soft_wrap=True)
    if failures:
        err = Console(stderr=True)
        for finding in failures[1:]:
            err.print(f"also: {finding['message']}", highlight=False, soft_wrap=True)
        first = failures[0]
        where = f" at record {first['seq']}" if first["seq"] is not None else ""
        raise IntegrityError(f"audit trail is broken{where}: {first['message']}", hint=hint)
    if output == "text":
        copies = "" if report["copies"] is None else f", {report['copies']} copies"
        cli.console.print(
            f"audit trail valid: {report['records']} records, {report['checkpoints']} signed "
            f"checkpoints{copies}",
            highlight=False,
        )


@app.command("checkpoint")
def checkpoint(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Sign a checkpoint over every record so far; append it to the log and copy it.

    JSON: {size, root, head, ts, key, frontier, sig}.
    """
    if output not in ("text", "json"):
        raise InvalidInputError(f"--output {output!r} is not supported", hint="use text or json")
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        made = client.audit_checkpoint()
    else:
        from dataclasses import asdict

        from ghaf.access.audit import create_checkpoint

        made = asdict(create_checkpoint(cli.platform(), cli.actor()))
    if output == "json":
        typer.echo(json.dumps(made))
        return
    cli.console.print(f"checkpoint at {made['size']} records, root {made['root']}")


@app.command("export")
def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="Output format: jsonl.")] = "jsonl",
    resource: Annotated[str | None, typer.Option(help="Only records of this resource.")] = None,
    project: Annotated[
        str | None, typer.Option(help="Only this project's records (needed against a server).")
    ] = None,
) -> None:
    """Write records as JSON lines to standard output (for a SIEM)."""
    if fmt != "jsonl":
        raise InvalidInputError(f"--format {fmt!r} is not supported", hint="use --format jsonl")
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        if project is None or resource is not None:
            raise InvalidInputError(
                "against a server, audit export is by project",
                hint="ghaf audit export --project NAME (a project's auditors)",
            )
        for line in client.audit_lines(project):
            sys.stdout.buffer.write(line)
        sys.stdout.flush()
        return
    from ghaf.security.audit import export_records

    with cli.platform().read_session() as session:
        for line in export_records(session, resource=resource, project=project):
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
