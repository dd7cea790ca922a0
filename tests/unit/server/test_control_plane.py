"""``ghaf server`` as a real process on 127.0.0.1, called over real HTTP by two teams.

What a user relies on: callers are proven (401 otherwise), writes pass the spine (one
audit record each, with the route's action), a project's things are invisible to
another project's people, bad input is a 400 naming the field, and the gateway's
promises hold (request ids, security headers, body limits, rate limits).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.registry import register_model
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.testing.people import mint, person
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow


class Team:
    """Two projects, their people's tokens, and the server they call."""

    def __init__(self, platform: Platform, server: ServerProcess, tokens: dict[str, str]) -> None:
        self.platform = platform
        self.server = server
        self.tokens = tokens

    def client(self, who: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=self.server.url + "/api/v1", headers=headers, timeout=30)


def _audit_count(platform: Platform) -> int:
    with platform.read_session() as session:
        return int(session.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one())


def _last_audit(platform: Platform) -> AuditRecordRow:
    with platform.read_session() as session:
        row = session.execute(
            select(AuditRecordRow).order_by(AuditRecordRow.seq.desc()).limit(1)
        ).scalar_one()
        session.expunge(row)
        return row


def _start(platform: Platform, tmp_path: Path, *args: str) -> ServerProcess:
    return ServerProcess(
        platform.settings.home, ("server", *args), "/health", tmp_path / "server.log"
    ).start()


@pytest.fixture
def team(platform: Platform, tmp_path: Path) -> Iterator[Team]:
    admin = platform.admin()
    for project in ("fraud", "retail"):
        create_project(platform, admin, project)
    tokens = {
        "alice": mint(platform, "alice", ["data_scientist"], project="fraud", bind_on="fraud"),
        "ben": mint(platform, "ben", ["model_approver"], project="fraud", bind_on="fraud"),
        "rita": mint(platform, "rita", ["data_scientist"], project="retail", bind_on="retail"),
        "audrey": mint(platform, "audrey", ["auditor"], project="fraud", bind_on="fraud"),
        "remy": mint(platform, "remy", ["release_manager"], project="fraud", bind_on="fraud"),
    }
    server = _start(platform, tmp_path)
    try:
        yield Team(platform, server, tokens)
    finally:
        log = server.stop()
    assert "Traceback" not in log


def _run(client: httpx.Client, project: str, experiment: str) -> str:
    made = client.post("/runs", json={"experiment": experiment, "project": project})
    assert made.status_code == 201, made.text
    return str(made.json()["run_id"])


def test_a_caller_must_prove_who_it_is(team: Team) -> None:
    anonymous = httpx.get(team.server.url + "/api/v1/projects")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    forged = httpx.get(
        team.server.url + "/api/v1/projects", headers={"authorization": "Bearer ghaf_0_x"}
    )
    assert forged.status_code == 401 and "malformed" in forged.json()["title"]
    with team.client("alice") as alice:
        me = alice.get("/whoami").json()
    assert me["name"] == "alice" and me["roles"] == ["fraud:data_scientist"]
    assert me["credential"].startswith("token ")


def test_each_write_passes_the_spine_once_with_the_route_s_action(team: Team) -> None:
    platform = team.platform
    with team.client("alice") as alice:
        before = _audit_count(platform)
        made = alice.post("/experiments", json={"name": "churn", "project": "fraud"})
        assert made.status_code == 201, made.text
        assert (_audit_count(platform), _last_audit(platform).action) == (
            before + 1,
            "experiment.create",
        )
        run_id = _run(alice, "fraud", "churn")
        last = _last_audit(platform)
        assert (last.action, last.actor, last.project) == ("run.create", "alice", "fraud")
        points = {"key": ["loss"] * 3, "value": [0.9, 0.5, 0.2], "step": [0, 1, 2]}
        batch = alice.post(
            f"/runs/{run_id}/batch",
            json={"metrics": {**points, "timestamp": [1.0, 2.0, 3.0]}, "params": {"lr": "0.1"}},
        )
        assert batch.status_code == 200 and batch.json()["points"] == 3
        assert _last_audit(platform).action == "run.log_batch"
        assert alice.post(f"/runs/{run_id}/end", json={"status": "finished"}).status_code == 200
        assert _last_audit(platform).action == "run.end"
        run = alice.get(f"/runs/{run_id}").json()
    assert run["metrics"] == {"loss": 0.2} and run["params"] == {"lr": "0.1"}
    assert run["status"] == "finished" and run["user"] == "alice"


def test_a_project_s_things_are_invisible_to_another_project(team: Team) -> None:
    with team.client("alice") as alice, team.client("rita") as rita:
        fraud_run = _run(alice, "fraud", "fraud-exp")
        retail_run = _run(rita, "retail", "retail-exp")
        assert [p["name"] for p in alice.get("/projects").json()["projects"]] == ["fraud"]
        assert [p["name"] for p in rita.get("/projects").json()["projects"]] == ["retail"]
        assert [r["run_id"] for r in alice.get("/runs").json()["runs"]] == [fraud_run]
        assert [r["run_id"] for r in rita.get("/runs").json()["runs"]] == [retail_run]
        assert [e["name"] for e in rita.get("/experiments").json()["experiments"]] == ["retail-exp"]
        # A guessed id of another project's run reads exactly as one that does not exist.
        hidden = rita.get(f"/runs/{fraud_run}")
        missing = rita.get("/runs/" + "0" * 32)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["title"] == f"run {fraud_run} does not exist"
        # Writing into it is refused the same way, and nothing is written.
        wrote = rita.post(f"/runs/{fraud_run}/batch", json={"params": {"x": "1"}})
        assert wrote.status_code == 404
        assert "x" not in alice.get(f"/runs/{fraud_run}").json()["params"]
        # A run in a project the caller holds no role in is refused (403, audited).
        sneaky = rita.post("/runs", json={"experiment": "fraud-exp", "project": "fraud"})
        assert sneaky.status_code == 403 and "rita" in sneaky.json()["title"]
        assert rita.get("/projects/fraud").status_code == 404
        assert rita.get("/audit/records", params={"project": "fraud"}).status_code == 403
    last = _last_audit(team.platform)
    assert (last.actor, last.outcome, last.project) == ("rita", "denied", "fraud")


def test_the_model_lifecycle_over_http_keeps_four_eyes(team: Team, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(3).normal(size=(40, 3))
    saved = tmp_path / "model"
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), saved)
    platform = team.platform.in_project("fraud")
    author = person(platform, "alice", ["data_scientist"], project="fraud")
    version = register_model(platform, author, "churn", saved)
    with (
        team.client("alice") as alice,
        team.client("ben") as ben,
        team.client("rita") as rita,
        team.client("remy") as remy,
    ):
        assert [m["name"] for m in alice.get("/models").json()["models"]] == ["churn"]
        assert rita.get("/models").json()["models"] == []
        assert rita.get("/models/churn").status_code == 404
        own = alice.post("/models/churn:1/approvals", json={"comment": "mine"})
        assert own.status_code == 403, own.text  # four eyes: not by its author
        approved = ben.post("/models/churn:1/approvals", json={"comment": "reviewed"})
        assert approved.status_code == 201, approved.text
        assert approved.json()["approvals"] == ["ben"]
        refused = alice.put("/models/churn/aliases/candidate-a", json={"version": 1})
        assert refused.status_code == 403 and "model.alias" in refused.json()["title"]
        aliased = remy.put("/models/churn/aliases/candidate-a", json={"version": 1})
        assert aliased.status_code == 200 and "candidate-a" in aliased.json()["aliases"]
        shown: dict[str, Any] = alice.get("/models/churn@candidate-a").json()
        assert (shown["name"], shown["version"], shown["project"]) == ("churn", 1, "fraud")
        assert version.version == 1
        assert remy.delete("/models/churn/aliases/candidate-a").status_code == 200
        assert alice.get("/models/churn@candidate-a").status_code == 404


def test_bad_input_is_a_400_naming_the_field_and_nothing_is_written(team: Team) -> None:
    platform = team.platform
    with team.client("alice") as alice:
        before = _audit_count(platform)
        missing = alice.post("/runs", json={"project": "fraud"})
        assert missing.status_code == 400
        assert missing.json()["errors"][0]["field"] == "experiment"
        bad_project = alice.post("/runs", json={"experiment": "e", "project": "Not A Name"})
        assert bad_project.status_code == 400 and "project" in bad_project.json()["title"]
        run_id = _run(alice, "fraud", "e")
        ragged = alice.post(
            f"/runs/{run_id}/batch",
            json={"metrics": {"key": ["a", "b"], "value": [1.0], "step": [0], "timestamp": [0]}},
        )
        assert ragged.status_code == 400 and "metrics" in ragged.json()["title"]
        not_json = alice.post("/runs", content=b"{", headers={"content-type": "application/json"})
        assert not_json.status_code == 400
        bad_status = alice.post(f"/runs/{run_id}/end", json={"status": "running"})
        assert bad_status.status_code == 400 and "status" in bad_status.json()["title"]
        assert alice.get("/nope").status_code == 404
        assert alice.get(f"/runs/{run_id}").json()["status"] == "running"
    assert _audit_count(platform) == before + 1  # the one run created


def test_the_gateway_ids_headers_and_body_limit(team: Team) -> None:
    with team.client("alice") as alice:
        echoed = alice.get("/whoami", headers={"x-request-id": "trace-42"})
        assert echoed.headers["x-request-id"] == "trace-42"
        fresh = alice.get("/whoami", headers={"x-request-id": "bad id with spaces"})
        assert len(fresh.headers["x-request-id"]) == 32
        for name, value in (
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("cache-control", "no-store"),
        ):
            assert fresh.headers[name] == value
        assert "access-control-allow-origin" not in fresh.headers
        cors = alice.options("/whoami", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in cors.headers
        huge = alice.post(
            "/experiments", content=b"x" * (65 * 1024 * 1024), headers={"content-type": "a/b"}
        )
        assert huge.status_code == 413 and huge.json()["request_id"]

        def chunks() -> Iterator[bytes]:
            for _ in range(70):
                yield b"y" * (1024 * 1024)

        streamed = alice.post("/experiments", content=chunks())
        assert streamed.status_code == 413
        assert alice.get("/whoami").status_code == 200  # the server stays healthy
    log = team.server.output()
    assert '"trace-42"' in log or "request_id=trace-42" in log


def test_a_principal_over_its_rate_gets_429_with_retry_after(
    platform: Platform, tmp_path: Path
) -> None:
    token = mint(platform, "alice", ["viewer"])
    server = _start(platform, tmp_path, "--rate", "0.01", "--burst", "3")  # 1 per 100 s
    try:
        headers = {"authorization": f"Bearer {token}"}
        answers = [httpx.get(server.url + "/api/v1/whoami", headers=headers) for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        limited = answers[-1]
        assert int(limited.headers["retry-after"]) >= 90
        assert "alice" in limited.json()["title"]
        other = mint(platform, "bob", ["viewer"])
        fresh = httpx.get(
            server.url + "/api/v1/whoami", headers={"authorization": f"Bearer {other}"}
        )
        assert fresh.status_code == 200  # another principal has its own budget
    finally:
        server.stop()
