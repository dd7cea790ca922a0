"""Autologging: params, per-iteration metrics and the model for each framework."""

from __future__ import annotations

import numpy as np
import pytest

from ghaf.platform import Platform
from ghaf.registry import load_model, register_model
from ghaf.tracking import get_metric_history, get_run, start_run
from ghaf.tracking.autolog import autolog

RNG = np.random.default_rng(7)
X = RNG.normal(size=(300, 4)).astype(np.float32)
Y = (X[:, 0] - X[:, 2] > 0).astype(int)


def test_sklearn_autolog(platform: Platform) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with start_run(platform=platform) as run, autolog(run):
        pipe = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=7))
        pipe.fit(X, Y)
    stored = get_run(platform, run.run_id)
    assert stored.tags["estimator"] == "Pipeline"  # only the outermost fit is logged
    assert "training_score" in stored.metrics
    assert "model/model.skops" in stored.artifacts
    version = register_model(platform, platform.admin(), "auto-sk", f"run:{run.run_id}/model")
    np.testing.assert_array_equal(load_model(platform, "auto-sk").predict(X), pipe.predict(X))
    # Patches are gone after the block.
    RandomForestClassifier(n_estimators=2).fit(X, Y)
    assert version.version == 1


def test_lightgbm_autolog(platform: Platform) -> None:
    import lightgbm

    with start_run(platform=platform) as run, autolog(run):
        model = lightgbm.LGBMClassifier(n_estimators=12, verbose=-1)
        model.fit(X, Y, eval_X=(X,), eval_y=(Y,))
    stored = get_run(platform, run.run_id)
    assert stored.params["num_boost_round"] == "12", stored.params
    history = get_metric_history(platform, run.run_id, "valid_0_binary_logloss")
    assert [p.step for p in history] == list(range(12))
    assert "model/model.lgb.txt" in stored.artifacts


def test_xgboost_autolog(platform: Platform) -> None:
    import xgboost

    with start_run(platform=platform) as run, autolog(run):
        model = xgboost.XGBClassifier(n_estimators=9, max_depth=2)
        model.fit(X, Y, eval_set=[(X, Y)], verbose=False)
    stored = get_run(platform, run.run_id)
    assert stored.params["max_depth"] == "2"
    assert len(get_metric_history(platform, run.run_id, "validation_0_logloss")) == 9
    assert "model/model.ubj" in stored.artifacts


def test_pytorch_autolog(platform: Platform) -> None:
    torch = pytest.importorskip("torch")
    from tests.unit.tracking._torch_models import build

    net = build()
    x, y = torch.from_numpy(X), torch.from_numpy(Y).long()
    with (
        start_run(platform=platform) as run,
        autolog(run),
    ):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        for _ in range(5):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            optimizer.step()
    stored = get_run(platform, run.run_id)
    assert len(get_metric_history(platform, run.run_id, "loss")) == 5
    assert stored.params["optimizer"] == "SGD" and stored.params["optimizer_lr"] == "0.1"
    register_model(platform, platform.admin(), "auto-torch", f"run:{run.run_id}/model")
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(load_model(platform, "auto-torch").predict(X), expected, rtol=1e-5)
