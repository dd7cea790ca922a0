"""The trainer: every framework trains as a tracked run with params, metrics, device,
seed and cost; same seed, same predictions; Optuna trials are child runs; CUDA paths."""

from __future__ import annotations

import numpy as np
import pytest

from ghaf.errors import InvalidInputError
from ghaf.platform import Platform
from ghaf.tracking import get_run, search_runs
from ghaf.training import TrainData, TrainSpec, train, tune
from ghaf.training.devices import (
    cuda_available,
    framework_uses_cuda,
    select_device,
    training_cost,
)

PARAMS = {
    "sklearn": {"estimator": "random_forest", "n_estimators": 10},
    "lightgbm": {"n_estimators": 20, "num_leaves": 7},
    "xgboost": {"n_estimators": 20, "max_depth": 3},
    "pytorch": {"hidden": [16, 16], "epochs": 3, "batch_size": 64, "lr": 0.01},
}


def _data(rows: int = 600, seed: int = 1) -> TrainData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.3, size=rows) > 0).astype(np.int64)
    cut = rows * 4 // 5
    return TrainData(x[:cut], y[:cut], x[cut:], y[cut:])


@pytest.mark.parametrize("framework", list(PARAMS))
def test_each_framework_trains_as_a_tracked_run(platform: Platform, framework: str) -> None:
    data = _data()
    spec = TrainSpec(framework, params=PARAMS[framework], seed=7, device="cpu")  # type: ignore[arg-type]
    result = train(spec, data, platform=platform)
    assert result.device == "cpu" and result.seed == 7
    assert result.metrics["valid_auc"] > 0.8, result.metrics
    assert result.cpu_s > 0 and result.wall_s > 0 and result.gpu_s == 0
    assert result.cost == pytest.approx(result.cpu_s / 3600 * platform.settings.prices["cpu"])
    run = get_run(platform, result.run_id)
    assert run.status == "finished"
    assert run.params["framework"] == framework and run.params["seed"] == "7"
    assert run.params["device"] == "cpu" and run.tags["ghaf.device"] == "cpu"
    for key, value in PARAMS[framework].items():
        assert run.params[f"model.{key}"] == str(value)
    assert run.metrics["valid_auc"] == pytest.approx(result.metrics["valid_auc"])
    assert run.metrics["cost"] == pytest.approx(result.cost)
    assert run.metrics["cpu_s"] > 0 and run.metrics["wall_s"] > 0
    assert run.env["python"] and "numpy" in run.env["packages"]
    preds = result.predict(data.x_valid)  # type: ignore[arg-type]
    assert preds.shape == (len(data.y_valid),)  # type: ignore[arg-type]
    assert ((preds >= 0) & (preds <= 1)).all()


@pytest.mark.parametrize("framework", list(PARAMS))
def test_same_seed_same_predictions(platform: Platform, framework: str) -> None:
    data = _data(400)
    params = dict(PARAMS[framework])
    if framework == "sklearn":
        params["max_features"] = 2  # random feature choice: the seed matters
    if framework in ("lightgbm", "xgboost"):
        params["subsample"] = 0.7
        params["colsample_bytree"] = 0.6
        if framework == "lightgbm":
            params["subsample_freq"] = 1
    runs = [
        train(TrainSpec(framework, params=params, seed=s, device="cpu"), data, platform=platform)  # type: ignore[arg-type]
        for s in (3, 3, 4)
    ]
    first, again, other = (r.predict(data.x_valid) for r in runs)  # type: ignore[arg-type]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_regression_and_table_input(platform: Platform) -> None:
    import pyarrow as pa

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    table = pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "t": 2 * x[:, 0] - x[:, 2]})
    data = TrainData.from_table(table, "t", valid_fraction=0.2, seed=0)
    assert data.feature_names == ("a", "b", "c") and len(data.x) == 400
    result = train(
        TrainSpec("lightgbm", task="regression", params={"n_estimators": 50}, device="cpu"),
        data,
        platform=platform,
    )
    assert result.metrics["valid_r2"] > 0.8
    with pytest.raises(InvalidInputError, match="target column 'y'"):
        TrainData.from_table(table, "y")


def test_bad_spec_and_device_requests_are_refused(platform: Platform) -> None:
    with pytest.raises(InvalidInputError, match="framework 'keras'"):
        TrainSpec("keras")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="estimator 'svm'"):
        train(TrainSpec("sklearn", params={"estimator": "svm"}), _data(), platform=platform)
    assert select_device("auto", "lightgbm").kind == "cpu"
    if not cuda_available():
        assert select_device("auto", "pytorch").reason == "auto: no CUDA device"
        with pytest.raises(InvalidInputError, match="no CUDA device is present"):
            select_device("cuda", "pytorch")


def test_cost_uses_the_machine_class_price() -> None:
    prices = {"cpu": 0.1, "gpu": 2.0, "gpu:nvidia-h100": 4.0}
    assert training_cost(prices, 3600, 0, None) == pytest.approx(0.1)
    assert training_cost(prices, 0, 1800, "nvidia-h100") == pytest.approx(2.0)
    assert training_cost(prices, 0, 1800, "nvidia-a10") == pytest.approx(1.0)


def test_hpo_trials_are_child_runs_of_one_parent(platform: Platform) -> None:
    data = _data()

    def space(trial: object) -> dict[str, object]:
        return {"num_leaves": trial.suggest_int("num_leaves", 3, 15)}  # type: ignore[attr-defined]

    spec = TrainSpec("lightgbm", params={"n_estimators": 10}, seed=5, device="cpu")
    result = tune(spec, data, space, n_trials=4, metric="valid_auc", platform=platform)
    assert len(result.trials) == 4
    children = search_runs(platform, f"attributes.parent_run_id = '{result.parent_run_id}'").runs
    assert len(children) == 4
    assert {c.run_id for c in children} == {t.run_id for t in result.trials}
    parent = get_run(platform, result.parent_run_id)
    assert parent.params["best.num_leaves"] == str(result.best_params["num_leaves"])
    assert result.best_value == max(t.metrics["valid_auc"] for t in result.trials)
    with pytest.raises(InvalidInputError, match="metric 'nope'"):
        tune(spec, data, space, n_trials=1, metric="nope", platform=platform)


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="no CUDA device: the CUDA trainer needs a GPU")
@pytest.mark.parametrize("framework", ["pytorch", "xgboost"])
def test_cuda_training_records_the_gpu(platform: Platform, framework: str) -> None:
    if not framework_uses_cuda(framework):
        pytest.skip(f"{framework} here is a CPU-only build (xgboost-cpu): no CUDA path to test")
    spec = TrainSpec(framework, params=PARAMS[framework], device="cuda")  # type: ignore[arg-type]
    result = train(spec, _data(), platform=platform)
    assert result.device == "cuda" and result.gpu_s > 0
    run = get_run(platform, result.run_id)
    assert run.tags["ghaf.device"] == "cuda" and run.tags["ghaf.gpu_class"]
    assert result.metrics["valid_auc"] > 0.8
