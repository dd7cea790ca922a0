"""``ghaf cost``: what runs, pipeline steps, batch jobs and deployments cost (report), and
recording the usage of a job that ran outside Ghaf (record)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import InvalidInputError

app = typer.Typer(
    help="Cost: usage x the price sheet by project, model, deployment or user; record usage.",
    no_args_is_help=True,
)


@app.command("report")
def report(
    ctx: typer.Context,
    by: Annotated[str, typer.Option(help="Group by project, model, deployment or user.")] = (
        "project"
    ),
    since: Annotated[
        str, typer.Option(help="Window start: 30m, 24h, 7d, 2w before now, or an ISO time.")
    ] = "7d",
    until: Annotated[
        str | None, typer.Option(help="Window end (default: now): a span before now or ISO.")
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="Only this project (default: every project you may read).")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Cost of the work that ended in a window, grouped; idle cost (held but unused) apart,
    and cost per 1,000 predictions for deployments.

    Each resource is charged as OpenCost does: max(request, usage) x the price sheet
    (settings ``cost``). JSON: ``{"by", "since", "until", "prices", "groups": [{"key",
    "cost", "usage_cost", "idle_cost", "cpu_hours", "memory_gb_hours", "gpu_hours",
    "replica_hours", "predictions", "cost_per_1000_predictions", "by_kind", ...}],
    "total", "nested_records"}``, the same document as ``GET /api/v1/cost``.
    """
    from ghaf.cost.report import check_grouping, cost_report, parse_since, parse_until
    from ghaf.metadata.base import utcnow

    check_grouping(by)
    now = utcnow()
    start, end = parse_since(since, now), parse_until(until, now)
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        document = client.get(
            "/cost", by=by, since=start.isoformat(), until=end.isoformat(), project=project
        )
    else:
        document = to_jsonable(
            cost_report(cli.platform(), cli.actor(), by=by, since=start, until=end, project=project)
        )
    if output is Output.json:
        emit_json(document)
        return
    _print(cli.console, document)


def _money(value: float | None, currency: str) -> str:
    return "-" if value is None else f"{value:,.4f} {currency}"


def _print(console: Any, document: dict[str, Any]) -> None:
    currency = document["prices"]["currency"]
    table = Table(
        document["by"], "cost", "idle", "CPU-h", "GB-h", "GPU-h", "replica-h", "predictions",
        "per 1,000 predictions",
        title=f"cost from {document['since'][:16]} to {document['until'][:16]}",
    )  # fmt: skip
    for group in [*document["groups"], {**document["total"], "key": "total"}]:
        table.add_row(
            "-" if group["key"] is None else str(group["key"]),
            _money(group["cost"], currency),
            _money(group["idle_cost"], currency),
            f"{group['cpu_hours_billed']:.4f}",
            f"{group['memory_gb_hours_billed']:.4f}",
            f"{group['gpu_hours_billed']:.4f}",
            f"{group['replica_hours']:.4f}",
            f"{group['predictions']:,}",
            _money(group["cost_per_1000_predictions"], currency),
        )
    console.print(table)


@app.command("record")
def record(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A JSON usage record (see the cost guide).")],
    project: Annotated[
        str | None, typer.Option("--project", help="Project (default: GHAF_PROJECT).")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Record what a job held and used (a job run outside Ghaf, a GPU box's batch): one
    JSON object with kind, ref, started_at, ended_at, wall_s and the usage fields.

    JSON out: the stored record with its project and user (``usage.record``, audited).
    """
    from ghaf.cost.base import Usage
    from ghaf.cost.store import record_usage

    cli = state(ctx)
    usage = Usage.from_dict(_read_object(file))
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        stored = client.post(f"/projects/{where}/usage", to_jsonable(usage.to_dict()))
    else:
        done = record_usage(cli.platform().in_project(where), cli.actor(), usage)
        stored = to_jsonable(done.to_dict())
    if output is Output.json:
        emit_json(stored)
        return
    cli.console.print(f"recorded {usage.node} in {stored['project']} ({usage.wall_s:g} s)")


def _read_object(file: Path) -> dict[str, Any]:
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(
            f"cannot read a JSON usage record from {file}: {exc}",
            hint="give a file holding one JSON object",
        ) from None
    if not isinstance(body, dict):
        raise InvalidInputError(f"{file} holds no JSON object", hint="give one JSON object")
    return body
