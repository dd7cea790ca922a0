"""Pipelines through ``ghaf server`` as a real process, called by the SDK over real HTTP.

What a user relies on: the server runs only the pipelines its operator declared (a
client names one, never code or a path), as the caller and in the caller's project; a
run is followed by polling its status and its steps' logs are read page by page; a
cancel stops a running step's process and records the run cancelled; a worker elsewhere
reports the steps of an ``external`` run with files uploaded to its project; and a
principal of another project sees nothing of any of it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from ghaf.client import Client
from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError, PermissionDeniedError
from ghaf.pipelines import get_run
from ghaf.pipelines.tables import PipelineRunRow
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow
NUMBERS = "ghaf.pipelines.examples:numbers"
SLEEPY = "ghaf.pipelines.examples:sleepy"
DECLARED = json.dumps([NUMBERS, SLEEPY])
"""What the operator declares (GHAF_PIPELINES): the only pipelines the server runs."""


@dataclass
class Served:
    platform: Platform
    server: ServerProcess
    tokens: dict[str, str]

    def client(self, who: str) -> Client:
        return Client(self.server.url, self.tokens[who])

    def http(self, who: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=self.server.url + "/api/v1", headers=headers, timeout=60)


@pytest.fixture
def served(platform: Platform, tmp_path: Path) -> Iterator[Served]:
    admin = platform.admin()
    for project in ("fraud", "retail"):
        create_project(platform, admin, project)
    people = {
        "alice": (["data_engineer", "data_scientist"], "fraud"),
        "vic": (["viewer"], "fraud"),
        "rita": (["data_engineer", "data_scientist"], "retail"),
    }
    tokens = {
        name: mint(platform, name, roles, project=project, bind_on=project)
        for name, (roles, project) in people.items()
    }
    server = ServerProcess(
        platform.settings.home,
        ("server",),
        "/health",
        tmp_path / "server.log",
        env={"GHAF_PIPELINES": DECLARED},
    ).start()
    try:
        yield Served(platform, server, tokens)
    finally:
        log = server.stop()
    assert "Traceback" not in log, log


def _runs_in(platform: Platform) -> int:
    with platform.read_session() as session:
        return int(session.execute(select(func.count()).select_from(PipelineRunRow)).scalar_one())


def _audited(platform: Platform, action: str) -> list[AuditRecordRow]:
    with platform.read_session() as session:
        rows = list(
            session.execute(
                select(AuditRecordRow)
                .where(AuditRecordRow.action == action)
                .order_by(AuditRecordRow.seq)
            ).scalars()
        )
        session.expunge_all()
    return rows


def _until(check: object, what: str, timeout: float = 60.0) -> None:
    """Poll ``check()`` until it is true, for at most ``timeout`` seconds."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _gone(pid: int) -> bool:
    """Whether no process has the id ``pid`` (the step's worker was stopped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_alice_runs_a_declared_pipeline_and_reads_its_logs(served: Served, tmp_path: Path) -> None:
    with served.client("alice") as alice:
        assert [p["pipeline"] for p in alice.pipelines()] == [NUMBERS, SLEEPY]
        started = alice.submit_pipeline(NUMBERS, project="fraud", params={"rows": 50})
        assert (started["pipeline"], started["project"]) == ("numbers", "fraud")
        assert started["created_by"] == "alice" and started["executor"] == "local"
        ended = alice.wait_pipeline_run(started["id"], timeout=120)
        assert ended["status"] == "succeeded", ended
        assert [s["status"] for s in ended["steps"]] == ["succeeded"] * 4
        assert ended["params"] == {"rows": 50}
        # The same run again: every step is served from the cache, at once.
        again = alice.wait_pipeline_run(
            alice.submit_pipeline(NUMBERS, project="fraud", params={"rows": 50})["id"]
        )
        assert [s["status"] for s in again["steps"]] == ["cached"] * 4
        # A step that prints: its log, whole through the SDK, in pages over HTTP.
        marker = tmp_path / "marker"
        slept = alice.submit_pipeline(
            SLEEPY, project="fraud", params={"marker_dir": str(marker), "seconds": 0.1}
        )
        assert alice.wait_pipeline_run(slept["id"], timeout=120)["status"] == "succeeded"
        text = alice.pipeline_log(slept["id"][:12], "slow")
        assert "slow step attempt 1 sleeping 0.1s" in text
        listed = alice.pipeline_runs()
        assert [r["id"] for r in listed] == [slept["id"], again["id"], started["id"]]
        assert alice.pipeline_runs("numbers", limit=1)[0]["id"] == again["id"]
    with served.http("alice") as http:
        page = http.get(f"/pipeline-runs/{slept['id']}/steps/slow/log", params={"limit": 10})
        assert page.status_code == 200 and page.content == text.encode()[:10]
        assert page.headers["x-ghaf-log-size"] == str(len(text.encode()))
        assert page.headers["x-ghaf-next-offset"] == "10"
        last = http.get(
            f"/pipeline-runs/{slept['id']}/steps/slow/log", params={"offset": len(text) - 3}
        )
        assert last.content == text.encode()[-3:] and "x-ghaf-next-offset" not in last.headers
    stored = get_run(served.platform, started["id"])
    assert (stored.project, stored.created_by) == ("fraud", "alice")
    start = _audited(served.platform, "pipeline.run_start")[0]
    assert (start.actor, start.project, start.outcome) == ("alice", "fraud", "allowed")


def test_a_cancel_stops_the_running_step_and_records_the_run_cancelled(
    served: Served, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    with served.client("alice") as alice, served.client("vic") as vic:
        run = alice.submit_pipeline(
            SLEEPY, project="fraud", params={"marker_dir": str(marker), "seconds": 120}
        )
        _until(lambda: (marker / "pid-1").is_file(), "the slow step to start")

        def table_made() -> bool:
            steps = alice.pipeline_run(run["id"])["steps"]
            return any(s["step"] == "make_table" and s["status"] == "succeeded" for s in steps)

        _until(table_made, "the other step to end")
        pid = int((marker / "pid-1").read_text())
        with pytest.raises(PermissionDeniedError, match=r"pipeline\.run_finish"):
            vic.cancel_pipeline_run(run["id"])  # a viewer reads runs, never stops them
        assert vic.pipeline_run(run["id"])["status"] == "running"
        cancelled = alice.cancel_pipeline_run(run["id"])
        assert (cancelled["status"], cancelled["error"]) == ("cancelled", "cancelled by alice")
        _until(lambda: _gone(pid), "the step's worker process to be stopped", timeout=30)
        ended = alice.wait_pipeline_run(run["id"], timeout=30)
        steps = {s["step"]: s["status"] for s in ended["steps"]}
        assert ended["status"] == "cancelled"
        assert steps == {"make_table": "succeeded", "slow": "cancelled"}
        assert not (marker / "pid-2").exists()  # a cancelled step is not retried
        with pytest.raises(AlreadyExistsError, match="already ended"):
            alice.cancel_pipeline_run(run["id"])
    finish = _audited(served.platform, "pipeline.run_finish")
    assert [(r.actor, r.outcome) for r in finish][:2] == [("vic", "denied"), ("alice", "allowed")]


def test_another_project_s_principal_sees_nothing_of_a_run(served: Served, tmp_path: Path) -> None:
    with served.client("alice") as alice, served.client("rita") as rita:
        run = alice.submit_pipeline(
            SLEEPY, project="fraud", params={"marker_dir": str(tmp_path / "m"), "seconds": 0.1}
        )
        assert alice.wait_pipeline_run(run["id"], timeout=120)["status"] == "succeeded"
        assert rita.pipeline_runs() == [] and rita.pipeline_runs(fired=True) == []
    with served.http("rita") as http:
        missing = http.get("/pipeline-runs/" + "0" * 32)
        for path in (f"/pipeline-runs/{run['id']}", f"/pipeline-runs/{run['id'][:12]}"):
            hidden = http.get(path)
            assert hidden.status_code == missing.status_code == 404
            assert hidden.json()["title"].endswith("does not exist")
        assert http.get(f"/pipeline-runs/{run['id']}/steps/slow/log").status_code == 404
        assert http.post(f"/pipeline-runs/{run['id']}/cancel").status_code == 404
        reported = http.post(f"/pipeline-runs/{run['id']}/steps/slow", json={"status": "failed"})
        assert reported.status_code == 404
        ended = http.post(f"/pipeline-runs/{run['id']}/finish", json={"status": "failed"})
        assert ended.status_code == 404
        # Submitting into a project she holds no role in is refused and starts nothing.
        before = _runs_in(served.platform)
        sneaky = http.post("/pipeline-runs", json={"pipeline": NUMBERS, "project": "fraud"})
        assert sneaky.status_code == 403 and "rita" in sneaky.json()["title"]
        assert _runs_in(served.platform) == before
    assert get_run(served.platform, run["id"]).status == "succeeded"


def test_bad_input_is_a_400_naming_the_field_and_starts_nothing(served: Served) -> None:
    before = _runs_in(served.platform)
    with served.http("alice") as http:
        cases = [
            ({"project": "fraud"}, "pipeline"),
            ({"pipeline": "/tmp/evil.py", "project": "fraud"}, "pipeline"),
            ({"pipeline": NUMBERS, "project": "Not A Name"}, "project"),
            ({"pipeline": NUMBERS, "project": "fraud", "executor": "laptop"}, "executor"),
            ({"pipeline": NUMBERS, "project": "fraud", "params": []}, "params"),
        ]
        for body, field in cases:
            answer = http.post("/pipeline-runs", json=body)
            assert answer.status_code == 400, (body, answer.text)
            assert answer.json()["errors"][0]["field"] == field
        unknown = http.post(
            "/pipeline-runs", json={"pipeline": NUMBERS, "project": "fraud", "params": {"rws": 1}}
        )
        assert unknown.status_code == 400 and "'rws'" in unknown.json()["title"]
        # A module the operator did not declare is never imported: it is not a pipeline here.
        undeclared = http.post("/pipeline-runs", json={"pipeline": "os:system", "project": "fraud"})
        assert undeclared.status_code == 404
        assert "not one this server runs" in undeclared.json()["title"]
        bad_id = http.get("/pipeline-runs/not-an-id")
        assert bad_id.status_code == 400 and bad_id.json()["errors"][0]["field"] == "path.run_id"
        bad_page = http.get("/pipeline-runs/" + "0" * 32 + "/steps/slow/log", params={"limit": 0})
        assert (
            bad_page.status_code == 400 and bad_page.json()["errors"][0]["field"] == "query.limit"
        )
        bad_limit = http.get("/pipeline-runs", params={"limit": 5000})
        assert (
            bad_limit.status_code == 400 and bad_limit.json()["errors"][0]["field"] == "query.limit"
        )
    assert _runs_in(served.platform) == before


def test_a_worker_elsewhere_reports_the_steps_of_an_external_run(
    served: Served, tmp_path: Path
) -> None:
    log_file = tmp_path / "make_table.log"
    log_file.write_text("made 50 rows\n")
    foreign = tmp_path / "foreign.log"
    foreign.write_text("retail's bytes\n")
    with served.client("alice") as alice, served.client("rita") as rita:
        run = alice.submit_pipeline(NUMBERS, project="fraud", executor="external")
        assert (run["executor"], run["status"]) == ("external", "running")
        assert {s["status"] for s in run["steps"]} == {"pending"}
        log_digest = alice.upload_file(log_file, "fraud")
        foreign_digest = rita.upload_file(foreign, "retail")
        alice.report_pipeline_step(run["id"], "make_table", status="running", attempts=1)
        # A digest uploaded to another project cannot become this run's log.
        with pytest.raises(NotFoundError, match="was not uploaded to project 'fraud'"):
            alice.report_pipeline_step(
                run["id"], "make_table", status="succeeded", log_digest=foreign_digest
            )
        with pytest.raises(InvalidInputError, match="output_kind"):
            alice.report_pipeline_step(
                run["id"], "make_table", status="succeeded", output_digest=log_digest
            )
        done = alice.report_pipeline_step(
            run["id"],
            "make_table",
            status="succeeded",
            log_digest=log_digest,
            output_digest=log_digest,
            output_kind="bytes",
            cpu_s=0.5,
        )
        step = next(s for s in done["steps"] if s["step"] == "make_table")
        assert (step["status"], step["attempts"], step["cpu_s"]) == ("succeeded", 1, 0.5)
        assert step["duration_s"] is not None and step["duration_s"] >= 0
        assert alice.pipeline_log(run["id"], "make_table") == "made 50 rows\n"
        with pytest.raises(NotFoundError, match="has no step"):
            alice.report_pipeline_step(run["id"], "nope", status="running")
        ended = alice.finish_pipeline_run(run["id"], "failed", "column_sum ran out of memory")
        assert ended["status"] == "failed"
        assert {s["step"]: s["status"] for s in ended["steps"]}["column_sum"] == "skipped"
        with pytest.raises(AlreadyExistsError, match="already ended"):
            alice.report_pipeline_step(run["id"], "column_sum", status="running")
        # A run the server runs reports its own steps: no one else may.
        own = alice.submit_pipeline(NUMBERS, project="fraud", params={"rows": 7})
        with pytest.raises(AlreadyExistsError, match="runs on the server"):
            alice.report_pipeline_step(own["id"], "make_table", status="failed")
        alice.wait_pipeline_run(own["id"], timeout=120)
    actions = [r.action for r in _audited(served.platform, "pipeline.step_update")]
    assert len(actions) >= 2


def test_a_stopped_server_leaves_no_run_going(served: Served, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with served.client("alice") as alice:
        run = alice.submit_pipeline(
            SLEEPY, project="fraud", params={"marker_dir": str(marker), "seconds": 120}
        )
        _until(lambda: (marker / "pid-1").is_file(), "the slow step to start")
    pid = int((marker / "pid-1").read_text())
    served.server.stop()
    _until(lambda: _gone(pid), "the step's worker process to be stopped", timeout=30)
    _until(lambda: get_run(served.platform, run["id"]).status != "running", "the run to end")
    assert get_run(served.platform, run["id"]).status == "cancelled"
