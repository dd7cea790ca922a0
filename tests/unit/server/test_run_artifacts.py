"""A remote run's files through ``ghaf server`` (a real process): logged from the client
machine (a file or a whole directory), listed, downloaded byte for byte; another
project's people see none of them; a file never uploaded to the run's project, or a path
that leaves the run's directory, is refused with nothing recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import ghaf
from ghaf.client import Client
from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.testing.people import mint
from ghaf.tracking.service import artifact_files
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow


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


def _outputs(tmp_path: Path) -> Path:
    out = tmp_path / "outputs"
    (out / "plots").mkdir(parents=True)
    (out / "report.json").write_text('{"auc": 0.91}')
    (out / "plots" / "roc.csv").write_bytes(bytes(range(256)) * 1000)
    return out


def test_a_remote_run_logs_and_downloads_its_files(
    platform: Platform, team: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    out = _outputs(tmp_path)
    (tmp_path / "notes.txt").write_text("first")
    with _client(team, "alice") as alice:
        with alice.start_run("churn", project="fraud") as run:
            assert sorted(run.log_artifact(out)) == ["outputs/plots/roc.csv", "outputs/report.json"]
            assert run.log_artifact(tmp_path / "notes.txt", "docs") == ["docs/notes.txt"]
            (tmp_path / "notes.txt").write_text("second, longer")  # logged again: replaced
            run.log_artifact(tmp_path / "notes.txt", "docs")
        listing = alice.get(f"/runs/{run.run_id}/artifacts")["files"]
        assert [f["path"] for f in listing] == [
            "docs/notes.txt",
            "outputs/plots/roc.csv",
            "outputs/report.json",
        ]
        assert listing[1]["size"] == 256_000
        assert listing[0]["size"] == len("second, longer")
        # what embedded mode sees is what the client sent
        recorded = {p: (d, n) for p, d, n in artifact_files(platform, run.run_id)}
        assert recorded["docs/notes.txt"][1] == len("second, longer")

        got = alice.download_run_artifacts(run.run_id, "outputs", tmp_path / "dl")
        assert (got / "plots" / "roc.csv").read_bytes() == (out / "plots" / "roc.csv").read_bytes()
        assert (got / "report.json").read_text() == '{"auc": 0.91}'
        one = alice.download_run_artifacts(run.run_id, "docs/notes.txt", tmp_path / "one")
        assert one.read_text() == "second, longer"
        with pytest.raises(NotFoundError, match="no artifact 'nope'"):
            alice.download_run_artifacts(run.run_id, "nope", tmp_path / "none")


def test_another_project_sees_none_of_a_run_s_files(
    team: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    out = _outputs(tmp_path)
    with _client(team, "alice") as alice:
        with alice.start_run("churn", project="fraud") as run:
            run.log_artifact(out)
        digest = alice.get(f"/runs/{run.run_id}/artifacts")["files"][0]["digest"]
    with _client(team, "rita") as rita:
        for path, params in (
            (f"/runs/{run.run_id}/artifacts", {}),
            (f"/runs/{run.run_id}/artifact", {"path": "outputs/report.json"}),
        ):
            with pytest.raises(NotFoundError, match=f"run {run.run_id} does not exist"):
                rita.get(path, **params)
        with pytest.raises(NotFoundError, match="does not exist"):
            rita.post(f"/runs/{run.run_id}/artifacts", {"files": {"x.bin": digest}})
        # her own run cannot take fraud's file by its digest: it was not uploaded to retail
        with (
            rita.start_run("basket", project="retail") as own,
            pytest.raises(NotFoundError, match="was not uploaded to project 'retail'"),
        ):
            rita.post(f"/runs/{own.run_id}/artifacts", {"files": {"stolen.csv": digest}})
        assert rita.get(f"/runs/{own.run_id}/artifacts")["files"] == []


def test_bad_artifact_paths_are_refused_with_nothing_recorded(
    platform: Platform, team: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    (tmp_path / "f.txt").write_text("x")
    server, tokens = team
    with _client(team, "alice") as alice:
        with alice.start_run("churn", project="fraud") as run:
            digest = alice.upload_file(tmp_path / "f.txt", "fraud")
            for bad in (
                "../escape.txt",
                "/abs.txt",
                "a//b.txt",
                "a/./b.txt",
                " a.txt",
                "a /b.txt",
                "evil\u202etxt.exe",
                "bell\x07.txt",
            ):
                with pytest.raises(InvalidInputError, match="file path"):
                    alice.post(f"/runs/{run.run_id}/artifacts", {"files": {bad: digest}})
        headers = {"authorization": f"Bearer {tokens['alice']}"}
        with httpx.Client(base_url=server.url + "/api/v1", headers=headers) as http:
            answer = http.post(f"/runs/{run.run_id}/artifacts", json={"files": {"a": "nothex"}})
            assert answer.status_code == 400
            assert "files" in answer.text
            empty = http.post(f"/runs/{run.run_id}/artifacts", json={"files": {}})
            assert empty.status_code == 400
    assert artifact_files(platform, run.run_id) == []


def test_a_refused_registration_names_no_server_path(
    platform: Platform, team: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    (tmp_path / "m.bin").write_bytes(b"not a model")
    with _client(team, "alice") as alice:
        digest = alice.upload_file(tmp_path / "m.bin", "fraud")
        with pytest.raises(InvalidInputError) as refused:
            alice.post("/models", {"name": "m", "project": "fraud", "files": {"m.bin": digest}})
    assert "ghaf-model.json" in str(refused.value)
    assert str(platform.settings.home) not in str(refused.value)


def test_a_run_records_its_inputs_only_from_what_its_person_may_read(
    team: tuple[ServerProcess, dict[str, str]],
) -> None:
    with _client(team, "rita") as rita, rita.start_run("basket", project="retail") as theirs:
        pass
    with _client(team, "alice") as alice:
        with alice.start_run("prep", project="fraud") as upstream:
            pass
        with alice.start_run("train", project="fraud") as run:
            run.log_input(f"run:{upstream.run_id}")
            for node in (f"run:{theirs.run_id}", "dataset:nosuch:1"):
                with pytest.raises(NotFoundError, match=f"lineage node '{node}' does not exist"):
                    run.log_input(node)
            with pytest.raises(InvalidInputError, match="not a node id"):
                run.log_input("table:customers")
        assert alice.get_run(run.run_id)["inputs"] == [f"run:{upstream.run_id}"]
        assert alice.get(f"/lineage/run:{run.run_id}")["upstream"] == [f"run:{upstream.run_id}"]


def test_an_upload_cut_off_mid_body_stores_nothing_and_the_next_one_does(
    platform: Platform, team: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    """The server reads an upload's body ahead of the store; a client that goes away
    mid-body leaves no artifact and no temporary file, and the same file sent whole then
    is stored (the read-ahead ends with the request, whatever its fate)."""
    import hashlib
    import socket
    import time
    from urllib.parse import urlsplit

    server, tokens = team
    body = bytes(range(256)) * (12 * 4096)  # 12 MiB: more than the server reads ahead
    digest = hashlib.sha256(body).hexdigest()
    address = urlsplit(server.url)
    head = (
        f"POST /api/v1/projects/fraud/artifacts HTTP/1.1\r\nhost: {address.netloc}\r\n"
        f"authorization: Bearer {tokens['alice']}\r\ncontent-type: application/octet-stream\r\n"
        f"content-length: {len(body)}\r\nx-ghaf-sha256: {digest}\r\n\r\n"
    ).encode()
    temp = platform.artifacts.blobs.root / ".tmp"  # type: ignore[attr-defined]
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(head + body[: 5 << 20])
        deadline = time.monotonic() + 30
        while not any(temp.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any(temp.iterdir()), "the server never began storing the upload"
    deadline = time.monotonic() + 30
    while any(temp.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(temp.iterdir()), "the cut upload left a temporary file"
    assert not platform.artifacts.exists(digest)

    source = tmp_path / "whole.bin"
    source.write_bytes(body)
    with _client(team, "alice") as alice:
        with alice.start_run("cut", project="fraud") as run:
            run.log_artifact(source)
        got = alice.download_run_artifacts(run.run_id, "whole.bin", tmp_path / "back")
    assert platform.artifacts.exists(digest)
    assert got.read_bytes() == body
