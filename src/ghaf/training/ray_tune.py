"""Hyper-parameter search with Ray Tune: the same search space and result as Optuna's ``tune``.

Trials run as Ray Tune trials on the connected cluster (OptunaSearch's TPE sampler, seeded),
each training through Ghaf's trainer in its worker, so each is a tracked child run written
straight to the platform's metadata store (the same settings the driver uses). Each
trial's model comes back through its Tune checkpoint in the framework's safe model flavor
(skops, native LightGBM/XGBoost, safetensors), its figures as JSON: no pickle crosses
from the workers to the driver.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from ghaf.artifacts.scratch import scratch_dir
from ghaf.errors import BackendUnavailableError, InvalidInputError, MissingDependencyError
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.training.base import TrainData, TrainResult, TrainSpec

_RESULT_FILE = "train_result.json"
_MODEL_DIR = "model"


def _trial(
    config: dict[str, Any],
    *,
    spec: TrainSpec,
    data: TrainData,
    settings: dict[str, Any],
    actor: Actor | None,
    parent_run_id: str,
    metric: str,
) -> None:
    """One Tune trial, in a Ray worker: train as a child run, report the metric and result."""
    from ray import tune

    from ghaf.settings import GhafSettings
    from ghaf.training.trainer import train

    trial_name = tune.get_context().get_trial_name() or "trial"
    trial_spec = replace(spec, params={**spec.params, **config}, name=trial_name, log_model=False)
    with Platform(GhafSettings(**settings)) as platform:
        result = train(
            trial_spec, data, platform=platform, actor=actor, parent_run_id=parent_run_id
        )
    from ghaf.training.hpo import trial_metric

    value = trial_metric(result, metric)
    # The trial's model, in plaintext until Tune has copied it: inside the home.
    with scratch_dir(Path(settings["home"]), "tune-trial-") as directory:
        _save(result, directory)
        tune.report(
            {metric: float(value), "ghaf_run_id": result.run_id},
            checkpoint=tune.Checkpoint.from_directory(directory),
        )


def _save(result: TrainResult, directory: Path) -> None:
    """The model in its framework's safe flavor, everything else as JSON."""
    from ghaf.models.flavors import save_model
    from ghaf.training.trainer import model_flavor

    save_model(result.model, directory / _MODEL_DIR, flavor=model_flavor(result.framework))
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    fields.pop("model")
    (directory / _RESULT_FILE).write_text(json.dumps(fields, default=str))


def _load(checkpoint: Any) -> TrainResult:
    """A trial's result back from its checkpoint, the model through the flavor's loader."""
    from ghaf.models.flavors import load_model_dir

    with checkpoint.as_directory() as directory:
        fields = json.loads((Path(directory) / _RESULT_FILE).read_text())
        loaded = load_model_dir(Path(directory) / _MODEL_DIR)
    # PyTorch: the nn.Module itself; the others: the flavor's model (predict/predict_proba),
    # since e.g. LightGBM's safe file holds a Booster, not the scikit-learn wrapper.
    model = loaded.raw if fields["framework"] == "pytorch" else loaded
    return TrainResult(model=model, **fields)


def run_ray_search(
    spec: TrainSpec,
    data: TrainData,
    space: Any,
    *,
    n_trials: int,
    metric: str,
    direction: Literal["minimize", "maximize"],
    platform: Platform,
    actor: Actor | None,
    parent_run_id: str,
    max_concurrent: int | None = None,
) -> tuple[dict[str, Any], float, TrainResult, list[TrainResult]]:
    """Run the trials on the Ray cluster this process is connected to (or a local one).

    Returns the best params, best value, best result and every trial's result.
    """
    try:
        import optuna
        from ray import tune
        from ray.tune.search.optuna import OptunaSearch
    except ImportError as exc:
        raise MissingDependencyError("ray[tune]", "ray") from exc
    from ghaf.pipelines.ray import connect_ray
    from ghaf.pipelines.runner import settings_for_workers

    connect_ray()  # the connected cluster, or a new local loopback-only node
    mode = "max" if direction == "maximize" else "min"
    search = OptunaSearch(
        space=space,
        metric=metric,
        mode=mode,
        sampler=optuna.samplers.TPESampler(seed=spec.seed),
    )
    trainable = tune.with_parameters(
        _trial,
        spec=spec,
        data=data,
        settings=settings_for_workers(platform.settings),
        actor=actor,
        parent_run_id=parent_run_id,
        metric=metric,
    )
    with scratch_dir(platform.settings.home, "ray-tune-") as storage:  # trials' checkpoints
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1, "gpu": 0}),
            tune_config=tune.TuneConfig(
                search_alg=search,
                num_samples=n_trials,
                max_concurrent_trials=max_concurrent,
            ),
            run_config=tune.RunConfig(
                name="ghaf-hpo",
                storage_path=str(storage),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=True),
            ),
        )
        grid: Any = tuner.fit()
        errors = [r.error for r in grid if r.error is not None]
        if errors:
            cause = errors[0]
            inner = getattr(cause, "cause", None)
            if isinstance(inner, InvalidInputError):
                raise inner
            raise BackendUnavailableError(
                f"a Ray Tune trial failed: {cause}", hint="see the trial's log above"
            ) from cause
        trials = [_load(r.checkpoint) for r in grid]
        best: Any = grid.get_best_result(metric=metric, mode=mode)
        best_result = _load(best.checkpoint)
        best_params = dict(best.config)
        return best_params, float(best.metrics[metric]), best_result, trials
