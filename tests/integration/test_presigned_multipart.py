"""Presigned uploads in parts (S3 multipart, issue 18 item 2): a real ``ghaf server``
over moto's S3 server, with 5 MiB parts so a 12 MiB file goes in three.

Each part is PUT through a URL signed for that upload and part number alone; the server
completes the upload only when every part is there, each of the size its grant gives,
then verifies the object as it verifies one PUT: a part altered, or a file that is not
the announced one, stores nothing. A part missing leaves the upload open to send it
(resumed, not restarted); an upload given up, or left, is aborted.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlparse, urlunparse

import httpx
import pytest

import ghaf
import ghaf.artifacts.presign
from ghaf.artifacts.leftovers import remove_leftovers
from ghaf.artifacts.presign import STAGING_PREFIX, presigning, stale_staged
from ghaf.client import Client
from ghaf.client.direct import download_granted, upload_granted
from ghaf.client.files import log_artifacts
from ghaf.errors import BackendUnavailableError, IntegrityError, InvalidInputError, NotFoundError
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.chunked import ChunkEncryptor
from ghaf.security.encrypted_store import EncryptedArtifactStore
from ghaf.security.grants import ciphertext_size
from ghaf.settings import load_settings
from ghaf.testing.people import mint
from tests.integration.test_presigned_artifacts import _client, _objects, _uploads, bucket, team
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow

MiB = 1024**2
__all__ = ["bucket", "team"]  # the fixtures, shared with the single-PUT tests (team
# starts its server on this module's platform, which sets the part size)


@pytest.fixture
def platform(
    bucket: tuple[Any, str], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Platform]:
    monkeypatch.setenv("GHAF_SERVER__PRESIGNED_PART_MIB", "5")  # the server's too
    with init_home(load_settings(home=isolated_env)) as opened:
        yield opened


def _pending(s3: Any, name: str) -> list[str]:
    """Keys of the multipart uploads in progress in the bucket."""
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", [])]


def _grant(alice: Client, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    grant: dict[str, Any] = alice.post(
        "/projects/fraud/upload-grants", {"sha256": digest, "size": len(data), "parts": True}
    )
    return grant


def _part(grant: dict[str, Any], entry: dict[str, Any], data: bytes, salt: bytes) -> bytes:
    """Part ``entry`` of ``data``, encrypted as the grant says (the salt the same for all)."""
    encryptor = ChunkEncryptor(
        base64.b64decode(grant["data_key"]), grant["context"].encode(), salt=salt
    )
    plain = data[entry["offset"] : entry["offset"] + entry["length"]]
    body = encryptor.encrypt(
        entry["first_chunk"], plain, final=entry["part"] == grant["part_count"]
    )
    return (encryptor.header if entry["part"] == 1 else b"") + bytes(body)


def _put(entry: dict[str, Any], body: bytes) -> None:
    httpx.put(entry["url"], content=body, timeout=60).raise_for_status()


def _signature(url: str) -> str:
    """The SigV4 signature S3 computes for a presigned ``url`` as it arrives (moto checks
    no presigned signature, so the test does the store's part of it)."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    parsed = urlparse(url)
    query = [(k, v) for k, v in parse_qsl(parsed.query) if k != "X-Amz-Signature"]
    params = dict(query)
    region = params["X-Amz-Credential"].split("/")[2]
    auth = S3SigV4QueryAuth(Credentials("testing", "testing"), "s3", region, expires=300)
    request = AWSRequest(method="PUT", url=urlunparse(parsed._replace(query=urlencode(query))))
    request.context["timestamp"] = params["X-Amz-Date"]
    return str(
        auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    )


def test_a_file_in_parts_goes_to_the_bucket_and_back_byte_identical(
    platform: Platform,
    team: tuple[ServerProcess, dict[str, str]],
    bucket: tuple[Any, str],
    tmp_path: Path,
) -> None:
    s3, name = bucket
    marker = b"PLAINTEXT-MARKER-" * 64
    data = marker + os.urandom(12 * MiB) + marker
    digest = hashlib.sha256(data).hexdigest()
    (tmp_path / "weights.bin").write_bytes(data)
    with _client(team, "alice") as alice:
        # a client that sends no parts (an older one) gets one PUT, as before
        single = alice.post("/projects/fraud/upload-grants", {"sha256": digest, "size": len(data)})
        assert (single["method"], "parts" in single) == ("PUT", False)
        # a file of this size is granted in three parts, each URL for its part alone
        probe = _grant(alice, data)
        assert (probe["method"], probe["part_count"]) == ("multipart", 3)
        assert "url" not in probe
        upload_ids = set()
        for entry in probe["parts"]:
            query = parse_qs(urlparse(entry["url"]).query)
            assert query["partNumber"] == [str(entry["part"])]
            assert query["X-Amz-Expires"] == ["300"]
            upload_ids |= set(query["uploadId"])
        assert len(upload_ids) == 1 and _pending(s3, name) == [
            f"ghaf/{STAGING_PREFIX}{_grant_id(probe)}"
        ]
        alice.post("/projects/fraud/upload-grants/abort", {"grant": probe["grant"]})
        assert _pending(s3, name) == []
        # the SDK sends the parts, the server completes and verifies
        with alice.start_run("churn", project="fraud") as run:
            logged = log_artifacts(
                alice,
                run.run_id,
                "fraud",
                {"model/weights.bin": tmp_path / "weights.bin"},
                direct=True,
            )
        assert logged == ["model/weights.bin"]
        assert platform.artifacts.read_bytes(digest) == data
        assert _uploads(platform, digest) == [("alice", "allowed", "fraud")]
        objects = _objects(s3, name)
        assert all(marker[:17] not in body for body in objects.values())  # ciphertext only
        assert not [k for k in objects if k.startswith("ghaf/" + STAGING_PREFIX)]
        assert _pending(s3, name) == []
        # a presigned GET has no size limit: the file comes back through one, whole
        fetched = alice.download_run_artifacts(
            run.run_id, "model/weights.bin", tmp_path / "back", direct=True
        )
        assert fetched.read_bytes() == data
        # a file cut short after its grant: the SDK gives up and aborts the upload
        other = os.urandom(11 * MiB)
        (tmp_path / "cut.bin").write_bytes(other[: 7 * MiB])
        with pytest.raises(IntegrityError, match="is shorter than when its upload was granted"):
            upload_granted(
                alice, tmp_path / "cut.bin", "fraud", hashlib.sha256(other).hexdigest(), len(other)
            )
        assert _pending(s3, name) == []


def _grant_id(grant: dict[str, Any]) -> str:
    import orjson

    return str(orjson.loads(base64.urlsafe_b64decode(grant["grant"]))["terms"]["grant_id"])


def test_parts_missing_altered_misshapen_or_left_store_nothing_and_urls_are_one_part_s(
    platform: Platform,
    team: tuple[ServerProcess, dict[str, str]],
    bucket: tuple[Any, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3, name = bucket
    salt = os.urandom(24)
    data = os.urandom(12 * MiB)
    digest = hashlib.sha256(data).hexdigest()
    with _client(team, "alice") as alice, _client(team, "rita") as rita:
        grant = _grant(alice, data)
        first, second, third = grant["parts"]
        # a part URL is signed for its upload id and part number: altered, it does not verify
        url = first["url"]
        signed = parse_qs(urlparse(url).query)["X-Amz-Signature"][0]
        assert _signature(url) == signed
        other = _grant(alice, os.urandom(12 * MiB))
        other_id = parse_qs(urlparse(other["parts"][0]["url"]).query)["uploadId"][0]
        for field, value in (("partNumber", "2"), ("uploadId", other_id)):
            query = dict(parse_qsl(urlparse(url).query))
            query[field] = value
            altered = urlunparse(urlparse(url)._replace(query=urlencode(query)))
            assert _signature(altered) != signed, field
        alice.post("/projects/fraud/upload-grants/abort", {"grant": other["grant"]})
        # a part missing: refused, the upload kept open; sent later, with a fresh URL
        _put(first, _part(grant, first, data, salt))
        _put(third, _part(grant, third, data, salt))
        commit = {"grant": grant["grant"]}
        with pytest.raises(InvalidInputError, match="lacks 1 of its 3 parts: 2"):
            alice.post("/projects/fraud/upload-grants/commit", commit)
        assert not platform.artifacts.exists(digest)
        with pytest.raises(NotFoundError):  # nobody else may renew its URLs
            rita.post("/projects/retail/upload-grants/parts", {**commit, "parts": [2]})
        fresh = alice.post("/projects/fraud/upload-grants/parts", {**commit, "parts": [2]})
        assert [p["part"] for p in fresh["parts"]] == [2]
        assert {k: v for k, v in fresh["parts"][0].items() if k != "url"} == {
            k: v for k, v in second.items() if k != "url"
        }
        with pytest.raises(InvalidInputError, match="names part 4; this upload has parts 1 to 3"):
            alice.post("/projects/fraud/upload-grants/parts", {**commit, "parts": [4]})
        _put(fresh["parts"][0], _part(grant, second, data, salt))
        stored = {"digest": digest, "size": len(data)}
        assert alice.post("/projects/fraud/upload-grants/commit", commit) == stored
        # a commit sent again (its answer lost) is answered the same, and keeps the body
        assert alice.post("/projects/fraud/upload-grants/commit", commit) == stored
        assert platform.artifacts.read_bytes(digest) == data
        # a part altered in the bucket's hands: the whole does not decrypt, nothing counts
        poisoned = os.urandom(12 * MiB)
        bad = hashlib.sha256(poisoned).hexdigest()
        grant = _grant(alice, poisoned)
        bodies = [bytearray(_part(grant, e, poisoned, salt)) for e in grant["parts"]]
        bodies[1][100] ^= 1
        for entry, body in zip(grant["parts"], bodies, strict=True):
            _put(entry, bytes(body))
        with pytest.raises(IntegrityError, match="does not decrypt"):
            alice.post("/projects/fraud/upload-grants/commit", {"grant": grant["grant"]})
        # a part of another size than its grant gives: the upload is aborted
        grant = _grant(alice, poisoned)
        for entry in grant["parts"]:
            piece = _part(grant, entry, poisoned, salt)
            _put(entry, piece + (b"x" if entry["part"] == 3 else b""))
        with pytest.raises(IntegrityError, match=r"has parts \[3\] that are not of the sizes"):
            alice.post("/projects/fraud/upload-grants/commit", {"grant": grant["grant"]})
        assert not platform.artifacts.exists(bad)
        assert {o for _, o, _ in _uploads(platform, bad)} == {"failed"}
        assert [k for k in _objects(s3, name) if k.startswith(f"ghaf/enc/{bad[:2]}/")] == []
        assert not [k for k in _objects(s3, name) if k.startswith("ghaf/" + STAGING_PREFIX)]
        assert _pending(s3, name) == []
        # parts sent and never committed: ghaf gc aborts the upload once it is stale
        grant = _grant(alice, data[::-1])
        _put(grant["parts"][0], _part(grant, grant["parts"][0], data[::-1], salt))
    store = platform.artifacts
    assert isinstance(store, EncryptedArtifactStore)
    blobs = presigning(store.blobs)
    assert blobs is not None
    staged = STAGING_PREFIX + _grant_id(grant)
    assert list(stale_staged(blobs)) == []  # fresh: kept for its commit
    found = list(stale_staged(blobs, now=grant["expires_at"] + 2 * 24 * 3600))
    assert [(key, size) for key, size, _ in found] == [(staged, grant["parts"][0]["size"])]
    assert remove_leftovers(platform.settings) == []
    assert _pending(s3, name) == [f"ghaf/{staged}"]
    monkeypatch.setattr(ghaf.artifacts.presign, "STAGED_TTL_S", 0.0)
    removed = remove_leftovers(platform.settings)
    assert [(r.kind, r.path.as_posix()) for r in removed] == [("staged-upload", staged)]
    assert _pending(s3, name) == []


class _FlakyStore:
    """moto behind a real HTTP proxy that answers chosen part PUTs with a failure (as a
    store that is slow, or a URL that expired, would), and counts every part PUT."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.fail: dict[int, list[int]] = {}
        self.puts: list[int] = []
        self.stall = ""
        """An object path whose GET is held until a HEAD of it comes (a second commit)."""
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.cut = ""
        """An object path whose first GET is cut off halfway (the Range of each is kept)."""
        self.ranges: list[str] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers botocore's Expect: 100-continue

            def body(self) -> bytes:
                if "chunked" not in self.headers.get("transfer-encoding", ""):
                    return self.rfile.read(int(self.headers.get("content-length") or 0))
                data = b""
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    data += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return data

            def forward(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                body = self.body()
                held = bool(store.stall) and store.stall in urlparse(self.path).path
                if held and self.command == "HEAD" and store.stalled.is_set():
                    store.release.set()
                if held and self.command == "GET" and not store.release.is_set():
                    store.stalled.set()
                    store.release.wait(timeout=60)
                if self.command == "PUT" and "partNumber" in query:
                    part = int(query["partNumber"][0])
                    store.puts.append(part)
                    if store.fail.get(part):
                        self.send_response(store.fail[part].pop(0))
                        self.send_header("content-length", "0")
                        self.end_headers()
                        return
                skip = {"host", "content-length", "connection", "transfer-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                answer = httpx.request(
                    self.command, store.upstream + self.path, headers=headers, content=body
                )
                if store.cut and store.cut in urlparse(self.path).path and self.command == "GET":
                    store.ranges.append(self.headers.get("range", ""))
                    if len(store.ranges) == 1:  # the connection breaks halfway
                        self.send_response(answer.status_code)
                        self.send_header("content-length", str(len(answer.content)))
                        self.end_headers()
                        self.wfile.write(answer.content[: len(answer.content) // 2])
                        self.close_connection = True
                        return
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in {*skip, "content-encoding"}:
                        self.send_header(key, value)
                size = answer.headers.get("content-length", "0")
                self.send_header(
                    "content-length", size if self.command == "HEAD" else str(len(answer.content))
                )
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.content)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def flaky(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[_FlakyStore]:
    store = _FlakyStore(s3_endpoint)
    try:
        yield store
    finally:
        store.server.shutdown()
        store.server.server_close()


@pytest.fixture
def flaky_team(
    bucket: tuple[Any, str],
    flaky: _FlakyStore,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[tuple[Platform, ServerProcess, str]]:
    """A server whose bucket is reached (and whose part URLs point) through ``flaky``."""
    monkeypatch.setenv("GHAF_S3_ENDPOINT_URL", flaky.url)
    monkeypatch.setenv("GHAF_SERVER__PRESIGNED_PART_MIB", "5")
    with init_home(load_settings(home=isolated_env)) as opened:
        create_project(opened, opened.admin(), "fraud")
        token = mint(opened, "alice", ["data_scientist"], project="fraud", bind_on="fraud")
        server = ServerProcess(
            opened.settings.home, ("server",), "/health", tmp_path / "server.log"
        ).start()
        try:
            yield opened, server, token
        finally:
            log = server.stop()
    assert "Traceback" not in log


def test_a_part_the_store_fails_is_sent_again_alone_and_one_that_keeps_failing_aborts(
    flaky_team: tuple[Platform, ServerProcess, str],
    flaky: _FlakyStore,
    bucket: tuple[Any, str],
    tmp_path: Path,
) -> None:
    platform, server, token = flaky_team
    s3, name = bucket
    data = os.urandom(12 * MiB)
    digest = hashlib.sha256(data).hexdigest()
    (tmp_path / "weights.bin").write_bytes(data)
    with ghaf.connect(server.url, token=token) as alice:
        # part 2 meets the store's 503, part 3 an expired URL (a fresh one is asked for)
        flaky.fail = {2: [503], 3: [403]}
        sent = upload_granted(alice, tmp_path / "weights.bin", "fraud", digest, len(data))
        assert sent == digest
        assert sorted(flaky.puts) == [1, 2, 2, 3, 3]  # only the failed parts again
        assert platform.artifacts.read_bytes(digest) == data
        # a download whose connection breaks halfway goes on from where it stopped
        with alice.start_run("churn", project="fraud") as run:
            alice.post(f"/runs/{run.run_id}/artifacts", {"files": {"m.bin": digest}})
        grant = alice.get(f"/runs/{run.run_id}/artifact-grant", path="m.bin")
        flaky.cut = f"/ghaf/enc/{digest[:2]}/{digest}/"
        download_granted(grant, digest, tmp_path / "back.bin", "m.bin")
        assert (tmp_path / "back.bin").read_bytes() == data
        assert flaky.ranges[0] == "" and flaky.ranges[1].startswith("bytes=")
        resumed_at = int(flaky.ranges[1].removeprefix("bytes=").rstrip("-"))
        assert 0 < resumed_at <= ciphertext_size(len(data)) // 2
        # a part that fails every try: the upload is given up and aborted
        other = os.urandom(12 * MiB)
        (tmp_path / "other.bin").write_bytes(other)
        flaky.fail, flaky.puts = {1: [500, 500, 500]}, []
        with pytest.raises(BackendUnavailableError, match="HTTP 500 for part 1"):
            upload_granted(
                alice, tmp_path / "other.bin", "fraud", hashlib.sha256(other).hexdigest(), 12 * MiB
            )
        assert flaky.puts.count(1) == 3
        assert _pending(s3, name) == []
        assert not platform.artifacts.exists(hashlib.sha256(other).hexdigest())
    # the server verifies longer than the client waits for an answer: the session sends
    # the commit again, is told the first is verifying, and asks until it is stored
    late = os.urandom(12 * MiB)
    (tmp_path / "late.bin").write_bytes(late)
    digest = hashlib.sha256(late).hexdigest()
    flaky.fail, flaky.stall = {}, f"/ghaf/enc/{digest[:2]}/{digest}/"
    with ghaf.connect(server.url, token=token, timeout=3.0) as impatient:
        assert upload_granted(impatient, tmp_path / "late.bin", "fraud", digest, len(late)) == (
            digest
        )
    assert flaky.release.is_set()  # a second commit came while the first verified
    assert platform.artifacts.read_bytes(digest) == late
