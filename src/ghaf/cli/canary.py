"""``ghaf experiments canary start|status|step|watch|pause|resume|rollback|list``.

A canary ramps a candidate version against the champion on a deployment by a rollout
plan, on the home or (with a login) against ``ghaf server``. ``step`` runs the
evaluator once; ``watch`` runs it every plan interval until the canary is promoted or
rolled back, so no person needs to. Every command prints a table for people or
``--output json`` (the API's shapes).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json, format_minute, to_jsonable
from ghaf.errors import InvalidInputError

app = typer.Typer(
    help="Canaries: ramp a candidate against the champion, roll back on evidence.",
    no_args_is_help=True,
)
FINAL = ("promoted", "rolled_back")
ProjectOption = Annotated[
    str | None, typer.Option("--project", help="Project (default: GHAF_PROJECT).")
]
LogDirOption = Annotated[
    Path | None,
    typer.Option(
        "--log-dir",
        help="The prediction log ghaf serve --log-dir writes (default: HOME/predictions; "
        "against a server, always the server's).",
    ),
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded and audited).")]


def _steps(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidInputError(
            f"--steps {text!r} is not a list of percents", hint="e.g. --steps 5,10,25,50,100"
        ) from None


def _plan(path: Path | None, options: dict[str, Any], quality: dict[str, Any]) -> dict[str, Any]:
    """The plan file's fields (or none), with each option given on the command line over
    them; the service checks the result (naming a bad field)."""
    plan: dict[str, Any] = {}
    if path is not None:
        import yaml

        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise InvalidInputError(
                f"--plan {path}: {exc.strerror}", hint="give a YAML or JSON file"
            ) from None
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise InvalidInputError(f"--plan {path} is not YAML: {first}", hint="fix it") from None
        if not isinstance(loaded, dict):
            raise InvalidInputError(
                f"--plan {path} is not a mapping", hint="e.g. steps: [5, 10, 25, 50, 100]"
            )
        plan = loaded
    plan.update({k: v for k, v in options.items() if v is not None})
    given = {k: v for k, v in quality.items() if v is not None}
    if given:
        plan["quality"] = {**(plan.get("quality") or {}), **given}
    return plan


def _canary_rows(cli: CliState, found: list[dict[str, Any]]) -> None:
    table = Table("name", "project", "deployment", "champion", "candidate", "status", "step",
                  "weight", "reason")  # fmt: skip
    for c in found:
        steps = len(c["plan"]["steps"])
        table.add_row(
            c["name"], c["project"], c["deployment"], c["champion"], c["candidate"], c["status"],
            f"{c['step'] + 1}/{steps}", f"{c['weight']:g}%", c.get("reason") or "",
        )  # fmt: skip
    cli.console.print(table)


def _value(value: Any) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _decision(cli: CliState, d: dict[str, Any], *, checks: bool = True) -> None:
    cli.console.print(
        f"#{d['seq']} {format_minute(d['at'])} {d['action']} -> {d['status']} "
        f"(step {d['step'] + 1}, {d['weight']:g}%) by {d['actor']}"
    )
    for reason in d["reasons"]:
        cli.console.print(f"  - {reason}")
    found = (d.get("evidence") or {}).get("checks", [])
    if checks and found:
        table = Table("check", "status", "value", "threshold", "source", "detail")
        for c in found:
            table.add_row(
                c["name"], c["status"], _value(c["value"]), _value(c["threshold"]), c["source"],
                c["detail"],
            )  # fmt: skip
        cli.console.print(table)


def _where(cli: CliState, name: str) -> Any:
    """The platform in the canary's project (on the home)."""
    from ghaf.experiments.canary import canary_project

    platform = cli.platform()
    return platform.in_project(canary_project(platform, name) or platform.default_project)


@app.command("start")
def start(
    ctx: typer.Context,
    name: str,
    deployment: Annotated[str, typer.Option("--deployment", help="The deployment ramped.")],
    candidate: Annotated[str, typer.Option("--candidate", help="The version ramped, NAME:V.")],
    champion: Annotated[
        str | None, typer.Option(help="NAME:V (default: the one version given traffic).")
    ] = None,
    plan: Annotated[
        Path | None, typer.Option("--plan", help="A rollout plan file (YAML or JSON).")
    ] = None,
    steps: Annotated[str | None, typer.Option(help="Percents, e.g. 5,10,25,50,100.")] = None,
    min_samples: Annotated[int | None, typer.Option(help="Answers per step.")] = None,
    min_time: Annotated[float | None, typer.Option(help="Seconds per step.")] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between evaluations.")] = None,
    metrics: Annotated[
        list[str] | None,
        typer.Option("--metrics", help="A ghaf serve's base URL (its /metrics public)."),
    ] = None,
    max_error_rate: Annotated[float | None, typer.Option(help="e.g. 0.01.")] = None,
    max_p99_ms: Annotated[float | None, typer.Option(help="e.g. 500.")] = None,
    max_drop: Annotated[float | None, typer.Option(help="Quality drop tolerated.")] = None,
    min_labels: Annotated[int | None, typer.Option(help="Labels per side judged.")] = None,
    max_psi: Annotated[float | None, typer.Option(help="Score drift tolerated.")] = None,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Start a canary: the candidate takes the first step's share of the traffic now.

    The plan comes from --plan and the options (an option wins); see the API's plan
    fields: steps, min_samples, min_time_s, interval_s, metrics, max_error_rate,
    max_p99_ms, quality (kind, metric, max_drop, min_value, min_labels, max_psi,
    labels_to_promote), confidence, promote_alias.
    """
    cli = state(ctx)
    where = project or cli.settings.project
    options = {
        "steps": _steps(steps) if steps else None, "min_samples": min_samples,
        "min_time_s": min_time, "interval_s": interval, "metrics": metrics or None,
        "max_error_rate": max_error_rate, "max_p99_ms": max_p99_ms,
    }  # fmt: skip
    quality = {"max_drop": max_drop, "min_labels": min_labels, "max_psi": max_psi}
    doc = _plan(plan, options, quality)
    client = cli.remote()
    if client is not None:
        record = client.start_canary(
            name, deployment, candidate, doc, project=where, champion=champion
        )
    else:
        from ghaf.experiments.canary import start_canary

        made = start_canary(
            cli.platform().in_project(where), cli.actor(), name, deployment, candidate, doc,
            champion=champion, project=where,
        )  # fmt: skip
        record = to_jsonable(made)
    if output is Output.json:
        emit_json(record)
        return
    _canary_rows(cli, [record])


def _status_doc(cli: CliState, name: str, decisions: int) -> dict[str, Any]:
    client = cli.remote()
    if client is not None:
        return client.canary_status(name, decisions=decisions)
    from ghaf.experiments.canary import canary_status

    return dict(to_jsonable(canary_status(_where(cli, name), name, limit=decisions)))


@app.command("status")
def status(
    ctx: typer.Context,
    name: str,
    decisions: Annotated[int, typer.Option(min=1, max=1000, help="Latest decisions shown.")] = 5,
    output: OutputOption = Output.table,
) -> None:
    """Show the canary, its deployment's weights and its latest decisions.

    The latest decision shows each check: status, value, threshold, source, detail.
    """
    cli = state(ctx)
    doc = _status_doc(cli, name, decisions)
    if output is Output.json:
        emit_json(doc)
        return
    _canary_rows(cli, [doc["canary"]])
    weights = ", ".join(f"{ref} {w:g}" for ref, w in doc["deployment"]["weights"].items())
    cli.console.print(
        f"deployment {doc['deployment']['name']} r{doc['deployment']['revision']}: {weights}"
    )
    for i, decision in enumerate(doc["decisions"]):
        _decision(cli, decision, checks=i == len(doc["decisions"]) - 1)


def _evaluate(cli: CliState, name: str, log_dir: Path | None) -> dict[str, Any]:
    client = cli.remote()
    if client is not None:
        return client.evaluate_canary(name)
    from ghaf.experiments.canary import evaluate_canary

    decided = evaluate_canary(_where(cli, name), cli.actor(), name, log_dir=log_dir)
    return dict(to_jsonable(decided))


@app.command("step")
def step(
    ctx: typer.Context, name: str, log_dir: LogDirOption = None, output: OutputOption = Output.table
) -> None:
    """Run the evaluator once: advance, hold, pause, roll back or promote, on evidence."""
    cli = state(ctx)
    decided = _evaluate(cli, name, log_dir)
    if output is Output.json:
        emit_json(decided)
        return
    _decision(cli, decided)


@app.command("watch")
def watch(
    ctx: typer.Context,
    name: str,
    interval: Annotated[
        float | None,
        typer.Option(min=0.2, max=3600, help="Seconds between evaluations (default: the plan's)."),
    ] = None,
    max_evaluations: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many (default: until it ends).")
    ] = None,
    log_dir: LogDirOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Run the evaluator every interval until the canary is promoted or rolled back.

    Or until --max-evaluations: the canary needs no person to move, nor to stop.
    """
    cli = state(ctx)
    doc = _status_doc(cli, name, 1)
    if doc["canary"]["status"] in FINAL:
        raise InvalidInputError(
            f"canary {name!r} is {doc['canary']['status']}: it is final", hint="start a new one"
        )
    every = interval or float(doc["canary"]["plan"]["interval_s"])
    made: list[dict[str, Any]] = []
    while True:
        time.sleep(every)
        try:
            decided = _evaluate(cli, name, log_dir)
        except InvalidInputError as exc:
            if "changed while" not in exc.headline:  # another evaluator moved it: look again
                raise
            continue
        made.append(decided)
        if output is Output.table:
            _decision(cli, decided, checks=decided["action"] != "hold")
        if decided["status"] in FINAL or (max_evaluations and len(made) >= max_evaluations):
            break
    if output is Output.json:
        emit_json({"canary": _status_doc(cli, name, 1)["canary"], "decisions": made})


@app.command("pause")
def pause(
    ctx: typer.Context, name: str, reason: ReasonOption, output: OutputOption = Output.table
) -> None:
    """Stop the ramp where it is (traffic stays) until someone resumes it."""
    _move(ctx, name, "pause", output, reason)


@app.command("resume")
def resume(ctx: typer.Context, name: str, output: OutputOption = Output.table) -> None:
    """Resume a paused canary; its step's evidence starts again now."""
    _move(ctx, name, "resume", output)


@app.command("rollback")
def rollback(
    ctx: typer.Context, name: str, reason: ReasonOption, output: OutputOption = Output.table
) -> None:
    """Give every request back to the champion now (running servers within seconds)."""
    _move(ctx, name, "rollback", output, reason)


def _move(ctx: typer.Context, name: str, how: str, output: Output, *reason: str) -> None:
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        decided = getattr(client, f"{how}_canary")(name, *reason)
    else:
        from ghaf.experiments import canary

        moved = getattr(canary, f"{how}_canary")(_where(cli, name), cli.actor(), name, *reason)
        decided = to_jsonable(moved)
    if output is Output.json:
        emit_json(decided)
        return
    _decision(cli, decided)


@app.command("list")
def list_(
    ctx: typer.Context, project: ProjectOption = None, output: OutputOption = Output.table
) -> None:
    """List canaries (against a server: those of your projects)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        found = client.canaries(project)
    else:
        from ghaf.experiments.canary import list_canaries

        found = to_jsonable(list_canaries(cli.platform(), project))
    if output is Output.json:
        emit_json({"canaries": found})
        return
    _canary_rows(cli, found)
