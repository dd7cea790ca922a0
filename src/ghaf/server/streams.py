"""A request body read as a blocking file, so a sync consumer on a worker thread (the
artifact store's ``put``: hash, encrypt, write) takes the bytes as they arrive, with no
staging copy on disk and about one batch in memory.
"""

from __future__ import annotations

import hashlib
import io
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.from_thread
import anyio.to_thread
from starlette.requests import ClientDisconnect, Request

from ghaf.errors import InvalidInputError, RequestTooLargeError

BATCH = 1024 * 1024
"""Bytes gathered from the socket before the consumer thread is handed them."""


class BodyReader(io.RawIOBase):
    """``readinto`` over a request's body; call it only from an anyio worker thread
    (``run_in_threadpool``), which it blocks while the event loop receives.

    The chunks the server received are handed over as they are (a list per batch) and
    copied once, into the caller's buffer: no joining, no staging copy."""

    def __init__(self, request: Request) -> None:
        self._chunks: AsyncIterator[bytes] = request.stream()
        self._batch: deque[memoryview] = deque()
        self._done = False
        self.received = 0

    def readable(self) -> bool:
        return True

    async def _gather(self) -> list[bytes]:
        batch: list[bytes] = []
        size = 0
        try:
            async for chunk in self._chunks:
                if chunk:
                    batch.append(chunk)
                    size += len(chunk)
                if size >= BATCH:
                    return batch
        except ClientDisconnect as exc:
            raise InvalidInputError(
                "the upload ended before its body did", hint="send the file again"
            ) from exc
        self._done = True
        return batch

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._batch:
            if self._done:
                return 0
            self._batch.extend(memoryview(c) for c in anyio.from_thread.run(self._gather))
            if not self._batch:
                return 0
        count = 0
        while self._batch and count < len(buffer):
            head = self._batch[0]
            take = min(len(buffer) - count, len(head))
            buffer[count : count + take] = head[:take]
            count += take
            if take == len(head):
                self._batch.popleft()
            else:
                self._batch[0] = head[take:]
        self.received += count
        return count


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
