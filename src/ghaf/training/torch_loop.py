"""The PyTorch trainer: an MLP, seeded; on CUDA, pinned host memory and bf16 autocast."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ghaf.training.base import TrainData


def build_mlp(inputs: int, hidden: list[int], outputs: int) -> Any:
    """``inputs -> hidden... -> outputs`` with ReLU between linear layers."""
    from torch import nn

    layers: list[nn.Module] = []
    width = inputs
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


def to_device(array: np.ndarray, device: str, dtype: Any) -> Any:
    """A tensor on ``device``; from CUDA, copied from pinned host memory asynchronously."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(dtype)
    if device == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def mlp_outputs(task: str, params: Mapping[str, Any]) -> int:
    """Output units: one for regression and binary classification, else one per class."""
    classes = int(params.get("classes", 2)) if task == "classification" else 1
    return 1 if classes <= 2 else classes


def targets_and_loss(task: str, outputs: int, y: np.ndarray, device: str) -> tuple[Any, Any]:
    """The target tensor on ``device`` and the loss that fits the task and output units."""
    import torch

    if task == "classification" and outputs > 1:
        return to_device(y, device, torch.long), torch.nn.CrossEntropyLoss()
    loss_fn = torch.nn.BCEWithLogitsLoss() if task == "classification" else torch.nn.MSELoss()
    return to_device(y.reshape(-1, 1), device, torch.float32), loss_fn


def fit_mlp(
    task: str,
    params: Mapping[str, Any],
    data: TrainData,
    seed: int,
    device: str,
    on_epoch: Callable[[int, float], None],
) -> Any:
    """Mini-batch Adam on an MLP; the data moves to the device once, shuffled there per epoch."""
    import torch

    torch.manual_seed(seed)
    hidden = [int(h) for h in params.get("hidden", [64, 64])]
    epochs = int(params.get("epochs", 5))
    batch = int(params.get("batch_size", 256))
    lr = float(params.get("lr", 1e-3))
    outputs = mlp_outputs(task, params)
    model = build_mlp(data.x.shape[1], hidden, outputs).to(device)
    # On CUDA the fused Adam updates every parameter in one kernel (launch-bound small MLPs).
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=device == "cuda")
    x = to_device(data.x, device, torch.float32)
    y, loss_fn = targets_and_loss(task, outputs, data.y, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    autocast = device == "cuda"
    rows = len(data.x)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(rows, device=device, generator=generator)
        total = torch.zeros((), device=device)
        for start in range(0, rows, batch):
            index = order[start : start + batch]
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(index)
        on_epoch(epoch, float(total) / rows)
    model.eval()
    return model.to("cpu")


def predict_mlp(task: str, model: Any, x: np.ndarray) -> np.ndarray:
    """Probabilities (classification) or values, computed on the CPU in float32."""
    import torch

    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        if task == "classification":
            out = torch.sigmoid(out) if out.shape[1] == 1 else torch.softmax(out, dim=1)
        result: np.ndarray = out.numpy().astype(np.float64)
    return result[:, 0] if result.shape[1] == 1 else result
