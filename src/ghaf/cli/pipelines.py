"""``ghaf pipelines``: run a pipeline with live progress; list, show and read logs of runs;
run its triggers (cron, events) and list the runs they fired.

Against a server (``--url``/``GHAF_URL``) the server runs what is submitted (only the
pipelines its operator declares), and ``list``, ``show``, ``logs`` and ``triggers fired``
print exactly what they print on a home; ``cancel`` and ``available`` work against a
server only, ``triggers run`` on a home only.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import ConfigError, InvalidInputError, UserCodeError

if TYPE_CHECKING:
    from ghaf.client.http import Client

app = typer.Typer(help="Pipelines: runs, steps and their logs.", no_args_is_help=True)

_STYLE = {
    "succeeded": "green",
    "cached": "cyan",
    "failed": "red",
    "cancelled": "yellow",
    "running": "bold",
    "retry": "yellow",
}


@app.command("run")
def run(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="MODULE:ATTRIBUTE naming the pipeline.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE (JSON values).")
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="Project the run belongs to (default: GHAF_PROJECT).")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Run a pipeline with live progress; exits 11 if a step fails, 130 if interrupted.

    Against a server (GHAF_URL) the server runs it: the pipeline must be one it declares
    (ghaf pipelines available); Ctrl-C cancels the run there.
    """
    from ghaf.pipelines.loader import parse_params

    cli = state(ctx)
    params = parse_params(param or [])
    client = cli.remote()
    if client is not None:
        ended = _run_remote(cli, client, target, params, project or cli.settings.project, output)
    else:
        ended = _run_here(cli, target, params, project, output)
    if output is Output.json:
        emit_json(ended)
    else:
        cli.console.print(f"run {ended['id']}: {ended['status']}")
    if ended["status"] == "cancelled":
        if output is not Output.json:
            cli.console.print("interrupted: the run is marked cancelled")
        raise typer.Exit(130)
    if ended["status"] != "succeeded":
        raise UserCodeError(
            f"pipeline {ended['pipeline']} failed: {ended['error']}",
            hint=f"ghaf pipelines logs {ended['id'][:12]}",
        )


def _progress(name: str, status: dict[str, tuple[str, str]]) -> Table:
    table = Table("step", "status", "detail", title=f"pipeline {name}")
    for step, (state_, detail) in status.items():
        style = _STYLE.get(state_, "dim")
        table.add_row(step, f"[{style}]{state_}[/]", detail)
    return table


def _end_live(cli: CliState) -> None:
    """Without a terminal, Live leaves its last table without a line end."""
    if not cli.console.is_terminal:
        cli.console.line()


def _run_here(
    cli: CliState, target: str, params: dict[str, Any], project: str | None, output: Output
) -> dict[str, Any]:
    from ghaf.pipelines import run_pipeline
    from ghaf.pipelines.loader import load_pipeline

    pipeline = load_pipeline(target)
    platform = cli.platform()
    if project is not None:
        platform = platform.in_project(project)
    if output is Output.json:
        return dict(to_jsonable(run_pipeline(platform, cli.actor(), pipeline, params=params)))
    status = dict.fromkeys(pipeline.nodes, ("pending", ""))
    with Live(
        _progress(pipeline.name, status),
        console=cli.console,
        refresh_per_second=8,
        transient=False,
    ) as live:

        def listener(event: str, step: str, detail: str) -> None:
            status[step] = ("running" if event == "started" else event, detail)
            live.update(_progress(pipeline.name, status))

        result = run_pipeline(platform, cli.actor(), pipeline, params=params, listener=listener)
        for record in result.steps:
            status[record.step] = (record.status, status[record.step][1])
        live.update(_progress(pipeline.name, status))
    _end_live(cli)
    return dict(to_jsonable(result))


def _detail(step: dict[str, Any]) -> str:
    """What the progress table says of a step the server runs."""
    if step["status"] == "cached" and step["output_digest"]:
        return str(step["output_digest"][:12])
    if step["status"] == "succeeded" and step["duration_s"] is not None:
        return f"{step['duration_s']:.2f}s"
    if step["error"]:
        return str(step["error"])
    return f"attempt {step['attempts']}" if step["status"] == "running" else ""


def _run_remote(
    cli: CliState,
    client: Client,
    target: str,
    params: dict[str, Any],
    project: str,
    output: Output,
) -> dict[str, Any]:
    from ghaf.client.pipelines import ENDED

    started = client.submit_pipeline(target, project=project, params=params)
    run_id = started["id"]
    if output is Output.json:
        try:
            return client.wait_pipeline_run(run_id)
        except KeyboardInterrupt:
            client.cancel_pipeline_run(run_id)
            return client.wait_pipeline_run(run_id, timeout=60)

    def render(run: dict[str, Any]) -> Table:
        status = {s["step"]: (s["status"], _detail(s)) for s in run["steps"]}
        return _progress(run["pipeline"], status)

    current = started
    with Live(render(current), console=cli.console, refresh_per_second=8) as live:
        try:
            while current["status"] not in ENDED:
                time.sleep(0.25)
                current = client.pipeline_run(run_id)
                live.update(render(current))
        except KeyboardInterrupt:
            client.cancel_pipeline_run(run_id)
            current = client.wait_pipeline_run(run_id, timeout=60)
            live.update(render(current))
    _end_live(cli)
    return current


def _when(iso: str) -> str:
    """``2026-12-07 02:27:08`` from an ISO-8601 time."""
    return iso[:19].replace("T", " ")


def _runs_table(cli: CliState, runs: list[dict[str, Any]]) -> None:
    table = Table("run", "pipeline", "status", "executor", "trigger", "started", "seconds")
    for r in runs:
        seconds = f"{r['duration_s']:.1f}" if r["duration_s"] is not None else ""
        table.add_row(
            r["id"][:12],
            r["pipeline"],
            r["status"],
            r["executor"],
            r["trigger"],
            _when(r["started_at"]),
            seconds,
        )
    cli.console.print(table)


@app.command("list")
def list_(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option(help="Only runs of this pipeline.")] = None,
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
    output: OutputOption = Output.table,
) -> None:
    """Recent runs, newest first (against a server: those of your projects)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        runs = client.pipeline_runs(pipeline, limit=limit)
    else:
        from ghaf.pipelines import list_runs

        runs = to_jsonable(list_runs(cli.platform(), pipeline, limit))
    if output is Output.json:
        emit_json({"runs": runs})
        return
    _runs_table(cli, runs)


def _get_run(cli: CliState, run_id: str) -> dict[str, Any]:
    client = cli.remote()
    if client is not None:
        return client.pipeline_run(run_id)
    from ghaf.pipelines import get_run

    return dict(to_jsonable(get_run(cli.platform(), run_id)))


@app.command("show")
def show(ctx: typer.Context, run_id: str, output: OutputOption = Output.table) -> None:
    """A run's steps: status, attempts, duration, CPU, output."""
    cli = state(ctx)
    r = _get_run(cli, run_id)
    if output is Output.json:
        emit_json(r)
        return
    cli.console.print(
        f"run {r['id']} of {r['pipeline']}: {r['status']} ({r['executor']}, trigger "
        f"{r['trigger']})" + (f"\nerror: {r['error']}" if r["error"] else "")
    )
    table = Table("step", "status", "attempts", "seconds", "cpu s", "rss MB", "output", "error")
    for s in r["steps"]:
        table.add_row(
            s["step"],
            s["status"],
            str(s["attempts"]),
            f"{s['duration_s']:.2f}" if s["duration_s"] is not None else "",
            f"{s['cpu_s']:.2f}" if s["cpu_s"] is not None else "",
            f"{s['max_rss_mb']:.0f}" if s["max_rss_mb"] is not None else "",
            f"{s['output_kind']}:{s['output_digest'][:12]}" if s["output_digest"] else "",
            s["error"] or "",
        )
    cli.console.print(table)


@app.command("logs")
def logs(
    ctx: typer.Context,
    run_id: str,
    step: Annotated[str | None, typer.Option(help="Only this step's log.")] = None,
    output: OutputOption = Output.table,
) -> None:
    """Print the captured output of a run's steps."""
    from ghaf.errors import NotFoundError

    cli = state(ctx)
    r = _get_run(cli, run_id)
    steps = [s for s in r["steps"] if step is None or s["step"] == step]
    if step is not None and not steps:
        raise NotFoundError(
            f"run {r['id'][:12]} has no step {step!r}",
            hint=f"its steps: {', '.join(s['step'] for s in r['steps'])}",
        )
    client = cli.remote()
    found = []
    for s in steps:
        text = None
        if s["log_digest"] and client is not None:
            text = client.pipeline_log(r["id"], s["step"])
        elif s["log_digest"]:
            text = cli.platform().artifacts.read_bytes(s["log_digest"]).decode(errors="replace")
        found.append({"step": s["step"], "status": s["status"], "log": text})
    if output is Output.json:
        emit_json({"run": r["id"], "logs": found})
        return
    for entry in found:
        cli.console.rule(f"{entry['step']} ({entry['status']})")
        typer.echo(entry["log"] or "(no log: the step was cached, skipped or cancelled)")


def _server(cli: CliState, command: str, instead: str) -> Client:
    """The server's client, for a command that works against a server only."""
    client = cli.remote()
    if client is None:
        raise ConfigError(f"ghaf pipelines {command} works against a server", hint=instead)
    return client


@app.command("cancel")
def cancel(ctx: typer.Context, run_id: str, output: OutputOption = Output.table) -> None:
    """Cancel a run the server runs: it is recorded cancelled and its steps stop."""
    cli = state(ctx)
    client = _server(
        cli, "cancel", "set GHAF_URL; on a home, Ctrl-C stops a run in the terminal running it"
    )
    r = client.cancel_pipeline_run(run_id)
    if output is Output.json:
        emit_json(r)
        return
    cli.console.print(f"run {r['id']}: {r['status']} ({r['error']})")


@app.command("available")
def available(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """The pipelines the server runs when submitted (its operator declares them)."""
    cli = state(ctx)
    client = _server(
        cli, "available", "set GHAF_URL; on a home, ghaf pipelines run takes any MODULE:ATTRIBUTE"
    )
    found = client.pipelines()
    if output is Output.json:
        emit_json({"pipelines": found})
        return
    table = Table("pipeline", "name", "steps", "params", "description")
    for p in found:
        params = ", ".join(f"{k}={json.dumps(v)}" for k, v in p["params"].items())
        table.add_row(p["pipeline"], p["name"], ", ".join(p["steps"]), params, p["description"])
    cli.console.print(table)


triggers_app = typer.Typer(
    help="Triggers: a cron schedule or an event subject that starts a pipeline.",
    no_args_is_help=True,
)
app.add_typer(triggers_app, name="triggers")


def _positive(value: float | None, option: str, example: str) -> None:
    if value is not None and value <= 0:
        raise InvalidInputError(f"{option} is {value:g}", hint=f"give a positive number: {example}")


@triggers_app.command("run")
def triggers_run(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="MODULE:ATTRIBUTE naming the pipeline.")],
    cron: Annotated[
        str | None,
        typer.Option(help="Cron schedule: five fields ('*/5 * * * *'), a sixth for seconds."),
    ] = None,
    on: Annotated[
        str | None, typer.Option(help="Event subject that starts it (e.g. drift.detected).")
    ] = None,
    match: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE the event's data must have (JSON values); repeatable."),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE (JSON values).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Trigger name (default: pipeline name).")] = None,
    cooldown: Annotated[float, typer.Option(help="Seconds between two runs at least.")] = 0.0,
    max_runs: Annotated[
        int | None, typer.Option(help="At most this many runs per --window.")
    ] = None,
    window: Annotated[float, typer.Option(help="Seconds of the --max-runs window.")] = 3600.0,
    interval: Annotated[float, typer.Option(help="Seconds between two checks.")] = 1.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
) -> None:
    """Watch a cron schedule and/or an event subject and run the pipeline when they fire,
    within the cooldown and maximum frequency; prints each decision. Ctrl-C stops it."""
    from ghaf.pipelines.loader import load_pipeline, parse_params
    from ghaf.pipelines.triggers import CronTrigger, EventTrigger, Limits, Trigger, TriggerLoop

    if cron is None and on is None:
        raise InvalidInputError(
            "no trigger given", hint="pass --cron '*/5 * * * *' and/or --on drift.detected"
        )
    if cooldown < 0:
        raise InvalidInputError(f"--cooldown is {cooldown:g}", hint="give 0 or more seconds")
    if max_runs is not None and max_runs < 1:
        raise InvalidInputError(f"--max-runs is {max_runs}", hint="give 1 or more: --max-runs 3")
    _positive(window, "--window", "--window 3600")
    _positive(interval, "--interval", "--interval 1")
    _positive(duration, "--duration", "--duration 60")
    cli = state(ctx)
    platform = cli.platform()  # a home's: triggers run where the pipeline runs
    pipeline = load_pipeline(target)  # an unknown pipeline fails here, before any waiting
    params = parse_params(param or [])
    conditions = parse_params(match or [])
    limits = Limits(cooldown_s=cooldown, max_runs=max_runs, window_s=window)
    label = name or pipeline.name
    triggers: list[Trigger] = []
    if cron is not None:
        triggers.append(
            CronTrigger(label, cron, lambda: load_pipeline(target), params=params, limits=limits)
        )
    if on is not None:
        triggers.append(
            EventTrigger(
                label,
                on,
                lambda: load_pipeline(target),
                match=conditions,
                params=params,
                limits=limits,
            )
        )
    loop = TriggerLoop(platform, cli.actor(), triggers)
    cli.console.print(
        f"watching {', '.join(t.key for t in triggers)} for pipeline {pipeline.name}"
        + (f" for {duration:g}s" if duration else " (Ctrl-C stops)")
    )
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while deadline is None or time.monotonic() < deadline:
            for decision in loop.tick():
                stamp = time.strftime("%H:%M:%S")
                if decision.run is not None:
                    style = _STYLE.get(decision.run.status, "dim")
                    cli.console.print(
                        f"{stamp} {decision.trigger} fired: run {decision.run.id[:12]} "
                        f"[{style}]{decision.run.status}[/]"
                    )
                else:
                    cli.console.print(f"{stamp} {decision.trigger} skipped: {decision.reason}")
            pause = interval if deadline is None else min(interval, deadline - time.monotonic())
            time.sleep(max(pause, 0.0))
    except KeyboardInterrupt:
        cli.console.print("stopped")
    finally:
        loop.stop()


@triggers_app.command("fired")
def triggers_fired(
    ctx: typer.Context,
    trigger: Annotated[
        str | None, typer.Option(help="Only this trigger (e.g. cron:nightly, as listed).")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
    output: OutputOption = Output.table,
) -> None:
    """Runs that triggers started, newest first (manual runs are left out)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        runs = client.pipeline_runs(limit=limit, trigger=trigger, fired=True)
    else:
        from ghaf.pipelines.records import fired_runs

        runs = to_jsonable(fired_runs(cli.platform(), trigger, limit))
    if output is Output.json:
        emit_json({"runs": runs})
        return
    table = Table("trigger", "run", "pipeline", "status", "started")
    for r in runs:
        table.add_row(
            r["trigger"], r["id"][:12], r["pipeline"], r["status"], _when(r["started_at"])
        )
    cli.console.print(table)
