"""Files straight between a client machine and the S3 bucket, through presigned URLs the
server grants for one object at a time.

The bucket holds only ciphertext (C2SP chunked AES-256-GCM): a download grant comes with
that artifact's data key, and the file is decrypted here and written beside its target,
renamed only once its SHA-256 is the registry's. An upload grant comes with a fresh data
key: the file is encrypted as it streams to the bucket, then committed; the server reads
it back and keeps it only if it decrypts to the announced SHA-256. The server's own
bearer token never goes to the bucket: the URL is the only credential it sees.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ghaf.errors import (
    BackendUnavailableError,
    IntegrityError,
    PermissionDeniedError,
)
from ghaf.security.chunked import encrypt_stream, iter_decrypt

if TYPE_CHECKING:
    from ghaf.client.http import Client

CHUNK = 1024 * 1024
_END = object()
_QUEUED = 8
"""Ciphertext batches (about 2 MiB each) waiting for the PUT at most."""
_WAIT_S = 0.5


def offers_presigned(client: Client) -> bool:
    """Whether the server hands out presigned URLs (its artifacts are on S3)."""
    return bool(client.get("/artifact-access").get("presigned"))


class _RefusedError(Exception):
    """The consumer of an encrypting stream went away."""


class _ChunkSource:
    """A ``readinto`` over an iterator of byte chunks (an HTTP response body)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = memoryview(b"")

    def readinto(self, view: memoryview) -> int:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = memoryview(chunk)
        count = min(len(view), len(self._buffer))
        view[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count


def _store_error(response: httpx.Response, what: str) -> Exception:
    if response.status_code in (401, 403):
        return PermissionDeniedError(
            f"the object store refused the presigned URL for {what} "
            f"(HTTP {response.status_code}: expired or altered)",
            hint="ask again; a presigned URL lives only as long as server.presigned_expiry_s",
        )
    return BackendUnavailableError(
        f"the object store answered HTTP {response.status_code} for {what}",
        hint="try again, or use the streamed route (without --direct)",
    )


def download_granted(grant: dict[str, Any], digest: str, target: Path, what: str) -> None:
    """Fetch the body a download grant names, decrypt it beside ``target`` and rename it
    into place once it hashes to ``digest``.

    Raises:
        IntegrityError: the grant is for another file, or the bytes do not decrypt to
            ``digest``; nothing is written under ``target``'s name.
        PermissionDeniedError: the object store refused the URL (expired).
    """
    if grant.get("digest") != digest:
        raise IntegrityError(
            f"the server granted {grant.get('digest')} for {what}, which lists {digest}",
            hint="the server or something in between is not to be trusted; report it",
        )
    data_key = base64.b64decode(str(grant["data_key"]))
    context = str(grant["context"]).encode()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    partial = Path(name)
    hasher = hashlib.sha256()
    try:
        with (
            os.fdopen(fd, "wb") as out,
            httpx.Client(timeout=60.0) as http,
            http.stream("GET", str(grant["url"])) as response,
        ):
            if response.status_code != 200:
                response.read()
                raise _store_error(response, what)
            source = _ChunkSource(response.iter_bytes(CHUNK))
            for piece in iter_decrypt(data_key, context, source.readinto):
                hasher.update(piece)
                out.write(piece)
        if hasher.hexdigest() != digest:
            raise IntegrityError(
                f"{what} decrypted to sha256 {hasher.hexdigest()}, the server lists {digest}",
                hint="download it again; nothing was written under its name",
            )
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _encrypted(path: Path, grant: dict[str, Any], digest: str) -> Iterator[bytes]:
    """The file's ciphertext under the grant's key and context, made on a helper thread
    as the PUT consumes it; fails if the file no longer hashes to ``digest``."""
    data_key = base64.b64decode(str(grant["data_key"]))
    context = str(grant["context"]).encode()
    batches: queue.Queue[object] = queue.Queue(maxsize=_QUEUED)
    stop = threading.Event()

    def put(item: object) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                batches.put(item, timeout=_WAIT_S)
                return
        raise _RefusedError

    def produce() -> None:
        hasher = hashlib.sha256()
        try:
            with path.open("rb", buffering=0) as handle:
                encrypt_stream(
                    data_key,
                    context,
                    handle.readinto,
                    lambda view: put(bytes(view)),
                    on_plaintext=hasher.update,
                )
            if hasher.hexdigest() != digest:
                raise IntegrityError(
                    f"{path} changed while it was sent (sha256 {hasher.hexdigest()}, not {digest})",
                    hint="send it again once nothing writes to it",
                )
            put(_END)
        except _RefusedError:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer to raise
            with contextlib.suppress(_RefusedError):
                put(exc)

    worker = threading.Thread(target=produce, name="ghaf-encrypt", daemon=True)
    worker.start()
    try:
        while True:
            item = batches.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)  # nosec B101 - type narrowing
            yield item
    finally:
        stop.set()
        worker.join(timeout=60)


def upload_granted(client: Client, path: Path, project: str, digest: str, size: int) -> str:
    """Send ``path`` to ``project`` through an upload grant; its SHA-256 once the server
    verified and stored it (a file the project holds already is not sent again).

    Raises:
        IntegrityError: the server found the bytes are not the file; nothing was stored.
        PermissionDeniedError: the object store refused the URL (expired).
    """
    grant = client.post(f"/projects/{project}/upload-grants", {"sha256": digest, "size": size})
    if grant["stored"]:
        return str(grant["digest"])
    headers = {"content-length": str(grant["encrypted_size"])}
    with httpx.Client(timeout=60.0) as http:
        response = http.put(
            str(grant["url"]), content=_encrypted(path, grant, digest), headers=headers
        )
        if response.status_code not in (200, 201, 204):
            raise _store_error(response, str(path))
    committed = client.post(f"/projects/{project}/upload-grants/commit", {"grant": grant["grant"]})
    return str(committed["digest"])
