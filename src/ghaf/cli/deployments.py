"""``ghaf deployments``: the records of what is served under a name (``ghaf serve`` serves them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import InvalidInputError

app = typer.Typer(
    help="Deployments: which versions a name serves, their traffic split, shadow and status.",
    no_args_is_help=True,
)

MODELS_HELP = "MODEL:V or MODEL@ALIAS, each optionally =WEIGHT (default 1: an equal split)."
ProjectOption = Annotated[
    str | None, typer.Option("--project", help="Project (default: GHAF_PROJECT).")
]


def _weights(models: list[str]) -> dict[str, float]:
    """``fraud:1=90 fraud:2=10`` as refs -> weights."""
    weights: dict[str, float] = {}
    for item in models:
        ref, sep, weight = item.partition("=")
        try:
            weights[ref] = float(weight) if sep else 1.0
        except ValueError:
            raise InvalidInputError(
                f"weight {weight!r} of {ref} is not a number", hint="e.g. fraud:3=90 fraud:4=10"
            ) from None
    return weights


def _print(cli: CliState, found: list[dict[str, Any]]) -> None:
    table = Table("name", "project", "models", "shadow", "status", "revision", "updated by")
    for d in found:
        table.add_row(
            d["name"],
            d["project"],
            ", ".join(f"{ref} {weight:g}" for ref, weight in d["models"].items()),
            d["shadow"] or "",
            d["status"],
            str(d["revision"]),
            d["updated_by"],
        )
    cli.console.print(table)


def _show(cli: CliState, record: dict[str, Any], output: Output) -> None:
    if output is Output.json:
        emit_json(record)
    else:
        _print(cli, [record])


@app.command("list")
def list_(
    ctx: typer.Context, project: ProjectOption = None, output: OutputOption = Output.table
) -> None:
    """List deployments (against a server: those of your projects)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        found = client.deployments(project)
    else:
        from ghaf.serving.deployments import list_deployments

        every = list_deployments(cli.platform())
        found = to_jsonable([d for d in every if project in (None, d.project)])
    if output is Output.json:
        emit_json({"deployments": found})
        return
    _print(cli, found)


@app.command("show")
def show(ctx: typer.Context, name: str, output: OutputOption = Output.table) -> None:
    """Show one deployment: its versions and weights, shadow, status and revision."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        record = client.deployment(name)
    else:
        from ghaf.serving.deployments import get_deployment

        record = to_jsonable(get_deployment(cli.platform(), name))
    _show(cli, record, output)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    models: Annotated[list[str], typer.Argument(help=MODELS_HELP)],
    shadow: Annotated[
        str | None, typer.Option(help="A version that also scores each request, logged only.")
    ] = None,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Record a new deployment (each version must meet the project's release policy)."""
    cli = state(ctx)
    where = project or cli.settings.project
    weights = _weights(models)
    client = cli.remote()
    if client is not None:
        record = client.create_deployment(name, weights, project=where, shadow=shadow)
    else:
        from ghaf.serving.deployments import create_deployment

        platform = cli.platform()
        made = create_deployment(
            platform.in_project(where), cli.actor(), name, weights, shadow=shadow, project=where
        )
        record = to_jsonable(made)
    _show(cli, record, output)


@app.command("update")
def update(
    ctx: typer.Context,
    name: str,
    models: Annotated[list[str] | None, typer.Argument(help=MODELS_HELP)] = None,
    shadow: Annotated[
        str | None, typer.Option(help='A version that also scores each request; "" removes it.')
    ] = None,
    status: Annotated[str | None, typer.Option(help="active or stopped.")] = None,
    output: OutputOption = Output.table,
) -> None:
    """Change a deployment's versions and weights, shadow or status (a new revision)."""
    cli = state(ctx)
    weights = _weights(models) if models else None
    if weights is None and shadow is None and status is None:
        raise InvalidInputError("nothing to change", hint="give MODELS, --shadow or --status")
    client = cli.remote()
    if client is not None:
        record = client.update_deployment(name, models=weights, shadow=shadow, status=status)
    else:
        from ghaf.serving.deployments import get_deployment, update_deployment

        platform = cli.platform()
        current = get_deployment(platform, name)
        changed = update_deployment(
            platform.in_project(current.project),
            cli.actor(),
            name,
            models=weights,
            shadow=shadow,
            status=status,
        )
        record = to_jsonable(changed)
    _show(cli, record, output)


def _served(cli: CliState, ref: str) -> Any:
    """The registry's record of ``ref`` (a version or alias), from either mode."""
    from ghaf.k8s import ServedVersion

    client = cli.remote()
    if client is not None:
        return ServedVersion.from_record(client.model_version(ref))
    from ghaf.registry import get_model_version

    return ServedVersion.from_record(to_jsonable(get_model_version(cli.platform(), ref)))


@app.command("export")
def export(
    ctx: typer.Context,
    k8s: Annotated[
        bool, typer.Option("--k8s", help="Kubernetes manifests (control plane and KServe).")
    ] = False,
    out: Annotated[Path, typer.Option(help="Directory the manifests are written to.")] = Path(
        "k8s"
    ),
    model: Annotated[
        list[str] | None,
        typer.Option(help="MODEL:V or MODEL@ALIAS: an InferenceService for it (repeatable)."),
    ] = None,
    deployment: Annotated[
        list[str] | None,
        typer.Option(
            help="A deployment: an InferenceService for its version, or its canary with the "
            "canary's weight as canaryTrafficPercent (repeatable)."
        ),
    ] = None,
    gpu: Annotated[bool, typer.Option("--gpu", help="Predictors on the GPU image.")] = False,
    min_replicas: Annotated[
        int | None,
        typer.Option(help="Fewest predictor pods (default: kubernetes.inference_min_replicas)."),
    ] = None,
    max_replicas: Annotated[
        int | None,
        typer.Option(help="Most predictor pods (default: kubernetes.inference_max_replicas)."),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(help="KServe mode: RawDeployment or Serverless (default: the setting)."),
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Write manifests: the control plane (migration Job, Deployment, Service, HPA, PDB,
    NetworkPolicies, Ingress) and a KServe InferenceService per model or deployment.

    Secrets are never written: pods read the existing Secrets that the kubernetes
    settings name (GHAF_KUBERNETES__ENV_SECRET...).
    """
    from ghaf.k8s import Split, export_manifests, write_manifests

    if not k8s:
        raise InvalidInputError("no format chosen", hint="add --k8s")
    cli = state(ctx)
    settings = cli.settings.kubernetes
    if mode is not None:
        if mode not in ("RawDeployment", "Serverless"):
            raise InvalidInputError(
                f"--mode {mode!r} is not a KServe deployment mode",
                hint="give --mode RawDeployment or --mode Serverless",
            )
        settings = settings.model_copy(update={"deployment_mode": mode})
    models = [_served(cli, ref) for ref in model or ()]
    splits = []
    for name in deployment or ():
        client = cli.remote()
        if client is not None:
            record = client.deployment(name)
        else:
            from ghaf.serving.deployments import get_deployment

            record = to_jsonable(get_deployment(cli.platform(), name))
        weights = {_served(cli, ref): float(w) for ref, w in record["models"].items()}
        splits.append(Split(record["name"], weights))
    manifests = export_manifests(
        settings,
        models=models,
        splits=splits,
        gpu=gpu,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
    )
    written = write_manifests(manifests, out)
    if output is Output.json:
        emit_json(
            {
                "out": str(out),
                "files": [str(path) for path in written],
                "kinds": [m["kind"] for m in manifests],
            }
        )
        return
    for path, manifest in zip(written, manifests, strict=True):
        cli.console.print(f"{manifest['kind']:<24} {path}")


def _plan_file(path: Path) -> dict[str, Any]:
    """The canary plan in a YAML or JSON file (the service checks its fields)."""
    from ghaf.experiments.rollout import load_plan

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"--canary-plan {path}: {exc.strerror}", hint="give a YAML or JSON file"
        ) from None
    return load_plan(text, f"--canary-plan {path}").to_dict()


@app.command("retrain-on")
def retrain_on(
    ctx: typer.Context,
    deployment: str,
    pipeline: Annotated[
        str,
        typer.Option(
            "--pipeline",
            help="MODULE:ATTRIBUTE of a pipeline the operator declared (the pipelines "
            "setting); its step 'register' answers {'ref': ...}.",
        ),
    ],
    canary_plan: Annotated[
        Path, typer.Option("--canary-plan", help="The candidate's canary plan (YAML or JSON).")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="A pipeline parameter KEY=VALUE (JSON); repeatable."),
    ] = None,
    on: Annotated[
        list[str] | None,
        typer.Option("--on", help="drift.detected and/or model.quality (default: both)."),
    ] = None,
    cooldown: Annotated[
        str, typer.Option(help="Least time between two retrainings: 90s, 30m, 6h, 1d.")
    ] = "6h",
    max_runs: Annotated[
        int | None, typer.Option("--max-runs", help="At most this many per --window.")
    ] = None,
    window: Annotated[str, typer.Option(help="The window of --max-runs.")] = "1d",
    disable: Annotated[bool, typer.Option("--disable", help="Keep it, but do not act.")] = False,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Retrain the deployment when a drift or model-quality alert fires on it: the pipeline
    runs (within the cooldown and maximum frequency), its registered candidate is gated,
    approved where the release policy wants it, and canaried by the plan until promoted or
    rolled back; each hop goes on the alert's incident. The loop runs with the monitors
    (ghaf monitor run --loop)."""
    from ghaf.monitoring.schedule import parse_duration
    from ghaf.pipelines.loader import parse_params

    cli = state(ctx)
    where = project or cli.settings.project
    plan = _plan_file(canary_plan)
    params = parse_params(param or [])
    alerts = list(on or ["drift.detected", "model.quality"])
    cooldown_s = float(parse_duration(cooldown, "--cooldown"))
    window_s = float(parse_duration(window, "--window"))
    client = cli.remote()
    if client is not None:
        made = client.set_retraining(
            where, deployment, pipeline=pipeline, plan=plan, params=params, alerts=alerts,
            cooldown=cooldown_s, max_runs=max_runs, window=window_s, enabled=not disable,
        )  # fmt: skip
    else:
        from ghaf.retraining import set_retrain_policy

        policy = set_retrain_policy(
            cli.platform().in_project(where), cli.actor(), deployment, pipeline=pipeline,
            plan=plan, params=params, alerts=alerts, cooldown_s=cooldown_s,
            max_runs=max_runs, window_s=window_s, enabled=not disable,
        )  # fmt: skip
        made = to_jsonable(policy)
    if output is Output.json:
        emit_json(made)
        return
    limit = f", at most {made['max_runs']} per {made['window_s']:g} s" if made["max_runs"] else ""
    cli.console.print(
        f"{made['deployment']}: {' or '.join(made['alerts'])} runs {made['pipeline']} "
        f"(cooldown {made['cooldown_s']:g} s{limit}), then a canary by steps "
        f"{made['plan']['steps']}" + ("" if made["enabled"] else " [disabled]")
    )


@app.command("retrain-off")
def retrain_off(
    ctx: typer.Context,
    deployment: str,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Delete the deployment's retraining policy (runs under way are not stopped)."""
    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        gone = client.delete_retraining(where, deployment)
    else:
        from ghaf.retraining import delete_retrain_policy

        platform = cli.platform().in_project(where)
        gone = to_jsonable(delete_retrain_policy(platform, cli.actor(), deployment))
    if output is Output.json:
        emit_json({"deleted": gone})
        return
    cli.console.print(f"{deployment}: alerts no longer retrain it")


@app.command("retraining")
def retraining(
    ctx: typer.Context,
    deployment: Annotated[str | None, typer.Argument(help="One deployment (default: all).")] = None,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Retraining policies and the closed loop's latest runs (each alert it acted on, how
    far it got and why). JSON: ``{"policies": [...], "runs": [...]}``."""
    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        if deployment is not None:
            one = client.retraining(where, deployment)
            document = {"policies": [one["policy"]], "runs": one["runs"]}
        else:
            document = client.retraining_policies(where)
    else:
        from ghaf.retraining import (
            get_retrain_policy,
            list_retrain_policies,
            list_retrain_runs,
        )

        platform = cli.platform().in_project(where)
        found = (
            [get_retrain_policy(platform, deployment)]
            if deployment is not None
            else list_retrain_policies(platform)
        )
        runs = list_retrain_runs(platform, deployment)
        document = to_jsonable({"policies": found, "runs": runs})
    if output is Output.json:
        emit_json(document)
        return
    table = Table("deployment", "on", "pipeline", "cooldown s", "canary steps", "enabled")
    for p in document["policies"]:
        table.add_row(
            p["deployment"], ", ".join(p["alerts"]), p["pipeline"], f"{p['cooldown_s']:g}",
            ", ".join(f"{s:g}" for s in p["plan"]["steps"]), "yes" if p["enabled"] else "no",
        )  # fmt: skip
    cli.console.print(table)
    runs_table = Table("run", "deployment", "fired", "alert", "incident", "status", "candidate",
                       "why")  # fmt: skip
    for r in document["runs"]:
        runs_table.add_row(
            str(r["id"]), r["deployment"], str(r["fired_at"])[:19].replace("T", " "),
            r["subject"], r["incident"] or "", r["status"], r["candidate"] or "",
            r["reason"][:120],
        )  # fmt: skip
    cli.console.print(runs_table)
