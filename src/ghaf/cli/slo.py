"""``ghaf slo``: define SLOs per deployment, list them, evaluate their burn rates, and
export them as Prometheus rules."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import InvalidInputError

app = typer.Typer(
    help="SLOs: define, list, burn-rate status (fires alerts), export Prometheus rules.",
    no_args_is_help=True,
)
ProjectOption = Annotated[
    str | None, typer.Option("--project", help="Project (default: GHAF_PROJECT).")
]


class RuleFormat(StrEnum):
    prometheus = "prometheus"


def _objective(text: str) -> float:
    """``0.999``, ``99.9`` or ``99.9%`` -> 0.999."""
    raw = text.strip().removesuffix("%")
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInputError(
            f"--objective {text!r} is not a number", hint="e.g. --objective 99.9"
        ) from None
    return value / 100 if text.strip().endswith("%") or value >= 1 else value


@app.command("define")
def define(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The SLO's name, e.g. fraud-availability.")],
    deployment: Annotated[str, typer.Option(help="The deployment it holds to account.")],
    sli: Annotated[str, typer.Option(help="availability, latency or quality.")],
    objective: Annotated[str, typer.Option(help="Target share of good events: 99.9 or 0.999.")],
    threshold_ms: Annotated[
        float | None, typer.Option(help="Latency SLOs: a request under this is good.")
    ] = None,
    window_days: Annotated[int, typer.Option(help="The SLO window in days.")] = 30,
    min_requests_per_hour: Annotated[
        int, typer.Option(help="Below this traffic (scaled to each window) nothing alerts.")
    ] = 100,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Define (or redefine) an SLO of a deployment; its error budget is 1 - objective.

    JSON out: the SLO (``name``, ``deployment``, ``sli``, ``objective``, ``budget``, ...).
    """
    from ghaf.slo import SLO
    from ghaf.slo.store import define_slo

    cli = state(ctx)
    slo = SLO(
        name=name,
        deployment=deployment,
        sli=sli,
        objective=_objective(objective),
        window_days=window_days,
        threshold_ms=threshold_ms,
        min_requests_per_hour=min_requests_per_hour,
    )
    platform = cli.platform().in_project(project or cli.settings.project)
    define_slo(platform, cli.actor(), slo)
    if output is Output.json:
        emit_json(slo.to_dict())
        return
    cli.console.print(
        f"SLO {slo.name}: {slo.sli} of {slo.deployment} at {slo.objective:.4%} over "
        f"{slo.window_days} days (budget {slo.budget:.4%})"
    )


@app.command("list")
def list_(
    ctx: typer.Context, project: ProjectOption = None, output: OutputOption = Output.table
) -> None:
    """List the project's SLOs. JSON: ``{"slos": [...]}``."""
    from ghaf.slo.store import list_slos

    cli = state(ctx)
    slos = list_slos(cli.platform().in_project(project or cli.settings.project))
    if output is Output.json:
        emit_json({"slos": [s.to_dict() for s in slos]})
        return
    table = Table("name", "deployment", "sli", "objective", "budget", "window", "min req/h")
    for s in slos:
        table.add_row(
            s.name,
            s.deployment,
            s.sli + (f" < {s.threshold_ms:g} ms" if s.threshold_ms else ""),
            f"{s.objective:.4%}",
            f"{s.budget:.4%}",
            f"{s.window_days}d",
            str(s.min_requests_per_hour),
        )
    cli.console.print(table)


def _events(slo: Any, events: Path | None, log: Path | None) -> Any:
    from ghaf.slo import sources

    if (events is None) == (log is None):
        raise InvalidInputError(
            "give one of --events or --log",
            hint="--events FILE (Parquet or CSV: ts, good, total) or --log DIR (prediction log)",
        )
    if log is not None:
        from ghaf.serving.predlog import read_prediction_log

        return sources.from_prediction_log(read_prediction_log(log, ["ts", "latency_ms"]), slo)
    if events is None or not events.is_file():
        raise InvalidInputError(f"--events {events} is not a file", hint="give a Parquet or CSV")
    if events.suffix == ".csv":
        import pyarrow.csv as pacsv

        return sources.from_table(pacsv.read_csv(events))
    import pyarrow.parquet as pq

    return sources.from_table(pq.read_table(events))


@app.command("status")
def status(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The SLO.")],
    events: Annotated[
        Path | None, typer.Option(help="Parquet or CSV of ts (epoch s), good, total.")
    ] = None,
    log: Annotated[
        Path | None, typer.Option(help="A prediction log directory (latency SLOs).")
    ] = None,
    at: Annotated[
        float | None, typer.Option(help="Evaluate at this epoch second (default: the last).")
    ] = None,
    fire: Annotated[
        bool, typer.Option("--fire", help="Fire alerts for what pages or tickets.")
    ] = False,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Burn rates of each window pair and its verdict (page, ticket or none).

    JSON: ``{"slo", "at", "verdicts": [{"window", "action", "burn_long", "burn_short",
    "requests_long"}], "alerts": {...} | null}``.
    """
    from ghaf.slo import verdicts_at
    from ghaf.slo.alerting import fire_verdicts
    from ghaf.slo.store import get_slo

    cli = state(ctx)
    platform = cli.platform().in_project(project or cli.settings.project)
    slo = get_slo(platform, name)
    series = _events(slo, events, log)
    when = float(series.times()[-1]) if at is None else at
    verdicts = verdicts_at(slo, series, when)
    fired = fire_verdicts(platform, cli.actor(), slo, verdicts) if fire else None
    rows: list[dict[str, Any]] = [
        {
            "window": v.window,
            "action": v.action,
            "burn_long": v.burn_long,
            "burn_short": v.burn_short,
            "requests_long": v.requests_long,
        }
        for v in verdicts
    ]
    if output is Output.json:
        emit_json({"slo": slo.name, "at": when, "verdicts": rows, "alerts": to_jsonable(fired)})
        return
    table = Table("window", "verdict", "burn (long)", "burn (short)", "requests")
    for r in rows:
        table.add_row(
            r["window"],
            r["action"],
            f"{r['burn_long']:.2f}x",
            f"{r['burn_short']:.2f}x",
            str(r["requests_long"]),
        )
    cli.console.print(table)
    if fired is not None:
        cli.console.print(f"alerts fired; opened {', '.join(fired.opened) or 'none'}")


@app.command("export-rules")
def export_rules(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="SLOs (default: all).")] = None,
    format: Annotated[RuleFormat, typer.Option("--format", help="Rule format.")] = (
        RuleFormat.prometheus
    ),
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Export SLOs as Prometheus recording and alerting rules (``promtool check rules``).

    JSON: ``{"format": "prometheus", "groups": [...]}``; otherwise the YAML rules file.
    """
    from ghaf.slo import prometheus
    from ghaf.slo.store import get_slo, list_slos

    cli = state(ctx)
    platform = cli.platform().in_project(project or cli.settings.project)
    slos = [get_slo(platform, n) for n in names] if names else list_slos(platform)
    if not slos:
        raise InvalidInputError("there are no SLOs to export", hint="ghaf slo define ...")
    if output is Output.json:
        emit_json({"format": format.value, **prometheus.rule_groups(slos)})
        return
    text = prometheus.export_rules(slos)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        cli.console.print(f"wrote {len(slos)} SLOs' rules to {out}")
