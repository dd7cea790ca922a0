"""Ray Tune search on a real local Ray (loopback only, two CPUs): every trial is a tracked
child run of one parent, written by the trial's Ray worker; the best model comes back."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ghaf.errors import InvalidInputError
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.settings import load_settings
from ghaf.tracking import get_run, search_runs
from ghaf.training import TrainData, TrainSpec, tune
from tests.conftest import service_missing

pytestmark = [
    pytest.mark.service,
    pytest.mark.slow,
    # Ray's driver leaves a helper Popen to be reaped at exit: third-party noise.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    # Ray Tune's own deprecation notices about its internals.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


@pytest.fixture(scope="module")
def local_ray(ray_auth: None) -> Iterator[Any]:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        import ray
        import ray.tune
    except ImportError:
        service_missing("Ray Tune", "ray[tune] is not installed: pip install 'ghaf[ray]'")
    ray.init(
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        num_cpus=2,
        object_store_memory=80_000_000,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        gc.collect()


def _data(rows: int = 600) -> TrainData:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.3, size=rows) > 0).astype(np.int64)
    cut = rows * 4 // 5
    return TrainData(x[:cut], y[:cut], x[cut:], y[cut:])


def _space(trial: Any) -> dict[str, Any]:
    return {"num_leaves": trial.suggest_int("num_leaves", 3, 15)}


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with init_home(load_settings(home=tmp_path / "home")) as opened:
        yield opened


def test_ray_tune_trials_are_child_runs_of_one_parent(local_ray: Any, platform: Platform) -> None:
    data = _data()
    spec = TrainSpec("lightgbm", params={"n_estimators": 10}, seed=5, device="cpu")
    result = tune(
        spec,
        data,
        _space,
        n_trials=4,
        metric="valid_auc",
        platform=platform,
        backend="ray",
        max_concurrent=2,
    )
    assert len(result.trials) == 4
    children = search_runs(platform, f"attributes.parent_run_id = '{result.parent_run_id}'").runs
    assert {c.run_id for c in children} == {t.run_id for t in result.trials}
    assert all(c.status == "finished" for c in children), [c.status for c in children]
    parent = get_run(platform, result.parent_run_id)
    assert parent.tags["ghaf.hpo"] == "ray-tune"
    assert parent.params["best.num_leaves"] == str(result.best_params["num_leaves"])
    assert result.best_value == max(t.metrics["valid_auc"] for t in result.trials)
    # The best trial's model came back through its checkpoint and predicts here.
    assert result.best.predict(data.x_valid).shape == (len(data.y_valid),)  # type: ignore[arg-type]

    with pytest.raises(InvalidInputError, match="metric 'nope'"):
        tune(spec, data, _space, n_trials=1, metric="nope", platform=platform, backend="ray")
    with pytest.raises(InvalidInputError, match="backend"):
        tune(spec, data, _space, n_trials=1, metric="valid_auc", backend="dask")  # type: ignore[arg-type]
