"""Data-parallel training on Ray Train: PyTorch DDP (gloo on CPUs, NCCL on GPUs), XGBoost.

``train(spec, data)`` comes here when ``spec.workers > 1`` (or a Ray address is named).
The driver keeps the platform: it holds the tracked run, and the workers never open the
home nor see its keys. Each worker trains on its shard of the rows; every epoch, rank 0
reports the global mean training loss with a checkpoint (the model in its safe flavor,
the optimizer state as safetensors, the epochs' figures as JSON) through
``ray.train.report``. Ray Train keeps the checkpoints in a scratch directory under the
home (``RunConfig(storage_path=...)``, removed after the fit: every node of a loopback or
one-machine cluster sees it; a multi-machine cluster needs that path on shared storage),
and the driver reads the last one back: the model, the per-epoch losses it logs as the
run's ``train_loss`` steps, and the workers' CPU seconds. No pickle crosses from the
workers to the driver.

A worker group that fails is restarted once from the last epoch's checkpoint
(``FailureConfig(max_failures=1)``; the loop resumes from ``ray.train.get_checkpoint()``).

PyTorch's data parallelism keeps the single-process semantics: the global batch is
``batch_size`` rows, split evenly across the workers (DDP averages their gradients), so
an epoch takes the same number of optimizer steps as with one worker.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ghaf.errors import BackendUnavailableError, InvalidInputError, MissingDependencyError
from ghaf.training.base import DISTRIBUTED_FRAMEWORKS, TrainData, TrainSpec
from ghaf.training.devices import Device

_STATE_FILE = "state.json"
_OPTIMIZER_FILE = "optimizer.safetensors"
_MODEL_DIR = "model"
_XGB_FILE = "model.ubj"


@dataclass
class DistributedFit:
    """What a Ray Train fit gives back to the driver."""

    model: Any
    losses: list[float]
    """Global mean training loss per epoch (PyTorch) or per boosting round (XGBoost)."""
    cpu_s: float
    """CPU seconds of the training loops, summed over the workers."""
    loop_s: float
    """Wall seconds of rank 0's training loop (samples/s is computed from these)."""
    epochs: int


def cluster_device(spec: TrainSpec, address: str | None) -> Device:
    """Connect to the Ray cluster and pick the workers' device from the cluster's GPUs.

    ``auto`` takes GPUs when the cluster has one per worker (and the framework can use
    them), ``cuda`` insists, ``cpu`` never.

    Raises:
        InvalidInputError: CUDA asked for but the cluster has fewer GPUs than workers.
        BackendUnavailableError: the cluster cannot be reached.
    """
    from ghaf.training.devices import framework_uses_cuda

    ray = _connect(address)
    if spec.device == "cpu":
        return Device("cpu", reason="asked for cpu")
    gpus = float(ray.cluster_resources().get("GPU", 0.0))
    enough = gpus >= spec.workers
    usable = enough and (spec.framework == "pytorch" or framework_uses_cuda(spec.framework))
    if spec.device == "cuda":
        if not usable:
            why = (
                f"the Ray cluster has {gpus:g} GPUs for {spec.workers} workers"
                if not enough
                else f"{spec.framework} does not train on CUDA in this install"
            )
            raise InvalidInputError(
                f"device 'cuda' was asked for but {why}",
                hint="use device='auto' or 'cpu', fewer workers, or a GPU per worker",
            )
        return Device("cuda", reason=f"asked for cuda: {gpus:g} GPUs in the Ray cluster")
    if usable:
        return Device("cuda", reason=f"auto: {gpus:g} GPUs in the Ray cluster")
    return Device("cpu", reason=f"auto: {gpus:g} GPUs in the Ray cluster for {spec.workers}")


def fit_on_ray(
    spec: TrainSpec, params: Mapping[str, Any], data: TrainData, device: str, home: Path
) -> DistributedFit:
    """Train ``spec`` on ``spec.workers`` Ray Train workers; the model comes back here.

    Raises:
        InvalidInputError: the framework does not train distributed.
        BackendUnavailableError: the Ray Train run failed (its error is named).
    """
    from ghaf.artifacts.scratch import scratch_dir

    if spec.framework not in DISTRIBUTED_FRAMEWORKS:
        raise InvalidInputError(
            f"framework {spec.framework!r} does not train on several workers",
            hint=f"use workers=1, or one of {', '.join(DISTRIBUTED_FRAMEWORKS)}",
        )
    _check_params(spec, params, device)
    ray = _connect(None)
    train, trainer_cls, backend = _ray_train(spec.framework, device)
    config: dict[str, Any] = {
        "task": spec.task,
        "params": dict(params),
        "seed": spec.seed,
        "device": device,
        "x": ray.put(np.ascontiguousarray(data.x, dtype=np.float32)),
        "y": ray.put(np.ascontiguousarray(data.y)),
    }
    if spec.framework == "xgboost" and spec.task == "classification":
        config["classes"] = len(np.unique(data.y))
    loop = _torch_loop if spec.framework == "pytorch" else _xgboost_loop
    with scratch_dir(home, "ray-train-") as storage:
        # Rank 0 writes each checkpoint under the storage path too (not the node's /tmp):
        # plaintext weights stay where Ray Train keeps them, and go when the fit ends.
        config["staging"] = str(storage)
        trainer = trainer_cls(
            loop,
            train_loop_config=config,
            scaling_config=train.ScalingConfig(num_workers=spec.workers, use_gpu=device == "cuda"),
            run_config=train.RunConfig(
                name="ghaf-train",
                storage_path=str(storage),
                checkpoint_config=train.CheckpointConfig(num_to_keep=1),
                failure_config=train.FailureConfig(max_failures=1),
            ),
            **backend,
        )
        try:
            result = trainer.fit()
        except Exception as exc:  # TrainingFailedError: a worker or the controller failed
            raise BackendUnavailableError(
                f"Ray Train failed with {spec.workers} workers: {_cause(exc)}",
                hint="see the Ray workers' logs; check the cluster has a CPU (or GPU) per worker",
            ) from exc
        if result.checkpoint is None:
            raise BackendUnavailableError(
                "Ray Train finished without a checkpoint", hint="see the Ray workers' logs"
            )
        with result.checkpoint.as_directory() as directory:
            return _read_checkpoint(spec.framework, Path(directory))


def _check_params(spec: TrainSpec, params: Mapping[str, Any], device: str) -> None:
    """Refuse bad params here, by name, before any worker starts."""
    if spec.framework == "xgboost":
        try:
            xgboost_params(spec.task, params, spec.seed, device)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"xgboost params: {exc}", hint="check the names") from exc
        return
    for key, kind in (("epochs", int), ("batch_size", int), ("lr", float)):
        try:
            value = kind(params.get(key, 1))
        except (TypeError, ValueError):
            value = 0
        if value <= 0:
            raise InvalidInputError(
                f"pytorch param {key} is {params.get(key)!r}",
                hint=f"use a positive {kind.__name__}",
            )
    hidden = params.get("hidden", [64, 64])
    try:
        widths = [int(h) for h in hidden]
    except (TypeError, ValueError):
        widths = [0]
    if not all(w > 0 for w in widths):
        raise InvalidInputError(
            f"pytorch param hidden is {hidden!r}", hint="use a list of layer widths, e.g. [64, 64]"
        )


def _connect(address: str | None) -> Any:
    from ghaf.pipelines.ray import connect_ray

    return connect_ray(address)


def _ray_train(framework: str, device: str) -> tuple[Any, Any, dict[str, Any]]:
    """``ray.train``, the trainer class and its backend config (gloo on CPU, NCCL on GPU)."""
    try:
        from ray import train
    except ImportError as exc:  # pragma: no cover - part of the ray extra
        raise MissingDependencyError("ray[train]", "ray") from exc
    if framework == "pytorch":
        from ray.train.torch import TorchConfig, TorchTrainer

        return (
            train,
            TorchTrainer,
            {"torch_config": TorchConfig(backend="nccl" if device == "cuda" else "gloo")},
        )
    from ray.train.xgboost import XGBoostTrainer

    return train, XGBoostTrainer, {}


def _cause(exc: BaseException) -> str:
    """The first worker's error, else the exception's own text, on one line."""
    errors = getattr(exc, "worker_failures", None) or {}
    inner = next(iter(errors.values()), None) if isinstance(errors, dict) else None
    text = str(inner or exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _read_checkpoint(framework: str, directory: Path) -> DistributedFit:
    state = json.loads((directory / _STATE_FILE).read_text())
    if framework == "pytorch":
        from ghaf.models.flavors import load_model_dir

        model = load_model_dir(directory / _MODEL_DIR).raw
        model.eval()
    else:
        import xgboost

        # The scikit-learn wrapper single-process training returns, around the booster.
        cls = xgboost.XGBClassifier if state["task"] == "classification" else xgboost.XGBRegressor
        model = cls()
        model.load_model(str(directory / _XGB_FILE))
    return DistributedFit(
        model=model,
        losses=[float(v) for v in state["losses"]],
        cpu_s=float(state["cpu_s"]),
        loop_s=float(state["loop_s"]),
        epochs=int(state["epochs"]),
    )


def _shard(rows: int, rank: int, world: int) -> np.ndarray:
    """Rank ``rank``'s rows: every ``world``-th, the last ones wrapped so shards are equal."""
    per = math.ceil(rows / world)
    return np.arange(per * world)[rank::world] % rows


# --- in the workers ------------------------------------------------------------------


def _torch_loop(config: dict[str, Any]) -> None:
    """One DDP worker: its shard, the local batch, all-reduced loss; rank 0 checkpoints."""
    import tempfile

    import ray
    import ray.train
    import ray.train.torch
    import torch
    import torch.distributed as dist

    from ghaf.training.torch_loop import build_mlp, mlp_outputs, targets_and_loss, to_device

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    params, task, seed = config["params"], config["task"], int(config["seed"])
    device = "cuda" if config["device"] == "cuda" else "cpu"
    torch.manual_seed(seed)  # the same initial weights on every rank (DDP also broadcasts)
    x_all, y_all = ray.get(config["x"]), ray.get(config["y"])
    rows = _shard(len(x_all), rank, world)
    hidden = [int(h) for h in params.get("hidden", [64, 64])]
    epochs = int(params.get("epochs", 5))
    batch = max(1, math.ceil(int(params.get("batch_size", 256)) / world))
    lr = float(params.get("lr", 1e-3))
    outputs = mlp_outputs(task, params)
    plain = build_mlp(x_all.shape[1], hidden, outputs)
    model = ray.train.torch.prepare_model(plain)  # DDP over gloo/NCCL, on the device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x = to_device(x_all[rows], device, torch.float32)
    y, loss_fn = targets_and_loss(task, outputs, y_all[rows], device)
    state: dict[str, Any] = {"task": task, "epochs": epochs, "losses": [], "cpu_s": 0.0}
    state["loop_s"] = 0.0
    start_epoch = 0
    resumed = ray.train.get_checkpoint()
    if resumed is not None:
        with resumed.as_directory() as directory:
            state, start_epoch = _resume(Path(directory), plain, optimizer, device)
    generator = torch.Generator(device=device).manual_seed(seed * 1000 + rank + start_epoch)
    autocast = device == "cuda"
    model.train()
    for epoch in range(start_epoch, epochs):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        order = torch.randperm(len(rows), device=device, generator=generator)
        total = torch.zeros((), device=device)
        for begin in range(0, len(rows), batch):
            index = order[begin : begin + batch]
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(index)
        figures = torch.tensor(
            [float(total), float(len(rows)), time.process_time() - cpu0],
            dtype=torch.float64,
            device=device,  # NCCL reduces only CUDA tensors, gloo CPU ones
        )
        if world > 1:
            dist.all_reduce(figures)
        figures = figures.cpu()
        state["loop_s"] += time.perf_counter() - wall0
        state["losses"].append(float(figures[0] / figures[1]))
        state["cpu_s"] += float(figures[2])
        metrics = {"epoch": epoch, "train_loss": state["losses"][-1]}
        if rank != 0:
            ray.train.report(metrics)
            continue
        with tempfile.TemporaryDirectory(dir=config["staging"]) as directory:
            _write_torch_checkpoint(Path(directory), plain, optimizer, state, epoch)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))


def _write_torch_checkpoint(
    directory: Path, model: Any, optimizer: Any, state: dict[str, Any], epoch: int
) -> None:
    """The model (safe pytorch flavor), Adam's state (safetensors) and the figures (JSON)."""
    from safetensors.torch import save_file

    from ghaf.models.flavors import save_model

    save_model(model, directory / _MODEL_DIR, flavor="pytorch")  # weights copied to the CPU
    tensors: dict[str, Any] = {}
    steps: dict[str, Any] = {}
    for index, entry in optimizer.state_dict()["state"].items():
        for key, value in entry.items():
            tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
        steps[str(index)] = sorted(entry)
    save_file(tensors, str(directory / _OPTIMIZER_FILE))
    groups = optimizer.state_dict()["param_groups"]
    body = {**state, "epoch": epoch, "optimizer": {"keys": steps, "param_groups": groups}}
    (directory / _STATE_FILE).write_text(json.dumps(body))


def _resume(directory: Path, model: Any, optimizer: Any, device: str) -> tuple[dict[str, Any], int]:
    """Weights, Adam's state and the figures from a checkpoint; returns them and the next epoch."""
    from safetensors.torch import load_file

    from ghaf.models.flavors import load_model_dir

    body = json.loads((directory / _STATE_FILE).read_text())
    model.load_state_dict(load_model_dir(directory / _MODEL_DIR).raw.state_dict())
    tensors = load_file(str(directory / _OPTIMIZER_FILE), device=device)
    saved = body.pop("optimizer")
    optimizer.load_state_dict(
        {
            "state": {
                int(index): {key: tensors[f"{index}.{key}"] for key in keys}
                for index, keys in saved["keys"].items()
            },
            "param_groups": saved["param_groups"],
        }
    )
    return body, int(body.pop("epoch")) + 1


def xgboost_params(
    task: str, params: Mapping[str, Any], seed: int, device: str
) -> tuple[dict[str, Any], int]:
    """The native booster params and rounds of the scikit-learn-style ``params`` that
    single-process training passes to ``XGBClassifier``/``XGBRegressor``."""
    import xgboost

    options = {"tree_method": "hist", "n_jobs": 1, **params, "random_state": seed}
    options["device"] = device
    cls = xgboost.XGBClassifier if task == "classification" else xgboost.XGBRegressor
    wrapper = cls(**options)
    native = {k: v for k, v in wrapper.get_xgb_params().items() if v is not None}
    native["nthread"] = native.pop("n_jobs")
    native["seed"] = native.pop("random_state")
    return native, int(wrapper.get_num_boosting_rounds())


def _xgboost_loop(config: dict[str, Any]) -> None:
    """One XGBoost worker: a DMatrix of its shard; XGBoost's collective (which Ray Train
    sets up around this function) builds each tree from every worker's histograms, so
    the training loss per round is the global one. Rank 0 reports the model."""
    import tempfile

    import ray
    import ray.train
    import xgboost

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    task = config["task"]
    params, rounds = xgboost_params(task, config["params"], int(config["seed"]), config["device"])
    classes = int(config.get("classes", 2))
    if task == "classification" and classes > 2:
        params.update(objective="multi:softprob", num_class=classes)
    x_all, y_all = ray.get(config["x"]), ray.get(config["y"])
    rows = np.arange(len(x_all))[rank::world]
    matrix = xgboost.DMatrix(x_all[rows], label=y_all[rows])
    evals: dict[str, Any] = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    booster = xgboost.train(
        params, matrix, num_boost_round=rounds, evals=[(matrix, "train")], evals_result=evals,
        verbose_eval=False,
    )  # fmt: skip
    loop_s, cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
    losses = next(iter(evals["train"].values()))  # the objective's default metric
    state = {"task": task, "epochs": rounds, "losses": [float(v) for v in losses]}
    if world > 1:  # every worker's CPU seconds, summed over XGBoost's collective
        cpu_s = float(xgboost.collective.allreduce(np.array([cpu_s]), xgboost.collective.Op.SUM)[0])
    state.update(loop_s=loop_s, cpu_s=cpu_s)
    if rank != 0:
        ray.train.report({"rounds": rounds})
        return
    with tempfile.TemporaryDirectory(dir=config["staging"]) as directory:
        booster.save_model(str(Path(directory) / _XGB_FILE))
        (Path(directory) / _STATE_FILE).write_text(json.dumps(state))
        ray.train.report(
            {"rounds": rounds}, checkpoint=ray.train.Checkpoint.from_directory(directory)
        )


__all__ = ["DistributedFit", "cluster_device", "fit_on_ray"]
