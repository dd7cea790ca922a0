"""Data-parallel training on Ray Train: one worker vs two, samples/s and validation AUC.

Each figure is a whole ``train()`` call through Ghaf's trainer on a local loopback Ray
node (``connect_ray``, the product's own connection; as many CPUs as the machine has):

- PyTorch MLP (20 -> 64 -> 64 -> 1, global batch 512): two Ray Train workers (DDP over
  gloo) against one Ray Train worker (the same loop, so the ratio is the scaling of the
  training loop itself), and the in-process trainer (``workers=1``) for reference.
  ``samples_per_s`` counts the workers' training loops; ``wall_s`` is the whole call, the
  Ray Train start included.
- The validation AUC of two workers against one (in-process): the acceptance is "the
  same metric within tolerance" (the test uses 0.02).
- XGBoost (hist, 50 rounds): two workers over XGBoost's collective against in-process.

On a machine with fewer than four free cores two workers cannot run faster than one:
read the ratio with the box's load beside it. smoke: 20k rows, 2 epochs; full: 200k, 3.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Figure

FEATURES = 20
HIDDEN = [64, 64]
BATCH = 512


def _data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    signal = x[:, :3].sum(axis=1) - x[:, 3] * x[:, 4]
    y = (signal + rng.normal(scale=0.5, size=rows) > 0).astype(np.int64)
    return x, y


def run(size: str) -> list[Figure]:
    from ghaf.home import init_home
    from ghaf.pipelines.ray import connect_ray
    from ghaf.settings import load_settings
    from ghaf.training import TrainData, TrainSpec, train

    rows, epochs = (200_000, 3) if size == "full" else (20_000, 2)
    x, y = _data(rows)
    cut = rows * 4 // 5
    data = TrainData(x[:cut], y[:cut], x[cut:], y[cut:])
    ray = connect_ray(None)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    print(f"training_ray: local Ray node with {cpus} CPUs, load {os.getloadavg()}", file=sys.stderr)
    params = {"hidden": HIDDEN, "epochs": epochs, "batch_size": BATCH, "lr": 3e-3}
    results: dict[str, Any] = {}
    try:
        with (
            tempfile.TemporaryDirectory(dir=os.environ.get("GHAF_BENCH_DIR")) as tmp,
            init_home(load_settings(home=Path(tmp) / "ghaf")) as platform,
        ):

            def fit(framework: str, workers: int, on_ray: bool, **extra: Any) -> Any:
                spec = TrainSpec(
                    framework,  # type: ignore[arg-type]
                    params={**(params if framework == "pytorch" else {}), **extra},
                    seed=0,
                    device="cpu",
                    workers=workers,
                )
                address = "auto" if on_ray else None
                return train(spec, data, platform=platform, ray_address=address)

            fit("pytorch", 1, False)  # warm: torch's first calls
            results["torch_local"] = fit("pytorch", 1, False)
            results["torch_ray1"] = fit("pytorch", 1, True)
            results["torch_ray2"] = fit("pytorch", 2, True)
            results["xgb_local"] = fit("xgboost", 1, False, n_estimators=50)
            results["xgb_ray2"] = fit("xgboost", 2, True, n_estimators=50)
    finally:
        ray.shutdown()
    label = f"cpu, {cut:,} rows x {epochs} epochs, {cpus} CPUs"
    xlabel = f"cpu, {cut:,} rows, 50 rounds, {cpus} CPUs"
    local, one, two = results["torch_local"], results["torch_ray1"], results["torch_ray2"]
    xgb_local, xgb_two = results["xgb_local"], results["xgb_ray2"]
    return [
        Figure(
            f"training_ray.pytorch_ddp.samples_per_s (2 workers, gloo; {label})",
            two.samples_per_s,
            "samples/s",
            anchor="1 Ray Train worker, same loop",
            anchor_value=one.samples_per_s,
        ),
        Figure(
            f"training_ray.pytorch.samples_per_s (in-process, workers=1; {label})",
            local.samples_per_s,
            "samples/s",
        ),
        Figure(
            f"training_ray.pytorch_ddp.wall_s (2 workers, Ray Train start included; {label})",
            two.wall_s,
            "s",
            anchor="in-process, workers=1",
            anchor_value=local.wall_s,
            higher_is_better=False,
        ),
        Figure(
            f"training_ray.pytorch_ddp.valid_auc (2 workers; {label})",
            two.metrics["valid_auc"],
            "AUC",
            anchor="in-process, workers=1",
            anchor_value=local.metrics["valid_auc"],
        ),
        Figure(
            f"training_ray.pytorch_ddp.valid_auc (1 Ray Train worker; {label})",
            one.metrics["valid_auc"],
            "AUC",
            anchor="in-process, workers=1",
            anchor_value=local.metrics["valid_auc"],
        ),
        Figure(
            f"training_ray.xgboost.samples_per_s (2 workers; {xlabel})",
            xgb_two.samples_per_s,
            "samples/s",
            anchor="in-process, workers=1",
            anchor_value=xgb_local.samples_per_s,
        ),
        Figure(
            f"training_ray.xgboost.valid_auc (2 workers; {xlabel})",
            xgb_two.metrics["valid_auc"],
            "AUC",
            anchor="in-process, workers=1",
            anchor_value=xgb_local.metrics["valid_auc"],
        ),
    ]
