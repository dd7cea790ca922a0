"""``ghaf train``: train a model on a dataset version as a tracked run, here or on Ray."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json


def _params(text: str) -> dict[str, Any]:
    from ghaf.errors import InvalidInputError

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(
            f"--params is not JSON: {exc}", hint='e.g. --params \'{"epochs": 5, "lr": 0.001}\''
        ) from exc
    if not isinstance(value, dict):
        raise InvalidInputError("--params must be a JSON object", hint="e.g. '{\"epochs\": 5}'")
    return value


def train(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="Dataset version: NAME (newest) or NAME:V.")],
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict.")],
    framework: Annotated[
        str, typer.Option("--framework", "-f", help="sklearn, lightgbm, xgboost or pytorch.")
    ] = "pytorch",
    task: Annotated[str, typer.Option(help="classification or regression.")] = "classification",
    params: Annotated[
        str, typer.Option("--params", help="Model params as a JSON object, e.g. '{\"epochs\": 5}'.")
    ] = "{}",
    feature: Annotated[
        list[str] | None,
        typer.Option("--feature", help="A feature column (repeatable; default: all others)."),
    ] = None,
    valid_fraction: Annotated[
        float, typer.Option(help="Rows held out for the validation metrics.")
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split and the training.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Data-parallel Ray Train workers (pytorch, xgboost); 1 trains in this process.",
        ),
    ] = 1,
    on: Annotated[
        str | None,
        typer.Option(
            "--on",
            help="Where to train: local, ray (the cluster at GHAF_RAY_ADDRESS) or "
            "ray://HOST:PORT, the Ray head's address (default: in this process, or a Ray "
            "node at GHAF_RAY_ADDRESS, else a new local one, when --workers > 1).",
        ),
    ] = None,
    experiment: Annotated[str, typer.Option(help="Experiment of the run.")] = "training",
    name: Annotated[str | None, typer.Option(help="Name of the run.")] = None,
    log_model: Annotated[
        bool, typer.Option("--log-model/--no-log-model", help="Log the model with the run.")
    ] = True,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Project (default: GHAF_PROJECT).")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Train a model on a dataset version as a tracked run, in this process or data-parallel
    on Ray Train (--workers N --on ray://HOST:PORT).

    JSON output: ``run_id``, ``model_source``, ``framework``, ``workers``, ``device``,
    ``metrics`` (validation), ``samples_per_s``, ``wall_s``, ``cpu_s``, ``cost``.
    """
    from ghaf.pipelines.ray_target import ray_target
    from ghaf.training import TrainSpec
    from ghaf.training.from_dataset import train_on_dataset

    cli = state(ctx)
    _, address = ray_target(on, cli.settings.ray_address)  # a bad --on fails first
    platform = cli.platform().in_project(project or cli.settings.project)
    spec = TrainSpec(
        framework,  # type: ignore[arg-type]  # TrainSpec refuses an unknown one by name
        task=task,  # type: ignore[arg-type]
        params=_params(params),
        seed=seed,
        device=device,  # type: ignore[arg-type]
        experiment=experiment,
        name=name,
        log_model=log_model,
        workers=workers,
    )
    result = train_on_dataset(
        platform,
        cli.actor(),
        spec,
        dataset,
        target,
        features=feature,
        valid_fraction=valid_fraction,
        ray_address=address,
    )
    document = {
        "run_id": result.run_id,
        "model_source": result.model_source,
        "framework": result.framework,
        "workers": workers,
        "device": result.device,
        "metrics": result.metrics,
        "samples_per_s": result.samples_per_s,
        "wall_s": result.wall_s,
        "cpu_s": result.cpu_s,
        "cost": result.cost,
    }
    if output is Output.json:
        emit_json(document)
        return
    figures = ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.metrics.items()))
    where = f"on {workers} Ray Train workers" if workers > 1 or on else "in this process"
    cli.console.print(
        f"run {result.run_id}: {framework} {where} ({result.device}), "
        f"{result.samples_per_s:,.0f} samples/s, {result.wall_s:.1f} s"
    )
    if figures:
        cli.console.print(f"validation: {figures}")
    if result.model_source:
        cli.console.print(f"model: {result.model_source}")
