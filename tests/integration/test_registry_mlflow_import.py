"""``ghaf models import-mlflow`` on models saved by the real ``mlflow`` package (own venv)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ghaf.errors import PolicyViolationError
from ghaf.platform import Platform
from ghaf.registry import get_model_version, load_model
from ghaf.registry.mlflow_import import import_mlflow_model
from tests.conftest import service_missing

# Requirements are given, as a user who knows them does: MLflow would otherwise infer
# them by loading each model again in a subprocess (most of this test's minutes).
_SAVE = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, mlflow.sklearn, mlflow.lightgbm, mlflow.xgboost, mlflow.onnx
import lightgbm, xgboost
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression
out = sys.argv[1]
rng = np.random.default_rng(7)
x = rng.normal(size=(200, 4)); y = (x[:, 0] + x[:, 1] > 0).astype(int)
sk = LogisticRegression().fit(x, y)
mlflow.sklearn.save_model(sk, f"{out}/sk", pip_requirements=["scikit-learn"])
booster = lightgbm.train({"objective": "binary", "verbose": -1}, lightgbm.Dataset(x, y), 10)
mlflow.lightgbm.save_model(booster, f"{out}/lgb", pip_requirements=["lightgbm"])
xgb = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
mlflow.xgboost.save_model(xgb, f"{out}/xgb", pip_requirements=["xgboost"])
x32 = x.astype(np.float32)
onx = to_onnx(sk, x32[:1], options={id(sk): {"zipmap": False}})
mlflow.onnx.save_model(onx, f"{out}/onnx", pip_requirements=["onnxruntime"])
print(json.dumps({"x": x[:20].tolist(), "sk": sk.predict_proba(x[:20]).tolist(),
                  "lgb": booster.predict(x[:20]).tolist(),
                  "xgb": xgb.predict_proba(x[:20]).tolist()}))
"""


@pytest.fixture(scope="module")
def mlflow_python() -> Path:
    from benchmarks.anchor_venvs import ensure

    python = ensure("mlflow")
    if python is None:
        service_missing(
            "MLflow", "the venv .bench/venvs/mlflow could not be created", "check pip's index"
        )
    return python


@pytest.mark.slow
def test_import_models_saved_by_mlflow(
    platform: Platform, mlflow_python: Path, tmp_path: Path
) -> None:
    saved = subprocess.run(
        [str(mlflow_python), "-c", _SAVE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert saved.returncode == 0, saved.stderr[-3000:]
    reference = json.loads(saved.stdout.strip().splitlines()[-1])
    x = np.asarray(reference["x"])
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ghaf",
            "models",
            "import-mlflow",
            str(tmp_path / "sk"),
            "--name",
            "sk",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    version = get_model_version(platform, "sk")
    assert version.flavor == "skops" and version.signed
    np.testing.assert_allclose(load_model(platform, "sk").predict_proba(x), reference["sk"])
    imported = import_mlflow_model(platform, platform.admin(), tmp_path / "lgb", "lgb")
    assert imported.flavor == "lightgbm"
    np.testing.assert_allclose(
        load_model(platform, "lgb").predict_proba(x)[:, 1], reference["lgb"], rtol=1e-6
    )
    assert (
        import_mlflow_model(platform, platform.admin(), tmp_path / "xgb", "xgb").flavor == "xgboost"
    )
    np.testing.assert_allclose(
        load_model(platform, "xgb").predict_proba(x), reference["xgb"], rtol=1e-5
    )
    assert (
        import_mlflow_model(platform, platform.admin(), tmp_path / "onnx", "onx").flavor == "onnx"
    )
    np.testing.assert_allclose(
        load_model(platform, "onx").predict_proba(x.astype(np.float32)), reference["sk"], rtol=1e-4
    )


def test_a_pickle_naming_code_is_refused(platform: Platform, tmp_path: Path) -> None:
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (os.system, ("echo pwned",))

    model = tmp_path / "evil"
    model.mkdir()
    (model / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n"
        "    serialization_format: cloudpickle\n"
    )
    (model / "model.pkl").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(PolicyViolationError, match="refused"):
        import_mlflow_model(platform, platform.admin(), model, "evil")
