"""Uploads whose SHA-256 follows their bytes (``X-Ghaf-SHA256: trailing``) through ``ghaf
server`` as a real process: the client hashes a file as it sends it, and the server stores
it only when the bytes before the trailer hash to it. A trailer that differs, is not a
digest, or never arrives (the body cut before or inside it) stores nothing.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

import ghaf
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
DIGEST = "x-ghaf-sha256"
BODY = bytes(range(256)) * (6 * 4096)  # 6 MiB: more than the server reads ahead


@dataclass
class Served:
    platform: Platform
    server: ServerProcess
    token: str

    def http(self) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.token}", DIGEST: "trailing"}
        return httpx.Client(base_url=self.server.url + "/api/v1", headers=headers, timeout=60)


@pytest.fixture
def served(platform: Platform, tmp_path: Path) -> Iterator[Served]:
    create_project(platform, platform.admin(), "fraud")
    token = mint(platform, "alice", ["data_scientist"], project="fraud", bind_on="fraud")
    server = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start()
    try:
        yield Served(platform, server, token)
    finally:
        log = server.stop()
    assert "Traceback" not in log


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _uploads(platform: Platform) -> list[tuple[str, str]]:
    with platform.read_session() as session:
        rows = session.execute(
            select(AuditRecordRow)
            .where(AuditRecordRow.action == "model.upload")
            .order_by(AuditRecordRow.seq)
        ).scalars()
        return [(r.resource, r.outcome) for r in rows]


def _nothing_left(platform: Platform) -> bool:
    """No artifact stored and no temporary file of one."""
    root: Path = platform.artifacts.blobs.root  # type: ignore[attr-defined]
    return list(platform.artifacts.digests()) == [] and not any((root / ".tmp").iterdir())


def test_a_file_whose_digest_follows_it_is_stored(served: Served, tmp_path: Path) -> None:
    digest = _sha256(BODY)

    def chunks() -> Iterator[bytes]:  # chunked transfer: no content-length to go by
        for start in range(0, len(BODY), 100_000):
            yield BODY[start : start + 100_000]
        yield digest.encode()

    with served.http() as http:
        whole = http.post("/projects/fraud/artifacts", content=BODY + digest.encode())
        assert whole.status_code == 201, whole.text
        assert whole.json() == {"digest": digest, "size": len(BODY)}
        again = http.post("/projects/fraud/artifacts", content=chunks())
        assert again.status_code == 201, again.text
        empty = http.post("/projects/fraud/artifacts", content=_sha256(b"").encode())
        assert empty.json() == {"digest": _sha256(b""), "size": 0}
    assert served.platform.artifacts.read_bytes(digest) == BODY
    # recorded under the digest that arrived, so the file counts as uploaded to fraud
    assert _uploads(served.platform)[:2] == [(f"artifact:{digest}", "allowed")] * 2

    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(3 * MiB))
    with ghaf.connect(served.server.url, token=served.token) as alice:
        with alice.start_run("trailing", project="fraud") as run:
            run.log_artifact(source)
        back = alice.download_run_artifacts(run.run_id, "weights.bin", tmp_path / "back")
    assert back.read_bytes() == source.read_bytes()


def test_a_trailing_digest_that_is_wrong_or_not_a_digest_stores_nothing(served: Served) -> None:
    claimed = _sha256(b"something else")
    with served.http() as http:
        wrong = http.post("/projects/fraud/artifacts", content=BODY + claimed.encode())
        assert wrong.status_code == 409, wrong.text
        assert claimed in wrong.json()["title"] and _sha256(BODY) in wrong.json()["title"]
        for body in (BODY + b"z" * 64, BODY + claimed.upper().encode(), b"short"):
            bad = http.post("/projects/fraud/artifacts", content=body)
            assert bad.status_code == 400, bad.text
            assert DIGEST in bad.json()["title"] and "64" in bad.json()["title"]
        neither = http.post(
            "/projects/fraud/artifacts", content=BODY, headers={DIGEST: "sha256-later"}
        )
        assert neither.status_code == 400 and DIGEST in neither.json()["title"]
    assert _nothing_left(served.platform)
    assert _uploads(served.platform) == [("artifact:trailing", "failed")] * 4


@pytest.mark.parametrize("sent", ["the file only", "half the digest"])
def test_a_trailing_upload_cut_before_its_digest_ends_stores_nothing(
    served: Served, sent: str
) -> None:
    digest = _sha256(BODY).encode()
    body = BODY if sent == "the file only" else BODY + digest[:32]
    address = urlsplit(served.server.url)
    head = (
        f"POST /api/v1/projects/fraud/artifacts HTTP/1.1\r\nhost: {address.netloc}\r\n"
        f"authorization: Bearer {served.token}\r\ncontent-type: application/octet-stream\r\n"
        f"content-length: {len(BODY) + 64}\r\n{DIGEST}: trailing\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(head + body)
    deadline = time.monotonic() + 60  # the server records the failed upload once it is over
    while not _uploads(served.platform) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _uploads(served.platform) == [("artifact:trailing", "failed")]
    assert _nothing_left(served.platform)


def test_a_download_left_half_read_leaves_the_server_serving(
    served: Served, tmp_path: Path
) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(8 * MiB))
    with ghaf.connect(served.server.url, token=served.token) as alice:
        with alice.start_run("halves", project="fraud") as run:
            run.log_artifact(source)
        for _ in range(3):  # each time the server is mid-file when the client leaves
            response = alice.send(
                "GET", f"/runs/{run.run_id}/artifact", params={"path": "weights.bin"}, stream=True
            )
            assert len(next(response.iter_raw(MiB))) == MiB
            response.close()
        back = alice.download_run_artifacts(run.run_id, "weights.bin", tmp_path / "back")
    assert back.read_bytes() == source.read_bytes()
