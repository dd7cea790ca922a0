"""Backup and restore round trips while the home keeps taking writes.

What a user relies on: a backup started while ``ghaf server`` (or another writer) keeps
writing holds everything acknowledged before it began; restored into a fresh home it
passes ``ghaf audit verify`` and every artifact reads back verified; a damaged backup is
refused, naming the file, and a refused restore writes nothing; a target that is not
fresh, or a KEK that is not the backup's, is refused before anything is written. Both
columns of the backend table: SQLite and a local directory (through the server's job,
the CLI and the library), PostgreSQL and S3 (moto's server on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text

import ghaf
from ghaf.backup import create_backup, restore_backup, verify_artifacts
from ghaf.errors import AlreadyExistsError, ConfigError, IntegrityError, PermissionDeniedError
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.settings import load_settings
from ghaf.testing.people import mint, person
from ghaf.tracking import get_metric_history, start_run
from tests.conftest import PG_ADMIN_URL, port_open, service_missing
from tests.unit.server.cli_runner import ghaf as ghaf_cli
from tests.unit.serving.server_processes import ServerProcess, bearer

pytestmark = pytest.mark.slow


@dataclass
class Writer:
    """Writes metrics in a loop until stopped; ``acked`` holds (run, step) once the
    write returned, in order."""

    write: Callable[[int], tuple[str, int]]
    acked: list[tuple[str, int]] = field(default_factory=list)
    error: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        step = 0
        try:
            while not self.stop.is_set():
                self.acked.append(self.write(step))
                step += 1
        except BaseException as exc:  # the test reports it
            self.error.append(exc)

    def __enter__(self) -> Writer:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count and not self.error and time.monotonic() < deadline:
            self.stop.wait(0.02)
        assert not self.error, self.error
        assert len(self.acked) >= count, f"only {len(self.acked)} writes in {timeout} s"

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.error, self.error


def _missing(platform: Platform, acked: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The acknowledged (run, step) points the home does not hold."""
    have: dict[str, set[int]] = {}
    for run_id, _ in acked:
        if run_id not in have:
            have[run_id] = {p.step for p in get_metric_history(platform, run_id, "loss")}
    return [(run_id, step) for run_id, step in acked if step not in have[run_id]]


def _records(platform: Platform) -> int:
    with platform.read_session() as session:
        return int(session.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one())


def _artifact(path: Path, size: int = 3 << 20) -> Path:
    path.write_bytes(os.urandom(size))
    return path


# SQLite and a local directory, through ghaf server ---------------------------------


@dataclass
class Served:
    platform: Platform
    server: ServerProcess
    tokens: dict[str, str]
    backups: Path
    work: Path

    def http(self, who: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url + "/api/v1", headers=bearer(self.tokens[who]), timeout=60
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("backup")
    home, backups = work / "home", work / "backups"
    home.mkdir(mode=0o700)
    (home / "ghaf.toml").write_text(f'[backup]\ndestination = "{backups}"\n')
    platform = init_home(load_settings(home=home))
    with start_run("seed", platform=platform, experiment="fraud") as run:
        run.log_metric("auc", 0.91)
        run.log_artifact(_artifact(work / "weights.bin"))
    tokens = {
        "ops": mint(platform, "ops", ["backup_operator"], project="*"),
        "writer": mint(platform, "writer", ["data_scientist"]),
    }
    server = ServerProcess(home, ("server",), "/health", work / "server.log").start()
    try:
        yield Served(platform, server, tokens, backups, work)
    finally:
        server.stop()
        platform.close()


def _http_writer(served: Served) -> Writer:
    client = ghaf.connect(served.server.url, token=served.tokens["writer"])
    runs: list[Any] = []

    def write(step: int) -> tuple[str, int]:
        if step % 25 == 0:
            runs.append(client.start_run("load", project="default", flush_interval=3600))
        run = runs[-1]
        run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.flush()  # returns once the server committed it: acknowledged
        return run.run_id, step

    return Writer(write)


def _settled(http: httpx.Client, job_id: str) -> dict[str, Any]:
    gate = threading.Event()
    for _ in range(1200):  # bounded: 60 s
        job = http.get(f"/backups/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return dict(job)
        gate.wait(0.05)
    raise AssertionError(f"backup job {job_id} still {job['status']}")


def test_a_backup_the_server_makes_while_it_takes_writes_restores_everything_acknowledged(
    served: Served, tmp_path: Path
) -> None:
    with served.http("writer") as http:
        refused = http.post("/backups")
        assert refused.status_code == 403, refused.text  # a project role never backs up
    with _http_writer(served) as writer, served.http("ops") as http:
        writer.wait_for(20)
        before = list(writer.acked)  # everything acknowledged before the backup began
        started = http.post("/backups")
        assert started.status_code == 202, started.text
        job = _settled(http, started.json()["id"])
        during = len(writer.acked) - len(before)
        writer.wait_for(len(writer.acked) + 5)  # and the writes go on after it
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert Path(result["destination"].removeprefix("file://")).parent == served.backups
    assert during > 0, "no write was acknowledged while the backup ran"
    assert result["artifacts"] >= 1 and result["tables"]["runs"] >= 2

    new_home = tmp_path / "restored"
    kek = served.platform.settings.kek_path
    restored = ghaf_cli(
        "restore", result["destination"], "--home", str(new_home), "--kek-file", str(kek),
        "--output", "json",
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout)
    assert report["ok"] and report["audit"]["status"] == "valid", report
    assert report["artifacts"] == {"checked": result["artifacts"], "failures": []}
    with Platform(load_settings(home=new_home)) as platform:
        assert _missing(platform, before) == []
        assert _records(platform) == result["audit_seq"] + 1  # and the restore's own record
        check = verify_artifacts(platform)
        assert check.ok and check.checked == result["artifacts"]
    verified = ghaf_cli("--home", str(new_home), "audit", "verify", "--output", "json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["status"] == "valid"


@pytest.fixture(scope="module")
def cli_backup(served: Served) -> Path:
    """A backup the CLI made of the served home (the server running)."""
    destination = served.work / "cli-backup"
    made = ghaf_cli(
        "--home", str(served.platform.settings.home), "backup", str(destination),
        "--output", "json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["destination"] == destination.as_uri()
    return destination


def test_a_damaged_backup_or_a_used_target_is_refused_before_anything_is_written(
    served: Served, cli_backup: Path, tmp_path: Path
) -> None:
    kek = served.platform.settings.kek_path
    target = load_settings(home=tmp_path / "new")

    def refused(source: Path, error: type[Exception], match: str, **kw: Any) -> None:
        with pytest.raises(error, match=match):
            restore_backup(target, str(source), **{"kek_file": kek, **kw})
        assert not target.home.exists(), "a refused restore wrote the target"

    damaged = tmp_path / "damaged"
    shutil.copytree(cli_backup, damaged)
    rows = damaged / "metadata" / "tables.jsonl"
    data = bytearray(rows.read_bytes())
    data[len(data) // 2] ^= 0x01
    rows.write_bytes(bytes(data))
    refused(damaged, IntegrityError, "backup file metadata/tables.jsonl does not match")

    blob = next(p for p in (damaged / "blobs" / "enc").rglob("*") if p.is_file())
    shutil.copy(cli_backup / "metadata" / "tables.jsonl", rows)
    blob.unlink()
    refused(damaged, IntegrityError, f"backup file blobs/enc/.*{blob.name} is missing")

    forged = tmp_path / "forged"
    shutil.copytree(cli_backup, forged)
    manifest = json.loads((forged / "manifest.json").read_text())
    manifest["metadata"]["audit_seq"] += 1
    (forged / "manifest.json").write_text(json.dumps(manifest))
    refused(forged, IntegrityError, "does not match its signature")
    (forged / "manifest.sig").unlink()
    refused(forged, IntegrityError, "holds no complete backup")

    other_kek = tmp_path / "other-kek.json"
    from ghaf.security.keys import LocalKeyProvider

    LocalKeyProvider(other_kek).create()
    refused(cli_backup, ConfigError, "backup was made under KEK", kek_file=other_kek)
    refused(cli_backup, ConfigError, "pass --kek-file", kek_file=None)

    with pytest.raises(AlreadyExistsError, match="is not empty"):
        restore_backup(served.platform.settings, str(cli_backup), kek_file=kek)
    with pytest.raises(AlreadyExistsError, match="not empty"):
        create_backup(served.platform, served.platform.admin(), str(cli_backup))
    with pytest.raises(PermissionDeniedError, match=r"may not backup\.create"):
        create_backup(
            served.platform, person(served.platform, "dana", ["data_scientist"]), str(tmp_path)
        )


# PostgreSQL and S3 (moto's server) ----------------------------------------------------


@pytest.fixture
def databases() -> Iterator[Callable[[], str]]:
    """Fresh PostgreSQL databases, as many as asked for, dropped afterwards."""
    if not port_open("127.0.0.1", 5432):
        service_missing("PostgreSQL", "127.0.0.1:5432")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def new() -> str:
        name = f"ghaf_test_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    try:
        yield new
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_postgres_and_s3_round_trip_while_another_process_writes(
    s3_endpoint: str,
    databases: Callable[[], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    tag = uuid.uuid4().hex[:8]
    common = {"artifact_region": "us-east-1", "s3_endpoint_url": s3_endpoint}
    source = load_settings(
        home=tmp_path / "home",
        metadata_url=databases(),
        artifact_url=f"s3://home-{tag}/ghaf",
        **common,
    )
    platform = init_home(source)
    with start_run("seed", platform=platform, experiment="fraud") as seed:
        seed.log_artifact(_artifact(tmp_path / "weights.bin", 1 << 20))
    writer_platform = Platform(source)  # another writer, with its own connections
    runs: list[Any] = []

    def write(step: int) -> tuple[str, int]:
        if step % 25 == 0:
            runs.append(
                start_run("load", platform=writer_platform, experiment="load", capture_env=False)
            )
        runs[-1].log_metric("loss", 1.0 / (step + 1), step=step)
        runs[-1].flush()  # committed: acknowledged
        return runs[-1].run_id, step

    try:
        with Writer(write) as writer:
            writer.wait_for(20)
            before = list(writer.acked)
            made = create_backup(platform, platform.admin(), f"s3://backups-{tag}/nightly")
            writer.wait_for(len(writer.acked) + 5)
        for run in runs:
            run.end()
    finally:
        writer_platform.close()
    assert made.audit_seq >= len(before)

    target = load_settings(
        home=tmp_path / "restored",
        metadata_url=databases(),
        artifact_url=f"s3://restored-{tag}/ghaf",
        **common,
    )
    result = restore_backup(target, made.destination, kek_file=source.kek_path)
    assert result.ok, (result.audit.headline, result.artifacts.failures)
    assert result.artifacts.checked == made.artifacts >= 1
    with Platform(target) as restored:
        assert _missing(restored, before) == []
        assert _records(restored) == made.audit_seq + 1
        # The restored ids' sequences moved on: new rows take new ids.
        with start_run("after", platform=restored, experiment="fraud") as after:
            after.log_metric("loss", 0.5)
        assert [p.value for p in get_metric_history(restored, after.run_id, "loss")] == [0.5]
    platform.close()
