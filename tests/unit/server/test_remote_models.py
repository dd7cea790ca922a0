"""Models through ``ghaf server`` as a real process: a client registers a saved model by
uploading its files, a second person approves it, anyone allowed downloads the same bytes.

The server holds the keys: what a user relies on is that every byte is checked against
its SHA-256 on the way in and out, that a refused upload stores nothing, that paths never
leave the model directory, that another project's models read as missing, and that a
multi-GiB file streams (the server's memory does not grow with the file).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

import ghaf
from ghaf.client import Client
from ghaf.errors import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    RequestTooLargeError,
)
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.registry import get_model_version
from ghaf.registry.files import verify_dir
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
DIGEST = "x-ghaf-sha256"


@dataclass
class Served:
    platform: Platform
    server: ServerProcess
    tokens: dict[str, str]

    def client(self, who: str) -> Client:
        return ghaf.connect(self.server.url, token=self.tokens[who])

    def http(self, who: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=self.server.url + "/api/v1", headers=headers, timeout=60)


@pytest.fixture
def served(platform: Platform, tmp_path: Path) -> Iterator[Served]:
    for project in ("fraud", "retail"):
        create_project(platform, platform.admin(), project)
    tokens = {
        "alice": mint(platform, "alice", ["data_scientist"], project="fraud", bind_on="fraud"),
        "ben": mint(platform, "ben", ["model_approver"], project="fraud", bind_on="fraud"),
        "vera": mint(platform, "vera", ["viewer"], project="fraud", bind_on="fraud"),
        "rita": mint(platform, "rita", ["data_scientist"], project="retail", bind_on="retail"),
    }
    # A 1 MiB limit on every other body: model files travel through the artifact routes.
    server = ServerProcess(
        platform.settings.home,
        ("server", "--max-body-mb", "1"),
        "/health",
        tmp_path / "server.log",
    ).start()
    try:
        yield Served(platform, server, tokens)
    finally:
        log = server.stop()
    assert "Traceback" not in log


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(7).normal(size=(60, 3))
    directory = tmp_path / "model"
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), directory)
    return directory


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _uploads(platform: Platform) -> list[tuple[str, str, str, str]]:
    with platform.read_session() as session:
        rows = session.execute(
            select(AuditRecordRow).where(AuditRecordRow.action == "model.upload")
        ).scalars()
        return [(r.actor, r.resource, r.project, r.outcome) for r in rows]


def _peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def test_a_model_registered_remotely_is_approved_and_downloads_byte_for_byte(
    served: Served, model_dir: Path, tmp_path: Path
) -> None:
    originals = {
        p.relative_to(model_dir).as_posix(): p.read_bytes()
        for p in model_dir.rglob("*")
        if p.is_file()
    }
    with served.client("alice") as alice:
        registered = alice.register_model("churn", model_dir, project="fraud", description="remote")
    assert (registered["name"], registered["version"], registered["project"]) == (
        "churn",
        1,
        "fraud",
    )
    assert registered["created_by"] == "alice" and registered["signed"] is True
    stored = get_model_version(served.platform, "churn:1")
    assert stored.description == "remote"
    # where it came from, in words its readers can use: never the server's scratch copy
    assert stored.source == registered["source"] == "upload"
    assert {p: e["digest"] for p, e in stored.files.items() if p in originals} == {
        p: _sha256(b) for p, b in originals.items()
    }
    assert sorted(_uploads(served.platform)) == sorted(
        ("alice", f"artifact:{_sha256(b)}", "fraud", "allowed") for b in originals.values()
    )

    with served.http("ben") as ben:
        approved = ben.post("/models/churn:1/approvals", json={"comment": "reviewed"})
    assert approved.status_code == 201, approved.text
    assert approved.json()["approvals"] == ["ben"]

    with served.client("vera") as vera:
        listed = vera.get("/models/churn:1/files")
        downloaded = vera.download_model("churn:1", tmp_path / "downloaded")
    assert {f["path"] for f in listed["files"]} == set(stored.files)
    got = {
        p.relative_to(downloaded).as_posix(): p.read_bytes()
        for p in downloaded.rglob("*")
        if p.is_file()
    }
    assert set(got) == set(stored.files)  # the model's files and its seal, nothing else
    assert {p: got[p] for p in originals} == originals
    # What came down verifies against the home's signature, as embedded mode loads it.
    assert set(verify_dir(served.platform, downloaded).files) >= set(originals)


def test_a_tampered_upload_is_refused_and_nothing_is_stored(served: Served) -> None:
    body = os.urandom(3 * MiB)
    honest, claimed = _sha256(body), _sha256(b"something else")
    with served.http("alice") as alice:
        tampered = alice.post(
            "/projects/fraud/artifacts",
            content=body,
            headers={DIGEST: claimed, "content-type": "application/octet-stream"},
        )
        assert tampered.status_code == 409, tampered.text
        assert claimed in tampered.json()["title"] and honest in tampered.json()["title"]

        def chunks() -> Iterator[bytes]:  # chunked transfer, no content-length
            for start in range(0, len(body), 100_000):
                yield body[start : start + 100_000]

        streamed = alice.post(
            "/projects/fraud/artifacts",
            content=chunks(),
            headers={DIGEST: claimed, "content-type": "application/octet-stream"},
        )
        assert streamed.status_code == 409, streamed.text
        missing_header = alice.post("/projects/fraud/artifacts", content=body)
        assert missing_header.status_code == 400 and DIGEST in missing_header.json()["title"]
    with served.http("rita") as rita:  # no role in fraud: refused before a byte is kept
        other = rita.post("/projects/fraud/artifacts", content=body, headers={DIGEST: honest})
        assert other.status_code == 403, other.text
    artifacts = served.platform.artifacts
    assert not artifacts.exists(honest) and not artifacts.exists(claimed)
    assert _uploads(served.platform) == [
        ("alice", f"artifact:{claimed}", "fraud", "failed"),
        ("alice", f"artifact:{claimed}", "fraud", "failed"),
        ("rita", f"artifact:{honest}", "fraud", "denied"),
    ]
    scratch = served.platform.settings.home / "tmp"  # nothing staged is left behind
    assert not scratch.exists() or list(scratch.iterdir()) == []

    with served.http("alice") as alice:  # the same bytes, honestly described: stored
        chunked = alice.post(
            "/projects/fraud/artifacts", content=chunks(), headers={DIGEST: honest}
        )
    assert chunked.status_code == 201, chunked.text
    assert chunked.json() == {"digest": honest, "size": len(body)}
    assert artifacts.read_bytes(honest) == body


def test_registration_refuses_paths_outside_the_directory_and_others_uploads(
    served: Served, model_dir: Path
) -> None:
    with served.client("alice") as alice:
        digest = alice.upload_file(model_dir / "ghaf-model.json", "fraud")
    with served.client("rita") as rita:
        theirs = rita.upload_file(model_dir / "model.skops", "retail")
    with served.http("alice") as http:
        for path in ("../escape.json", "/etc/ghaf-model.json", "a/../../b", "a//b"):
            refused = http.post(
                "/models", json={"name": "churn", "project": "fraud", "files": {path: digest}}
            )
            assert refused.status_code == 400, refused.text
            assert repr(path) in refused.json()["title"]
        borrowed = http.post(
            "/models",
            json={
                "name": "churn",
                "project": "fraud",
                "files": {"ghaf-model.json": digest, "model.skops": theirs},
            },
        )
        assert borrowed.status_code == 404, borrowed.text
        assert "'model.skops'" in borrowed.json()["title"]
        assert "not uploaded to project 'fraud'" in borrowed.json()["title"]
        assert http.get("/models").json()["models"] == []
    (model_dir / "link.json").symlink_to(model_dir / "ghaf-model.json")
    before = _uploads(served.platform)
    with served.client("alice") as alice, pytest.raises(InvalidInputError, match=r"link\.json"):
        alice.register_model("churn", model_dir, project="fraud")
    assert _uploads(served.platform) == before  # refused before a byte was sent


def test_another_project_s_model_reads_as_missing(
    served: Served, model_dir: Path, tmp_path: Path
) -> None:
    with served.client("alice") as alice:
        alice.register_model("churn", model_dir, project="fraud")
    with served.http("rita") as rita:
        assert rita.get("/models/churn:1/files").status_code == 404
        one = rita.get("/models/churn:1/file", params={"path": "ghaf-model.json"})
        # The registry's words for a model it does not hold, the same as for "nope:1".
        assert (one.status_code, one.json()["title"]) == (404, "model 'churn' is not registered")
        nope = rita.get("/models/nope:1/file", params={"path": "ghaf-model.json"})
        assert nope.json()["title"] == "model 'nope' is not registered"
    with served.client("rita") as rita_client:
        with pytest.raises(NotFoundError):
            rita_client.download_model("churn:1", tmp_path / "stolen")
        with pytest.raises(AlreadyExistsError, match="is taken in this home"):
            rita_client.register_model("churn", model_dir, project="retail")
    assert not (tmp_path / "stolen").exists() or not any((tmp_path / "stolen").iterdir())
    assert [v.project for v in [get_model_version(served.platform, "churn")]] == ["fraud"]
    with served.http("vera") as vera:
        absent = vera.get("/models/churn:1/file", params={"path": "../../etc/passwd"})
        assert absent.status_code == 404


def test_a_64_mib_upload_passes_a_1_mib_body_limit_in_flat_memory(
    served: Served, tmp_path: Path
) -> None:
    big = tmp_path / "weights.bin"
    with big.open("wb") as out:
        for _ in range(64):
            out.write(os.urandom(MiB))
    assert served.server.process is not None
    pid = served.server.process.pid
    with served.client("alice") as alice:
        alice.whoami()  # the server has served a request: its steady state
        before = _peak_rss(pid)
        digest = alice.upload_file(big, "fraud")
        after = _peak_rss(pid)
        with pytest.raises(RequestTooLargeError):
            alice.post("/experiments", {"name": "x" * 10, "project": "fraud", "pad": "x" * MiB})
    hasher = hashlib.sha256()
    with big.open("rb") as handle:
        hasher.update(handle.read())
    assert digest == hasher.hexdigest()
    assert served.platform.artifacts.exists(digest)
    growth = after - before
    assert growth < 32 * MiB, f"the server grew by {growth / MiB:.0f} MiB for a 64 MiB upload"


def test_the_artifact_route_has_its_own_body_limit(platform: Platform, tmp_path: Path) -> None:
    """``ghaf server --max-body-mb 1 --max-artifact-gb 0.002``: an upload may be larger
    than any other body, up to its own limit (2,147,483 bytes)."""
    create_project(platform, platform.admin(), "fraud")
    token = mint(platform, "alice", ["data_scientist"], project="fraud", bind_on="fraud")
    server = ServerProcess(
        platform.settings.home,
        ("server", "--max-body-mb", "1", "--max-artifact-gb", "0.002"),
        "/health",
        tmp_path / "server.log",
    ).start()
    limit = int(0.002 * 1024**3)
    headers = {"authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=60) as http:
            big, within = b"x" * (3 * MiB), b"y" * (MiB + MiB // 2)
            over = http.post(
                "/projects/fraud/artifacts", content=big, headers={DIGEST: _sha256(big)}
            )
            assert over.status_code == 413 and str(limit) in over.json()["title"]
            fits = http.post(
                "/projects/fraud/artifacts", content=within, headers={DIGEST: _sha256(within)}
            )
            assert fits.status_code == 201, fits.text
            whole = b"z" * limit  # a file of exactly the limit, its digest sent after it
            trailing = http.post(
                "/projects/fraud/artifacts",
                content=whole + _sha256(whole).encode(),
                headers={DIGEST: "trailing"},
            )
            assert trailing.status_code == 201, trailing.text
            other = http.post("/experiments", content=b"{" * (MiB + MiB // 2))
            assert other.status_code == 413 and str(MiB) in other.json()["title"]
    finally:
        server.stop()
    assert not platform.artifacts.exists(_sha256(big))
    assert platform.artifacts.exists(_sha256(within))
    assert platform.artifacts.exists(_sha256(b"z" * limit))
