"""Runtimes load each flavor from a directory and agree with the native model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ghaf.errors import IntegrityError, InvalidInputError
from ghaf.platform import Platform
from ghaf.serving.base import ModelSpec
from ghaf.serving.models import load_served, verify_files
from ghaf.serving.runtimes import load_runtime
from ghaf.serving.runtimes.onnx import PARITY_TOLERANCE, check_parity, convert_sklearn

N_FEATURES = 8  # as in conftest.py
Trained = Any


def test_skops_runtime_matches_predict_proba(hgb_spec: ModelSpec, trained: Trained) -> None:
    runtime = load_runtime("skops", hgb_spec.path)
    out = runtime.predict(trained.X[:50])
    np.testing.assert_allclose(out["probabilities"], trained.model.predict_proba(trained.X[:50]))
    assert runtime.signature.n_features == N_FEATURES
    assert runtime.signature.outputs[0].name == "probabilities"


def test_lightgbm_and_xgboost_native(tmp_path: Path, trained: Trained) -> None:
    import lightgbm
    import xgboost

    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1},
        lightgbm.Dataset(trained.X, trained.y),
        num_boost_round=10,
    )
    (tmp_path / "lgb").mkdir()
    booster.save_model(str(tmp_path / "lgb" / "model.txt"))
    lgb = load_runtime("lightgbm", tmp_path / "lgb")
    p = lgb.predict(trained.X[:20])["probabilities"]
    np.testing.assert_allclose(p[:, 1], booster.predict(trained.X[:20]), rtol=1e-6)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)

    xgb = xgboost.train(
        {"objective": "binary:logistic", "nthread": 1},
        xgboost.DMatrix(trained.X, label=trained.y),
        num_boost_round=10,
    )
    (tmp_path / "xgb").mkdir()
    xgb.save_model(str(tmp_path / "xgb" / "model.ubj"))
    runtime = load_runtime("xgboost", tmp_path / "xgb")
    got = runtime.predict(trained.X[:20])["probabilities"][:, 1]
    np.testing.assert_allclose(got, xgb.predict(xgboost.DMatrix(trained.X[:20])), rtol=1e-5)


def test_onnx_parity_within_tolerance(
    tmp_path: Path, hgb_spec: ModelSpec, trained: Trained
) -> None:
    convert_sklearn(trained.model, N_FEATURES, tmp_path / "onnx" / "model.onnx")
    native = load_runtime("skops", hgb_spec.path)
    onnx = load_runtime("onnx", tmp_path / "onnx")
    worst = check_parity(native, onnx, trained.X)
    assert worst <= PARITY_TOLERANCE
    assert onnx.predict(trained.X[:3])["probabilities"].shape == (3, 2)


def test_onnx_parity_refuses_a_different_model(tmp_path: Path, trained: Trained) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    other = HistGradientBoostingClassifier(max_iter=3).fit(trained.X, 1 - trained.y)
    convert_sklearn(other, N_FEATURES, tmp_path / "o" / "model.onnx")
    from ghaf.serving.runtimes.sklearn import SklearnRuntime

    with pytest.raises(IntegrityError, match="differs from the native model"):
        check_parity(
            SklearnRuntime(trained.model, None), load_runtime("onnx", tmp_path / "o"), trained.X
        )


def test_pytorch_cpu_runtime(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from ghaf.serving.runtimes.torch import save_torch

    torch.manual_seed(7)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    )
    save_torch(mlp, N_FEATURES, tmp_path / "mlp" / "model.pt2")
    runtime = load_runtime("pytorch", tmp_path / "mlp", device="cpu")
    rows = np.random.default_rng(7).standard_normal((5, N_FEATURES), dtype=np.float32)
    got = runtime.predict(rows)["predictions"]
    with torch.inference_mode():
        want = mlp(torch.from_numpy(rows)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_pytorch_cuda_graphs_bf16(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine: the CUDA path (bf16, CUDA graphs) is not tested")
    from ghaf.serving.runtimes.torch import save_torch

    mlp = torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
    )
    save_torch(mlp, N_FEATURES, tmp_path / "mlp" / "model.pt2")
    runtime = load_runtime("pytorch", tmp_path / "mlp")
    runtime.warmup()
    rows = np.random.default_rng(7).standard_normal((3, N_FEATURES), dtype=np.float32)
    with torch.inference_mode():
        want = mlp(torch.from_numpy(rows)).numpy()
    for size in (3, 100):  # graph replay (padded) and the eager pinned path
        batch = np.tile(rows, ((size + 2) // 3, 1))[:size]  # rows 0..2 first
        got = runtime.predict(batch)["predictions"][:3]
        np.testing.assert_allclose(got, want, atol=0.05)  # bf16


def test_unknown_flavor_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no serving runtime for flavor 'keras'"):
        load_runtime("keras", tmp_path)


def test_flipped_byte_is_refused_and_not_ready(platform: Platform, hgb_spec: ModelSpec) -> None:
    model_file = hgb_spec.path / "model.skops"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    served = load_served(hgb_spec, platform=platform)
    assert not served.ready
    # the reason, kept for /v2/models/{name}/ready, names the changed file
    assert served.error and "Hash mismatch" in served.error and "model.skops" in served.error


def test_missing_signature_is_refused(platform: Platform, hgb_spec: ModelSpec) -> None:
    (hgb_spec.path / "model.sig").unlink()
    served = load_served(hgb_spec, platform=platform)
    assert not served.ready
    assert served.error and "is not signed (no model.sig)" in served.error


def test_a_digest_manifest_is_no_longer_a_way_in(platform: Platform, hgb_spec: ModelSpec) -> None:
    # The retired unsigned fallback: a SHA-256 list anybody can write.
    (hgb_spec.path / "model.sig").unlink()
    (hgb_spec.path / "ghaf-digests.json").write_text('{"files": {}}')
    served = load_served(hgb_spec, platform=platform)
    assert not served.ready
    assert served.error and "not signed" in served.error


def test_without_a_platform_there_is_no_trust_store_and_nothing_loads(
    hgb_spec: ModelSpec,
) -> None:
    served = load_served(hgb_spec, platform=None)
    assert not served.ready
    assert served.error and "cannot be verified" in served.error


def test_a_key_outside_the_trust_store_is_refused(
    platform: Platform, hgb_spec: ModelSpec, tmp_path: Path
) -> None:
    from ghaf.home import init_home
    from ghaf.security.signing import sign_model_dir
    from ghaf.settings import load_settings

    with init_home(load_settings(home=tmp_path / "other-home")) as other:
        sign_model_dir(other.settings, hgb_spec.path)  # re-signed by a stranger's key
    served = load_served(hgb_spec, platform=platform)
    assert not served.ready
    assert served.error and "failed signature verification" in served.error


def test_extra_unlisted_file_is_refused(
    platform: Platform, hgb_spec: ModelSpec, trained: Trained
) -> None:
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier

    # An attacker drops a second model file that sorts first: the directory is refused.
    evil = HistGradientBoostingClassifier(max_iter=2).fit(trained.X, 1 - trained.y)
    sio.dump(evil, hgb_spec.path / "a-evil.skops")
    served = load_served(hgb_spec, platform=platform)
    assert not served.ready
    assert served.error and "a-evil.skops" in served.error


def test_verify_files_lists_only_the_signed_files(platform: Platform, hgb_spec: ModelSpec) -> None:
    assert verify_files(platform.settings, hgb_spec.path) == ["model.skops"]
    (hgb_spec.path / "model.skops").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=r"model\.skops"):
        verify_files(platform.settings, hgb_spec.path)
