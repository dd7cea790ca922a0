"""The model server with ghaf.security: bearer auth (Ghaf API tokens) and TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ghaf.access.bindings import bind_role
from ghaf.access.tokens import create_token
from ghaf.errors import ConfigError
from ghaf.platform import Platform
from ghaf.security.tls import client_ssl_context, make_dev_pki
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


def _body(rows: np.ndarray) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                        "data": rows.ravel().tolist()}]}  # fmt: skip


@pytest.fixture
def secured(platform: Platform) -> Iterator[Platform]:
    """The same home with ``serving_require_auth`` on."""
    settings = platform.settings.model_copy(update={"serving_require_auth": True})
    with Platform(settings) as opened:
        yield opened


def test_auth_401_without_token_200_with_one(
    secured: Platform, hgb_spec: ModelSpec, trained: Any
) -> None:
    project = secured.default_project
    bind_role(secured, secured.admin(), "alice", "viewer", project=project)
    token = create_token(secured, secured.admin(), "alice", project=project).secret
    app = build_app(ServeConfig([model_entry(hgb_spec)]), secured)
    rows = trained.X[:3]
    with background_server(app) as url:
        infer = f"{url}/v2/models/fraud/infer"
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200  # public
        refused = httpx.post(infer, json=_body(rows))
        assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"]
        forged = httpx.post(infer, json=_body(rows), headers={"Authorization": "Bearer ghaf_x"})
        assert forged.status_code == 401
        reply = httpx.post(infer, json=_body(rows), headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 200, reply.text
        got = np.reshape(reply.json()["outputs"][0]["data"], (3, 2))
        np.testing.assert_allclose(got, trained.model.predict_proba(rows))


def test_tls_with_the_dev_ca(
    platform: Platform, hgb_spec: ModelSpec, trained: Any, tmp_path: Path
) -> None:
    pki = make_dev_pki(tmp_path / "pki")
    tls = TlsSettings(cert_file=pki.server_cert, key_file=pki.server_key)
    app = build_app(ServeConfig([model_entry(hgb_spec)]), platform)
    with background_server(app, tls=tls) as url:
        assert url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=client_ssl_context(pki.ca_cert)) as client:
            reply = client.post(f"{url}/v2/models/fraud/infer", json=_body(trained.X[:2]))
        assert reply.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url.replace('https', 'http')}/v2/health/live")


def test_plain_http_only_on_loopback(platform: Platform) -> None:
    assert tls_settings(platform, "127.0.0.1").allow_plain_http
    assert not tls_settings(platform, "0.0.0.0").allow_plain_http  # nosec B104 - never bound
    with pytest.raises(ConfigError, match="no TLS certificate"):
        uvicorn_server(object(), "0.0.0.0", 8080, tls_settings(platform, "0.0.0.0"))  # nosec B104
