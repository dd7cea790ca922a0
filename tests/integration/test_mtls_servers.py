"""mTLS at the real doors: ``ghaf serve`` and ``ghaf features serve`` with client certificates.

The home's ``ghaf.toml`` sets ``tls.cert_file``/``key_file`` (a server certificate for
127.0.0.1 from the dev PKI, ``ghaf certs dev``) and ``tls.client_ca_file``; both server
processes read it. A client with a certificate the CA signed and a valid bearer token is
served; the same token without a client certificate, with a certificate another CA
signed, or over plain HTTP never reaches the application: the connection is refused
and nothing is audited.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.tls import DevPki, client_ssl_context, make_dev_pki
from ghaf.testing.people import mint
from tests.integration.served_home import (
    FEATURES,
    oip,
    open_served_home,
    start_together,
    toml_section,
)
from tests.unit.serving.server_processes import ServerProcess, bearer

pytestmark = pytest.mark.slow


@dataclass
class Doors:
    """The dev PKI, the home both servers share, a scoring token and the two servers."""

    pki: DevPki
    platform: Platform
    rows: np.ndarray
    token: str
    model: ServerProcess
    features: ServerProcess

    def requests(self) -> list[tuple[str, int, str, dict[str, Any]]]:
        """(server, port, path, body): one scoring and one feature read."""
        return [
            ("model", self.model.port, "/v2/models/fraud/infer", oip(self.rows)),
            ("features", self.features.port, "/get-online-features", FEATURES),
        ]

    def audit_size(self) -> int:
        with self.platform.read_session() as session:
            return session.query(AuditRecordRow).count()


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doors]:
    work = tmp_path_factory.mktemp("mtls-servers")
    pki = make_dev_pki(work / "pki")
    tls = {"cert_file": pki.server_cert, "key_file": pki.server_key, "client_ca_file": pki.ca_cert}
    platform, rows = open_served_home(work / "home", work, toml_section("tls", tls))
    assert platform.settings.tls.client_ca_file == pki.ca_cert
    token = mint(platform, "svc-scorer", ["model_server"], kind="service")
    client = client_ssl_context(pki.ca_cert, cert_file=pki.client_cert, key_file=pki.client_key)
    home = platform.settings.home
    model = ServerProcess(home, ("serve", "fraud@champion"), "/v2/health/ready",
                          work / "serve.log", tls=client)  # fmt: skip
    features = ServerProcess(home, ("features", "serve"), "/health", work / "features.log",
                             tls=client)  # fmt: skip
    try:
        start_together(model, features)
        assert f"serving fraud on https://127.0.0.1:{model.port}" in model.output()
        yield Doors(pki, platform, rows, token, model, features)
    finally:
        logs = model.stop() + features.stop()
        platform.close()
    assert "Traceback" not in logs


def _post(context: ssl.SSLContext | None, url: str, body: Any, token: str) -> httpx.Response:
    return httpx.post(url, json=body, headers=bearer(token), verify=context or True, timeout=30)


def _client(pki: DevPki, version: ssl.TLSVersion, holder: DevPki | None) -> ssl.SSLContext:
    """A client trusting ``pki``'s CA, speaking at most ``version``, showing the client
    certificate of ``holder`` (None: no certificate)."""
    if holder is None:
        context = client_ssl_context(pki.ca_cert)
    else:
        context = client_ssl_context(
            pki.ca_cert, cert_file=holder.client_cert, key_file=holder.client_key
        )
    context.maximum_version = version
    return context


VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_a_ca_signed_client_with_a_token_is_served_and_without_one_is_401(
    doors: Doors, version: ssl.TLSVersion
) -> None:
    context = _client(doors.pki, version, doors.pki)
    for server, port, path, body in doors.requests():
        url = f"https://127.0.0.1:{port}{path}"
        served = _post(context, url, body, doors.token)
        assert served.status_code == 200, (server, served.text)
        # The certificate opens the connection; it is not a credential.
        anonymous = httpx.post(url, json=body, verify=context, timeout=30)
        assert anonymous.status_code == 401, (server, anonymous.text)
    url = f"{doors.model.url}/v2/models/fraud/infer"
    scored = _post(context, url, oip(doors.rows), doors.token)
    assert len(scored.json()["outputs"][0]["data"]) == 2 * len(doors.rows)


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
@pytest.mark.parametrize("holder", ["no certificate", "another CA's certificate"])
def test_a_client_without_a_ca_signed_certificate_is_refused(
    doors: Doors, tmp_path: Path, version: ssl.TLSVersion, holder: str
) -> None:
    """Refused with a valid token in hand: the certificate is the only thing wrong.

    Over TLS 1.2 the handshake itself fails. TLS 1.3 sends the client certificate after
    the client has finished its side of the handshake, so the refusal is the server
    closing the connection before any response; either way no request reaches the
    application and nothing is audited.
    """
    stranger = None if holder == "no certificate" else make_dev_pki(tmp_path / "stranger")
    context = _client(doors.pki, version, stranger)
    before = doors.audit_size()
    refusal = httpx.ConnectError if version == ssl.TLSVersion.TLSv1_2 else httpx.TransportError
    for server, port, path, body in doors.requests():
        url = f"https://127.0.0.1:{port}{path}"
        with pytest.raises(refusal):
            _post(context, url, body, doors.token)
            pytest.fail(f"{server} answered a client without a CA-signed certificate")
    assert doors.audit_size() == before


def test_plain_http_to_the_tls_port_gets_no_answer(doors: Doors) -> None:
    context = _client(doors.pki, ssl.TLSVersion.TLSv1_3, doors.pki)
    before = doors.audit_size()
    for server, port, path, body in doors.requests():
        with pytest.raises(httpx.TransportError):
            _post(None, f"http://127.0.0.1:{port}{path}", body, doors.token)
        # Still serving a proper client afterwards.
        served = _post(context, f"https://127.0.0.1:{port}{path}", body, doors.token)
        assert served.status_code == 200, (server, served.text)
    assert doors.audit_size() == before


def test_worker_processes_listen_with_the_same_tls(doors: Doors, tmp_path: Path) -> None:
    """``--workers 2``: each worker process reads the home's TLS settings itself."""
    context = _client(doors.pki, ssl.TLSVersion.TLSv1_3, doors.pki)
    home = doors.platform.settings.home
    workers = ServerProcess(home, ("serve", "fraud@champion", "--workers", "2"),
                            "/v2/health/ready", tmp_path / "workers.log", tls=context)  # fmt: skip
    workers.start()
    try:
        url = f"{workers.url}/v2/models/fraud/infer"
        for _ in range(4):  # fresh connections, spread by the kernel over the workers
            assert _post(context, url, oip(doors.rows), doors.token).status_code == 200
            with pytest.raises(httpx.TransportError):
                _post(_client(doors.pki, ssl.TLSVersion.TLSv1_3, None), url, {}, doors.token)
    finally:
        log = workers.stop()
    assert "Traceback" not in log
