"""Training throughput: a PyTorch MLP (20 -> 256 -> 256 -> 1) through Ghaf's trainer vs
a bare PyTorch loop, same device, same run (``make bench-gpu`` runs it on a GPU).

Both loops do the same work: the data moves to the device once (from pinned host memory
on CUDA), is shuffled there each epoch, and each 4,096-row batch runs forward in bf16
autocast (CUDA only), BCE loss, backward and an Adam step. Ghaf's figure is the whole
``train()`` call: creating the tracked run, capturing the environment, logging the loss
per epoch, CPU/GPU seconds and cost, and closing the run. Target on a GPU: ratio >= 0.9.

GPU: 1M x 20 rows, 3 epochs (full) or 200k rows, 1 epoch (smoke), under 3 minutes.
CPU (no CUDA): 50k rows, 1 epoch, whatever the size: a smoke check, not the target.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Figure

FEATURES = 20
HIDDEN = [256, 256]
BATCH = 4096
LR = 1e-3


def _data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) + rng.normal(scale=0.5, size=rows) > 0).astype(np.float32)
    return x, y


def bare_loop(x_np: np.ndarray, y_np: np.ndarray, epochs: int, device: str) -> float:
    """The same training without Ghaf; returns wall seconds (synchronised on CUDA)."""
    import torch

    from ghaf.training.torch_loop import build_mlp

    start = time.perf_counter()
    torch.manual_seed(0)
    model = build_mlp(FEATURES, HIDDEN, 1).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    x = torch.from_numpy(x_np)
    y = torch.from_numpy(y_np.reshape(-1, 1))
    if device == "cuda":
        x = x.pin_memory().to(device, non_blocking=True)
        y = y.pin_memory().to(device, non_blocking=True)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator(device=device).manual_seed(0)
    rows = len(x_np)
    for _ in range(epochs):
        order = torch.randperm(rows, device=device, generator=generator)
        total = torch.zeros((), device=device)
        for begin in range(0, rows, BATCH):
            index = order[begin : begin + BATCH]
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
                loss = loss_fn(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(index)
        float(total)  # one sync per epoch, as the trainer does to log the loss
    model.to("cpu")
    return time.perf_counter() - start


def run(size: str) -> list[Figure]:
    import torch

    from ghaf.home import init_home
    from ghaf.settings import load_settings
    from ghaf.training import TrainData, TrainSpec, train

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        rows, epochs = (1_000_000, 3) if size == "full" else (200_000, 1)
    else:
        print("training suite: no CUDA device, CPU smoke (50k rows, 1 epoch)", file=sys.stderr)
        rows, epochs = 50_000, 1
    x, y = _data(rows)
    data = TrainData(x, y)
    params = {"hidden": HIDDEN, "epochs": epochs, "batch_size": BATCH, "lr": LR}
    with tempfile.TemporaryDirectory(dir=os.environ.get("GHAF_BENCH_DIR")) as tmp:
        platform = init_home(load_settings(home=Path(tmp) / "ghaf"))
        try:
            spec = TrainSpec("pytorch", params=params, seed=0, device=device)  # type: ignore[arg-type]
            warm = TrainData(x[: BATCH * 2], y[: BATCH * 2])
            bare_loop(x[: BATCH * 2], y[: BATCH * 2], 1, device)  # CUDA context, kernels
            train(spec, warm, platform=platform)
            bare_s, ghaf_s = [], []
            for _ in range(3):  # alternate, keep the best of each
                bare_s.append(bare_loop(x, y, epochs, device))
                start = time.perf_counter()
                result = train(spec, data, platform=platform)
                ghaf_s.append(time.perf_counter() - start)
        finally:
            platform.close()
    samples = rows * epochs
    label = f"{device}, {rows:,} rows x {epochs} epochs"
    return [
        Figure(
            f"training.pytorch_mlp.samples_per_s ({label})",
            samples / min(ghaf_s),
            "samples/s",
            anchor="bare PyTorch loop",
            anchor_value=samples / min(bare_s),
        ),
        Figure(
            f"training.pytorch_mlp.cost_per_1B_samples ({label})",
            result.cost * 1e9 / samples,
            "price units (settings.prices)",
            higher_is_better=False,
        ),
    ]
