"""Every flavor round-trips: log in a run → register → load_model → the same predictions."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ghaf.errors import InvalidInputError, PolicyViolationError
from ghaf.models import load_model_dir, save_model
from ghaf.models.custom_code import CodePolicy
from ghaf.platform import Platform
from ghaf.registry import load_model, register_model
from ghaf.registry.code_policy import change_code_policy
from ghaf.tracking import start_run

CODE = Path(__file__).parent / "model_code"
RNG = np.random.default_rng(7)
X = RNG.normal(size=(200, 4))
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
FRAME = pd.DataFrame(X, columns=["a", "b", "c", "d"])


def _sklearn() -> tuple[Any, dict[str, Any], Any]:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(FRAME, Y)
    return model, {}, FRAME


def _lightgbm() -> tuple[Any, dict[str, Any], Any]:
    import lightgbm

    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(FRAME, Y)
    return model, {}, FRAME


def _xgboost() -> tuple[Any, dict[str, Any], Any]:
    import xgboost

    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, Y)
    return model, {}, X


def _onnx() -> tuple[Any, dict[str, Any], Any]:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    sk = LogisticRegression().fit(X.astype(np.float32), Y)
    onx = to_onnx(sk, X[:1].astype(np.float32), options={id(sk): {"zipmap": False}})
    return onx, {}, X.astype(np.float32)


def _pytorch() -> tuple[Any, dict[str, Any], Any]:
    from tests.unit.models._flavor_models import build_net

    return build_net(), {}, X.astype(np.float32)  # a Sequential: its layers are data


def _pyfunc() -> tuple[Any, dict[str, Any], Any]:
    payload = {"w": np.array([1.0, 2.0, -1.0, 0.5]), "b": 0.25}
    return payload, {"code": CODE / "linear.py", "flavor": "pyfunc"}, X


CASES = {
    "skops": _sklearn,
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
    "onnx": _onnx,
    "pytorch": _pytorch,
    "pyfunc": _pyfunc,
}


def _reference(flavor: str, model: Any, data: Any) -> tuple[np.ndarray, np.ndarray | None]:
    if flavor == "onnx":
        from sklearn.linear_model import LogisticRegression

        sk = LogisticRegression().fit(X.astype(np.float32), Y)
        return sk.predict(data), sk.predict_proba(data)
    if flavor == "pytorch":
        import torch

        with torch.no_grad():
            out = model(torch.from_numpy(data)).numpy()
        return out, None
    if flavor == "pyfunc":
        return data @ model["w"] + model["b"], None
    return model.predict(data), model.predict_proba(data)


@pytest.mark.parametrize("flavor", sorted(CASES))
def test_flavor_round_trips_through_a_run_and_the_registry(platform: Platform, flavor: str) -> None:
    model, options, data = CASES[flavor]()
    options = dict(options)
    chosen = options.pop("flavor", None)
    if flavor == "pyfunc":  # custom code: an approver allows what it imports, first
        change_code_policy(platform, platform.admin(), "default", allow=["numpy"])
    with start_run(platform=platform, experiment="flavors") as run:
        source = run.log_model(model, "model", flavor=chosen, **options)
    version = register_model(platform, platform.admin(), f"m-{flavor}", source, example=data[:5])
    assert version.flavor == flavor
    assert version.run_id == run.run_id
    loaded = load_model(platform, f"m-{flavor}:1")
    expected, expected_proba = _reference(flavor, model, data)
    np.testing.assert_allclose(loaded.predict(data), expected, rtol=1e-5, atol=1e-6)
    if expected_proba is not None:
        np.testing.assert_allclose(loaded.predict_proba(data), expected_proba, rtol=1e-5, atol=1e-6)
    assert version.input_schema() is not None


def test_arrow_input_is_accepted(tmp_path: Path) -> None:
    import pyarrow as pa

    model, _, _ = _lightgbm()
    save_model(model, tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m")
    table = pa.Table.from_pandas(FRAME)
    np.testing.assert_allclose(loaded.predict_proba(table), model.predict_proba(FRAME))


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned",))


def test_pyfunc_payload_that_names_code_is_refused(tmp_path: Path) -> None:
    save_model({"w": [1.0], "b": 0.0}, tmp_path / "m", flavor="pyfunc", code=CODE / "linear.py")
    (tmp_path / "m" / "payload.pkl").write_bytes(pickle.dumps({"x": _Evil()}))
    with pytest.raises(PolicyViolationError, match="system"):
        load_model_dir(tmp_path / "m", code_policy=CodePolicy("default", ("numpy",)))


def test_entry_points_are_refused_when_saving(tmp_path: Path) -> None:
    from tests.unit.models._flavor_models import build_net

    for flavor, model in (("pytorch", build_net()), ("pyfunc", {})):
        with pytest.raises(InvalidInputError, match="entry_point='os:system' is not accepted"):
            save_model(model, tmp_path / flavor, flavor=flavor, entry_point="os:system")
    assert not (tmp_path / "pytorch").exists() and not (tmp_path / "pyfunc").exists()


def test_unknown_flavor_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown model flavor"):
        save_model(object(), tmp_path / "m", flavor="pickle")
