"""A request body read as a blocking file, so a sync consumer on a worker thread (the
artifact store's ``put``: hash, encrypt, write) takes the bytes as they arrive, with no
staging copy on disk and about one batch in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import re
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.from_thread
import anyio.to_thread
from starlette.requests import ClientDisconnect, Request

from ghaf.errors import GhafError, InvalidInputError, RequestTooLargeError

BATCH = 1024 * 1024
"""Bytes gathered from the socket before the consumer thread is handed them."""
AHEAD = 4 * BATCH
"""Bytes of a body received ahead of its consumer: the socket is read while the consumer
hashes, encrypts and writes, and the consumer finds a batch waiting when it asks."""
DIGEST_SIZE = 64
"""Bytes of a SHA-256 in hex: the trailer of an upload whose digest follows its body."""
TRAILING = "trailing"
"""The value of ``X-Ghaf-SHA256`` on an upload whose body ends with the file's digest."""
_SHA256_HEX = re.compile(rb"[0-9a-f]{64}")


class BodyReader(io.RawIOBase):
    """``readinto`` over a request's body; call it only from an anyio worker thread
    (``run_in_threadpool``), which it blocks while the event loop receives.

    Use it inside :meth:`receiving`: a task on the event loop then receives the body
    ahead of the consumer (up to :data:`AHEAD` bytes), so receiving overlaps the
    consumer's work instead of alternating with it, and each hand-over to the thread
    carries every chunk received since the last (at least :data:`BATCH` bytes until the
    body ends). The chunks are copied once, into the caller's buffer: no joining, no
    staging copy.

    With ``trailer``, the body's last ``trailer`` bytes are not read: they are held back
    as they arrive and left in :attr:`trailer` at the end (a digest sent after the file).
    """

    def __init__(self, request: Request, *, trailer: int = 0) -> None:
        self._request = request
        self._trailer = trailer
        self._buffered = 0  # bytes in ``_batch``
        self.trailer: bytes | None = None
        """The last ``trailer`` bytes of the body (fewer if it was shorter), held back from
        the reads; set once the body has ended."""
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._finished = False
        self._error: Exception | None = None
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._batch: deque[memoryview] = deque()
        self._done = False
        self._task: asyncio.Task[None] | None = None
        self.received = 0

    def readable(self) -> bool:
        return True

    @contextlib.asynccontextmanager
    async def receiving(self) -> AsyncIterator[BodyReader]:
        """Receive the body in the background while the block runs; stopped at its end
        (the body left unread when the consumer failed is not waited for)."""
        self._task = asyncio.get_running_loop().create_task(self._receive())
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _receive(self) -> None:
        whole = False
        try:
            async for chunk in self._request.stream():
                if chunk:
                    self._chunks.append(chunk)
                    self._queued += len(chunk)
                    if self._queued >= BATCH:
                        self._arrived.set()
                while self._queued >= AHEAD:
                    self._room.clear()
                    await self._room.wait()
            whole = True
        except Exception as exc:  # noqa: BLE001 - raised to the consumer, which must not
            self._error = exc  # take the body that arrived before the failure as whole
        finally:
            if not whole and not isinstance(self._error, GhafError):
                # the client went away (ClientDisconnect), or this task was cancelled
                cut = InvalidInputError(
                    "the upload ended before its body did", hint="send the file again"
                )
                cut.__cause__ = self._error
                self._error = cut
            self._finished = True
            self._arrived.set()

    async def _take(self) -> list[bytes]:
        """Every chunk received so far, once there is a batch or the body has ended."""
        if self._task is None:
            raise RuntimeError("BodyReader is read outside its receiving() block")
        while self._queued < BATCH and not self._finished:
            self._arrived.clear()
            await self._arrived.wait()
        if self._error is not None and not self._chunks:
            raise self._error
        chunks = list(self._chunks)
        self._chunks.clear()
        self._queued = 0
        self._room.set()
        return chunks

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while self._buffered <= self._trailer:
            if self._done:
                return 0
            chunks = anyio.from_thread.run(self._take)
            if not chunks:
                self._done = True
                self.trailer = b"".join(bytes(view) for view in self._batch)
                self._batch.clear()
                self._buffered = 0
                return 0
            self._batch.extend(memoryview(c) for c in chunks)
            self._buffered += sum(len(c) for c in chunks)
        count = 0
        room = min(len(buffer), self._buffered - self._trailer)
        while count < room:
            head = self._batch[0]
            take = min(room - count, len(head))
            buffer[count : count + take] = head[:take]
            count += take
            if take == len(head):
                self._batch.popleft()
            else:
                self._batch[0] = head[take:]
        self._buffered -= count
        self.received += count
        return count


class TrailingDigest:
    """The SHA-256 an upload's body ends with (``X-Ghaf-SHA256: trailing``): its last 64
    bytes, held back by a :class:`BodyReader` made with ``trailer=DIGEST_SIZE``; an
    :class:`~ghaf.artifacts.base.LateClaim`."""

    def __init__(self, body: BodyReader) -> None:
        self._body = body

    def __str__(self) -> str:
        return TRAILING  # what an audit record names before the body has ended

    def value(self) -> str:
        """The digest the body ended with.

        Raises:
            InvalidInputError: the body did not end with 64 lowercase hex characters.
            RuntimeError: asked before the body has ended (a bug of the caller).
        """
        raw = self._body.trailer
        if raw is None:
            raise RuntimeError("the trailing digest is read before its body has ended")
        if not _SHA256_HEX.fullmatch(raw):
            raise InvalidInputError(
                "x-ghaf-sha256 is 'trailing', but the body does not end with a SHA-256 "
                f"(its last {len(raw)} bytes are not 64 lowercase hex characters)",
                hint="append the file's SHA-256 in lowercase hex after its bytes, and count "
                "those 64 bytes in content-length",
            )
        return raw.decode("ascii")


async def receive_to_file(request: Request, dest: Path) -> str:
    """Write the request body to ``dest`` as it arrives; its SHA-256.

    For a body a consumer needs whole, as a file (a batch to score, a table to read).
    Chunks are gathered up to :data:`BATCH` and hashed and written on a worker thread, so
    memory stays at about one batch whatever the body's size.

    Raises:
        InvalidInputError: the client went away before the body ended.
    """
    hasher = hashlib.sha256()
    pending = bytearray()
    with dest.open("wb") as out:

        def write(data: bytes) -> None:
            hasher.update(data)
            out.write(data)

        try:
            async for piece in request.stream():
                pending += piece
                if len(pending) >= BATCH:
                    data = bytes(pending)
                    pending.clear()
                    await anyio.to_thread.run_sync(write, data)
        except ClientDisconnect as exc:
            raise InvalidInputError(
                "the upload ended before its body did", hint="send the file again"
            ) from exc
        await anyio.to_thread.run_sync(write, bytes(pending))
    return hasher.hexdigest()


async def append_body(request: Request, dest: Path, room: int) -> int:
    """Append the request body to ``dest`` as it arrives; the bytes appended.

    Raises:
        RequestTooLargeError: the body holds more than ``room`` bytes (what was appended
            stays for the caller to cut back).
        InvalidInputError: the client went away before the body ended.
    """
    written = 0
    pending = bytearray()
    with dest.open("ab") as out:
        try:
            async for piece in request.stream():
                written += len(piece)
                if written > room:
                    raise RequestTooLargeError(
                        f"the piece goes {written - room} bytes past the upload's size",
                        hint="send at most the bytes the upload still lacks",
                    )
                pending += piece
                if len(pending) >= BATCH:
                    data = bytes(pending)
                    pending.clear()
                    await anyio.to_thread.run_sync(out.write, data)
        except ClientDisconnect as exc:
            raise InvalidInputError(
                "the piece ended before its body did", hint="GET the upload and resume"
            ) from exc
        await anyio.to_thread.run_sync(out.write, bytes(pending))
    return written
