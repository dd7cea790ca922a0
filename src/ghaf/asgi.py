"""What both Ghaf HTTP servers need from raw ASGI: a request body read within a limit."""

from __future__ import annotations

from starlette.types import Receive, Scope

from ghaf.errors import RequestTooLargeError


async def read_body(scope: Scope, receive: Receive, limit: int, *, fix: str) -> bytes:
    """The request body, refused past ``limit`` bytes before more of it is read.

    A declared ``content-length`` over the limit is refused before any byte; a chunked
    body is refused as soon as it crosses it. ``fix`` is the hint the refusal carries.

    Raises:
        RequestTooLargeError: the body is larger than ``limit`` (HTTP 413).
    """
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise RequestTooLargeError(
                f"request body of {int(value)} bytes exceeds the limit of {limit} bytes", hint=fix
            )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(f"request body exceeds the limit of {limit} bytes", hint=fix)
        chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
