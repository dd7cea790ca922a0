"""Hyper-parameter search, Optuna here or Ray Tune on Ray: a parent run, a child run a trial."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from ghaf.errors import InvalidInputError
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.training.base import TrainData, TrainResult, TrainSpec
from ghaf.training.trainer import train

SearchSpace = Callable[[Any], dict[str, Any]]
"""Given an ``optuna.Trial``, the model params of that trial (``trial.suggest_*``).

The same function serves both backends (Ray Tune's OptunaSearch takes it define-by-run)."""


@dataclass
class TuneResult:
    """The search's parent run, its best trial and every trial's result."""

    parent_run_id: str
    best_params: dict[str, Any]
    best_value: float
    best: TrainResult
    trials: list[TrainResult]


def tune(
    spec: TrainSpec,
    data: TrainData,
    space: SearchSpace,
    *,
    n_trials: int,
    metric: str,
    direction: Literal["minimize", "maximize"] = "maximize",
    platform: Platform | None = None,
    actor: Actor | None = None,
    backend: Literal["optuna", "ray"] = "optuna",
    max_concurrent: int | None = None,
) -> TuneResult:
    """Search ``space`` with Optuna's TPE sampler (seeded with ``spec.seed``).

    ``backend="optuna"`` runs the trials one after another here; ``backend="ray"`` runs
    them as Ray Tune trials (at most ``max_concurrent`` at once) on the Ray cluster this
    process is connected to, or on a new local loopback-only one. Each trial trains
    ``spec`` with the trial's params merged over ``spec.params`` as a child run of one
    parent run, which records the best params and value.

    Raises:
        InvalidInputError: ``metric`` is not a validation metric the trials report, the
            data has no validation split, ``n_trials`` < 1 or an unknown backend.
    """
    import optuna

    from ghaf.tracking import start_run

    if backend not in ("optuna", "ray"):
        raise InvalidInputError(f"backend is {backend!r}", hint="use 'optuna' or 'ray'")
    if n_trials < 1:
        raise InvalidInputError(f"n_trials is {n_trials}", hint="run at least one trial")
    if data.x_valid is None:
        raise InvalidInputError(
            "the data has no validation split", hint="pass x_valid and y_valid to tune on"
        )
    if platform is None:
        from ghaf.tracking.default import default_platform

        platform = default_platform()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with start_run(
        f"hpo-{spec.framework}",
        experiment=spec.experiment,
        platform=platform,
        actor=actor,
        params={"n_trials": n_trials, "metric": metric, "direction": direction, "seed": spec.seed},
        tags={
            "ghaf.hpo": "ray-tune" if backend == "ray" else "optuna",
            "ghaf.framework": spec.framework,
        },
    ) as parent:
        if backend == "ray":
            from ghaf.training.ray_tune import run_ray_search

            best_params, best_value, best, results = run_ray_search(
                spec,
                data,
                space,
                n_trials=n_trials,
                metric=metric,
                direction=direction,
                platform=platform,
                actor=actor,
                parent_run_id=parent.run_id,
                max_concurrent=max_concurrent,
            )
        else:
            best_params, best_value, best, results = _optuna_search(
                spec, data, space, n_trials, metric, direction, platform, actor, parent.run_id
            )
        parent.log_params({f"best.{k}": v for k, v in best_params.items()})
        parent.log_metric(f"best_{metric}", best_value)
    return TuneResult(parent.run_id, best_params, best_value, best, results)


def trial_metric(result: TrainResult, metric: str) -> float:
    """The value a search optimizes, from one trial's validation metrics.

    Raises:
        InvalidInputError: the trials do not report ``metric``.
    """
    if metric not in result.metrics:
        raise InvalidInputError(
            f"metric {metric!r} is not reported by {result.framework} {result.task}",
            hint=f"use one of {', '.join(sorted(result.metrics))}",
        )
    return float(result.metrics[metric])


def _optuna_search(
    spec: TrainSpec,
    data: TrainData,
    space: SearchSpace,
    n_trials: int,
    metric: str,
    direction: Literal["minimize", "maximize"],
    platform: Platform,
    actor: Actor | None,
    parent_run_id: str,
) -> tuple[dict[str, Any], float, TrainResult, list[TrainResult]]:
    """Trials one after another here; the best params, value and result, and every result."""
    import optuna

    results: list[TrainResult] = []

    def objective(trial: Any) -> float:
        trial_spec = replace(
            spec,
            params={**spec.params, **space(trial)},
            name=f"trial-{trial.number}",
            log_model=False,
        )
        result = train(
            trial_spec, data, platform=platform, actor=actor, parent_run_id=parent_run_id
        )
        results.append(result)
        return trial_metric(result, metric)

    study = optuna.create_study(
        direction=direction, sampler=optuna.samplers.TPESampler(seed=spec.seed)
    )
    study.optimize(objective, n_trials=n_trials, catch=())
    best = results[study.best_trial.number]
    return dict(study.best_params), float(study.best_value), best, results
