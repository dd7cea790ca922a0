"""URLs the server fetches for a caller (a URL ingest), within what its settings allow.

A server that fetches any URL it is given is a proxy into its own network: the caller
names ``http://169.254.169.254/`` (cloud credentials), ``http://localhost:5432`` or
``file:///home/ghaf/keys/kek.json`` and reads the answer back as a dataset. So:

- ``http(s)``: every address the host resolves to must be public (or the host or its
  network listed in ``ingest.allow_hosts``), and the connection goes to the address that
  was checked, so a name that resolves differently the second time (DNS rebinding)
  reaches nothing new. Redirects are not followed; a URL with a user or password is
  refused (it would be stored in the dataset's source).
- ``file``: only under ``ingest.file_root`` once links are resolved; refused when unset.
- anything else (``sql:``, ``delta:``, ``s3://`` ...): refused; those run on a home.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpcore

from ghaf.errors import InvalidInputError, PermissionDeniedError, RequestTooLargeError
from ghaf.settings import IngestSettings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TIMEOUT = 30.0
"""Seconds a connection, or one read of the body, may take."""
CHUNK = 1024 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class UrlRefusedError(PermissionDeniedError):
    """The server's settings do not let it fetch this URL."""


@dataclass(frozen=True)
class UrlPolicy:
    """Which hosts and files a URL ingest may reach (from :class:`IngestSettings`)."""

    public: bool
    names: frozenset[str]
    networks: tuple[Network, ...]
    file_root: Path | None
    max_bytes: int

    @classmethod
    def of(cls, settings: IngestSettings) -> UrlPolicy:
        names: set[str] = set()
        networks: list[Network] = []
        for entry in settings.allow_hosts:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        root = settings.file_root.expanduser().resolve() if settings.file_root else None
        return cls(
            settings.public_urls, frozenset(names), tuple(networks), root, settings.max_bytes
        )

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``, once every one it resolves to is allowed.

        Raises:
            UrlRefusedError: an address is private, loopback, link-local or reserved and
                neither it nor the host is allowed, or public URLs are off.
            InvalidInputError: the host does not resolve.
        """
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise InvalidInputError(
                f"cannot fetch the URL: host {host!r} does not resolve", hint="check the URL"
            ) from exc
        addresses = [_address(str(info[4][0])) for info in found]
        named = host.lower().rstrip(".") in self.names
        for address in addresses:
            if named or any(address in network for network in self.networks):
                continue
            if not address.is_global:
                raise UrlRefusedError(
                    f"the server does not fetch {host} ({address}): a private, loopback, "
                    "link-local or reserved address",
                    hint="upload the file instead, or have the operator list the host in "
                    "ingest.allow_hosts (GHAF_INGEST__ALLOW_HOSTS)",
                )
            if not self.public:
                raise UrlRefusedError(
                    f"the server fetches no public URL ({host})",
                    hint="upload the file instead (ingest.public_urls is off)",
                )
        return list(dict.fromkeys(str(a) for a in addresses))


def _address(text: str) -> Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, whatever its spelling
    return address


class _CheckedBackend(httpcore.SyncBackend):
    """Connects only to an address the policy allowed, resolved once, here."""

    def __init__(self, policy: UrlPolicy) -> None:
        self._policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: httpcore.ConnectError | None = None
        for address in self._policy.addresses(host, port):
            try:
                return super().connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host} resolves to no address")


def file_name(url: str) -> str:
    """A safe local file name for what ``url`` names; its suffix tells the format."""
    name = Path(unquote(urlsplit(url).path)).name
    return _SAFE_NAME.sub("_", name) or "data"


def check_url(url: str, policy: UrlPolicy) -> Path | None:
    """Refuse a URL the server may not fetch; the local file a ``file://`` URL names.

    Raises:
        InvalidInputError: not an http(s) or file URL, or one with credentials.
        UrlRefusedError: a file outside ``ingest.file_root``, or file URLs are off.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if parts.username is not None or parts.password is not None:
            raise InvalidInputError(
                "a URL with a user or password is refused: it would be stored in the "
                "dataset's source",
                hint="use a URL that needs no credentials (a presigned URL), or upload the file",
            )
        if not parts.hostname:
            raise InvalidInputError(f"URL {url!r} has no host", hint="use https://HOST/PATH")
        return None
    if scheme == "file":
        if policy.file_root is None:
            raise UrlRefusedError(
                "the server reads no file:// URL",
                hint="upload the file instead, or have the operator set ingest.file_root",
            )
        if parts.netloc not in ("", "localhost"):
            raise InvalidInputError(
                f"file URL {url!r} names a host", hint="use file:///PATH on the server"
            )
        try:
            path = Path(unquote(parts.path)).resolve(strict=True)
        except (OSError, RuntimeError):
            path = None
        if path is None or not path.is_relative_to(policy.file_root) or not path.is_file():
            raise UrlRefusedError(
                f"the server reads files under {policy.file_root} only, and {url!r} is not one",
                hint="name a file under the server's ingest.file_root, or upload it",
            )
        return path
    raise InvalidInputError(
        f"the server fetches http(s):// and file:// URLs, not {scheme or 'this'}: {url!r}",
        hint="upload the file, or run ingests of delta:, iceberg: and sql: sources on a home",
    )


def fetch(url: str, dest: Path, policy: UrlPolicy) -> int:
    """Write the body ``url`` answers to ``dest``, streamed; its size in bytes.

    Raises:
        UrlRefusedError: the host is not one the server may reach.
        InvalidInputError: the fetch failed, answered an error status or a redirect.
        RequestTooLargeError: the body is over ``ingest.max_bytes``.
    """
    context = ssl.create_default_context()
    written = 0
    try:
        with (
            httpcore.ConnectionPool(
                ssl_context=context, network_backend=_CheckedBackend(policy), max_connections=1
            ) as pool,
            pool.stream(
                "GET",
                url,
                headers={"user-agent": "ghaf-server/1", "accept-encoding": "identity"},
                extensions={"timeout": {"connect": TIMEOUT, "read": TIMEOUT, "pool": TIMEOUT}},
            ) as response,
        ):
            if 300 <= response.status < 400:
                raise InvalidInputError(
                    f"{url} answered HTTP {response.status} (a redirect); the server does "
                    "not follow redirects",
                    hint="ingest from the URL it redirects to",
                )
            if response.status >= 400:
                raise InvalidInputError(
                    f"{url} answered HTTP {response.status}", hint="check the URL"
                )
            with dest.open("wb") as out:
                for chunk in response.iter_stream():
                    written += len(chunk)
                    if written > policy.max_bytes:
                        raise RequestTooLargeError(
                            f"{url} is larger than the {policy.max_bytes:,} bytes a URL "
                            "ingest may fetch",
                            hint="upload the file, or have the operator raise ingest.max_bytes",
                        )
                    out.write(chunk)
    except httpcore.UnsupportedProtocol as exc:
        raise InvalidInputError(f"cannot fetch {url}: {exc}", hint="check the URL") from exc
    except (httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError) as exc:
        raise InvalidInputError(
            f"cannot fetch {url}: {type(exc).__name__} {exc}".rstrip(),
            hint="check that the URL answers from the server's network",
        ) from exc
    return written
