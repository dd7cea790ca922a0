"""skops files: a crafted file cannot call a function; skops loads without importing PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ghaf.errors import PolicyViolationError
from ghaf.models.skops_files import accepted, load_skops, skops_io
from ghaf.serving.runtimes import load_runtime


def _calling(path: Path, module: str, function: str, argument: str) -> Path:
    """A skops file whose only node calls ``module.function(argument)`` when loaded."""
    sio = skops_io()
    schema = {
        "__class__": function,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [
                {
                    "__class__": "str",
                    "__module__": "builtins",
                    "__loader__": "JsonNode",
                    "content": json.dumps(argument),
                    "is_json": True,
                }
            ],
        },
        "protocol": sio._general.PROTOCOL,
        "_skops_version": "0.16.0",
    }
    path.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path / "model.skops", "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return path / "model.skops"


@pytest.mark.parametrize(
    ("module", "function"),
    [("builtins", "eval"), ("builtins", "exec"), ("os", "system"), ("numpy", "save")],
)
def test_a_file_that_calls_a_function_is_refused_before_it_runs(
    tmp_path: Path, module: str, function: str
) -> None:
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('x')"
    path = _calling(tmp_path / "model", module, function, code)
    with pytest.raises(PolicyViolationError, match=rf"not trusted: {module}\.{function}"):
        load_runtime("skops", path.parent)  # the serving runtime (ghaf serve, ghaf predict)
    with pytest.raises(PolicyViolationError, match=rf"{module}\.{function}"):
        load_skops(path)
    assert not marker.exists()


def test_the_policy_accepts_estimator_classes_and_refuses_functions() -> None:
    assert accepted("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor")
    assert accepted("collections.OrderedDict")
    assert accepted("numpy.dtype")  # a fitted SimpleImputer's state
    assert not accepted("sklearn.utils.validation.check_array")  # a function, not a class
    assert not accepted("builtins.getattr")
    assert not accepted("numpy.memmap")  # a class, but it opens files: not a model's state


def test_loading_a_skops_model_imports_no_pytorch(tmp_path: Path) -> None:
    """skops' import-time scan of every scikit-learn module (which imports PyTorch through
    the array API shim) is skipped; a histogram gradient boosting model still loads."""
    code = f"""
import sys
from pathlib import Path
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from ghaf.models.skops_files import load_skops, skops_io
x, y = make_classification(n_samples=200, n_features=4, random_state=1)
model = HistGradientBoostingClassifier(max_iter=3).fit(x, y)
path = Path({str(tmp_path / "m.skops")!r})
skops_io().dump(model, path)
loaded = load_skops(path)
assert (loaded.predict_proba(x) == model.predict_proba(x)).all()
print("torch" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False"]
