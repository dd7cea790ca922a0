"""The model server's security: bearer auth and per-request authorization by default, and TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ghaf.errors import ConfigError
from ghaf.platform import Platform
from ghaf.security.tls import client_ssl_context, is_loopback, make_dev_pki
from ghaf.serving.base import ModelSpec
from ghaf.serving.server import (
    ServeConfig,
    background_server,
    build_app,
    model_entry,
    tls_settings,
    uvicorn_server,
)
from ghaf.settings import TlsSettings
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import bearer


def _body(rows: np.ndarray) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                        "data": rows.ravel().tolist()}]}  # fmt: skip


def test_auth_401_without_token_403_without_the_role_200_with_it(
    platform: Platform, hgb_spec: ModelSpec, trained: Any
) -> None:
    scorer = mint(platform, "svc-scorer", ["model_server"], kind="service")
    viewer = mint(platform, "alice", ["viewer"])
    app = build_app(ServeConfig([model_entry(hgb_spec)]), platform)
    rows = trained.X[:3]
    with background_server(app) as url:
        infer = f"{url}/v2/models/fraud/infer"
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200  # public
        refused = httpx.post(infer, json=_body(rows))
        assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"]
        forged = httpx.post(infer, json=_body(rows), headers=bearer("ghaf_x"))
        assert forged.status_code == 401
        assert httpx.post(infer, json=_body(rows), headers=bearer(viewer)).status_code == 403
        reply = httpx.post(infer, json=_body(rows), headers=bearer(scorer))
        assert reply.status_code == 200, reply.text
        got = np.reshape(reply.json()["outputs"][0]["data"], (3, 2))
        np.testing.assert_allclose(got, trained.model.predict_proba(rows))


def test_tls_with_the_dev_ca(
    platform: Platform, hgb_spec: ModelSpec, trained: Any, tmp_path: Path
) -> None:
    pki = make_dev_pki(tmp_path / "pki")
    tls = TlsSettings(cert_file=pki.server_cert, key_file=pki.server_key)
    token = mint(platform, "svc-scorer", ["model_server"], kind="service")
    app = build_app(ServeConfig([model_entry(hgb_spec)]), platform)
    with background_server(app, tls=tls) as url:
        assert url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=client_ssl_context(pki.ca_cert), headers=bearer(token)) as client:
            reply = client.post(f"{url}/v2/models/fraud/infer", json=_body(trained.X[:2]))
        assert reply.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url.replace('https', 'http')}/v2/health/live")


def test_authentication_is_off_only_on_loopback_and_only_when_asked(
    platform: Platform, hgb_spec: ModelSpec
) -> None:
    entries = [model_entry(hgb_spec)]
    with pytest.raises(ConfigError, match=r"--insecure-dev refuses to serve on 10\.0\.0\.5"):
        build_app(ServeConfig(entries, host="10.0.0.5", insecure_dev=True), platform)
    with pytest.raises(ConfigError, match="needs a platform home to check credentials"):
        build_app(ServeConfig(entries), None)
    for host in ("127.0.0.1", "127.3.2.1", "::1", "localhost"):
        assert build_app(ServeConfig(entries, host=host, insecure_dev=True), platform).guard is None
    for host in ("0.0.0.0", "127.evil.example", "10.0.0.5", "::"):  # nosec B104 - never bound
        assert not is_loopback(host)


def test_plain_http_only_on_loopback(platform: Platform) -> None:
    assert tls_settings(platform, "127.0.0.1").allow_plain_http
    assert not tls_settings(platform, "0.0.0.0").allow_plain_http  # nosec B104 - never bound
    with pytest.raises(ConfigError, match="no TLS certificate"):
        uvicorn_server(object(), "0.0.0.0", 8080, tls_settings(platform, "0.0.0.0"))  # nosec B104
