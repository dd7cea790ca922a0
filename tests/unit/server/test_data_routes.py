"""Datasets and lineage through ``ghaf server`` as a real process, called by two teams.

What a user relies on: a file ingested remotely is checked against its contract exactly
as on a home (a failed check or a malformed row stores nothing); a project's datasets,
rows and lineage are invisible to another project's people (404, empty lists, hidden
nodes); bad input is a 400 naming the field; the server fetches a URL only where its
settings allow (no loopback, metadata or private address; no file outside its root).
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

import ghaf
from ghaf.client import Client
from ghaf.data import write_dataset
from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.settings import GhafSettings, load_settings
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow

CSV = "id,amount,email\n1,10.5,a@x.ae\n2,20.0,b@x.ae\n3,7.25,c@x.ae\n"
CONTRACT = (
    "columns:\n  id: {type: int64, unique: true, tag: public}\n"
    "  amount: {type: double, min: 0}\n  email: {type: string, tag: pii}\n"
)


@dataclass
class Served:
    platform: Platform
    server: ServerProcess
    tokens: dict[str, str]
    files: Path

    def client(self, who: str) -> Client:
        return ghaf.connect(self.server.url, token=self.tokens[who])

    def http(self, who: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=self.server.url + "/api/v1", headers=headers, timeout=60)


class _Files(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; ``/moved`` redirects to ``/tx.csv``."""

    def do_GET(self) -> None:
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("location", "/tx.csv")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP file server on 127.0.0.1 (its port), serving ``tx.csv``."""
    root = tmp_path / "web"
    root.mkdir()
    (root / "tx.csv").write_text(CSV)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Files(*a, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield str(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def settings(isolated_env: Path) -> GhafSettings:
    """A home whose artifacts live in the UAE, where pii may be stored."""
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "ghaf.toml").write_text('artifact_region = "ae-auh-1"\n')
    return load_settings(home=isolated_env)


@pytest.fixture
def served(platform: Platform, tmp_path: Path) -> Iterator[Served]:
    for project in ("fraud", "retail"):
        create_project(platform, platform.admin(), project)
    engineer = ["data_engineer", "data_scientist"]  # data_scientist: model.upload (see report)
    tokens = {
        "alice": mint(platform, "alice", engineer, project="fraud", bind_on="fraud"),
        "vera": mint(platform, "vera", ["viewer"], project="fraud", bind_on="fraud"),
        "rita": mint(platform, "rita", engineer, project="retail", bind_on="retail"),
    }
    files = tmp_path / "files"
    (files / "dropbox").mkdir(parents=True)
    server = ServerProcess(
        platform.settings.home,
        ("server",),
        "/health",
        tmp_path / "server.log",
        env={
            "GHAF_INGEST__ALLOW_HOSTS": '["localhost"]',
            "GHAF_INGEST__FILE_ROOT": str(files / "dropbox"),
        },
    ).start()
    try:
        yield Served(platform, server, tokens, files)
    finally:
        log = server.stop()
    assert "Traceback" not in log


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def _audit(platform: Platform, action: str) -> list[tuple[str, str, str, str]]:
    with platform.read_session() as session:
        rows = session.execute(
            select(AuditRecordRow).where(AuditRecordRow.action == action)
        ).scalars()
        return [(r.actor, r.resource, r.project, r.outcome) for r in rows]


def test_a_file_ingested_remotely_is_checked_stored_and_read_back(served: Served) -> None:
    csv = _write(served.files, "tx.csv", CSV)
    contract = _write(served.files, "tx.yaml", CONTRACT)
    second = served.files / "tx2.parquet"
    pq.write_table(pa.table({"id": [1, 2], "amount": [10.5, 99.0]}), second)
    with served.client("alice") as alice:
        made = alice.ingest(csv, "tx", project="fraud", contract=contract)
        assert (made["ref"], made["rows"], made["project"]) == ("tx:1", 3, "fraud")
        assert made["schema"] == {"id": "int64", "amount": "double", "email": "string"}
        assert made["source"] == f"csv:{csv}" and made["validation"]["ok"] is True
        assert made["profile"]["columns"]["email"]["redacted"] == "pii"  # no value kept
        alice.ingest(second, "tx", project="fraud")
        assert alice.datasets() == [{"name": "tx", "latest": 2, "project": "fraud"}]
        assert [v["ref"] for v in alice.dataset_versions("tx")] == ["tx:1", "tx:2"]
        assert alice.dataset("tx")["ref"] == "tx:2"
        diff = alice.diff_datasets("tx:1", "tx:2")
        assert diff["removed"] == ["email"] and diff["rows"] == [3, 2]
        rows = alice.preview_dataset("tx:1", limit=2, columns=["id", "amount"])
        assert rows["rows"] == [[1, 10.5], [2, 20.0]] and rows["total_rows"] == 3
        report = alice.validate_dataset("tx:1", contract)
        assert isinstance(report, dict) and report["ok"] is True
        strict = _write(served.files, "strict.yaml", "columns:\n  amount: {min: 15}\n")
        failed = alice.validate_dataset("tx:1", strict)
        assert isinstance(failed, dict) and failed["ok"] is False
        page = alice.validate_dataset("tx:1", strict, format="html")
        assert isinstance(page, str) and "<html>" in page and "range(amount)" in page
        graph = alice.lineage("dataset:tx:1")
        assert graph["node"] == "dataset:tx:1" and graph["upstream"] == []
        events = alice.openlineage_events(dataset="tx")
        assert [e["outputs"][0]["name"] for e in events] == ["tx:1", "tx:2"]
        assert {e["job"]["namespace"] for e in events} == {"ghaf://fraud"}
    ingests = _audit(served.platform, "dataset.ingest")
    assert ingests == [("alice", "dataset:tx", "fraud", "allowed")] * 2


def test_rows_of_pii_need_read_pii_and_each_read_is_audited(served: Served) -> None:
    csv = _write(served.files, "tx.csv", CSV)
    contract = _write(served.files, "tx.yaml", CONTRACT)
    with served.client("alice") as alice:
        alice.ingest(csv, "tx", project="fraud", contract=contract)
        assert alice.preview_dataset("tx:1")["rows"][0] == [1, 10.5, "a@x.ae"]
    with served.http("vera") as vera:
        assert vera.get("/datasets/tx:1").status_code == 200  # the redacted profile
        refused = vera.get("/datasets/tx:1/rows")
        assert refused.status_code == 403 and "dataset.read_pii" in refused.json()["title"]
    reads = _audit(served.platform, "dataset.read_pii")
    assert reads == [
        ("alice", "dataset:tx:1", "fraud", "allowed"),
        ("vera", "dataset:tx:1", "fraud", "denied"),
    ]


def test_another_project_sees_nothing_of_a_project_s_data(served: Served) -> None:
    csv = _write(served.files, "tx.csv", CSV)
    platform = served.platform
    with served.client("alice") as alice:
        alice.ingest(csv, "tx", project="fraud")
        digest = alice.upload_file(csv, "fraud")
    # A retail dataset derived from fraud's (as a home's owner may record): each side
    # sees its own end of the edge only.
    derived = write_dataset(
        platform.in_project("retail"),
        platform.admin(),
        "basket",
        pa.table({"id": [1]}),
        source="test",
        inputs=["tx:1"],
    )
    with served.http("rita") as rita, served.client("rita") as sdk:
        assert rita.get("/datasets").json() == {
            "datasets": [{"name": "basket", "latest": 1, "project": "retail"}]
        }
        for path in (
            "/datasets/tx:1",
            "/datasets/tx",
            "/datasets/tx/versions",
            "/datasets/tx:1/rows",
            "/datasets/tx:1/diff/tx:1",
            "/datasets/tx:1/validation?contract=columns:%20{}",
        ):
            hidden = rita.get(path)
            assert hidden.status_code == 404, (path, hidden.text)
            assert hidden.json()["title"] in (
                "dataset version tx:1 does not exist",
                "dataset 'tx' does not exist",
            )
        assert (
            rita.get("/datasets/nope:1").json()["title"] == "dataset version nope:1 does not exist"
        )

        def problem(method: str, path: str, name: str, body: Any = None) -> tuple[int, str, str]:
            """The refusal with the dataset's name blanked: fraud's and a missing one's
            must read the same, word for word, hint included."""
            answer = rita.request(method, path.format(name), json=body)
            found = answer.json()
            hint = str(found.get("hint", ""))
            return answer.status_code, found["title"].replace(name, "N"), hint.replace(name, "N")

        for method, path, body in (
            ("GET", "/datasets/{}:1", None),
            ("GET", "/datasets/{}:latest", None),
            ("POST", "/drift", {"reference": "{}:1", "current": "{}:1"}),
        ):

            def filled(name: str, body: Any = body) -> Any:
                return None if body is None else {k: v.format(name) for k, v in body.items()}

            assert problem(method, path, "tx", filled("tx")) == problem(
                method, path, "nope", filled("nope")
            ), path
        assert rita.get("/lineage/dataset:tx:1").status_code == 404
        basket = rita.get(f"/lineage/{derived.node}").json()
        assert basket["upstream"] == [] and basket["edges"] == []
        events = [orjson.loads(line) for line in rita.get("/openlineage/events").text.splitlines()]
        assert [e["outputs"][0]["name"] for e in events] == ["basket:1"]
        assert events[0]["inputs"] == []  # fraud's tx:1 is not named
        assert rita.get("/openlineage/events", params={"project": "fraud"}).status_code == 404
        # Writes: into fraud refused; fraud's name or fraud's upload not usable in retail.
        sneaky = rita.post(
            "/datasets/tx/ingest", json={"project": "fraud", "url": "http://x/a.csv"}
        )
        assert sneaky.status_code == 403
        stolen = rita.post(
            "/datasets/loot/ingest",
            json={"project": "retail", "upload": {"digest": digest, "filename": "tx.csv"}},
        )
        assert stolen.status_code == 404 and "was not uploaded to project 'retail'" in stolen.text
        with pytest.raises(AlreadyExistsError, match="is taken in this home"):
            sdk.ingest(csv, "tx", project="retail")
        linked = rita.post(
            "/datasets/loot/versions",
            json={
                "project": "retail",
                "upload": {"digest": digest, "filename": "x.parquet"},
                "source": "s",
                "inputs": ["tx:1"],
            },
        )
        assert (
            linked.status_code == 404
            and linked.json()["title"] == "lineage input 'tx:1' does not exist"
        )
    with served.client("alice") as alice:
        graph = alice.lineage("dataset:tx:1")
        assert graph["downstream"] == [] and graph["edges"] == []  # retail's node hidden
        assert alice.datasets() == [{"name": "tx", "latest": 1, "project": "fraud"}]
    with served.client("rita") as rita_sdk, pytest.raises(NotFoundError):
        rita_sdk.dataset("loot")  # nothing was written by the refused requests


def test_bad_input_is_a_400_naming_the_field_and_nothing_is_stored(served: Served) -> None:
    with served.http("alice") as alice:
        missing = alice.post("/datasets/tx/ingest", json={"url": "http://localhost/x.csv"})
        assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "project"
        both = alice.post(
            "/datasets/tx/ingest",
            json={
                "project": "fraud",
                "url": "http://localhost/x.csv",
                "upload": {"digest": "0" * 64, "filename": "x.csv"},
            },
        )
        assert both.status_code == 400 and "exactly one of upload and url" in both.text
        digest = alice.post(
            "/datasets/tx/ingest",
            json={"project": "fraud", "upload": {"digest": "xyz", "filename": "x.csv"}},
        )
        assert digest.json()["errors"][0]["field"] == "upload.digest"
        name = alice.post("/datasets/bad:name/ingest", json={"project": "fraud", "url": "x"})
        assert name.status_code == 400 and name.json()["errors"][0]["field"] == "path.name"
        limit = alice.get("/datasets/tx/rows", params={"limit": 5000})
        assert limit.status_code == 400 and limit.json()["errors"][0]["field"] == "query.limit"
        records = alice.post(
            "/datasets/ev/records", json={"project": "fraud", "records": [{"a": 1}], "keys": []}
        )
        assert records.status_code == 400 and records.json()["errors"][0]["field"] == "keys"
        many = alice.get("/datasets/tx/rows", params={"column": [f"c{i}" for i in range(101)]})
        assert many.status_code == 400 and many.json()["errors"][0]["field"] == "query.column"
    _a_request_the_parser_refuses_is_a_problem_too(served.server.url)
    bad = _write(served.files, "bad.csv", "id,amount\n1,2\n3\n")
    contract = _write(served.files, "c.yaml", "checks:\n  - {kind: wobble}\n")
    low = _write(served.files, "low.yaml", "columns:\n  amount: {min: 100}\n")
    good = _write(served.files, "good.csv", "id,amount\n1,2.5\n")
    with served.client("alice") as alice:
        with pytest.raises(InvalidInputError, match=f"{bad}: line 3"):
            alice.ingest(bad, "tx", project="fraud")
        with pytest.raises(
            InvalidInputError, match=f"{contract}: checks\\[0\\]: unknown check kind 'wobble'"
        ):
            alice.ingest(good, "tx", project="fraud", contract=contract)
        with pytest.raises(InvalidInputError, match=r"contract check range\(amount\) failed"):
            alice.ingest(good, "tx", project="fraud", contract=low)
        with pytest.raises(NotFoundError, match="dataset 'tx' does not exist"):
            alice.dataset_versions("tx")
        assert alice.datasets() == []


def _a_request_the_parser_refuses_is_a_problem_too(url: str) -> None:
    """A request line over the HTTP parser's 80 KiB never reaches the app; the answer is
    still a problem+json 400 naming the fix, not uvicorn's plain text."""
    host, port = url.removeprefix("http://").split(":")
    line = f"GET /api/v1/datasets/tx/rows?contract={'x' * 100_000} HTTP/1.1\r\nHost: a\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(line.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/problem+json" in head.lower()
    problem = orjson.loads(body)
    assert problem["status"] == 400 and "80 KiB" in problem["hint"]


def test_the_server_fetches_only_urls_its_settings_allow(served: Served, web: str) -> None:
    inside = _write(served.files / "dropbox", "drop.csv", CSV)
    outside = _write(served.files, "secret.csv", CSV)
    (served.files / "dropbox" / "link.csv").symlink_to(outside)
    with served.client("alice") as alice:
        made = alice.ingest(f"http://localhost:{web}/tx.csv", "web", project="fraud")
        assert (made["rows"], made["source"]) == (3, f"csv:http://localhost:{web}/tx.csv")
        assert alice.ingest(inside.as_uri(), "drop", project="fraud")["rows"] == 3
    refused = {
        f"http://127.0.0.1:{web}/tx.csv": (403, "loopback"),  # allowed by name, not by address
        "http://169.254.169.254/latest/meta-data/x.csv": (403, "link-local"),
        "http://[::ffff:127.0.0.1]/x.csv": (403, "private, loopback"),
        "file:///etc/passwd": (403, "files under"),
        outside.as_uri(): (403, "files under"),
        (served.files / "dropbox" / "link.csv").as_uri(): (403, "files under"),
        f"http://localhost:{web}/moved": (400, "does not follow redirects"),
        f"http://user:pw@localhost:{web}/tx.csv": (400, "user or password"),
        "s3://bucket/x.csv": (400, "not s3"),
        f"http://localhost:{web}/missing.csv": (400, "HTTP 404"),
    }
    with served.http("alice") as alice:
        for url, (status, words) in refused.items():
            answer = alice.post("/datasets/loot/ingest", json={"project": "fraud", "url": url})
            assert answer.status_code == status, (url, answer.text)
            assert words in answer.json()["title"], (url, answer.json())
        assert alice.get("/datasets/loot").status_code == 404
    denied = [r for r in _audit(served.platform, "dataset.ingest") if r[3] == "denied"]
    assert len(denied) == 6 and {r[:3] for r in denied} == {("alice", "dataset:loot", "fraud")}


def test_records_are_appended_exactly_once(served: Served) -> None:
    records = [{"user": "a", "amount": 1.5}, {"user": "b", "amount": 2.5}]
    with served.client("alice") as alice:
        first = alice.append_records("events", records, ["k1", "k2"], project="fraud")
        assert first is not None and (first["ref"], first["rows"]) == ("events:1", 2)
        assert alice.append_records("events", records, ["k1", "k2"], project="fraud") is None
        more = alice.append_records("events", records[:1], ["k3"], project="fraud")
        assert more is not None and (more["ref"], more["rows"]) == ("events:2", 3)
        assert more["inputs"] == ["dataset:events:1"]
    assert {r[0] for r in _audit(served.platform, "dataset.ingest_stream")} == {"alice"}


def test_a_parquet_file_is_written_with_its_lineage_and_tags(served: Served) -> None:
    csv = _write(served.files, "tx.csv", CSV)
    features = served.files / "features.parquet"
    pq.write_table(pa.table({"id": [1, 2], "score": [0.5, 0.7]}), features)
    with served.client("alice") as alice:
        alice.ingest(csv, "tx", project="fraud")
        made = alice.write_dataset(
            "scores",
            features,
            project="fraud",
            source="notebook",
            inputs=["tx:1"],
            column_tags={"id": "public"},
        )
        assert (made["ref"], made["inputs"], made["column_tags"]) == (
            "scores:1",
            ["dataset:tx:1"],
            {"id": "public"},
        )
        assert alice.lineage("dataset:tx:1")["downstream"] == ["dataset:scores:1"]
    assert _audit(served.platform, "dataset.write")[-1] == (
        "alice",
        "dataset:scores",
        "fraud",
        "allowed",
    )
