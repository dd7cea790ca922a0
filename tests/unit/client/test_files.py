"""The client's side of file transfers, over httpx's MockTransport (a real transport that
answers in-process): an upload sends the file's bytes and then their SHA-256, and only
for a file that stayed as it was while read; a download is hashed and written batch by
batch and appears under its name only once it matches its digest."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ghaf.client import Client
from ghaf.client.files import CHUNK, _HashedBody, _save, upload_file
from ghaf.errors import IntegrityError, InvalidInputError

MiB = 1024 * 1024


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "sizes",
    [
        [],
        [0, 0],
        [1],
        [CHUNK],
        [CHUNK - 1, 1, CHUNK + 1, 0, 3 * CHUNK + 7],  # pieces straddle batch boundaries
        [65536] * 100,  # what httpx hands over: 64 KiB at a time
    ],
)
def test_what_is_saved_is_every_piece_in_order(sizes: list[int]) -> None:
    data = os.urandom(sum(sizes))
    pieces, at = [], 0
    for size in sizes:
        pieces.append(data[at : at + size])
        at += size
    out, hasher = io.BytesIO(), hashlib.sha256()
    _save(iter(pieces), out, hasher)
    assert out.getvalue() == data and hasher.hexdigest() == _sha256(data)


def test_a_write_that_fails_stops_the_save() -> None:
    class Full(io.BytesIO):
        def write(self, data: object) -> int:
            if self.tell() >= 2 * CHUNK:
                raise OSError(28, "No space left on device")
            return super().write(data)  # type: ignore[arg-type]

    def pieces() -> Iterator[bytes]:
        for _ in range(10 * CHUNK // 65536):
            yield b"x" * 65536

    with pytest.raises(OSError, match="No space left"):
        _save(pieces(), Full(), hashlib.sha256())


def _client(handler: httpx.MockTransport) -> Client:
    return Client("http://ghaf.test", "token", transport=handler)


def test_an_upload_sends_the_bytes_then_their_digest(tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(3 * MiB + 5))
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = request.read()
        return httpx.Response(201, json={"digest": body[-64:].decode(), "size": len(body) - 64})

    with _client(httpx.MockTransport(answer)) as client:
        digest = upload_file(client, source, "fraud")
    assert digest == _sha256(source.read_bytes())
    [request] = seen
    assert request.headers["x-ghaf-sha256"] == "trailing"
    assert int(request.headers["content-length"]) == source.stat().st_size + 64
    assert request.read() == source.read_bytes() + digest.encode()


def test_a_file_that_changes_while_it_is_sent_is_not_given_a_digest(tmp_path: Path) -> None:
    """The client sends the digest only for bytes that were the file's all along; a body
    that stops short is one the server stores nothing of."""
    path = tmp_path / "growing.bin"
    path.write_bytes(b"x" * (3 * MiB))
    body = iter(_HashedBody(path, 3 * MiB))
    assert len(next(body)) == CHUNK
    with path.open("ab") as out:
        out.write(b"appended meanwhile")
    with pytest.raises(InvalidInputError, match="changed while it was being uploaded"):
        list(body)

    path.write_bytes(b"y" * (3 * MiB))
    shrinking = iter(_HashedBody(path, 3 * MiB))
    next(shrinking)
    path.write_bytes(b"y")
    with pytest.raises(InvalidInputError, match="changed while it was being uploaded"):
        list(shrinking)

    path.write_bytes(b"z" * 10)
    assert b"".join(_HashedBody(path, 10)) == b"z" * 10 + _sha256(b"z" * 10).encode()


@pytest.mark.parametrize("lie", ["in the listing", "in the header"])
def test_a_download_that_does_not_match_its_digest_leaves_nothing(tmp_path: Path, lie: str) -> None:
    data = os.urandom(2 * MiB + 3)
    listed = _sha256(b"what the registry holds") if lie == "in the listing" else _sha256(data)
    sent = _sha256(data) if lie == "in the listing" else _sha256(b"another file")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/artifacts"):
            return httpx.Response(
                200, json={"files": [{"path": "w.bin", "digest": listed, "size": len(data)}]}
            )
        return httpx.Response(200, content=data, headers={"x-ghaf-sha256": sent})

    dest = tmp_path / "out"
    with (
        _client(httpx.MockTransport(answer)) as client,
        pytest.raises(IntegrityError, match="nothing was written"),
    ):
        client.download_run_artifacts("r" * 32, "w.bin", dest)
    assert list(dest.iterdir()) == []

    sent = listed = _sha256(data)
    with _client(httpx.MockTransport(answer)) as client:
        got = client.download_run_artifacts("r" * 32, "w.bin", dest)
    assert got.read_bytes() == data and list(dest.iterdir()) == [got]
