"""Presigned URLs for one artifact when artifacts are on S3 (issue 18, item 2): a real
``ghaf server`` process over moto's S3 server on 127.0.0.1.

The client moves ciphertext straight to and from the bucket: a download grant carries
one artifact's data key and the client decrypts and checks the SHA-256 itself; an upload
is verified by the server (decrypted and hashed) before it counts, so a body that does
not decrypt to the announced digest is never stored or registered. A server whose
artifacts are local files answers the clear 4xx naming the streamed route.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlalchemy import select

import ghaf
import ghaf.artifacts.presign
from ghaf.artifacts.leftovers import remove_leftovers
from ghaf.artifacts.presign import STAGING_PREFIX, presigning, stale_staged
from ghaf.client import Client
from ghaf.client.files import log_artifacts
from ghaf.errors import IntegrityError, NotFoundError
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.chunked import encrypt_stream
from ghaf.security.encrypted_store import EncryptedArtifactStore
from ghaf.settings import load_settings
from ghaf.testing.people import mint
from ghaf.tracking.service import artifact_files
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow

REGION = "ae-auh-1"
KiB = 1024


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """A fresh bucket in the configured region; the environment points Ghaf at it."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    name = f"ghaf-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    monkeypatch.setenv("GHAF_ARTIFACT_URL", f"s3://{name}/ghaf")
    monkeypatch.setenv("GHAF_ARTIFACT_REGION", REGION)
    monkeypatch.setenv("GHAF_S3_ENDPOINT_URL", s3_endpoint)
    return s3, name


@pytest.fixture
def platform(bucket: tuple[Any, str], isolated_env: Path) -> Iterator[Platform]:
    with init_home(load_settings(home=isolated_env)) as opened:
        yield opened


@pytest.fixture
def team(platform: Platform, tmp_path: Path) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    for project in ("fraud", "retail"):
        create_project(platform, platform.admin(), project)
    tokens = {
        "alice": mint(platform, "alice", ["data_scientist"], project="fraud", bind_on="fraud"),
        "rita": mint(platform, "rita", ["data_scientist"], project="retail", bind_on="retail"),
    }
    server = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start()
    try:
        yield server, tokens
    finally:
        log = server.stop()
    assert "Traceback" not in log


def _client(team: tuple[ServerProcess, dict[str, str]], who: str) -> Client:
    server, tokens = team
    return ghaf.connect(server.url, token=tokens[who])


def _objects(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed
    }


def _uploads(platform: Platform, digest: str) -> list[tuple[str, str, str | None]]:
    with platform.read_session() as session:
        rows = session.execute(
            select(AuditRecordRow.actor, AuditRecordRow.outcome, AuditRecordRow.project).where(
                AuditRecordRow.action == "model.upload",
                AuditRecordRow.resource == f"artifact:{digest}",
            )
        ).all()
    return [(a, o, p) for a, o, p in rows]


def test_a_file_goes_to_the_bucket_and_back_encrypted_through_grants(
    platform: Platform,
    team: tuple[ServerProcess, dict[str, str]],
    bucket: tuple[Any, str],
    tmp_path: Path,
) -> None:
    s3, name = bucket
    marker = b"PLAINTEXT-MARKER-" * 64
    data = marker + os.urandom(300 * KiB) + marker
    digest = hashlib.sha256(data).hexdigest()
    (tmp_path / "weights.bin").write_bytes(data)
    with _client(team, "alice") as alice:
        assert alice.get("/artifact-access") == {
            "streamed": True,
            "presigned": True,
            "expires_s": 300,
        }
        with alice.start_run("churn", project="fraud") as run:
            logged = log_artifacts(
                alice,
                run.run_id,
                "fraud",
                {"model/weights.bin": tmp_path / "weights.bin"},
                direct=True,
            )
        assert logged == ["model/weights.bin"]
        # the bytes reached the bucket as ciphertext only, and nothing is left staged
        objects = _objects(s3, name)
        bodies = {k: v for k, v in objects.items() if k.startswith(f"ghaf/enc/{digest[:2]}/")}
        assert len(bodies) == 1
        assert all(marker[:17] not in body for body in objects.values())
        assert not [k for k in objects if k.startswith("ghaf/" + STAGING_PREFIX)]
        assert platform.artifacts.read_bytes(digest) == data  # the server reads it back
        assert _uploads(platform, digest) == [("alice", "allowed", "fraud")]
        assert [(p, d) for p, d, _ in artifact_files(platform, run.run_id)] == [
            ("model/weights.bin", digest)
        ]
        # download through a grant: decrypted here, byte for byte
        fetched = alice.download_run_artifacts(
            run.run_id, "model/weights.bin", tmp_path / "back", direct=True
        )
        assert fetched.read_bytes() == data
        grant = alice.get(f"/runs/{run.run_id}/artifact-grant", path="model/weights.bin")
    # the CLI's --direct takes the same path
    server, tokens = team
    done = subprocess.run(
        [
            *(sys.executable, "-m", "ghaf", "runs", "download", run.run_id, "model/weights.bin"),
            *("--dest", str(tmp_path / "cli"), "--direct", "--output", "json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GHAF_URL": server.url, "GHAF_TOKEN": tokens["alice"]},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["local"] == str(tmp_path / "cli" / "weights.bin")
    assert (tmp_path / "cli" / "weights.bin").read_bytes() == data
    # the grant is one object's URL on the configured endpoint, for the configured time,
    # with that artifact's own key (the one its header wraps), nothing else
    url = urlparse(grant["url"])
    assert f"{url.scheme}://{url.netloc}" == platform.settings.s3_endpoint_url
    assert url.path == f"/{name}/ghaf/enc/{digest[:2]}/{digest}/{grant['body_id']}"
    query = parse_qs(url.query)
    # SigV4, which every region opened since 2014 requires (SigV2 would be refused there)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["300"]
    store = platform.artifacts
    assert isinstance(store, EncryptedArtifactStore)
    assert base64.b64decode(grant["data_key"]) == store.unlock(digest)[1]
    assert (grant["digest"], grant["size"]) == (digest, len(data))
    with platform.read_session() as session:
        reads = session.execute(
            select(AuditRecordRow.actor, AuditRecordRow.outcome).where(
                AuditRecordRow.action == "run.read",
                AuditRecordRow.resource == f"run:{run.run_id}",
                AuditRecordRow.outcome == "allowed",
            )
        ).all()
    assert [tuple(r) for r in reads] == [("alice", "allowed")] * 3  # SDK, GET, CLI


def test_another_project_gets_the_404_the_streamed_route_gives(
    platform: Platform, team: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    (tmp_path / "a.bin").write_bytes(os.urandom(10 * KiB))
    with _client(team, "alice") as alice, _client(team, "rita") as rita:
        with alice.start_run("churn", project="fraud") as run:
            log_artifacts(alice, run.run_id, "fraud", {"a.bin": tmp_path / "a.bin"}, direct=True)
        streamed = rita.send  # the same refusal, word for word, on both routes
        answers = []
        for route in ("artifact", "artifact-grant"):
            with pytest.raises(NotFoundError) as caught:
                streamed("GET", f"/runs/{run.run_id}/{route}", params={"path": "a.bin"})
            answers.append(caught.value.headline)
        assert answers[0] == answers[1] == f"run {run.run_id} does not exist"
        with pytest.raises(NotFoundError):
            rita.download_run_artifacts(run.run_id, "a.bin", tmp_path / "x", direct=True)
        # nor can she commit alice's grant into her own project
        digest = hashlib.sha256(b"abc").hexdigest()
        grant = alice.post("/projects/fraud/upload-grants", {"sha256": digest, "size": 3})
        with pytest.raises(NotFoundError):
            rita.post("/projects/retail/upload-grants/commit", {"grant": grant["grant"]})


def _put_encrypted(grant: dict[str, Any], plaintext: bytes) -> None:
    pieces: list[bytes] = []
    source = iter([plaintext, b""])

    def readinto(view: memoryview) -> int:
        chunk = next(source, b"")
        view[: len(chunk)] = chunk
        return len(chunk)

    encrypt_stream(
        base64.b64decode(grant["data_key"]),
        grant["context"].encode(),
        readinto,
        lambda view: pieces.append(bytes(view)),
    )
    body = b"".join(pieces)
    answer = httpx.put(grant["url"], content=body)
    assert answer.status_code == 200, answer.text


def test_a_body_that_is_not_the_announced_file_is_refused_and_nothing_counts(
    platform: Platform,
    team: tuple[ServerProcess, dict[str, str]],
    bucket: tuple[Any, str],
) -> None:
    s3, name = bucket
    claimed = b"the real model" * 100
    digest = hashlib.sha256(claimed).hexdigest()
    with _client(team, "alice") as alice:
        # 1. another file of the same size, properly encrypted under the grant's key
        grant = alice.post(
            "/projects/fraud/upload-grants", {"sha256": digest, "size": len(claimed)}
        )
        _put_encrypted(grant, b"a poisoned one" * 100)
        with pytest.raises(IntegrityError) as caught:
            alice.post("/projects/fraud/upload-grants/commit", {"grant": grant["grant"]})
        assert f"not the announced {digest}" in caught.value.headline
        # 2. bytes that are not ciphertext at all (of the right length)
        grant = alice.post(
            "/projects/fraud/upload-grants", {"sha256": digest, "size": len(claimed)}
        )
        httpx.put(grant["url"], content=os.urandom(grant["encrypted_size"])).raise_for_status()
        with pytest.raises(IntegrityError, match="does not decrypt"):
            alice.post("/projects/fraud/upload-grants/commit", {"grant": grant["grant"]})
        # 3. an altered grant (another digest spliced in) is not one the server sealed
        sealed = base64.urlsafe_b64decode(grant["grant"]).replace(digest.encode(), b"0" * 64)
        with pytest.raises(Exception, match="field 'grant' is not an upload grant"):
            alice.post(
                "/projects/fraud/upload-grants/commit",
                {"grant": base64.urlsafe_b64encode(sealed).decode()},
            )
        assert not platform.artifacts.exists(digest)
        assert {o for _, o, _ in _uploads(platform, digest)} == {"failed"}
        run = alice.start_run("churn", project="fraud")
        with pytest.raises(NotFoundError, match="was not uploaded to project"):
            alice.post(f"/runs/{run.run_id}/artifacts", {"files": {"m.bin": digest}})
        run.end()
        # no body, staged or verified, is left in the bucket
        assert [k for k in _objects(s3, name) if k.startswith("ghaf/enc/")] == []
        # the real file, sent through a grant, is taken
        grant = alice.post(
            "/projects/fraud/upload-grants", {"sha256": digest, "size": len(claimed)}
        )
        _put_encrypted(grant, claimed)
        assert alice.post("/projects/fraud/upload-grants/commit", {"grant": grant["grant"]}) == {
            "digest": digest,
            "size": len(claimed),
        }
        assert platform.artifacts.read_bytes(digest) == claimed
        # and a project that holds it already is told so, with no grant
        again = alice.post(
            "/projects/fraud/upload-grants", {"sha256": digest, "size": len(claimed)}
        )
        assert again == {"stored": True, "digest": digest, "project": "fraud"}


def test_an_abandoned_upload_is_removed_by_gc_once_stale(
    platform: Platform,
    team: tuple[ServerProcess, dict[str, str]],
    bucket: tuple[Any, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest = hashlib.sha256(b"never committed").hexdigest()
    with _client(team, "alice") as alice:
        grant = alice.post("/projects/fraud/upload-grants", {"sha256": digest, "size": 15})
        _put_encrypted(grant, b"never committed")
    store = platform.artifacts
    assert isinstance(store, EncryptedArtifactStore)
    blobs = presigning(store.blobs)
    assert blobs is not None
    assert list(stale_staged(blobs)) == []  # fresh: kept for its commit
    found = list(stale_staged(blobs, now=grant["expires_at"] + 2 * 24 * 3600))
    staged = STAGING_PREFIX + _grant_id(grant["grant"])
    assert [key for key, _, _ in found] == [staged]
    s3, name = bucket
    assert remove_leftovers(platform.settings) == []  # not stale yet: kept
    assert f"ghaf/{staged}" in _objects(s3, name)
    monkeypatch.setattr(ghaf.artifacts.presign, "STAGED_TTL_S", 0.0)
    removed = remove_leftovers(platform.settings)
    assert [(r.kind, r.path.as_posix()) for r in removed] == [("staged-upload", staged)]
    assert f"ghaf/{staged}" not in _objects(s3, name)


def _grant_id(sealed: str) -> str:
    import orjson

    return str(orjson.loads(base64.urlsafe_b64decode(sealed))["terms"]["grant_id"])


def test_a_model_is_registered_and_downloaded_through_grants(
    platform: Platform,
    team: tuple[ServerProcess, dict[str, str]],
    bucket: tuple[Any, str],
    tmp_path: Path,
) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from ghaf.models import save_model

    x = np.random.default_rng(7).normal(size=(60, 3))
    model_dir = tmp_path / "model"
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), model_dir)
    originals = {
        p.relative_to(model_dir).as_posix(): p.read_bytes()
        for p in model_dir.rglob("*")
        if p.is_file()
    }
    with _client(team, "alice") as alice, _client(team, "rita") as rita:
        registered = alice.register_model("churn", model_dir, project="fraud", direct=True)
        assert (registered["name"], registered["version"], registered["signed"]) == (
            "churn",
            1,
            True,
        )
        for digest in {hashlib.sha256(b).hexdigest() for b in originals.values()}:
            assert _uploads(platform, digest) == [("alice", "allowed", "fraud")]
        back = alice.download_model("churn:1", tmp_path / "back", direct=True)
        got = {
            p.relative_to(back).as_posix(): p.read_bytes() for p in back.rglob("*") if p.is_file()
        }
        assert {k: v for k, v in got.items() if k in originals} == originals
        # another project's person gets the streamed route's 404, word for word
        path = sorted(originals)[0]
        answers = []
        for route in ("file", "file-grant"):
            with pytest.raises(NotFoundError) as caught:
                rita.send("GET", f"/models/churn:1/{route}", params={"path": path})
            answers.append(caught.value.headline)
        assert answers[0] == answers[1]
        assert answers[0].endswith("is not registered")
