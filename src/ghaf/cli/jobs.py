"""``ghaf jobs``: queue declared pipelines as jobs; list the queue (position, priority,
project), cancel, change a priority; run a dispatcher on a home (``work``).

Against a server (``--url``/``GHAF_URL``) ``submit``, ``list``, ``show``, ``cancel`` and
``priority`` ask it; ``work`` runs executor slots where the executors are, on a home.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import ConfigError, UserCodeError

app = typer.Typer(help="The job queue: submit, list, cancel, priority, work.", no_args_is_help=True)


def _when(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else ""


def _show(cli: CliState, job: dict[str, Any], verb: str, output: Output) -> None:
    if output is Output.json:
        emit_json(job)
        return
    where = f", position {job['position']}" if job.get("position") else ""
    cli.console.print(
        f"{verb} job {job['id'][:12]} ({job['target']} in {job['project']}): {job['status']}"
        f"{where}, priority {job['priority']}"
    )


@app.command("submit")
def submit(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="MODULE:ATTRIBUTE of a declared pipeline.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE (JSON values).")
    ] = None,
    project: Annotated[str | None, typer.Option(help="Project (default: GHAF_PROJECT).")] = None,
    cpus: Annotated[float, typer.Option(help="CPUs the job holds.")] = 1.0,
    gpus: Annotated[float, typer.Option(help="GPUs the job holds.")] = 0.0,
    priority: Annotated[int, typer.Option(help="Higher runs first in its project.")] = 0,
    output: OutputOption = Output.table,
) -> None:
    """Queue a declared pipeline; exits 7 when the project is over its CPU- or GPU-hours
    quota. It runs when a dispatcher (ghaf jobs work) has a slot for it."""
    from ghaf.pipelines.loader import parse_params

    cli = state(ctx)
    params = parse_params(param or [])
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        body = {
            "pipeline": target,
            "project": where,
            "params": params,
            "cpus": cpus,
            "gpus": gpus,
            "priority": priority,
        }
        job = client.post("/jobs", body)
    else:
        from ghaf.scheduling.queue import get_job, submit_job

        platform = cli.platform().in_project(where)
        queued = submit_job(
            platform, cli.actor(), "pipeline", target, params=params, cpus=cpus, gpus=gpus,
            priority=priority, project=where,
        )  # fmt: skip
        job = to_jsonable(get_job(platform, queued.id))
    _show(cli, job, "queued", output)


@app.command("list")
def list_(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option(help="Only this project's jobs.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only jobs in this status (queued, running, ...).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many jobs.")] = 50,
    output: OutputOption = Output.table,
) -> None:
    """The queue: queued jobs in the order they will be dispatched (position, priority,
    project), then running and ended ones, newest first."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        query: dict[str, Any] = {"limit": limit}
        query.update({k: v for k, v in (("project", project), ("status", status)) if v})
        jobs = client.get("/jobs", **query)["jobs"]
    else:
        from ghaf.scheduling.queue import STATUSES, list_jobs

        if status is not None and status not in STATUSES:
            from ghaf.errors import InvalidInputError

            raise InvalidInputError(
                f"status {status!r} is unknown", hint=f"use one of {', '.join(STATUSES)}"
            )
        found = list_jobs(
            cli.platform(),
            projects=[project] if project else None,
            statuses=(status,) if status else None,
            limit=limit,
        )
        jobs = to_jsonable(found)
    if output is Output.json:
        emit_json({"jobs": jobs})
        return
    table = Table("job", "position", "status", "priority", "project", "pipeline", "by", "submitted")
    for j in jobs:
        table.add_row(
            j["id"][:12],
            str(j["position"] or ""),
            j["status"],
            str(j["priority"]),
            j["project"],
            j["target"],
            j["submitted_by"],
            _when(j["submitted_at"]),
        )
    cli.console.print(table)


def _job(cli: CliState, job_id: str) -> dict[str, Any]:
    client = cli.remote()
    if client is not None:
        return dict(client.get(f"/jobs/{job_id}"))
    from ghaf.scheduling.queue import get_job

    return dict(to_jsonable(get_job(cli.platform(), job_id)))


@app.command("show")
def show(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job's id (8 or more characters).")],
    output: OutputOption = Output.table,
) -> None:
    """A job: status, position while queued, who ran it, its result or error."""
    cli = state(ctx)
    job = _job(cli, job_id)
    _show(cli, job, "", output)
    if output is Output.table and (job["error"] or job["result"]):
        cli.console.print(job["error"] or job["result"])


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job's id (8 or more characters).")],
    output: OutputOption = Output.table,
) -> None:
    """Take a queued job out of the queue."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        job = client.post(f"/jobs/{job_id}/cancel", {})
    else:
        from ghaf.scheduling.queue import cancel_job, get_job

        found = get_job(cli.platform(), job_id)
        platform = cli.platform().in_project(found.project)
        cancel_job(platform, cli.actor(), found.id, project=found.project)
        job = to_jsonable(get_job(platform, found.id))
    _show(cli, job, "cancelled", output)


@app.command("priority")
def priority(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job's id (8 or more characters).")],
    value: Annotated[int, typer.Argument(help="The new priority (higher runs first).")],
    output: OutputOption = Output.table,
) -> None:
    """Change a queued job's priority among its project's jobs."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        job = client.put(f"/jobs/{job_id}/priority", {"priority": value})
    else:
        from ghaf.scheduling.queue import get_job, set_priority

        found = get_job(cli.platform(), job_id)
        platform = cli.platform().in_project(found.project)
        set_priority(platform, cli.actor(), found.id, value, project=found.project)
        job = to_jsonable(get_job(platform, found.id))
    _show(cli, job, "reprioritized", output)


def run_pipeline_job(platform: Any, actor: Any, job: Any) -> dict[str, Any]:
    """Run a pipeline job: the declared pipeline in the job's project, as the dispatcher."""
    from ghaf.errors import NotFoundError
    from ghaf.pipelines import run_pipeline
    from ghaf.pipelines.loader import load_pipeline

    # Only what the operator declares is imported, whatever a queued row names.
    if job.target not in platform.settings.pipelines:
        raise NotFoundError(f"pipeline {job.target!r} is not declared in the pipelines setting")
    pipeline = load_pipeline(job.target)
    run = run_pipeline(
        platform.in_project(job.project), actor, pipeline, params=job.params,
        trigger=f"job:{job.id}",
    )  # fmt: skip
    if run.status != "succeeded":
        raise UserCodeError(f"pipeline run {run.id} {run.status}: {run.error}")
    return {"run": run.id, "status": run.status}


@app.command("work")
def work(
    ctx: typer.Context,
    slots: Annotated[int, typer.Option(min=1, max=256, help="Jobs run at once.")] = 1,
    until_idle: Annotated[
        bool, typer.Option(help="Stop once nothing waits that this dispatcher can take.")
    ] = False,
    poll: Annotated[
        float, typer.Option(min=0.05, help="Seconds between looks at the queue.")
    ] = 1.0,
) -> None:
    """Run a dispatcher: executor slots that claim queued jobs by fair share and priority
    and run them; jobs of a dispatcher that dies return to the queue."""
    from ghaf.scheduling import Dispatcher

    cli = state(ctx)
    if cli.remote() is not None:
        raise ConfigError(
            "ghaf jobs work runs on a home, where the executors are",
            hint="run it on the server's machine with --home (GHAF_HOME), without --url",
        )
    platform, actor = cli.platform(), cli.actor()
    stop = threading.Event()
    with Dispatcher(
        platform, actor, lambda job: run_pipeline_job(platform, actor, job), slots=slots
    ) as dispatcher:
        cli.console.print(f"dispatcher {dispatcher.owner}: {slots} slot(s)")
        try:
            dispatcher.run(until_idle=until_idle, poll_s=poll, stop=stop)
        except KeyboardInterrupt:
            stop.set()
    cli.console.print(f"claimed {len(dispatcher.claimed)} job(s)")
