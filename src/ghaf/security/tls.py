"""TLS for Ghaf's HTTP servers: server contexts (TLS 1.2+, optional mTLS) and a dev CA.

A server gets its context from :func:`server_ssl_context`; with no certificate it
refuses to start unless ``tls.allow_plain_http`` is set, and then says so loudly.
:func:`make_dev_pki` (``ghaf certs dev``) makes a local CA, a server certificate for
127.0.0.1/localhost and a client certificate for mTLS.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ghaf.errors import ConfigError
from ghaf.logs import get_logger
from ghaf.settings import TlsSettings

_log = get_logger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (nothing sent there leaves the machine).

    Only ``localhost`` or a literal address: a name like ``127.example.com`` may resolve
    anywhere.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def effective_tls(tls: TlsSettings, host: str) -> TlsSettings:
    """The TLS settings a server bound to ``host`` listens with.

    As configured, except that a server on a loopback address may serve plain HTTP when
    no certificate is set (nothing leaves the machine; the warning is still logged).
    Any other address needs a certificate or an explicit ``tls.allow_plain_http``.
    """
    if tls.cert_file is None and is_loopback(host) and not tls.allow_plain_http:
        return tls.model_copy(update={"allow_plain_http": True})
    return tls


def server_ssl_context(tls: TlsSettings, *, what: str = "server") -> ssl.SSLContext | None:
    """The TLS context a server listens with; ``None`` only when plain HTTP is allowed.

    Raises:
        ConfigError: no certificate and plain HTTP not allowed, or unreadable files.
    """
    if tls.cert_file is None or tls.key_file is None:
        if not tls.allow_plain_http:
            raise ConfigError(
                f"the {what} has no TLS certificate and plain HTTP is not allowed",
                hint="run `ghaf certs dev` and set GHAF_TLS__CERT_FILE and GHAF_TLS__KEY_FILE, "
                "or GHAF_TLS__ALLOW_PLAIN_HTTP=true for development only",
            )
        _log.warning(
            f"PLAIN HTTP: the {what} serves without TLS; credentials and data travel in "
            "clear text (tls.allow_plain_http=true; for development only)",
            what=what,
        )
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file is not None:
            context.load_verify_locations(cafile=tls.client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load TLS files ({tls.cert_file}, {tls.key_file}): {exc}",
            hint="check the paths and that the key matches the certificate",
        ) from exc
    return context


def client_ssl_context(
    ca_file: Path, *, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """A client context trusting ``ca_file``, presenting a client certificate if given."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file)
    return context


def uvicorn_server(app: Any, tls: TlsSettings, *, host: str, port: int, **options: Any) -> Any:
    """A ``uvicorn.Server`` for ``app`` listening with :func:`server_ssl_context`."""
    import uvicorn

    context = server_ssl_context(tls)
    config = uvicorn.Config(app, host=host, port=port, **options)
    config.load()
    config.ssl = context  # our context (TLS 1.2+, mTLS), not uvicorn's default
    return uvicorn.Server(config)


@dataclass(frozen=True)
class DevPki:
    """Files written by :func:`make_dev_pki`."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ghaf development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    subject_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate | None,
    *,
    days: int,
    usage: x509.ObjectIdentifier | None = None,
    hosts: tuple[str, ...] = (),
) -> x509.Certificate:
    now = datetime.now(UTC)
    is_ca = ca_cert is None
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject if ca_cert is not None else _name(common_name))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=not is_ca,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), False)
    )
    if ca_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
    return builder.sign(ca_key, hashes.SHA256())


def make_dev_pki(
    directory: Path,
    *,
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
    client_name: str = "ghaf-dev-client",
    days: int = 30,
) -> DevPki:
    """Write a development CA, a server certificate for ``hosts`` and a client certificate.

    Keys are written 0600. For development and tests only: the CA key sits beside them.
    """
    if not hosts:
        raise ConfigError("a server certificate needs at least one host", hint="--host 127.0.0.1")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    pki = DevPki(*(directory / n for n in _FILES))
    ca_key = _key()
    ca_cert = _issue(ca_key, "Ghaf development CA", ca_key, None, days=days)
    server_key, client_key = _key(), _key()
    server_cert = _issue(
        server_key,
        hosts[0],
        ca_key,
        ca_cert,
        days=days,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        hosts=hosts,
    )
    client_cert = _issue(
        client_key, client_name, ca_key, ca_cert, days=days, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    for cert, path in ((ca_cert, pki.ca_cert), (server_cert, pki.server_cert)):
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.client_cert.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key, pki.ca_key)
    _write_key(server_key, pki.server_key)
    _write_key(client_key, pki.client_key)
    return pki


_FILES = ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem")
