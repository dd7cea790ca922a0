"""Model files for the serving tests, built once per session and sealed like the registry would."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

from ghaf.platform import Platform
from ghaf.security.signing import sign_model_dir
from ghaf.serving.base import ModelSpec

N_FEATURES = 8


@dataclass
class Trained:
    model: Any
    X: np.ndarray
    y: np.ndarray


@pytest.fixture(scope="session")
def trained() -> Trained:
    X, y = make_classification(n_samples=3000, n_features=N_FEATURES, random_state=7)
    X = X.astype(np.float32)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=7).fit(X, y)
    return Trained(model, X, y)


def seal(platform: Platform, model_dir: Path) -> None:
    """What registration does: sign the directory with the home's key."""
    sign_model_dir(platform.settings, model_dir)


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory, trained: Trained) -> Path:
    import skops.io as sio

    root = tmp_path_factory.mktemp("models")
    skops_dir = root / "hgb"
    skops_dir.mkdir()
    sio.dump(trained.model, skops_dir / "model.skops")
    return root


@pytest.fixture
def hgb_spec(model_store: Path, tmp_path: Path, platform: Platform) -> Iterator[ModelSpec]:
    """A private, signed copy (tests may corrupt it); load it with ``platform=platform``."""
    target = tmp_path / "hgb"
    shutil.copytree(model_store / "hgb", target)
    seal(platform, target)
    yield ModelSpec("fraud", "1", "skops", target)
