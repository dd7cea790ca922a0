"""``ghaf pipelines``: run a pipeline with live progress; list, show and read logs of runs;
run its triggers (cron, events) and list the runs they fired."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from ghaf.cli.context import state
from ghaf.errors import InvalidInputError, UserCodeError

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
) -> None:
    """Run a pipeline with live progress; exits 11 if a step fails, 130 if interrupted."""
    from ghaf.pipelines import run_pipeline
    from ghaf.pipelines.loader import load_pipeline, parse_params

    cli = state(ctx)
    pipeline = load_pipeline(target)
    params = parse_params(param or [])
    platform = cli.platform()
    status = dict.fromkeys(pipeline.nodes, ("pending", ""))

    def render() -> Table:
        table = Table("step", "status", "detail", title=f"pipeline {pipeline.name}")
        for name, (state_, detail) in status.items():
            style = _STYLE.get(state_, "dim")
            table.add_row(name, f"[{style}]{state_}[/]", detail)
        return table

    with Live(render(), console=cli.console, refresh_per_second=8, transient=False) as live:

        def listener(event: str, step: str, detail: str) -> None:
            status[step] = ("running" if event == "started" else event, detail)
            live.update(render())

        result = run_pipeline(platform, cli.actor(), pipeline, params=params, listener=listener)
        for record in result.steps:
            detail = status[record.step][1]
            status[record.step] = (record.status, detail)
        live.update(render())
    cli.console.print(f"run {result.id}: {result.status}")
    if result.status == "cancelled":
        cli.console.print("interrupted: the run is marked cancelled")
        raise typer.Exit(130)
    if result.status != "succeeded":
        raise UserCodeError(
            f"pipeline {pipeline.name} failed: {result.error}",
            hint=f"ghaf pipelines logs {result.id[:12]}",
        )


@app.command("list")
def list_(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option(help="Only runs of this pipeline.")] = None,
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
) -> None:
    """Recent runs, newest first."""
    from ghaf.pipelines import list_runs

    cli = state(ctx)
    table = Table("run", "pipeline", "status", "executor", "trigger", "started", "seconds")
    for r in list_runs(cli.platform(), pipeline, limit):
        seconds = f"{r.duration_s:.1f}" if r.duration_s is not None else ""
        table.add_row(
            r.id[:12],
            r.pipeline,
            r.status,
            r.executor,
            r.trigger,
            r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            seconds,
        )
    cli.console.print(table)


@app.command("show")
def show(ctx: typer.Context, run_id: str) -> None:
    """A run's steps: status, attempts, duration, CPU, output."""
    from ghaf.pipelines import get_run

    cli = state(ctx)
    r = get_run(cli.platform(), run_id)
    cli.console.print(
        f"run {r.id} of {r.pipeline}: {r.status} ({r.executor}, trigger {r.trigger})"
        + (f"\nerror: {r.error}" if r.error else "")
    )
    table = Table("step", "status", "attempts", "seconds", "cpu s", "rss MB", "output", "error")
    for s in r.steps:
        table.add_row(
            s.step,
            s.status,
            str(s.attempts),
            f"{s.duration_s:.2f}" if s.duration_s is not None else "",
            f"{s.cpu_s:.2f}" if s.cpu_s is not None else "",
            f"{s.max_rss_mb:.0f}" if s.max_rss_mb is not None else "",
            f"{s.output_kind}:{s.output_digest[:12]}" if s.output_digest else "",
            s.error or "",
        )
    cli.console.print(table)


@app.command("logs")
def logs(
    ctx: typer.Context,
    run_id: str,
    step: Annotated[str | None, typer.Option(help="Only this step's log.")] = None,
) -> None:
    """Print the captured output of a run's steps."""
    from ghaf.errors import NotFoundError
    from ghaf.pipelines import get_run

    cli = state(ctx)
    platform = cli.platform()
    r = get_run(platform, run_id)
    steps = [s for s in r.steps if step is None or s.step == step]
    if step is not None and not steps:
        raise NotFoundError(
            f"run {r.id[:12]} has no step {step!r}",
            hint=f"its steps: {', '.join(s.step for s in r.steps)}",
        )
    for s in steps:
        cli.console.rule(f"{s.step} ({s.status})")
        if s.log_digest:
            typer.echo(platform.artifacts.read_bytes(s.log_digest).decode(errors="replace"))
        else:
            typer.echo("(no log: the step was cached, skipped or cancelled)")


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
    cli = state(ctx)
    platform = cli.platform()
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
) -> None:
    """Runs that triggers started, newest first (manual runs are left out)."""
    from ghaf.pipelines.records import fired_runs

    cli = state(ctx)
    table = Table("trigger", "run", "pipeline", "status", "started")
    for r in fired_runs(cli.platform(), trigger, limit):
        table.add_row(
            r.trigger, r.id[:12], r.pipeline, r.status, r.started_at.strftime("%Y-%m-%d %H:%M:%S")
        )
    cli.console.print(table)
