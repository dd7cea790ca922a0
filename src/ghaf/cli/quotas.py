"""``ghaf quotas``: set, show and clear projects' quotas (CPU-hours, GPU-hours per
period, concurrent jobs) and fair-share weights, with each project's usage this period.

Setting and clearing are home-wide: a role bound on every project ('*') may.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable

app = typer.Typer(
    help="Project quotas: CPU-hours, GPU-hours, concurrent jobs, fair-share weight.",
    no_args_is_help=True,
)


def _limit(value: float | int | None, unit: str = "") -> str:
    return "unlimited" if value is None else f"{value:g}{unit}"


@app.command("set")
def set_(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="The project.")],
    cpu_hours: Annotated[float | None, typer.Option(help="CPU-hours per period.")] = None,
    gpu_hours: Annotated[float | None, typer.Option(help="GPU-hours per period.")] = None,
    period: Annotated[str | None, typer.Option(help="The rolling period: 24h, 30d, 4w.")] = None,
    concurrent_jobs: Annotated[
        int | None, typer.Option(help="Jobs of the project that may run at once.")
    ] = None,
    weight: Annotated[
        float | None, typer.Option(help="Fair-share weight against other projects (default 1).")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Set some of a project's limits; those not given keep their values."""
    cli = state(ctx)
    change: dict[str, Any] = {
        "cpu_hours": cpu_hours,
        "gpu_hours": gpu_hours,
        "period": period,
        "max_concurrent": concurrent_jobs,
        "weight": weight,
    }
    change = {k: v for k, v in change.items() if v is not None}
    client = cli.remote()
    if client is not None:
        report = client.put(f"/projects/{project}/quota", change)
    else:
        from ghaf.scheduling.quotas import quota_report, set_quota

        set_quota(cli.platform(), cli.actor(), project, **change)
        report = to_jsonable(quota_report(cli.platform(), project))
    _print(cli, [report], output, one=True)


@app.command("show")
def show(
    ctx: typer.Context,
    project: Annotated[
        str | None, typer.Argument(help="One project (default: every project).")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Projects' quotas and what each used this period."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        if project is not None:
            reports = [client.get(f"/projects/{project}/quota")]
        else:
            reports = client.get("/quotas")["quotas"]
    else:
        from ghaf.projects.service import project_names
        from ghaf.scheduling.quotas import list_quotas, quota_report

        platform = cli.platform()
        names = (
            [project]
            if project
            else sorted({q.project for q in list_quotas(platform)} | set(project_names(platform)))
        )
        reports = [to_jsonable(quota_report(platform, name)) for name in names]
    _print(cli, reports, output, one=project is not None)


@app.command("clear")
def clear(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="The project.")],
    output: OutputOption = Output.table,
) -> None:
    """Remove a project's limits (unlimited again, weight 1)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        cleared = client.delete(f"/projects/{project}/quota")
    else:
        from ghaf.scheduling.quotas import clear_quota

        cleared = {"deleted": to_jsonable(clear_quota(cli.platform(), cli.actor(), project))}
    if output is Output.json:
        emit_json(cleared)
        return
    cli.console.print(f"cleared the quota of {project}")


def _print(cli: Any, reports: list[dict[str, Any]], output: Output, *, one: bool) -> None:
    if output is Output.json:
        emit_json(reports[0] if one else {"quotas": reports})
        return
    table = Table(
        "project", "CPU-hours used", "GPU-hours used", "period", "concurrent", "running", "weight"
    )
    for r in reports:
        usage = r["usage"]
        table.add_row(
            r["project"],
            f"{usage['cpu_hours']:.2f} / {_limit(r['cpu_hours'])}",
            f"{usage['gpu_hours']:.2f} / {_limit(r['gpu_hours'])}",
            f"{r['period_s'] / 86_400:g}d",
            _limit(r["max_concurrent"]),
            str(usage["running"]),
            f"{r['weight']:g}",
        )
    cli.console.print(table)
