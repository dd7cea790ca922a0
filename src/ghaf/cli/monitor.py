"""``ghaf monitor``: drift reports, stored reference profiles, data-quality checks, and
scheduled monitors of deployments (``schedule``, ``run [--loop]``, ``status``, ``results``).

Against a server (``GHAF_URL``), windows are a stored profile or a dataset there; a
current window that is a local Parquet file is sent with the check and not kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from ghaf.monitoring import DriftReport

app = typer.Typer(help="Monitoring: drift, data quality, scheduled monitors.", no_args_is_help=True)

WINDOW_HELP = "A Parquet path, a dataset ref NAME:V, or profile:NAME[@V]."
ProjectOption = Annotated[
    str | None, typer.Option("--project", help="Project (default: GHAF_PROJECT).")
]


def _columns(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


@app.command("drift")
def drift(
    ctx: typer.Context,
    reference: Annotated[str, typer.Option("--reference", help=WINDOW_HELP)],
    current: Annotated[str, typer.Option("--current", help=WINDOW_HELP)],
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --output json.")] = False,
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns to compare.")] = None,
    alpha: Annotated[float, typer.Option(help="False-discovery rate across columns.")] = 0.05,
    no_domain: Annotated[
        bool, typer.Option("--no-domain", help="Skip the domain classifier.")
    ] = False,
    output: OutputOption = Output.table,
) -> None:
    """Compare a current window with a reference; exit 1 when any column drifted."""
    if not 0 < alpha < 1:
        raise InvalidInputError(f"--alpha {alpha} is not in (0, 1)", hint="use e.g. 0.05")
    cli = state(ctx)
    names = _columns(columns)
    client = cli.remote()
    if client is not None:
        if Path(reference).is_file():
            raise InvalidInputError(
                f"--reference {reference} is a local file, and GHAF_URL names a server",
                hint="store it there first (ghaf monitor profile FILE --name NAME), "
                "then pass --reference profile:NAME",
            )
        window: str | Path = Path(current) if Path(current).is_file() else current
        body = client.check_drift(
            reference,
            window,
            columns=names,
            alpha=alpha,
            domain_classifier=not no_domain,
            histograms=html is not None,
            current_name=current,
        )
        report = _report_of(body) if html is not None else None
    else:
        report = _drift_here(cli, reference, current, names, alpha, not no_domain)
        body = report.to_dict(histograms=False)
    if html is not None and report is not None:
        from ghaf.monitoring.report_html import render_html

        html.write_text(render_html(report), encoding="utf-8")
    if as_json or output is Output.json:
        for column in body["columns"]:
            column.pop("histogram", None)
        emit_json(body)
    else:
        _print_report(cli, body, html)
    if body["drifted_columns"]:
        raise typer.Exit(1)


def _drift_here(
    cli: CliState,
    reference: str,
    current: str,
    names: list[str] | None,
    alpha: float,
    domain: bool,
) -> DriftReport:
    from ghaf.monitoring import DriftOptions, compare_profiles, profile_window
    from ghaf.monitoring.inputs import describe

    platform = cli.platform()
    ref = profile_window(reference, platform, columns=names)
    cur = profile_window(current, platform, columns=names)
    return compare_profiles(
        ref,
        cur,
        DriftOptions(alpha=alpha, domain_classifier=domain),
        reference_name=describe(reference),
        current_name=describe(current),
    )


def _report_of(body: dict[str, Any]) -> DriftReport:
    """The report a server answered, as the record embedded mode makes (for the HTML)."""
    from ghaf.monitoring.base import ColumnDrift, DomainResult, DriftReport, Histogram

    fields = {k: v for k, v in body.items() if k != "drifted_columns"}
    columns = [
        ColumnDrift(**{**c, "histogram": Histogram(**c["histogram"]) if c["histogram"] else None})
        for c in fields.pop("columns")
    ]
    domain = fields.pop("domain")
    if domain is not None:
        domain = DomainResult(
            **{**domain, "top_columns": [(str(n), float(v)) for n, v in domain["top_columns"]]}
        )
    return DriftReport(**fields, columns=columns, domain=domain)


def _print_report(cli: CliState, report: dict[str, Any], html: Path | None) -> None:
    table = Table(title=f"drift: {report['current_name']} vs {report['reference_name']}")
    for header in ("column", "kind", "test", "statistic", "p (BH)", "PSI", "JS", "verdict"):
        table.add_column(header, justify="left" if header in ("column", "kind") else "right")
    for c in report["columns"]:
        drifted = c["verdict"] == "drift"
        style = "bold red" if drifted else ("yellow" if c["verdict"] != "ok" else "")
        table.add_row(
            c["column"],
            c["kind"],
            c["method"],
            _fmt(c["statistic"]),
            _fmt(c["adjusted_p"]),
            _fmt(c["distances"].get("psi")),
            _fmt(c["distances"].get("js")),
            c["verdict"] + (f" ({c['note']})" if c["note"] and not drifted else ""),
            style=style,
        )
    cli.console.print(table)
    d = report["domain"]
    if d is not None:
        drivers = ", ".join(name for name, _ in d["top_columns"][:3])
        cli.console.print(
            f"domain classifier AUC {d['auc']:.3f} (threshold {d['threshold']:.3f}): "
            f"{'DRIFT' if d['drifted'] else 'no drift'}"
            + (f"; driven by {drivers}" if drivers and d["drifted"] else "")
        )
    drifted_columns = report["drifted_columns"]
    cli.console.print(
        f"{len(drifted_columns)} column(s) drifted"
        + (f": {', '.join(drifted_columns)}" if drifted_columns else "")
    )
    if html is not None:
        cli.console.print(f"HTML report: {html}")


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}"


@app.command("profile")
def profile(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(help="A Parquet path or a dataset ref NAME:V.")],
    name: Annotated[str, typer.Option("--name", help="Name to store the profile under.")],
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns.")] = None,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Summarize a reference window once and store it, for later drift checks."""
    cli = state(ctx)
    where = project or cli.settings.project
    names = _columns(columns)
    client = cli.remote()
    if client is not None:
        local = Path(data).is_file()
        stored = client.save_profile(
            name,
            project=where,
            dataset=None if local else data,
            path=Path(data) if local else None,
            columns=names,
            source=data,
        )
    else:
        stored = _save_here(cli, data, name, names, where)
    if output is Output.json:
        emit_json(stored)
        return
    cli.console.print(
        f"stored profile {stored['name']}@{stored['version']} ({stored['num_rows']:,} rows, "
        f"{stored['num_columns']} columns, digest {stored['digest'][:12]})"
    )


def _save_here(
    cli: CliState, data: str, name: str, names: list[str] | None, project: str
) -> dict[str, Any]:
    from ghaf.monitoring import profile_window
    from ghaf.monitoring.store import save_profile

    platform = cli.platform()
    summary = profile_window(data, platform, columns=names)
    stored = save_profile(
        platform.in_project(project), cli.actor(), name, summary, source=data, project=project
    )
    return dict(to_jsonable(stored))


@app.command("profiles")
def profiles(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Argument(help="NAME (its versions) or NAME@V (one version); none: every profile."),
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """List stored reference profiles (against a server: those of your projects)."""
    cli = state(ctx)
    client = cli.remote()
    one = ref is not None and "@" in ref
    if client is not None:
        found = [client.profile(ref)] if one and ref else client.profiles(ref)
    else:
        found = _profiles_here(cli, ref, one)
    if ref is not None and not found:
        raise NotFoundError(
            f"no stored profile {ref!r}",
            hint="store one with `ghaf monitor profile DATA --name NAME`",
        )
    if output is Output.json:
        emit_json({"profiles": found})
        return
    table = Table("name", "version", "project", "rows", "columns", "source", "by", "created")
    for p in found:
        table.add_row(
            p["name"],
            str(p["version"]),
            p["project"],
            f"{p['num_rows']:,}",
            str(p["num_columns"]),
            p["source"],
            p["created_by"],
            str(p["created_at"]),
        )
    cli.console.print(table)


def _profiles_here(cli: CliState, ref: str | None, one: bool) -> list[dict[str, Any]]:
    from ghaf.monitoring.store import get_profile, list_profiles

    platform = cli.platform()
    name = ref.partition("@")[0] if ref else None
    found = [get_profile(platform, ref)] if one and ref else list_profiles(platform, name)
    return [dict(to_jsonable(p)) for p in found]


# ---- scheduled monitors --------------------------------------------------------------

DeploymentArgument = Annotated[str, typer.Argument(help="The deployment record to monitor.")]


def _option_values(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as monitor options (numbers read as numbers, ``none`` as None)."""
    import json

    found: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(
                f"--option {pair!r} is not KEY=VALUE", hint="e.g. --option min_psi=0.2"
            )
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        found[key.strip()] = None if raw.lower() == "none" else value
    return found


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    deployment: DeploymentArgument,
    every: Annotated[
        str, typer.Option("--every", help="How often it runs: 90s, 5m, 2h, 1d.")
    ] = "5m",
    window: Annotated[
        str | None, typer.Option("--window", help="How far back each run looks (default: --every).")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference", help="profile:NAME[@V]; default: each version's training profile."
        ),
    ] = None,
    log_dir: Annotated[
        str | None,
        typer.Option(
            "--log-dir",
            help="The prediction log (ghaf serve --log-dir); default HOME/predictions. Against "
            "a server: a directory under its predictions/.",
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            help="A threshold KEY=VALUE (alpha, min_psi, min_rows, max_missing_increase, "
            "max_out_of_range, max_unseen, threshold, min_accuracy, min_auc, label_metric, "
            "label_horizon_s, severity); repeatable.",
        ),
    ] = None,
    disable: Annotated[bool, typer.Option("--disable", help="Keep it, but do not run it.")] = False,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Schedule (or replace) a deployment's monitor: every --every, over the last --window
    of its prediction log, against its training profile or --reference."""
    cli = state(ctx)
    where = project or cli.settings.project
    options = _option_values(option)
    client = cli.remote()
    if client is not None:
        made = client.schedule_monitor(
            where,
            deployment,
            every=every,
            window=window,
            reference=reference,
            log=log_dir,
            options=options,
            enabled=not disable,
        )
    else:
        from ghaf.monitoring.schedule import schedule_monitor

        made = to_jsonable(
            schedule_monitor(
                cli.platform().in_project(where),
                cli.actor(),
                deployment,
                every=every,
                window=window,
                reference=reference,
                log_dir=Path(log_dir).resolve() if log_dir else None,
                options=options,
                enabled=not disable,
                project=where,
            )
        )
    if output is Output.json:
        emit_json(made)
        return
    state_ = "scheduled" if made["enabled"] else "scheduled (disabled)"
    cli.console.print(
        f"monitor of {made['deployment']} {state_}: every {made['interval_s']} s over the last "
        f"{made['window_s']} s of {made['log_dir']}, against "
        f"{made['reference'] or 'each version training profile'}; next run {made['next_run_at']}"
    )


def _print_results(cli: CliState, results: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for header in ("deployment", "version", "window end", "status", "predictions", "drifted",
                   "labels", "accuracy", "est. accuracy", "auc", "est. auc"):  # fmt: skip
        table.add_column(header)
    for r in results:
        performance = r.get("performance") or {}
        estimate = (r.get("report") or {}).get("estimate") or {}
        breached = r["status"] == "breached"
        table.add_row(
            r["deployment"],
            r["model_version"],
            str(r["window_end"])[:19].replace("T", " "),
            r["status"] + (f" ({', '.join(r['breaches'])})" if breached else ""),
            f"{r['predictions']:,}",
            ", ".join(r["drifted_features"]) or "–",
            f"{r['labels']:,}",
            _fmt(performance.get("accuracy")),
            _fmt(estimate.get("accuracy")),
            _fmt(performance.get("roc_auc")),
            _fmt(estimate.get("roc_auc")),
            style="bold red" if breached else ("yellow" if r["status"] != "ok" else ""),
        )
    cli.console.print(table)


def _runs_here(cli: CliState, where: str, deployment: str | None) -> list[dict[str, Any]]:
    from ghaf.monitoring.monitors import run_due_monitors, run_monitor

    platform = cli.platform().in_project(where)
    if deployment is not None:
        runs = [run_monitor(platform, cli.actor(), deployment)]
    else:
        runs = run_due_monitors(platform, cli.actor())
    return [dict(to_jsonable(r.to_dict())) for r in runs]


@app.command("run")
def run(
    ctx: typer.Context,
    deployment: Annotated[
        str | None, typer.Argument(help="Run this monitor now; none: every monitor that is due.")
    ] = None,
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep running due monitors (the local scheduler).")
    ] = False,
    every: Annotated[
        str, typer.Option("--every", help="With --loop: how often to look (1s to 1h).")
    ] = "10s",
    for_: Annotated[
        str | None, typer.Option("--for", help="With --loop: stop after this long (e.g. 1h).")
    ] = None,
    retrain: Annotated[
        bool,
        typer.Option(
            "--retrain/--no-retrain",
            help="With --loop on a home: act on what breached by the deployments' retraining "
            "policies (ghaf deployments retrain-on) and advance their canaries.",
        ),
    ] = True,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Run monitors once (one deployment's now, or every due one; exit 1 when a result
    breached), or --loop: the live loop every --every until --for is over or Ctrl-C: due
    monitors, scheduled SLOs (ghaf slo schedule), and the closed loop: a breach on a
    deployment with a retraining policy retrains it. `ghaf server` runs the same loop."""
    import time

    from ghaf.monitoring.schedule import parse_duration

    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if loop and deployment is not None:
        raise InvalidInputError(
            "--loop runs every due monitor", hint="leave DEPLOYMENT out with --loop"
        )
    if not loop:
        runs = (
            client.run_monitors(where, deployment) if client is not None
            else _runs_here(cli, where, deployment)
        )  # fmt: skip
        _show_runs(cli, runs, output)
        if any(r["breached"] for r in runs):
            raise typer.Exit(1)
        return
    pause = parse_duration(every, "--every")
    if not 1 <= pause <= 3600:
        raise InvalidInputError(f"--every {every} is out of range", hint="use 1s to 1h")
    until = time.time() + parse_duration(for_, "--for") if for_ else None
    if client is None:
        from ghaf.liveloop import LiveLoop

        platform, actor = cli.platform().in_project(where), cli.actor()
        with LiveLoop(platform, actor, projects=[where], retrain=retrain) as live:
            while True:
                done = live.tick()
                _show_runs(cli, [dict(to_jsonable(r.to_dict())) for r in done.monitors], output)
                _show_slo_passes(cli, [p for _, p in done.slos], output)
                _show_retraining(cli, done.retraining, output)
                if until is not None and time.time() >= until:
                    return
                time.sleep(pause if until is None else max(0.0, min(pause, until - time.time())))
    while until is None or time.time() < until:
        _show_runs(cli, client.run_monitors(where), output)
        time.sleep(pause if until is None else max(0.0, min(pause, until - time.time())))


def _show_slo_passes(cli: CliState, passes: list[Any], output: Output) -> None:
    """One line (or JSON object) per scheduled SLO the loop evaluated in a pass."""
    for done in passes:
        if output is Output.json:
            emit_json({"slo": to_jsonable(done.to_dict())})
            continue
        said = f"firing {', '.join(done.firing)}" if done.firing else "not firing"
        if done.resolved:
            said += f"; resolved {', '.join(done.resolved)}"
        if done.note:
            said = done.note
        errors = f" ({'; '.join(done.errors)})" if done.errors else ""
        cli.console.print(f"SLO {done.name}: {said}{errors}")


def _show_retraining(cli: CliState, runs: list[Any], output: Output) -> None:
    """One line (or JSON object) per retraining run the loop moved in a pass."""
    for run in runs:
        if output is Output.json:
            emit_json({"retraining": to_jsonable(run)})
            continue
        where = f" (incident {run.incident})" if run.incident else ""
        cli.console.print(
            f"retraining run {run.id} of {run.deployment}{where}: {run.status}: {run.reason}"
        )


def _show_runs(cli: CliState, runs: list[dict[str, Any]], output: Output) -> None:
    if output is Output.json:
        for run_ in runs:
            emit_json(run_)
        return
    if not runs:
        cli.console.print("no monitor is due")
    for run_ in runs:
        title = f"monitor run of {run_['deployment']} ({run_['seconds']:.2f} s)"
        _print_results(cli, run_["results"], title)
        if run_["updated"]:
            _print_results(cli, run_["updated"], "earlier windows with new labels")


@app.command("status")
def status(
    ctx: typer.Context,
    deployment: Annotated[str | None, typer.Argument(help="Only this deployment.")] = None,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """The latest monitor result of each deployment and model version, and the schedules.

    JSON: ``{"monitors": [schedule...], "results": [result...]}``.
    """
    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        schedules = client.monitors(where)
        results = client.monitor_status(where, deployment)
    else:
        from ghaf.monitoring.results import monitor_status
        from ghaf.monitoring.schedule import list_schedules

        platform = cli.platform().in_project(where)
        schedules = [dict(to_jsonable(s)) for s in list_schedules(platform)]
        results = [dict(to_jsonable(r.to_dict())) for r in monitor_status(platform, deployment)]
    if deployment is not None:
        schedules = [s for s in schedules if s["deployment"] == deployment]
        if not schedules:
            raise NotFoundError(
                f"no monitor is scheduled for deployment {deployment!r}",
                hint="ghaf monitor schedule DEPLOYMENT --every 5m --window 1h",
            )
    if output is Output.json:
        emit_json({"monitors": schedules, "results": results})
        return
    table = Table("deployment", "every", "window", "reference", "enabled", "last run", "next run")
    for s in schedules:
        table.add_row(
            s["deployment"],
            f"{s['interval_s']} s",
            f"{s['window_s']} s",
            s["reference"] or "training profile",
            "yes" if s["enabled"] else "no",
            str(s["last_run_at"] or "–")[:19].replace("T", " "),
            str(s["next_run_at"])[:19].replace("T", " "),
        )
    cli.console.print(table)
    _print_results(cli, results, "latest results")


@app.command("results")
def results(
    ctx: typer.Context,
    deployment: DeploymentArgument,
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="Only this version (NAME:V).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """A deployment's monitor results, newest first. JSON: ``{"results": [...]}``."""
    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        found = client.monitor_results(where, deployment, model_version=model_version, limit=limit)
    else:
        from ghaf.monitoring.results import list_results

        platform = cli.platform().in_project(where)
        found = [
            dict(to_jsonable(r.to_dict()))
            for r in list_results(platform, deployment, model_version=model_version, limit=limit)
        ]
    if output is Output.json:
        emit_json({"results": found})
        return
    _print_results(cli, found, f"monitor results of {deployment}")
