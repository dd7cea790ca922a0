"""Pickle/joblib allow-listing: malicious payloads refused and never run; benign models load."""

from __future__ import annotations

import importlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ghaf.errors import InvalidInputError, PolicyViolationError
from ghaf.security.pickles import check_pickle_file, load_pickle_file


class _Call:
    """Pickles as a call of ``fn(*args)``: what an attacker's payload looks like."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.fn, self.args


def _payloads(marker: Path) -> dict[str, Any]:
    touch = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": _Call(os.system, touch),
        "importlib.import_module": _Call(importlib.import_module, "antigravity"),
        "builtins.eval": _Call(eval, code),
        "builtins.exec": _Call(exec, code),
        "nested in a dict": {"model": "ok", "hook": _Call(os.system, touch)},
    }


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


@pytest.mark.parametrize("kind", ["os.system", "importlib.import_module", "builtins.eval",
                                  "builtins.exec", "nested in a dict"])  # fmt: skip
@pytest.mark.parametrize("container", ["pickle-2", "pickle-5", "joblib", "joblib-zlib"])
def test_malicious_payload_is_refused_and_never_runs(
    tmp_path: Path, marker: Path, kind: str, container: str
) -> None:
    payload = _payloads(marker)[kind]
    path = tmp_path / "model.bin"
    if container.startswith("pickle"):
        path.write_bytes(pickle.dumps(payload, protocol=int(container[-1])))
    else:
        # the payload nested beside real arrays, as a joblib file would carry it
        wrapped = {"weights": np.arange(1000.0), "extra": payload}
        joblib.dump(wrapped, path, compress=3 if container == "joblib-zlib" else 0)
    name = "system" if kind == "nested in a dict" else kind.rsplit(".", 1)[-1]
    with pytest.raises(PolicyViolationError, match=rf"global \S+\.{name}, which is not allowed"):
        check_pickle_file(path)
    with pytest.raises(PolicyViolationError):
        load_pickle_file(path)
    assert not marker.exists(), "the payload ran"


def test_stack_global_from_computed_strings_is_refused(tmp_path: Path) -> None:
    # protocol 4: STACK_GLOBAL whose module name comes from a memo GET, still resolved
    payload = pickle.dumps(_Call(os.system, "true"), protocol=4)
    assert b"\x93" in payload  # STACK_GLOBAL
    path = tmp_path / "p.pkl"
    path.write_bytes(payload)
    with pytest.raises(PolicyViolationError, match="system"):
        check_pickle_file(path)
    # A STACK_GLOBAL fed by a non-string (e.g. a computed value) is refused outright.
    forged = b"\x80\x04K\x01K\x02\x93."
    path.write_bytes(forged)
    with pytest.raises(PolicyViolationError, match="computed values"):
        check_pickle_file(path)


def _models() -> dict[str, Any]:
    x, y = make_classification(n_samples=300, n_features=6, random_state=7)
    return {
        "logistic pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
        "random forest": RandomForestClassifier(n_estimators=3, random_state=7).fit(x, y),
        "hist gradient boosting": HistGradientBoostingClassifier(max_iter=5).fit(x, y),
    }


@pytest.mark.parametrize("container", ["pickle", "joblib", "joblib-zlib"])
def test_benign_sklearn_models_pass_and_load(tmp_path: Path, container: str) -> None:
    x, _ = make_classification(n_samples=20, n_features=6, random_state=1)
    for name, model in _models().items():
        path = tmp_path / f"{name}.bin"
        if container == "pickle":
            path.write_bytes(pickle.dumps(model, protocol=5))
        else:
            joblib.dump(model, path, compress=3 if container == "joblib-zlib" else 0)
        check_pickle_file(path)
        loaded = load_pickle_file(path)
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_not_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(b"\x80\x05garbage that is not a pickle")
    with pytest.raises((InvalidInputError, PolicyViolationError)):
        check_pickle_file(path)
    path.write_bytes(b"plain text")
    with pytest.raises(InvalidInputError, match="neither a pickle nor a joblib"):
        check_pickle_file(path)


def test_extra_allowed_pair(tmp_path: Path) -> None:
    path = tmp_path / "c.pkl"
    path.write_bytes(pickle.dumps(io.BytesIO, protocol=4))
    with pytest.raises(PolicyViolationError, match=r"_io\.BytesIO"):
        check_pickle_file(path)
    check_pickle_file(path, extra_allowed=[("_io", "BytesIO")])


def test_skops_model_loads_with_no_untrusted_types(tmp_path: Path) -> None:
    import skops.io as sio

    model = _models()["hist gradient boosting"]
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    untrusted = sio.get_untrusted_types(file=path)
    loaded = sio.load(path, trusted=untrusted)
    x, _ = make_classification(n_samples=20, n_features=6, random_state=2)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
