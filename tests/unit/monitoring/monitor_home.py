"""A home with a deployed binary classifier for monitor tests: its training data stored as
a dataset version, the model registered with named inputs and that dataset in its
lineage, approved by a second person, aliased ``champion`` and recorded as deployment
``fraud``; plus the traffic generator (the same distribution, or with a feature shifted)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ghaf.data import write_dataset
from ghaf.models import save_model
from ghaf.models.base import schema_to_json
from ghaf.platform import Platform
from ghaf.registry import ModelVersion, approve_model_version, register_model, set_alias
from ghaf.serving.deployments import record_deployment
from tests.unit.serving.server_processes import second_person

FEATURES = ("amount", "age", "tenure", "balance")
WEIGHTS = np.array([1.2, -0.8, 0.5, 0.0])
BIAS = -0.4


def features(seed: int, n: int, shift: Mapping[str, float] | None = None) -> np.ndarray:
    """``n`` rows of the four features (float32); ``shift`` adds to named columns."""
    x = np.random.default_rng(seed).normal(size=(n, len(FEATURES)))
    for name, amount in (shift or {}).items():
        x[:, FEATURES.index(name)] += amount
    return x.astype(np.float32)


def true_probability(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(x.astype(np.float64) @ WEIGHTS + BIAS)))


def labels_for(seed: int, x: np.ndarray) -> np.ndarray:
    """Labels drawn from the true probabilities (what the world says later)."""
    return (np.random.default_rng(seed).random(len(x)) < true_probability(x)).astype(np.int64)


@dataclass
class Seeded:
    model: Any
    version: ModelVersion
    train: pa.Table


def seed_home(platform: Platform, work: Path, *, rows: int = 3000) -> Seeded:
    from sklearn.linear_model import LogisticRegression

    admin = platform.admin()
    x = features(1, rows)
    y = labels_for(2, x)
    train = pa.table({**{n: x[:, i] for i, n in enumerate(FEATURES)}, "label": y})
    stored = write_dataset(platform, admin, "fraud-train", train, source="test")
    model = LogisticRegression().fit(x, y)
    save_model(model, work / "saved")
    inputs = pa.schema([(n, pa.float32()) for n in FEATURES])
    signature = {
        "inputs": schema_to_json(inputs),
        "outputs": schema_to_json(pa.schema([("output", pa.float64())])),
    }
    version = register_model(
        platform,
        admin,
        "fraud",
        work / "saved",
        signature=signature,
        lineage=[stored.node],
    )
    approve_model_version(platform, second_person(platform), version.ref)
    set_alias(platform, admin, "fraud", "champion", version.version)
    record_deployment(platform, admin, "fraud", ["fraud@champion"])
    return Seeded(model, version, train)
