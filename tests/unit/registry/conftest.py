"""Fixtures for the registry tests: a small saved scikit-learn model and people with tokens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.testing.people import person

X = np.random.default_rng(7).normal(size=(60, 3))
Y = (X[:, 0] > 0).astype(int)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    directory = tmp_path / "model"
    save_model(LogisticRegression().fit(X, Y), directory)
    return directory


@dataclass(frozen=True)
class People:
    """Three people besides the home's owner, each acting with a token of their own."""

    ana: Actor  # data_scientist (and model_approver): trains, registers, approves others
    ben: Actor  # model_approver: approves (a second person to ana)
    rita: Actor  # release_manager: moves aliases, promotes, deploys


@pytest.fixture
def people(platform: Platform) -> People:
    return People(
        person(platform, "ana", ["data_scientist", "model_approver"]),
        person(platform, "ben", ["model_approver"]),
        person(platform, "rita", ["release_manager"]),
    )
