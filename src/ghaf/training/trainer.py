"""``train(spec, data)``: one tracked run per training, seeded, timed, priced."""

from __future__ import annotations

import random
import time

import numpy as np

from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.training.base import TrainData, TrainResult, TrainSpec
from ghaf.training.devices import select_device, training_cost
from ghaf.training.frameworks import evaluate, fit, predict


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # libraries that read NumPy's legacy global state
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an optional extra
        return
    torch.manual_seed(seed)


def train(
    spec: TrainSpec,
    data: TrainData,
    *,
    platform: Platform | None = None,
    actor: Actor | None = None,
    parent_run_id: str | None = None,
    ray_address: str | None = None,
) -> TrainResult:
    """Train ``spec`` on ``data`` as a tracked run (a child of ``parent_run_id`` when given).

    The run records the params, seed, device (and why), environment, validation metrics,
    CPU and wall seconds, GPU seconds and a cost from ``settings.prices``.

    ``spec.workers > 1`` (or a ``ray_address``) trains data-parallel on Ray Train
    (:mod:`ghaf.training.ray_train`) on the cluster this process is connected to, else
    ``ray_address``, else ``settings.ray_address``, else a new local loopback-only node.
    The run is still one run written by this process: the workers send back the per-epoch
    loss, CPU seconds and the model; ``samples_per_s`` counts the workers' training loops
    and ``wall_s`` everything, the Ray Train start included.

    Raises:
        InvalidInputError: unsupported framework, task or device, or malformed data.
    """
    from ghaf.tracking import start_run

    if platform is None:
        from ghaf.tracking.default import default_platform

        platform = default_platform()
    distributed = spec.workers > 1 or ray_address is not None
    if distributed:
        from ghaf.training.ray_train import cluster_device, fit_on_ray

        device = cluster_device(spec, ray_address or platform.settings.ray_address)
    else:
        device = select_device(spec.device, spec.framework)
    params = dict(spec.params)
    tags = {
        "ghaf.framework": spec.framework,
        "ghaf.task": spec.task,
        "ghaf.device": device.kind,
        "ghaf.device_reason": device.reason,
        "ghaf.seed": spec.seed,
    }
    if device.gpu_class:
        tags["ghaf.gpu_class"] = device.gpu_class
    if distributed:
        tags["ghaf.distributed"] = "ray-train"
    logged = {f"model.{k}": v for k, v in params.items()}
    logged.update(
        framework=spec.framework, task=spec.task, seed=spec.seed, device=device.kind,
        rows=len(data.x), features=data.x.shape[1], workers=spec.workers,
    )  # fmt: skip
    with start_run(
        spec.name or f"{spec.framework}-{spec.task}",
        experiment=spec.experiment,
        platform=platform,
        actor=actor,
        parent_run_id=parent_run_id,
        params=logged,
        tags=tags,
        inputs=spec.inputs,
    ) as run:
        _seed_everything(spec.seed)

        def on_epoch(epoch: int, loss: float) -> None:
            run.log_metric("train_loss", loss, step=epoch)

        cpu0, wall0 = time.process_time(), time.perf_counter()
        if distributed:
            fitted = fit_on_ray(spec, params, data, device.kind, platform.settings.home)
            for epoch, loss in enumerate(fitted.losses):
                on_epoch(epoch, loss)  # rank 0's figures, recorded here
            model, loop_s = fitted.model, fitted.loop_s
            cpu_s = time.process_time() - cpu0 + fitted.cpu_s
            wall_s = time.perf_counter() - wall0
        else:
            model = fit(spec.framework, spec.task, params, data, spec.seed, device.kind, on_epoch)
            cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
            loop_s = wall_s
        gpu_s = wall_s * spec.workers if device.kind == "cuda" else 0.0
        cost = training_cost(platform.settings.prices, cpu_s, gpu_s, device.gpu_class)
        epochs = int(params.get("epochs", 5)) if spec.framework == "pytorch" else 1
        samples_per_s = len(data.x) * epochs / loop_s if loop_s > 0 else 0.0
        metrics: dict[str, float] = {}
        if data.x_valid is not None and data.y_valid is not None:
            metrics = evaluate(
                spec.task, data.y_valid, predict(spec.framework, spec.task, model, data.x_valid)
            )
        resources = {
            "cpu_s": cpu_s,
            "wall_s": wall_s,
            "gpu_s": gpu_s,
            "cost": cost,
            "samples_per_s": samples_per_s,
        }
        run.log_metrics({**metrics, **resources})
        source = None
        if spec.log_model:
            source = run.log_model(model, "model", flavor=model_flavor(spec.framework))
    return TrainResult(
        model=model,
        run_id=run.run_id,
        framework=spec.framework,
        task=spec.task,
        device=device.kind,
        seed=spec.seed,
        params=params,
        metrics=metrics,
        cpu_s=cpu_s,
        wall_s=wall_s,
        gpu_s=gpu_s,
        cost=cost,
        samples_per_s=samples_per_s,
        model_source=source,
    )


def model_flavor(framework: str) -> str:
    """The safe model flavor a framework's trained models are saved with."""
    return {"sklearn": "skops", "lightgbm": "lightgbm", "xgboost": "xgboost"}.get(
        framework, "pytorch"
    )
