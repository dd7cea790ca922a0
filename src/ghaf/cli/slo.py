"""``ghaf slo``: define SLOs per deployment, list them, evaluate their burn rates, and
export them as Prometheus rules."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import CliState, state
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
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        fields = {k: v for k, v in slo.to_dict().items() if k not in ("name", "budget")}
        client.define_slo(where, slo.name, **fields)
    else:
        define_slo(cli.platform().in_project(where), cli.actor(), slo)
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
    cli = state(ctx)
    slos = _slos(cli, project)
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


def _slos(cli: CliState, project: str | None, names: list[str] | None = None) -> list[Any]:
    """The project's SLOs (those named, if any), from the server or the home."""
    from ghaf.slo import SLO

    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        if names:
            return [SLO.from_dict(client.slo(where, n)) for n in names]
        return [SLO.from_dict(doc) for doc in client.slos(where)]
    from ghaf.slo.store import get_slo, list_slos

    platform = cli.platform().in_project(where)
    return [get_slo(platform, n) for n in names] if names else list_slos(platform)


def _show(cli: CliState, slo: Any, output: Output) -> None:
    if output is Output.json:
        emit_json(slo.to_dict())
        return
    threshold = f" under {slo.threshold_ms:g} ms" if slo.threshold_ms else ""
    cli.console.print(
        f"SLO {slo.name}: {slo.sli}{threshold} of {slo.deployment} at {slo.objective:.4%} over "
        f"{slo.window_days} days (budget {slo.budget:.4%}; nothing alerts under "
        f"{slo.min_requests_per_hour} requests an hour)"
    )


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The SLO.")],
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Show one SLO. JSON: the SLO (``name``, ``deployment``, ``sli``, ``objective``, ...)."""
    cli = state(ctx)
    [slo] = _slos(cli, project, [name])
    _show(cli, slo, output)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The SLO.")],
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Delete an SLO (the alerts and incidents it raised stay).

    JSON: ``{"deleted": {...}}``, the SLO it was.
    """
    from ghaf.slo import SLO

    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        gone = SLO.from_dict(client.delete_slo(where, name)["deleted"])
    else:
        from ghaf.slo.store import delete_slo

        gone = delete_slo(cli.platform().in_project(where), cli.actor(), name)
    if output is Output.json:
        emit_json({"deleted": gone.to_dict()})
        return
    cli.console.print(f"deleted SLO {gone.name} of {gone.deployment}")


def _events(cli: Any, slo: Any, events: Path | None, log: Path | None) -> Any:
    from ghaf.slo import sources

    if (events is None) == (log is None):
        raise InvalidInputError(
            "give one of --events or --log",
            hint="--events FILE (Parquet or CSV: ts, good, total) or --log DIR (prediction log)",
        )
    if log is not None:
        from ghaf.serving.predlog import prediction_log_keys, read_prediction_log

        # The log is encrypted with the home's KEK: only an embedded CLI holds it.
        keys = prediction_log_keys(cli.platform()) if cli.remote() is None else None
        log_table = read_prediction_log(log, ["ts", "latency_ms"], keys=keys)
        return sources.from_prediction_log(log_table, slo)
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

    The events are read here (a file, or a prediction log directory) and evaluated where
    the SLO is kept: on the home, or by the server (``GHAF_URL``).

    JSON: ``{"slo", "at", "verdicts": [{"window", "severity", "action", "firing",
    "burn_long", "burn_short", "requests_long", "at"}], "alerts": {...} | null}``.
    """
    cli = state(ctx)
    where = project or cli.settings.project
    [slo] = _slos(cli, project, [name])
    series = _events(cli, slo, events, log)
    client = cli.remote()
    if client is not None:
        document = client.slo_status(where, name, series.to_dict(), at=at, fire=fire)
    elif fire:
        from ghaf.slo.alerting import fire_slo

        platform = cli.platform().in_project(where)
        document = to_jsonable(fire_slo(platform, cli.actor(), name, series, at))
    else:
        from ghaf.slo.engine import status as evaluate

        document = {**evaluate(slo, series, at), "alerts": None}
    if output is Output.json:
        emit_json(document)
        return
    rows = document["verdicts"]
    table = Table("window", "verdict", "burn (long)", "burn (short)", "requests")
    for r in rows:
        table.add_row(
            r["window"],
            r["action"],
            _rate(r["burn_long"]),
            _rate(r["burn_short"]),
            str(r["requests_long"]),
        )
    cli.console.print(table)
    fired = document["alerts"]
    if fired is not None:
        cli.console.print(f"alerts fired; opened {', '.join(fired['opened']) or 'none'}")


def _rate(burn: float | None) -> str:
    """A burn rate for the table; none without traffic (NaN here, null from a server)."""
    return "-" if burn is None or burn != burn else f"{burn:.2f}x"


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

    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        document = client.slo_rules(project or cli.settings.project, names or ())
        text = document.pop("rules")
    else:
        slos = _slos(cli, project, names)
        if not slos:
            raise InvalidInputError("there are no SLOs to export", hint="ghaf slo define ...")
        document = {"format": format.value, **prometheus.rule_groups(slos)}
        text = prometheus.export_rules(slos)
    if output is Output.json:
        emit_json(document)
        return
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        count = sum(1 for g in document["groups"] if g["name"].endswith("-alerts"))
        cli.console.print(f"wrote {count} SLOs' rules to {out}")


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The SLO (availability or latency).")],
    metrics: Annotated[
        list[str],
        typer.Option(
            "--metrics",
            help="Base URL of a ghaf serve of its deployment (served with --metrics-public); "
            "repeat for each server.",
        ),
    ],
    every: Annotated[str, typer.Option("--every", help="How often to read them (10s to 1h).")] = (
        "60s"
    ),
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Evaluate an SLO on a schedule: the live loop (ghaf server, or ghaf monitor run
    --loop) reads the servers' counters, keeps them, and fires and resolves its burn-rate
    alerts (pages and tickets open incidents). JSON: the schedule."""
    from ghaf.monitoring.schedule import parse_duration

    cli = state(ctx)
    where = project or cli.settings.project
    seconds = parse_duration(every, "--every")
    client = cli.remote()
    if client is not None:
        document = client.schedule_slo(where, name, metrics, seconds)
    else:
        from ghaf.slo.schedule import schedule_slo

        platform = cli.platform().in_project(where)
        document = schedule_slo(platform, cli.actor(), name, metrics, seconds).to_dict()
    if output is Output.json:
        emit_json(document)
        return
    cli.console.print(
        f"SLO {name}: read every {document['every_s']} s from {', '.join(document['targets'])}"
    )


@app.command("unschedule")
def unschedule(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The scheduled SLO.")],
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Stop evaluating an SLO on a schedule (its samples go; its incidents stay).
    JSON: ``{"unscheduled": {...}}``."""
    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        gone = client.unschedule_slo(where, name)["unscheduled"]
    else:
        from ghaf.slo.schedule import unschedule_slo

        gone = unschedule_slo(cli.platform().in_project(where), cli.actor(), name).to_dict()
    if output is Output.json:
        emit_json({"unscheduled": gone})
        return
    cli.console.print(f"SLO {name} is no longer evaluated on a schedule")


@app.command("schedules")
def schedules(
    ctx: typer.Context, project: ProjectOption = None, output: OutputOption = Output.table
) -> None:
    """The project's scheduled SLOs: targets, interval, next due time, last error and the
    windows firing now. JSON: ``{"schedules": [...]}``."""
    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        found = client.slo_schedules(where)
    else:
        from ghaf.slo.schedule import list_slo_scrapes

        found = [s.to_dict() for s in list_slo_scrapes(cli.platform().in_project(where))]
    if output is Output.json:
        emit_json({"schedules": found})
        return
    table = Table("name", "every", "targets", "next due", "firing", "last error")
    for s in found:
        table.add_row(
            s["name"],
            f"{s['every_s']}s",
            "\n".join(s["targets"]),
            s["next_due"],
            ", ".join(s["firing"]) or "-",
            s["last_error"] or "-",
        )
    cli.console.print(table)
