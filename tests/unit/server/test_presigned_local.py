"""A server whose artifacts are local files hands out no presigned URL: the grant routes
answer a clear 4xx naming the streamed route, and ``direct=True`` clients fall back to it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import ghaf
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def server(platform: Platform, tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    create_project(platform, platform.admin(), "fraud")
    token = mint(platform, "alice", ["data_scientist"], project="fraud", bind_on="fraud")
    process = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start()
    try:
        yield process, token
    finally:
        log = process.stop()
    assert "Traceback" not in log


def test_a_local_store_answers_the_clear_4xx_and_direct_falls_back(
    platform: Platform, server: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    process, token = server
    http = httpx.Client(
        base_url=process.url + "/api/v1", headers={"authorization": f"Bearer {token}"}
    )
    digest = hashlib.sha256(b"abc").hexdigest()
    with http:
        answer = http.post("/projects/fraud/upload-grants", json={"sha256": digest, "size": 3})
        offer = http.get("/artifact-access").json()
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"].endswith("/presigned-urls-unavailable")
    assert problem["title"] == (
        "presigned URLs need an S3 artifact store; this server keeps artifacts in local files"
    )
    assert "streamed route" in problem["hint"]
    assert offer == {"streamed": True, "presigned": False, "reason": problem["title"]}
    (tmp_path / "f.bin").write_bytes(b"abc")
    with ghaf.connect(process.url, token=token) as alice:
        assert alice.upload_file(tmp_path / "f.bin", "fraud", direct=True) == digest
    assert platform.artifacts.read_bytes(digest) == b"abc"
