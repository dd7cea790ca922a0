"""What a Ray Serve replica of ``ghaf serve --on ray://...`` does before it takes traffic,
without a cluster: it builds the app only from a model that verifies and loads, and raises
(so Serve never routes to it) otherwise; ``--on`` and ``serving.ray`` refuse bad values."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ghaf.errors import IntegrityError, InvalidInputError
from ghaf.pipelines.ray_target import head_address
from ghaf.platform import Platform
from ghaf.serving.base import ModelSpec
from ghaf.serving.ray_serve import GhafReplica, ModelRefusedError, model_ref
from ghaf.serving.server import ServeConfig
from ghaf.settings import GhafSettings
from tests.unit.serving.conftest import Trained
from tests.unit.serving.server_processes import ghaf


def _payload(platform: Platform, spec: ModelSpec) -> dict[str, Any]:
    config = ServeConfig(models=[], home=str(platform.settings.home), insecure_dev=True)
    return {"config": asdict(config), "models": [model_ref(spec, str(spec.path))]}


def test_a_replica_is_built_only_from_a_model_that_verifies_and_loads(
    platform: Platform, hgb_spec: ModelSpec, trained: Trained, tmp_path: Path
) -> None:
    replica = GhafReplica(_payload(platform, hgb_spec))
    app = replica.__serve_build_asgi_app__()
    served = app.deployments["hgb"].versions["1"]  # a signed directory: named by its name
    assert served.ready
    rows = trained.X[:3]
    np.testing.assert_allclose(
        served.runtime.predict(rows)["probabilities"], trained.model.predict_proba(rows)
    )
    replica.check_health()

    # A file changed after signing: refused before loading; the replica never exists.
    tampered = tmp_path / "tampered"
    shutil.copytree(hgb_spec.path, tampered)
    (tampered / "model.skops").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="refused"):
        GhafReplica(_payload(platform, ModelSpec("fraud", "1", "skops", tampered)))

    # Verified, but not what its runtime loads (served as onnx): refused with the reason.
    wrong = ModelSpec("fraud", "1", "onnx", hgb_spec.path)
    with pytest.raises(ModelRefusedError, match="takes no traffic"):
        GhafReplica(_payload(platform, wrong))


def test_on_and_ray_settings_refuse_bad_values(tmp_path: Path) -> None:
    assert head_address("ray://127.0.0.1:6379") == "127.0.0.1:6379"
    for bad in ("127.0.0.1:6379", "ray://127.0.0.1", "ray://:6379", "ray://h:0", "ray://h:6/x"):
        with pytest.raises(InvalidInputError, match="--on must be ray://HOST:PORT"):
            head_address(bad)
    with pytest.raises(ValueError, match="max_replicas must be at least min_replicas"):
        GhafSettings(serving={"ray": {"min_replicas": 3, "max_replicas": 2}})
    with pytest.raises(ValueError, match="metrics_interval_s must be below look_back_period_s"):
        GhafSettings(serving={"ray": {"metrics_interval_s": 5, "look_back_period_s": 5}})

    # At the door: one line naming the option, before anything is resolved.
    done = ghaf(tmp_path / "home", "serve", "fraud@champion", "--on", "http://127.0.0.1:1")
    assert done.returncode != 0
    assert "--on must be ray://HOST:PORT" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr + done.stdout
