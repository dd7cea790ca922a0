"""``ghaf incidents``: ITIL incidents raised by alerts (list, show, and each transition)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json, format_minute, to_jsonable

app = typer.Typer(
    help="Incidents: priority, state, assignment and timeline of what alerts raised.",
    no_args_is_help=True,
)
Number = Annotated[str, typer.Argument(help="The incident number, e.g. INC0000001.")]
NoteOption = Annotated[str, typer.Option("--note", "-m", help="Why (kept on the timeline).")]


def _row(table: Table, i: dict[str, Any]) -> None:
    table.add_row(
        i["number"],
        f"P{i['priority']}",
        i["state"],
        i["title"],
        str(i["alert_count"]),
        i["assigned_to"] or "",
        i["project"],
        format_minute(i["opened_at"]),
    )


def _table(cli: CliState, found: list[dict[str, Any]]) -> None:
    table = Table("number", "priority", "state", "title", "alerts", "assigned", "project", "opened")
    for item in found:
        _row(table, item)
    cli.console.print(table)


def _show(cli: CliState, record: dict[str, Any], output: Output) -> None:
    if output is Output.json:
        emit_json(record)
    else:
        _table(cli, [record])


@app.command("list")
def list_(
    ctx: typer.Context,
    state_: Annotated[
        str | None, typer.Option("--state", help="New, In Progress, On Hold, Resolved, ...")
    ] = None,
    project: Annotated[str | None, typer.Option(help="Only this project's.")] = None,
    output: OutputOption = Output.table,
) -> None:
    """List incidents, newest first, with MTTA/MTTR per priority.

    JSON: ``{"incidents": [...], "metrics": {"P1": {"count", "mtta_s", "mttr_s"}}}``.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        document = client.incidents(project, state_)
    else:
        from ghaf.incidents.records import incident_metrics, list_incidents

        where = [project or cli.settings.project]
        found = list_incidents(cli.platform(), projects=where, state=state_)
        document = to_jsonable({"incidents": found, "metrics": incident_metrics(found)})
    if output is Output.json:
        emit_json(document)
        return
    _table(cli, document["incidents"])
    for priority, m in document["metrics"].items():
        mtta = "-" if m["mtta_s"] is None else f"{m['mtta_s'] / 60:.1f} min"
        mttr = "-" if m["mttr_s"] is None else f"{m['mttr_s'] / 60:.1f} min"
        cli.console.print(f"{priority}: {m['count']} incidents, MTTA {mtta}, MTTR {mttr}")


@app.command("show")
def show(ctx: typer.Context, number: Number, output: OutputOption = Output.table) -> None:
    """Show one incident and its timeline. JSON: ``{"incident": {...}, "timeline": [...]}``."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        document = client.incident(number)
    else:
        from ghaf.incidents.records import get_incident

        record, timeline = get_incident(cli.platform(), number)
        document = to_jsonable({"incident": record, "timeline": timeline})
    if output is Output.json:
        emit_json(document)
        return
    _table(cli, [document["incident"]])
    links = document["incident"]["links"]
    for kind, nodes in links.items():
        if nodes:
            cli.console.print(f"{kind}: {', '.join(nodes)}")
    table = Table("at", "event", "by", "details")
    for event in document["timeline"]:
        table.add_row(
            # to the second: the closed loop's hops often fall in one minute
            event["at"][:19].replace("T", " "),
            event["kind"],
            event["actor"],
            str(event["details"]),
        )
    cli.console.print(table)


def _move(ctx: typer.Context, number: str, verb: str, note: str, output: Output) -> None:
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        record = client.move_incident(number, verb, note)
    else:
        from ghaf.incidents import lifecycle
        from ghaf.incidents.records import project_of_incident

        platform = cli.platform()
        where = platform.in_project(
            project_of_incident(platform, number) or platform.default_project
        )
        function = getattr(lifecycle, {"ack": "acknowledge"}.get(verb, verb))
        args = (number, note) if verb in ("hold", "resolve", "cancel", "reopen") else (number,)
        record = to_jsonable(function(where, cli.actor(), *args))
    _show(cli, record, output)


@app.command("ack")
def ack(ctx: typer.Context, number: Number, output: OutputOption = Output.table) -> None:
    """Acknowledge a New incident (-> In Progress; assigns it to you if unassigned)."""
    _move(ctx, number, "ack", "", output)


@app.command("hold")
def hold(
    ctx: typer.Context, number: Number, note: NoteOption = "", output: OutputOption = Output.table
) -> None:
    """Put an incident On Hold (waiting on someone else)."""
    _move(ctx, number, "hold", note, output)


@app.command("resume")
def resume(ctx: typer.Context, number: Number, output: OutputOption = Output.table) -> None:
    """Resume an On Hold incident (-> In Progress)."""
    _move(ctx, number, "resume", "", output)


@app.command("resolve")
def resolve(
    ctx: typer.Context, number: Number, note: NoteOption = "", output: OutputOption = Output.table
) -> None:
    """Resolve an incident (the next alert with its fingerprint opens a new one)."""
    _move(ctx, number, "resolve", note, output)


@app.command("close")
def close(ctx: typer.Context, number: Number, output: OutputOption = Output.table) -> None:
    """Close a Resolved incident (final)."""
    _move(ctx, number, "close", "", output)


@app.command("cancel")
def cancel(
    ctx: typer.Context, number: Number, note: NoteOption = "", output: OutputOption = Output.table
) -> None:
    """Cancel an open incident (final: it was not an incident)."""
    _move(ctx, number, "cancel", note, output)


@app.command("reopen")
def reopen(
    ctx: typer.Context, number: Number, note: NoteOption = "", output: OutputOption = Output.table
) -> None:
    """Reopen a Resolved incident (-> In Progress)."""
    _move(ctx, number, "reopen", note, output)


@app.command("assign")
def assign(
    ctx: typer.Context,
    number: Number,
    assignee: Annotated[str, typer.Argument(help="The principal to assign it to.")],
    output: OutputOption = Output.table,
) -> None:
    """Assign an open incident to a person."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        record = client.assign_incident(number, assignee)
    else:
        from ghaf.incidents.lifecycle import assign as assign_incident
        from ghaf.incidents.records import project_of_incident

        platform = cli.platform()
        where = platform.in_project(
            project_of_incident(platform, number) or platform.default_project
        )
        record = to_jsonable(assign_incident(where, cli.actor(), number, assignee))
    _show(cli, record, output)


@app.command("note")
def note(
    ctx: typer.Context,
    number: Number,
    text: Annotated[str, typer.Argument(help="The work note.")],
    output: OutputOption = Output.table,
) -> None:
    """Add a work note to an incident's timeline."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        record = client.note_incident(number, text)
    else:
        from ghaf.incidents.lifecycle import add_note
        from ghaf.incidents.records import project_of_incident

        platform = cli.platform()
        where = platform.in_project(
            project_of_incident(platform, number) or platform.default_project
        )
        record = to_jsonable(add_note(where, cli.actor(), number, text))
    _show(cli, record, output)
