"""Serving a real registered model: ``fraud@champion`` via ghaf.registry, signed, verified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ghaf.errors import NotFoundError
from ghaf.platform import Platform
from ghaf.serving.models import resolve_model
from ghaf.serving.server import ServeConfig, background_server, build_app, model_entry
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import bearer, register_champion


@pytest.fixture
def champion(platform: Platform, trained: Any, tmp_path: Path) -> Any:
    version = register_champion(platform, trained.model, tmp_path / "saved", trained.X[:3])
    assert version.signed  # the registry signs with ghaf.security.signing
    return version


@pytest.fixture
def scorer(platform: Platform) -> dict[str, str]:
    """Headers of the serving service account's token (the server refuses anonymous calls)."""
    return bearer(mint(platform, "svc-scorer", ["model_server"], kind="service"))


def _oip(rows: np.ndarray) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                        "data": rows.ravel().tolist()}]}  # fmt: skip


def test_serves_the_registry_champion(
    platform: Platform, champion: Any, trained: Any, tmp_path: Path, scorer: dict[str, str]
) -> None:
    spec = resolve_model(platform, "fraud@champion", tmp_path / "served")
    assert (spec.name, spec.version, spec.flavor) == ("fraud", "1", "skops")
    assert spec.signature is not None and spec.signature.columns == tuple(
        f"f{i}" for i in range(trained.X.shape[1])
    )
    app = build_app(ServeConfig([model_entry(spec)]), platform)
    rows = trained.X[:16]
    want = trained.model.predict_proba(rows)
    with background_server(app) as url:
        assert httpx.get(f"{url}/v2/models/fraud/ready", headers=scorer).status_code == 200
        reply = httpx.post(f"{url}/v2/models/fraud/infer", json=_oip(rows), headers=scorer)
        assert reply.status_code == 200, reply.text
        out = reply.json()
        assert out["model_version"] == "1"
        np.testing.assert_allclose(np.reshape(out["outputs"][0]["data"], want.shape), want)
        records = [dict(zip(spec.signature.columns, map(float, r), strict=True)) for r in rows]
        by_record = httpx.post(f"{url}/predict", json=records, headers=scorer)
        assert by_record.status_code == 200
        np.testing.assert_allclose(by_record.json()["outputs"]["probabilities"], want, rtol=1e-6)


def test_tampered_registry_model_stays_not_ready(
    platform: Platform, champion: Any, trained: Any, tmp_path: Path, scorer: dict[str, str]
) -> None:
    spec = resolve_model(platform, "fraud@champion", tmp_path / "served")
    target = spec.path / "model.skops"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit after download, before load
    target.write_bytes(bytes(data))
    app = build_app(ServeConfig([model_entry(spec)]), platform)
    with background_server(app) as url:
        ready = httpx.get(f"{url}/v2/models/fraud/ready", headers=scorer)
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert "model.skops" in ready.json()["error"] or "verif" in ready.json()["error"]
        assert httpx.get(f"{url}/v2/health/ready").status_code == 503
        infer = httpx.post(f"{url}/v2/models/fraud/infer", json=_oip(trained.X[:1]), headers=scorer)
        assert infer.status_code == 503


def test_unknown_alias_is_not_found(platform: Platform, champion: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no alias 'shadow'"):
        resolve_model(platform, "fraud@shadow", tmp_path / "x")
