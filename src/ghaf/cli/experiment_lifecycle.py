"""``ghaf experiments create|start|status|stop|decide|list`` and ``outcomes import``.

Experiments over deployments, on the home or (with a login) against ``ghaf server``;
every command prints a table for people or ``--output json`` (the API's shapes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import InvalidInputError

ProjectOption = Annotated[
    str | None, typer.Option("--project", help="Project (default: GHAF_PROJECT).")
]
LogDirOption = Annotated[
    Path | None,
    typer.Option(
        "--log-dir",
        help="The prediction log ghaf serve --log-dir wrote (default: HOME/predictions; "
        "against a server, always the server's).",
    ),
]


def _weights(items: list[str]) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in items:
        ref, sep, weight = item.partition("=")
        try:
            weights[ref] = float(weight) if sep else 1.0
        except ValueError:
            raise InvalidInputError(
                f"--variant {item!r}: weight {weight!r} is not a number",
                hint="e.g. --variant fraud:1=50 --variant fraud:2=50",
            ) from None
    return weights


def _rows(cli: CliState, found: list[dict[str, Any]]) -> None:
    table = Table("name", "project", "deployment", "variants", "holdout", "unit", "status")
    for e in found:
        variants = ", ".join(f"{ref} {w:g}" for ref, w in e["variants"].items())
        unit = e["unit"]["kind"] + (
            ":" + e["unit"]["name"] if e["unit"]["kind"] != "header" else ""
        )
        table.add_row(
            e["name"], e["project"], e["deployment"], variants, f"{e['holdout']:g}", unit,
            e["status"],
        )  # fmt: skip
    cli.console.print(table)


def _show(cli: CliState, record: dict[str, Any], output: Output) -> None:
    if output is Output.json:
        emit_json(record)
        return
    _rows(cli, [record])
    decision = record.get("decision")
    if decision:
        verdict = decision["decision"]
        cli.console.print(f"decision: {verdict['verdict']}")
        for reason in verdict["reasons"]:
            cli.console.print(f"  - {reason}")


def create(
    ctx: typer.Context,
    name: str,
    deployment: Annotated[str, typer.Option("--deployment", help="The deployment it splits.")],
    variant: Annotated[
        list[str], typer.Option("--variant", help="NAME:V=WEIGHT, one per variant (2+).")
    ],
    control: Annotated[str | None, typer.Option(help="The control (default: first).")] = None,
    goal: Annotated[str, typer.Option(help="The outcome metric judged.")] = "outcome",
    guardrail: Annotated[
        list[str] | None, typer.Option("--guardrail", help="latency_ms:lower[:MARGIN].")
    ] = None,
    holdout: Annotated[float, typer.Option(help="Share of units held out (control).")] = 0.0,
    unit: Annotated[
        str, typer.Option(help="Where requests carry the unit: header, input:N, parameter:N.")
    ] = "header",
    shadow: Annotated[
        list[str] | None, typer.Option("--shadow", help="A served version scored, never returned.")
    ] = None,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Record a draft experiment on a deployment (ghaf experiments start runs it)."""
    cli = state(ctx)
    where = project or cli.settings.project
    weights = _weights(variant)
    guardrails = guardrail if guardrail is not None else ["latency_ms:lower"]
    client = cli.remote()
    if client is not None:
        record = client.create_experiment(
            name, deployment, weights, project=where, goal=goal, guardrails=guardrails,
            holdout=holdout, unit=unit, shadows=shadow or [], control=control,
        )  # fmt: skip
    else:
        from ghaf.experiments.service import create_experiment

        made = create_experiment(
            cli.platform().in_project(where), cli.actor(), name, deployment, weights,
            goal=goal, guardrails=guardrails, holdout=holdout, unit=unit,
            shadows=shadow or [], control=control, project=where,
        )  # fmt: skip
        record = to_jsonable(made)
    _show(cli, record, output)


def _move(ctx: typer.Context, name: str, how: str, output: Output) -> None:
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        record = getattr(client, f"{how}_experiment")(name)
    else:
        from ghaf.experiments import service

        platform = cli.platform()
        project = service.experiment_project(platform, name) or platform.default_project
        moved = getattr(service, f"{how}_experiment")(
            platform.in_project(project), cli.actor(), name
        )
        record = to_jsonable(moved)
    _show(cli, record, output)


def start(ctx: typer.Context, name: str, output: OutputOption = Output.table) -> None:
    """Start assigning units: running ghaf serve workers apply it within seconds."""
    _move(ctx, name, "start", output)


def stop(ctx: typer.Context, name: str, output: OutputOption = Output.table) -> None:
    """Stop assigning units: the deployment serves by its own weights again."""
    _move(ctx, name, "stop", output)


def decide(
    ctx: typer.Context, name: str, log_dir: LogDirOption = None, output: OutputOption = Output.table
) -> None:
    """Judge a stopped experiment and record (and audit) its decision.

    The prediction log's units joined to their outcomes, judged by the statistics
    engine; the record keeps every value, p-value, interval and sample size used.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        record = client.decide_experiment(name)
    else:
        from ghaf.experiments import service

        platform = cli.platform()
        project = service.experiment_project(platform, name) or platform.default_project
        decided = service.decide_experiment(
            platform.in_project(project), cli.actor(), name, log_dir=log_dir
        )
        record = to_jsonable(decided)
    _show(cli, record, output)


def status(
    ctx: typer.Context, name: str, log_dir: LogDirOption = None, output: OutputOption = Output.table
) -> None:
    """Show an experiment and an interim analysis of its units so far (nothing stored)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        doc = client.experiment_status(name)
    else:
        from ghaf.experiments import service

        platform = cli.platform()
        project = service.experiment_project(platform, name) or platform.default_project
        doc = to_jsonable(
            service.experiment_status(platform.in_project(project), name, log_dir=log_dir)
        )
    if output is Output.json:
        emit_json(doc)
        return
    _rows(cli, [doc["experiment"]])
    analysis = doc.get("analysis")
    if analysis is None:
        cli.console.print(f"no analysis yet: {doc.get('analysis_error', 'no data')}")
        return
    goal = analysis["goal"]
    cli.console.print(
        f"units {analysis['units']} (labelled {analysis['labelled_units']}); "
        f"lift {goal['absolute_lift']:.4g} [{goal['ci']['low']:.4g}, {goal['ci']['high']:.4g}] "
        f"p={goal['p_value']:.4g}; verdict so far: {analysis['decision']['verdict']}"
    )


def list_(
    ctx: typer.Context, project: ProjectOption = None, output: OutputOption = Output.table
) -> None:
    """List experiments (against a server: those of your projects)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        found = client.experiments(project)
    else:
        from ghaf.experiments.service import list_experiments

        found = to_jsonable(list_experiments(cli.platform(), project))
    if output is Output.json:
        emit_json({"experiments": found})
        return
    _rows(cli, found)


outcomes_app = typer.Typer(help="Outcomes (labels) of served predictions.", no_args_is_help=True)


@outcomes_app.command("import")
def import_(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option("--dataset", help="The labels: NAME@VERSION.")],
    model: Annotated[str, typer.Option("--model", help="The served model they label.")],
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Store a dataset version's labels (request_id or unit, outcome[, timestamp, metric])
    as outcomes; they join to predictions by id, however late."""
    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        stored = client.import_outcomes(model, dataset, project=where)
    else:
        from ghaf.experiments.outcomes import import_outcomes

        stored = import_outcomes(cli.platform().in_project(where), cli.actor(), model, dataset)
    if output is Output.json:
        emit_json({"stored": stored})
        return
    cli.console.print(f"stored {stored:,} outcomes of {model} from {dataset}")


def register(app: typer.Typer) -> None:
    """Add these commands to the ``ghaf experiments`` group."""
    for name, command in (
        ("create", create), ("start", start), ("status", status), ("stop", stop),
        ("decide", decide), ("list", list_),
    ):  # fmt: skip
        app.command(name)(command)
    app.add_typer(outcomes_app, name="outcomes")
