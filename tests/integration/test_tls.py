"""TLS on a real server: TLS 1.2+ only (checked with openssl s_client), mTLS refuses strangers."""

from __future__ import annotations

import io
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from ghaf.errors import ConfigError
from ghaf.logs import configure_logging
from ghaf.security.tls import (
    DevPki,
    client_ssl_context,
    make_dev_pki,
    server_ssl_context,
    uvicorn_server,
)
from ghaf.settings import TlsSettings
from tests.conftest import service_missing

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return make_dev_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def mtls_server(pki: DevPki) -> Iterator[int]:
    tls = TlsSettings(
        cert_file=pki.server_cert, key_file=pki.server_key, client_ca_file=pki.ca_cert
    )
    port = _free_port()
    app = Starlette(routes=[Route("/", hello)])
    server = uvicorn_server(
        app, tls, host="127.0.0.1", port=port, log_level="critical", lifespan="off"
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_client_with_a_ca_signed_certificate_is_served(pki: DevPki, mtls_server: int) -> None:
    context = client_ssl_context(pki.ca_cert, cert_file=pki.client_cert, key_file=pki.client_key)
    answer = httpx.get(f"https://127.0.0.1:{mtls_server}/", verify=context)
    assert answer.text == "hello"


def test_client_without_certificate_is_refused(pki: DevPki, mtls_server: int) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"https://127.0.0.1:{mtls_server}/", verify=client_ssl_context(pki.ca_cert))


def test_client_with_a_foreign_certificate_is_refused(
    pki: DevPki, mtls_server: int, tmp_path: Path
) -> None:
    stranger = make_dev_pki(tmp_path / "stranger")
    context = client_ssl_context(
        pki.ca_cert, cert_file=stranger.client_cert, key_file=stranger.client_key
    )
    with pytest.raises(httpx.TransportError):
        httpx.get(f"https://127.0.0.1:{mtls_server}/", verify=context)


def _s_client(pki: DevPki, port: int, *flags: str) -> subprocess.CompletedProcess[str]:
    openssl = shutil.which("openssl")
    if openssl is None:
        service_missing("openssl", "the openssl command is not on PATH")
    return subprocess.run(
        [
            openssl,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-CAfile",
            str(pki.ca_cert),
            "-cert",
            str(pki.client_cert),
            "-key",
            str(pki.client_key),
            *flags,
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_openssl_old_protocols_are_refused(pki: DevPki, mtls_server: int, version: str) -> None:
    # SECLEVEL=0 makes the *client* willing to speak TLS 1.0/1.1: the refusal is the server's.
    done = _s_client(pki, mtls_server, version, "-cipher", "DEFAULT@SECLEVEL=0")
    assert done.returncode != 0
    # The server sent nothing back: no certificate, no cipher agreed.
    assert "no peer certificate available" in done.stdout
    assert "Cipher is (NONE)" in done.stdout


@pytest.mark.parametrize(("flag", "shown"), [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_openssl_tls12_and_13_are_served(
    pki: DevPki, mtls_server: int, flag: str, shown: str
) -> None:
    done = _s_client(pki, mtls_server, flag)
    assert done.returncode == 0, done.stderr
    assert shown in done.stdout
    assert "Verify return code: 0 (ok)" in done.stdout


def test_plain_http_only_when_allowed() -> None:
    with pytest.raises(ConfigError, match="plain HTTP is not allowed"):
        server_ssl_context(TlsSettings())
    stream = io.StringIO()
    configure_logging("human", "INFO", stream=stream)
    try:
        assert server_ssl_context(TlsSettings(allow_plain_http=True)) is None
    finally:
        configure_logging("human", "INFO")
    assert "PLAIN HTTP" in stream.getvalue() and "warning" in stream.getvalue()


def test_server_context_is_tls12_minimum(pki: DevPki) -> None:
    context = server_ssl_context(TlsSettings(cert_file=pki.server_cert, key_file=pki.server_key))
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE  # no client CA given: no mTLS
    with pytest.raises(ConfigError, match="cannot load TLS files"):
        server_ssl_context(TlsSettings(cert_file=pki.server_cert, key_file=pki.client_key))
