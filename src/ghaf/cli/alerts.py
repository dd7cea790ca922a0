"""``ghaf alerts``: send alerts in (for tests and integrations), list and resolve them,
and send what the outbox owes receivers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json, format_minute, to_jsonable
from ghaf.errors import GhafError, InvalidInputError

app = typer.Typer(
    help="Alerts: fire (JSON in), list, resolve, and deliver what receivers are owed.",
    no_args_is_help=True,
)
ProjectOption = Annotated[
    str | None, typer.Option("--project", help="Project (default: GHAF_PROJECT).")
]


def _documents(source: str) -> list[Any]:
    """Alerts from ``source``: inline JSON, a file, or ``-`` (standard input); an object,
    a list, or ``{"alerts": [...]}``."""
    if source == "-":
        text = sys.stdin.read()
    elif source.lstrip().startswith(("{", "[")):
        text = source
    else:
        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(
                f"{source} is neither JSON nor a file", hint="give JSON, a file or - for stdin"
            )
        text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(
            f"the alert is not valid JSON: {exc}", hint='e.g. {"name": "DriftHigh"}'
        ) from None
    if isinstance(document, dict) and "alerts" in document:
        document = document["alerts"]
    return document if isinstance(document, list) else [document]


@app.command("fire")
def fire(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="Alert JSON (Ghaf's shape), a file of it, or - for stdin.")
    ],
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Fire alerts given as JSON; each opens an incident or counts on its open one.

    JSON out: ``{"received", "duplicates", "inhibited", "opened": [...], "updated": [...]}``.
    """
    from ghaf.alerts.base import parse_alert

    cli = state(ctx)
    documents = _documents(source)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        result = client.fire_alerts(where, documents)
    else:
        from ghaf.incidents.ingest import ingest_alerts

        alerts = [parse_alert(document) for document in documents]
        platform = cli.platform().in_project(where)
        result = to_jsonable(ingest_alerts(platform, cli.actor(), alerts))
        if cli.settings.alerting.receivers:
            _deliver_quietly(cli, where)
    if output is Output.json:
        emit_json(result)
        return
    cli.console.print(
        f"{result['received']} alerts recorded ({result['duplicates']} repeats, "
        f"{result['inhibited']} inhibited); opened {', '.join(result['opened']) or 'none'}, "
        f"updated {', '.join(result['updated']) or 'none'}"
    )


def _deliver_quietly(cli: CliState, project: str) -> None:
    from ghaf.alerts.outbox import deliver_outbox

    try:
        deliver_outbox(cli.platform().in_project(project), cli.actor())
    except GhafError as exc:
        cli.console.print(f"deliveries wait in the outbox: {exc.headline}")


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="firing, resolved or inhibited.")] = None,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """List alerts, one per fingerprint. JSON: ``{"alerts": [...]}``."""
    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        found = client.alerts(where, status)
    else:
        from ghaf.incidents.ingest import list_alerts

        found = list_alerts(cli.platform().in_project(where), status=status)
    if output is Output.json:
        emit_json({"alerts": found})
        return
    table = Table("fingerprint", "name", "severity", "status", "count", "labels", "last seen")
    for a in found:
        labels = ", ".join(f"{k}={v}" for k, v in a["labels"].items())
        table.add_row(
            a["fingerprint"],
            a["name"],
            a["severity"],
            a["status"],
            str(a["count"]),
            labels,
            format_minute(a["last_seen"]),
        )
    cli.console.print(table)


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    fingerprint: Annotated[str, typer.Argument(help="The alert's fingerprint (ghaf alerts list).")],
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Mark a firing alert resolved (receivers are told; its incident stays open)."""
    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        result = client.resolve_alert(where, fingerprint)
    else:
        from ghaf.incidents.ingest import resolve_alert

        result = resolve_alert(cli.platform().in_project(where), cli.actor(), fingerprint)
        if cli.settings.alerting.receivers:
            _deliver_quietly(cli, where)
    if output is Output.json:
        emit_json(result)
    else:
        cli.console.print(f"alert {fingerprint} resolved")


@app.command("deliver")
def deliver(
    ctx: typer.Context, project: ProjectOption = None, output: OutputOption = Output.table
) -> None:
    """Send the deliveries that are due (webhooks, e-mail, PagerDuty, ServiceNow, bus).

    JSON: ``{"sent", "retried", "failed", "pending"}``.
    """
    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        report = client.deliver_alerts(where)
    else:
        from ghaf.alerts.outbox import deliver_outbox

        report = to_jsonable(deliver_outbox(cli.platform().in_project(where), cli.actor()))
    if output is Output.json:
        emit_json(report)
    else:
        cli.console.print(
            f"sent {report['sent']}, retrying {report['retried']}, failed {report['failed']}, "
            f"pending {report['pending']}"
        )
