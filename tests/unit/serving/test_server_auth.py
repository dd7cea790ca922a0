"""``ghaf serve`` authenticates and authorizes every request by default (a real process).

Anonymous requests get 401 on every route but the health checks; a valid credential
without ``model.predict`` in the model's project gets 403 and a ``denied`` audit
record; ``--insecure-dev`` is refused off loopback before anything is bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import register_model
from ghaf.serving.deployments import list_deployments
from ghaf.testing.people import mint
from tests.unit.identity.test_oidc_verifier import Idp
from tests.unit.serving.server_processes import (
    ServerProcess,
    audit_records,
    bearer,
    free_port,
    ghaf,
    port_listening,
    register_champion,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def champion(platform: Platform, trained: Any, tmp_path: Path) -> Any:
    return register_champion(platform, trained.model, tmp_path / "saved", trained.X[:3])


@pytest.fixture
def idp() -> Iterator[Idp]:
    server = Idp()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _oip(rows: np.ndarray) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                        "data": rows.ravel().tolist()}]}  # fmt: skip


def _jwt(idp: Idp, key: Any, subject: str, groups: list[str] | None) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": idp.issuer, "aud": "ghaf", "sub": subject, "iat": now,
                              "nbf": now, "exp": now + 300}  # fmt: skip
    if groups is not None:
        claims["groups"] = groups
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def test_every_request_is_authenticated_and_authorized(
    platform: Platform, champion: Any, trained: Any, idp: Idp, tmp_path: Path
) -> None:
    project = platform.default_project
    scorer = mint(platform, "svc-scorer", ["model_server"], kind="service")
    viewer = mint(platform, "vera", ["viewer"])
    auditor = mint(platform, "audrey", ["auditor"])
    elsewhere = mint(platform, "otto", ["model_server"], project="other", bind_on="other")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    idp.publish(key, "k1", RSAAlgorithm)
    server = ServerProcess(
        platform.settings.home,
        ("serve", "fraud@champion"),
        "/v2/health/ready",
        tmp_path / "serve.log",
        env={
            "GHAF_IDENTITY__ISSUER": idp.issuer,
            "GHAF_IDENTITY__ROLE_MAPPING": f'{{"scorers": ["{project}:model_server"]}}',
        },
    ).start()
    rows = trained.X[:3]
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            # Health checks are open; everything else needs a credential.
            assert client.get("/v2/health/live").status_code == 200
            assert client.get("/v2/health/ready").status_code == 200
            for method, path in [
                ("POST", "/v2/models/fraud/infer"),
                ("POST", "/v2/models/fraud/versions/1/infer"),
                ("POST", "/predict"),
                ("POST", "/predict/fraud"),
                ("GET", "/v2"),
                ("GET", "/v2/models/fraud"),
                ("GET", "/v2/models/fraud/ready"),
                ("GET", "/metrics"),
                ("GET", "/no/such/route"),
            ]:
                anonymous = client.request(method, path, json=_oip(rows))
                assert anonymous.status_code == 401, (method, path, anonymous.text)
                assert anonymous.headers["www-authenticate"].startswith("Bearer")
            forged = client.post("/v2/models/fraud/infer", json=_oip(rows), headers=bearer("x"))
            assert forged.status_code == 401

            # The serving service account scores.
            ok = client.post("/v2/models/fraud/infer", json=_oip(rows), headers=bearer(scorer))
            assert ok.status_code == 200, ok.text
            got = np.reshape(ok.json()["outputs"][0]["data"], (3, 2))
            np.testing.assert_allclose(got, trained.model.predict_proba(rows), rtol=1e-6)
            assert client.get("/v2/models/fraud", headers=bearer(scorer)).status_code == 200

            # Valid credentials without the role, or of another project: 403.
            for token in (viewer, auditor, elsewhere):
                refused = client.post(
                    "/v2/models/fraud/infer", json=_oip(rows), headers=bearer(token)
                )
                assert refused.status_code == 403, refused.text
                assert "model.predict" in refused.json()["error"]
            assert client.post("/predict", json=[{}], headers=bearer(auditor)).status_code == 403

            # A JWT with no groups is somebody with no role; a mapped group scores.
            nobody = _jwt(idp, key, "nobody@example.com", None)
            no_groups = client.post(
                "/v2/models/fraud/infer", json=_oip(rows), headers=bearer(nobody)
            )
            assert no_groups.status_code == 403, no_groups.text
            mapped = _jwt(idp, key, "app@example.com", ["scorers"])
            by_group = client.post(
                "/v2/models/fraud/infer", json=_oip(rows), headers=bearer(mapped)
            )
            assert by_group.status_code == 200, by_group.text

            # /metrics needs monitoring.read: the scoring account lacks it, a viewer has it.
            assert client.get("/metrics", headers=bearer(scorer)).status_code == 403
            metrics = client.get("/metrics", headers=bearer(viewer))
            assert metrics.status_code == 200 and "ghaf_" in metrics.text
    finally:
        log = server.stop()
    assert "Traceback" not in log

    denied = audit_records(platform, outcome="denied", action="model.predict")
    by_actor = {row.actor: row for row in denied}
    assert set(by_actor) >= {"vera", "audrey", "otto", "nobody@example.com"}
    assert all(row.resource == "model:fraud:1" for row in denied)
    assert all(row.project == project for row in denied)
    assert by_actor["vera"].source and by_actor["vera"].source.startswith("127.0.0.1:")
    refused_metrics = audit_records(platform, outcome="denied", action="monitoring.read")
    assert [row.actor for row in refused_metrics] == ["svc-scorer"]


def test_metrics_public_opens_only_metrics(
    platform: Platform, champion: Any, tmp_path: Path
) -> None:
    server = ServerProcess(
        platform.settings.home,
        ("serve", "fraud@champion", "--metrics-public"),
        "/v2/health/ready",
        tmp_path / "serve.log",
    ).start()
    try:
        assert httpx.get(f"{server.url}/metrics").status_code == 200
        assert httpx.get(f"{server.url}/v2/models/fraud").status_code == 401
    finally:
        server.stop()


def test_insecure_dev_is_refused_off_loopback_before_binding(
    platform: Platform, champion: Any
) -> None:
    port = free_port()
    home = platform.settings.home
    # 0.0.0.0 is never bound: the refusal comes first, before models or deployments.
    refused = ghaf(home, "serve", "fraud@champion", "--insecure-dev", "--host", "0.0.0.0",  # nosec B104
                   "--port", str(port))  # fmt: skip
    assert refused.returncode != 0
    assert "--insecure-dev refuses to serve on 0.0.0.0" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) <= 2, refused.stderr
    assert "Traceback" not in refused.stderr
    assert not port_listening(port)
    assert list_deployments(platform) == []  # nothing was resolved or recorded
    named = ghaf(home, "serve", "fraud@champion", "--insecure-dev", "--host", "127.evil.example")
    assert named.returncode != 0 and "refuses to serve on 127.evil.example" in named.stderr


def test_insecure_dev_on_loopback_serves_anonymously_and_says_so(
    platform: Platform, champion: Any, trained: Any, tmp_path: Path
) -> None:
    server = ServerProcess(
        platform.settings.home,
        ("serve", "fraud@champion", "--insecure-dev"),
        "/v2/health/ready",
        tmp_path / "serve.log",
    ).start()
    try:
        reply = httpx.post(f"{server.url}/v2/models/fraud/infer", json=_oip(trained.X[:2]))
        assert reply.status_code == 200, reply.text
    finally:
        log = server.stop()
    assert "INSECURE DEV" in log


def test_a_version_the_release_policy_refuses_is_not_served(
    platform: Platform, trained: Any, tmp_path: Path
) -> None:
    save_model(trained.model, tmp_path / "saved")
    version = register_model(platform, platform.admin(), "fraud", tmp_path / "saved")
    port = free_port()
    refused = ghaf(platform.settings.home, "serve", version.ref, "--port", str(port))
    assert refused.returncode != 0
    assert "approved" in refused.stderr and "Traceback" not in refused.stderr
    assert not port_listening(port)
