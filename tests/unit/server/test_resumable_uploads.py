"""Resumable uploads through ``ghaf server`` (a real process): a file sent in pieces
survives a cut piece and a server restart, resumes from the offset the server reports,
and is stored only whole and only if it hashes to its claim. A session is its opener's
alone; one nobody touches for a day is removed by ``ghaf gc``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

import ghaf
import ghaf.client.files
from ghaf.artifacts.leftovers import remove_leftovers
from ghaf.artifacts.upload_sessions import SESSION_TTL_S, uploads_root
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
OFFSET = "x-ghaf-offset"


@pytest.fixture
def tokens(platform: Platform) -> dict[str, str]:
    for project in ("fraud", "retail"):
        create_project(platform, platform.admin(), project)
    return {
        "alice": mint(platform, "alice", ["data_scientist"], project="fraud", bind_on="fraud"),
        "bob": mint(platform, "bob", ["data_scientist"], project="fraud", bind_on="fraud"),
        "rita": mint(platform, "rita", ["data_scientist"], project="retail", bind_on="retail"),
    }


def _start(platform: Platform, log: Path) -> ServerProcess:
    return ServerProcess(platform.settings.home, ("server",), "/health", log).start()


@pytest.fixture
def server(platform: Platform, tmp_path: Path) -> Iterator[ServerProcess]:
    process = _start(platform, tmp_path / "server.log")
    try:
        yield process
    finally:
        log = process.stop()
    assert "Traceback" not in log


def _http(server: ServerProcess, token: str) -> httpx.Client:
    headers = {"authorization": f"Bearer {token}"}
    return httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=60)


def _uploads_audited(platform: Platform) -> list[tuple[str, str]]:
    with platform.read_session() as session:
        rows = session.execute(
            select(AuditRecordRow.actor, AuditRecordRow.outcome).where(
                AuditRecordRow.action == "model.upload"
            )
        ).all()
    return [(a, o) for a, o in rows]


def test_the_client_sends_a_large_file_in_pieces_and_never_twice(
    platform: Platform,
    server: ServerProcess,
    tokens: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ghaf.client.files, "PIECE", MiB)
    data = os.urandom(5 * MiB + 123)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    with ghaf.connect(server.url, token=tokens["alice"], resumable_above=MiB) as alice:
        digest = alice.upload_file(source, "fraud")
        assert digest == hashlib.sha256(data).hexdigest()
        assert platform.artifacts.read_bytes(digest) == data
        assert alice.upload_file(source, "fraud") == digest  # held already: not sent again
    assert _uploads_audited(platform) == [("alice", "allowed")]
    assert not uploads_root(platform.settings.home).exists() or not list(
        uploads_root(platform.settings.home).iterdir()
    )


def test_a_cut_piece_and_a_server_restart_lose_nothing_already_received(
    platform: Platform, tokens: dict[str, str], tmp_path: Path
) -> None:
    data = os.urandom(3 * MiB)
    digest = hashlib.sha256(data).hexdigest()
    first = _start(platform, tmp_path / "first.log")
    try:
        with _http(first, tokens["alice"]) as alice:
            opened = alice.post(
                "/projects/fraud/uploads", json={"sha256": digest, "size": len(data)}
            )
            assert opened.status_code == 201, opened.text
            upload = f"/projects/fraud/uploads/{opened.json()['upload_id']}"
            piece = alice.put(upload, content=data[:MiB], headers={OFFSET: "0"})
            assert piece.json()["offset"] == MiB

            def cut() -> Iterator[bytes]:  # the connection dies half-way through a piece
                yield data[MiB : MiB + MiB // 2]
                raise ConnectionResetError("the network went away")

            with pytest.raises(ConnectionResetError):
                alice.put(upload, content=cut(), headers={OFFSET: str(MiB)})
    finally:
        first.stop()

    second = _start(platform, tmp_path / "second.log")  # a new server process, same home
    try:
        with _http(second, tokens["alice"]) as alice:
            state = alice.get(upload)
            assert state.json()["offset"] == MiB  # the cut piece was cut back, not kept half
            stale = alice.put(upload, content=data[:MiB], headers={OFFSET: "0"})
            assert stale.status_code == 409 and f"resume from offset {MiB}" in stale.text
            early = alice.post(upload + "/complete")
            assert early.status_code == 400 and f"{MiB} of its {len(data)} bytes" in early.text
            rest = alice.put(upload, content=data[MiB:], headers={OFFSET: str(MiB)})
            assert rest.json()["offset"] == len(data)
            done = alice.post(upload + "/complete")
            assert done.status_code == 201, done.text
            assert done.json() == {"digest": digest, "size": len(data)}
            assert alice.get(upload).status_code == 404  # the session is over
    finally:
        log = second.stop()
    assert "Traceback" not in log
    assert platform.artifacts.read_bytes(digest) == data


def test_a_session_is_its_opener_s_alone_and_bytes_must_match_the_claim(
    platform: Platform, server: ServerProcess, tokens: dict[str, str]
) -> None:
    data = os.urandom(MiB)
    claimed = hashlib.sha256(b"something else").hexdigest()
    with _http(server, tokens["alice"]) as alice:
        opened = alice.post("/projects/fraud/uploads", json={"sha256": claimed, "size": MiB})
        upload = f"/projects/fraud/uploads/{opened.json()['upload_id']}"
        over = alice.put(upload, content=data + b"x", headers={OFFSET: "0"})
        assert over.status_code == 413
        assert alice.get(upload).json()["offset"] == 0
        for who in ("bob", "rita"):  # a colleague and another project's person
            with _http(server, tokens[who]) as other:
                assert other.get(upload).status_code == 404
                put = other.put(upload, content=data, headers={OFFSET: "0"})
                assert put.status_code in (403, 404)
                assert other.post(upload + "/complete").status_code in (403, 404)
        with _http(server, tokens["rita"]) as rita:
            refused = rita.post("/projects/fraud/uploads", json={"sha256": claimed, "size": 1})
            assert refused.status_code == 403
        wrong_project = alice.get(upload.replace("fraud", "retail"))
        assert wrong_project.status_code == 404
        assert alice.put(upload, content=data, headers={OFFSET: "0"}).json()["offset"] == MiB
        mismatch = alice.post(upload + "/complete")
        assert mismatch.status_code == 409 and claimed in mismatch.text
        assert alice.get(upload).status_code == 404  # those bytes were not the file: gone
        huge = alice.post("/projects/fraud/uploads", json={"sha256": claimed, "size": 1 << 49})
        assert huge.status_code == 413 and "artifact limit" in huge.text
        for bad in ({"sha256": "xyz", "size": 1}, {"sha256": claimed, "size": 0}, {}):
            answer = alice.post("/projects/fraud/uploads", json=bad)
            assert answer.status_code == 400, answer.text
    assert not platform.artifacts.exists(hashlib.sha256(data).hexdigest())
    assert ("alice", "failed") in _uploads_audited(platform)


def test_gc_removes_sessions_nobody_touched_for_a_day(
    platform: Platform, server: ServerProcess, tokens: dict[str, str]
) -> None:
    with _http(server, tokens["alice"]) as alice:
        ids = []
        for size in (10, 20):
            opened = alice.post(
                "/projects/fraud/uploads",
                json={"sha256": "a" * 64 if size == 10 else "b" * 64, "size": size},
            )
            ids.append(opened.json()["upload_id"])
    root = uploads_root(platform.settings.home)
    old = time.time() - SESSION_TTL_S - 60
    for path in (root / ids[0]).iterdir():
        os.utime(path, (old, old))
    removed = remove_leftovers(platform.settings)
    assert [(item.kind, item.path.name) for item in removed] == [("stale-upload", ids[0])]
    assert sorted(p.name for p in root.iterdir()) == [ids[1]]
