"""Fixtures for the registry tests: a small saved scikit-learn model and a second approver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ghaf.models import save_model
from ghaf.platform import Platform

X = np.random.default_rng(7).normal(size=(60, 3))
Y = (X[:, 0] > 0).astype(int)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    directory = tmp_path / "model"
    save_model(LogisticRegression().fit(X, Y), directory)
    return directory


@pytest.fixture
def approver(platform: Platform) -> Iterator[Platform]:
    """The same home opened with a second local principal, ``risk-officer``."""
    settings = platform.settings.model_copy(update={"local_principals": ["risk-officer"]})
    with Platform(settings) as second:
        yield second
