"""Files straight between a client machine and the S3 bucket, through presigned URLs the
server grants for one object at a time.

The bucket holds only ciphertext (C2SP chunked AES-256-GCM): a download grant comes with
that artifact's data key, and the file is decrypted here and written beside its target,
renamed only once its SHA-256 is the registry's. An upload grant comes with a fresh data
key: the file is encrypted as it streams to the bucket, then committed; the server reads
it back and keeps it only if it decrypts to the announced SHA-256. The server's own
bearer token never goes to the bucket: the URL is the only credential it sees.

A file larger than the server's part size goes in parts (an S3 multipart upload): each
part is a run of whole encryption chunks, encrypted on its own and PUT through a URL
signed for that part alone, several at once; a part that fails is sent again alone
(with a fresh URL when its own expired), and an upload given up is aborted. A download
whose connection breaks midway goes on from where it stopped (a ranged GET).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ghaf.errors import (
    AlreadyExistsError,
    BackendUnavailableError,
    IntegrityError,
    PermissionDeniedError,
)
from ghaf.security.chunked import CHUNK as ENCRYPTED_CHUNK
from ghaf.security.chunked import ChunkEncryptor, encrypt_stream, iter_decrypt

if TYPE_CHECKING:
    from ghaf.client.http import Client

CHUNK = 1024 * 1024
_END = object()
_QUEUED = 8
"""Ciphertext batches (about 2 MiB each) waiting for the PUT at most."""
_WAIT_S = 0.5
PARALLEL_PARTS = 4
"""Parts of one upload sent at once."""
_ASK_PARTS = 4 * PARALLEL_PARTS
"""Part URLs asked for at once, so that none waits long enough to expire unused."""
_PART_TRIES = 3
"""Times one part is sent before the upload is given up."""
_URL_MARGIN_S = 30
"""A part URL this close to its expiry is asked for again before it is used."""
_BACKOFF_S = 0.5
"""Seconds waited before a part the store failed is sent again, times the try's number."""
_PART_BATCH = 128 * ENCRYPTED_CHUNK
"""Plaintext bytes read and encrypted at a time while a part is sent (2 MiB)."""
_VERIFIED_BPS = 20 * 1024**2
"""Bytes a second the server is waited for at least while it verifies a commit whose
answer was late (beyond :data:`_COMMIT_WAIT_S`)."""
_COMMIT_WAIT_S = 120.0
_POLL_S = (0.5, 5.0)
"""First and longest wait between two asks whether a late commit is done."""


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


def _object_bytes(http: httpx.Client, url: str, what: str) -> Iterator[bytes]:
    """The bytes of the object at a presigned ``url``, in order; a connection that breaks
    midway is taken up where it stopped (a ranged GET of the rest, the URL still
    valid), up to :data:`_PART_TRIES` times in all."""
    received = 0
    for attempt in range(1, _PART_TRIES + 1):
        headers = {"range": f"bytes={received}-"} if received else None
        try:
            with http.stream("GET", url, headers=headers) as response:
                if response.status_code != (206 if received else 200):
                    response.read()
                    raise _store_error(response, what)
                for chunk in response.iter_bytes(CHUNK):
                    received += len(chunk)
                    yield chunk
                return
        except httpx.TransportError as exc:
            if attempt == _PART_TRIES:
                raise BackendUnavailableError(
                    f"the connection to the object store broke {attempt} times while "
                    f"fetching {what} ({received} bytes came): {exc}",
                    hint="download it again",
                ) from exc


def download_granted(grant: dict[str, Any], digest: str, target: Path, what: str) -> None:
    """Fetch the body a download grant names, decrypt it beside ``target`` and rename it
    into place once it hashes to ``digest``.

    Raises:
        IntegrityError: the grant is for another file, or the bytes do not decrypt to
            ``digest``; nothing is written under ``target``'s name.
        PermissionDeniedError: the object store refused the URL (expired).
        BackendUnavailableError: the connection to the store broke, again and again.
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
        with os.fdopen(fd, "wb") as out, httpx.Client(timeout=60.0) as http:
            source = _ChunkSource(_object_bytes(http, str(grant["url"]), what))
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


class _PartFailedError(Exception):
    """One try of a part failed in a way another try may not (the store's 5xx, a cut
    connection, an expired URL)."""

    def __init__(self, cause: Exception, *, expired: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.expired = expired


def _read_exactly(handle: Any, count: int, path: Path) -> bytes:
    data = handle.read(count)
    while len(data) < count:
        more = handle.read(count - len(data))
        if not more:
            raise IntegrityError(
                f"{path} is shorter than when its upload was granted",
                hint="send it again once nothing writes to it",
            )
        data += more
    return bytes(data)


def _part_body(
    path: Path, encryptor: ChunkEncryptor, part: dict[str, Any], final: bool
) -> Iterator[bytes]:
    """Part ``part``'s ciphertext, read and encrypted 2 MiB at a time as it is sent."""
    if int(part["part"]) == 1:
        yield encryptor.header
    length = int(part["length"])
    chunk = int(part["first_chunk"])
    done = 0
    with path.open("rb", buffering=0) as handle:
        handle.seek(int(part["offset"]))
        while True:
            want = min(_PART_BATCH, length - done)
            data = _read_exactly(handle, want, path)
            last = done + want == length
            yield bytes(encryptor.encrypt(chunk, data, final=final and last))
            chunk += want // ENCRYPTED_CHUNK
            done += want
            if last:
                return


def _send_part(
    http: httpx.Client, path: Path, encryptor: ChunkEncryptor, part: dict[str, Any], count: int
) -> _PartFailedError | None:
    """PUT one part; None once the store took it, the failure when another try may do."""
    number = int(part["part"])
    body = _part_body(path, encryptor, part, final=number == count)
    try:
        response = http.put(
            str(part["url"]), content=body, headers={"content-length": str(part["size"])}
        )
    except httpx.TransportError as exc:
        return _PartFailedError(exc, expired=False)
    if response.status_code in (200, 201, 204):
        return None
    error = _store_error(response, f"part {number} of {path}")
    if response.status_code in (401, 403) or response.status_code >= 500:
        return _PartFailedError(error, expired=response.status_code < 500)
    raise error


def _send_parts(client: Client, path: Path, project: str, grant: dict[str, Any]) -> None:
    """PUT every part of a grant in parts, :data:`PARALLEL_PARTS` at once, each tried
    up to :data:`_PART_TRIES` times (with a fresh URL when the store refused its own)."""
    encryptor = ChunkEncryptor(
        base64.b64decode(str(grant["data_key"])), str(grant["context"]).encode()
    )
    count = int(grant["part_count"])
    expires = float(grant["expires_at"])
    known = {int(p["part"]): (p, expires) for p in grant["parts"]}

    def ask(numbers: list[int]) -> None:
        answer = client.post(
            f"/projects/{project}/upload-grants/parts",
            {"grant": grant["grant"], "parts": numbers},
        )
        for entry in answer["parts"]:
            known[int(entry["part"])] = (entry, float(answer["expires_at"]))

    with (
        httpx.Client(timeout=60.0) as http,
        ThreadPoolExecutor(PARALLEL_PARTS, thread_name_prefix="ghaf-part") as pool,
    ):
        try:
            for start in range(1, count + 1, _ASK_PARTS):
                todo = list(range(start, min(start + _ASK_PARTS, count + 1)))
                for attempt in range(1, _PART_TRIES + 1):
                    soon = time.time() + _URL_MARGIN_S
                    stale = [n for n in todo if n not in known or known[n][1] < soon]
                    if stale:
                        ask(stale)
                    sent = pool.map(
                        lambda n: _send_part(http, path, encryptor, known[n][0], count), todo
                    )
                    failed = {n: e for n, e in zip(todo, sent, strict=True) if e is not None}
                    if not failed:
                        break
                    if attempt == _PART_TRIES:
                        raise next(iter(failed.values())).cause
                    for number, error in failed.items():
                        if error.expired:
                            known.pop(number)
                    if not all(error.expired for error in failed.values()):
                        time.sleep(_BACKOFF_S * attempt)  # a store that failed (S3's SlowDown)
                    todo = sorted(failed)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # send no part of a lost upload
            raise


def _commit(client: Client, project: str, grant: dict[str, Any]) -> str:
    """Commit a grant; its digest once stored.

    The server reads a large file back whole before it answers, which can outlast the
    client's read timeout: the session then sends the commit again, and the server says
    the first is still verifying (409). The answer is then asked for again, waiting
    longer each time, for as long as verifying the file may take.
    """
    path = f"/projects/{project}/upload-grants/commit"
    deadline = time.monotonic() + _COMMIT_WAIT_S + int(grant["size"]) / _VERIFIED_BPS
    wait, longest = _POLL_S
    while True:
        try:
            return str(client.post(path, {"grant": grant["grant"]})["digest"])
        except AlreadyExistsError:
            if time.monotonic() + wait > deadline:
                raise
        time.sleep(wait)
        wait = min(wait * 2, longest)


def upload_granted(client: Client, path: Path, project: str, digest: str, size: int) -> str:
    """Send ``path`` to ``project`` through an upload grant; its SHA-256 once the server
    verified and stored it (a file the project holds already is not sent again).

    Raises:
        IntegrityError: the server found the bytes are not the file; nothing was stored.
        PermissionDeniedError: the object store refused the URL (expired).
    """
    grant = client.post(
        f"/projects/{project}/upload-grants", {"sha256": digest, "size": size, "parts": True}
    )
    if grant["stored"]:
        return str(grant["digest"])
    if grant.get("method") == "multipart":
        try:
            _send_parts(client, path, project, grant)
            return _commit(client, project, grant)
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to tell
                client.post(f"/projects/{project}/upload-grants/abort", {"grant": grant["grant"]})
            raise
    headers = {"content-length": str(grant["encrypted_size"])}
    with httpx.Client(timeout=60.0) as http:
        response = http.put(
            str(grant["url"]), content=_encrypted(path, grant, digest), headers=headers
        )
        if response.status_code not in (200, 201, 204):
            raise _store_error(response, str(path))
    return _commit(client, project, grant)
