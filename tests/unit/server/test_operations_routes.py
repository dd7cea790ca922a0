"""Deployments, reference profiles and drift checks through ``ghaf server`` as a real process.

What a user relies on: a release manager records and changes a deployment of the
project's approved versions (one audit record each); a data scientist saves a profile
of a dataset or of an uploaded batch and checks drift against it, with the numbers
embedded mode computes; another project's people see none of it (empty lists, 404s,
a name of theirs is not grafted onto another project's profile); bad input is a 400
naming the field, and stores nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

import ghaf
from ghaf.client import Client
from ghaf.data import dataset_parquet_path, write_dataset
from ghaf.errors import NotFoundError, PolicyViolationError
from ghaf.models import save_model
from ghaf.monitoring import DriftOptions, compare_profiles, profile_window
from ghaf.monitoring.store import load_profile
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.registry import approve_model_version, register_model
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.serving.deployments import list_deployments
from ghaf.settings import GhafSettings, load_settings
from ghaf.testing.people import mint, person
from tests.unit.server.cli_runner import ghaf as ghaf_cli
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow
MODEL = "fraud-model"


@dataclass
class Ops:
    platform: Platform
    server: ServerProcess
    tokens: dict[str, str]
    batch: Path
    """A Parquet batch whose ``amount`` moved far from the ``tx`` dataset's."""

    def http(self, who: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=self.server.url + "/api/v1", headers=headers, timeout=60)

    def client(self, who: str) -> Client:
        return ghaf.connect(self.server.url, token=self.tokens[who])


def _table(seed: int, shift: float, rows: int = 2_000) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "amount": rng.normal(100 + shift, 10, rows),
            "country": rng.choice(["ae", "sa", "om"], rows),
        }
    )


def _audit(platform: Platform) -> tuple[int, AuditRecordRow]:
    with platform.read_session() as session:
        count = session.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one()
        last = session.execute(
            select(AuditRecordRow).order_by(AuditRecordRow.seq.desc()).limit(1)
        ).scalar_one()
        session.expunge(last)
        return int(count), last


@pytest.fixture
def settings(isolated_env: Path) -> GhafSettings:
    """A home whose artifacts are stored where pii may live (the server reads the same file)."""
    isolated_env.mkdir(mode=0o700)
    (isolated_env / "ghaf.toml").write_text('artifact_region = "ae-auh-1"\n')
    return load_settings(home=isolated_env)


@pytest.fixture
def ops(platform: Platform, tmp_path: Path) -> Iterator[Ops]:
    from sklearn.linear_model import LogisticRegression

    admin = platform.admin()
    for project in ("fraud", "retail"):
        create_project(platform, admin, project)
    fraud = platform.in_project("fraud")
    x = np.random.default_rng(3).normal(size=(60, 3))
    saved = tmp_path / "model"
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), saved)
    dana = person(platform, "dana", ["data_scientist"], project="fraud")
    ben = person(platform, "ben", ["model_approver"], project="fraud")
    for number in (1, 2, 3):
        register_model(fraud, dana, MODEL, saved, project="fraud")
        if number < 3:  # version 3 stays unapproved
            approve_model_version(fraud, ben, f"{MODEL}:{number}")
    write_dataset(fraud, admin, "tx", _table(1, 0.0), source="test")
    write_dataset(fraud, admin, "tx", _table(2, 0.0), source="test")
    write_dataset(
        fraud, admin, "people", _table(4, 0.0), source="test", column_tags={"country": "pii"}
    )
    batch = tmp_path / "batch.parquet"
    pq.write_table(_table(5, 25.0), batch)
    roles = ["data_scientist", "release_manager"]
    tokens = {
        "alice": mint(platform, "alice", roles, project="fraud", bind_on="fraud"),
        "rita": mint(platform, "rita", roles, project="retail", bind_on="retail"),
        "vera": mint(platform, "vera", ["viewer"], project="fraud", bind_on="fraud"),
    }
    server = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start()
    try:
        yield Ops(platform, server, tokens, batch)
    finally:
        log = server.stop()
    assert "Traceback" not in log


def _deploy(alice: httpx.Client) -> dict[str, Any]:
    made = alice.post(
        "/deployments",
        json={
            "name": "fraud-live",
            "project": "fraud",
            "models": {f"{MODEL}:1": 90, f"{MODEL}:2": 10},
        },
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


def test_a_release_manager_records_and_changes_a_deployment(ops: Ops) -> None:
    with ops.http("alice") as alice:
        made = _deploy(alice)
        count, last = _audit(ops.platform)
        assert (last.action, last.actor, last.project, last.resource) == (
            "deployment.create",
            "alice",
            "fraud",
            "deployment:fraud-live",
        )
        assert made["models"] == {f"{MODEL}:1": 90.0, f"{MODEL}:2": 10.0}
        assert (made["project"], made["status"], made["revision"]) == ("fraud", "active", 1)
        moved = alice.patch(
            "/deployments/fraud-live",
            json={"models": {f"{MODEL}:2": 1}, "shadow": f"{MODEL}:1"},
        )
        assert moved.status_code == 200, moved.text
        assert (moved.json()["models"], moved.json()["shadow"]) == (
            {f"{MODEL}:2": 1.0},
            f"{MODEL}:1",
        )
        stopped = alice.patch("/deployments/fraud-live", json={"status": "stopped", "shadow": ""})
        assert (stopped.json()["status"], stopped.json()["shadow"]) == ("stopped", None)
        assert stopped.json()["revision"] == 3
        after, last = _audit(ops.platform)
        assert (after, last.action, last.actor) == (count + 2, "deployment.update", "alice")
        shown = alice.get("/deployments/fraud-live").json()
        assert shown == stopped.json()
        assert [d["name"] for d in alice.get("/deployments").json()["deployments"]] == [
            "fraud-live"
        ]
        assert alice.get("/deployments", params={"project": "retail"}).json() == {"deployments": []}
        # The release policy holds whichever door: version 3 is not approved.
        refused = alice.post(
            "/deployments",
            json={"name": "fraud-next", "project": "fraud", "models": {f"{MODEL}:3": 1}},
        )
        assert refused.status_code == 403 and "approved" in refused.json()["title"]
        assert _audit(ops.platform)[1].outcome == "denied"
    with ops.http("vera") as vera:  # a viewer reads, and may not deploy
        assert vera.get("/deployments/fraud-live").status_code == 200
        denied = vera.patch("/deployments/fraud-live", json={"status": "active"})
        assert denied.status_code == 403
    assert [d.name for d in list_deployments(ops.platform)] == ["fraud-live"]


def test_the_sdk_deploys_and_refuses_what_embedded_mode_refuses(ops: Ops) -> None:
    with ops.client("alice") as alice:
        made = alice.create_deployment("fraud-sdk", [f"{MODEL}:1"], project="fraud")
        assert made["models"] == {f"{MODEL}:1": 1.0}
        changed = alice.update_deployment("fraud-sdk", models={f"{MODEL}:1": 3, f"{MODEL}:2": 1})
        assert changed["revision"] == 2 and alice.deployment("fraud-sdk") == changed
        assert [d["name"] for d in alice.deployments("fraud")] == ["fraud-sdk"]
        with pytest.raises(PolicyViolationError, match="approved"):
            alice.create_deployment("fraud-3", [f"{MODEL}:3"], project="fraud")
        with pytest.raises(NotFoundError):
            alice.update_deployment("nope", status="stopped")


def test_another_project_sees_none_of_the_deployments(ops: Ops) -> None:
    with ops.http("alice") as alice:
        _deploy(alice)
        assert (
            alice.post(  # alice is not a release manager of retail
                "/deployments",
                json={"name": "r", "project": "retail", "models": {f"{MODEL}:1": 1}},
            ).status_code
            == 403
        )
    before = _audit(ops.platform)[0]
    with ops.http("rita") as rita:
        assert rita.get("/deployments").json() == {"deployments": []}
        assert rita.get("/deployments", params={"project": "fraud"}).json() == {"deployments": []}
        for answer in (
            rita.get("/deployments/fraud-live"),
            rita.patch("/deployments/fraud-live", json={"status": "stopped"}),
            # fraud's model is not there for her, whatever project she deploys into
            rita.post(
                "/deployments",
                json={"name": "mine", "project": "retail", "models": {f"{MODEL}:1": 1}},
            ),
        ):
            assert answer.status_code == 404, answer.text
    after, last = _audit(ops.platform)
    assert after > before and last.outcome == "denied"  # refused reads are audited
    with ops.http("alice") as alice:
        shown = alice.get("/deployments/fraud-live").json()
    assert (shown["status"], shown["revision"]) == ("active", 1)  # untouched


def test_bad_deployment_input_is_a_400_naming_the_field(ops: Ops) -> None:
    before = _audit(ops.platform)[0]
    bad = [
        ({"name": "d", "project": "fraud", "models": {}}, "models"),
        ({"name": "d", "project": "fraud", "models": {f"{MODEL}:1": -1}}, "models"),
        ({"name": "d", "project": "fraud", "models": {"../etc:1": 1}}, "models"),
        ({"name": "a b", "project": "fraud", "models": {f"{MODEL}:1": 1}}, "name"),
        ({"name": "d", "project": "Fraud!", "models": {f"{MODEL}:1": 1}}, "project"),
        ({"name": "d", "project": "fraud", "models": {f"{MODEL}:1": 0}}, None),
    ]
    with ops.http("alice") as alice:
        for body, field in bad:
            answer = alice.post("/deployments", json=body)
            assert answer.status_code == 400, (body, answer.text)
            if field is not None:
                assert answer.json()["errors"][0]["field"].startswith(field), answer.json()
        _deploy(alice)
        for change, field in (({}, "body"), ({"status": "paused"}, "status")):
            answer = alice.patch("/deployments/fraud-live", json=change)
            assert answer.status_code == 400 and field in answer.json()["title"], answer.text
    assert [d.name for d in list_deployments(ops.platform)] == ["fraud-live"]
    assert _audit(ops.platform)[0] == before + 2  # the refused zero split and the create


def _embedded_report(ops: Ops, reference: Any, current: Any) -> dict[str, Any]:
    report = compare_profiles(
        reference,
        current,
        DriftOptions(alpha=0.05, domain_classifier=False),
        reference_name="r",
        current_name="c",
    )
    return report.to_dict(histograms=False)


def _numbers(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (c["column"], c["verdict"], c["statistic"], c["p_value"], c["adjusted_p"], c["distances"])
        for c in report["columns"]
    ]


def test_profiles_and_drift_checks_give_embedded_mode_s_numbers(ops: Ops) -> None:
    platform = ops.platform
    with ops.http("alice") as alice:
        saved = alice.post("/projects/fraud/profiles", json={"name": "tx-ref", "dataset": "tx:1"})
        assert saved.status_code == 201, saved.text
        assert (saved.json()["version"], saved.json()["project"]) == (1, "fraud")
        _, last = _audit(platform)
        assert (last.action, last.actor, last.project) == (
            "monitoring.profile.save",
            "alice",
            "fraud",
        )
        uploaded = alice.post(
            "/projects/fraud/profiles/tx-batch/data",
            content=ops.batch.read_bytes(),
            params={"source": "batch.parquet"},
            headers={"content-type": "application/octet-stream"},
        )
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["num_rows"] == 2_000 and uploaded.json()["source"] == "batch.parquet"
        listed = alice.get("/profiles").json()["profiles"]
        assert [(p["name"], p["version"]) for p in listed] == [("tx-batch", 1), ("tx-ref", 1)]
        assert alice.get("/profiles/tx-ref@1").json() == saved.json()

        reference = load_profile(platform, "tx-ref@1")
        embedded = _embedded_report(ops, reference, profile_window(ops.batch))
        checked = alice.post(
            "/drift/batch",
            content=ops.batch.read_bytes(),
            params={"reference": "profile:tx-ref", "domain_classifier": "false"},
            headers={"content-type": "application/octet-stream"},
        )
        assert checked.status_code == 200, checked.text
        report = checked.json()
        assert report["drifted_columns"] == ["amount"] == embedded["drifted_columns"]
        assert _numbers(report) == _numbers(embedded)
        assert (report["reference_name"], report["current_name"]) == ("profile:tx-ref", "upload")

        named = alice.post(
            "/drift",
            json={"reference": "profile:tx-ref", "current": "tx:2", "domain_classifier": False},
        )
        assert named.status_code == 200, named.text
        same = _embedded_report(
            ops, reference, profile_window(dataset_parquet_path(platform, "tx:2"))
        )
        assert _numbers(named.json()) == _numbers(same) and named.json()["drifted_columns"] == []
        # pii columns need dataset.read_pii, which a data scientist does not have
        pii = alice.post("/projects/fraud/profiles", json={"name": "p", "dataset": "people:1"})
        assert pii.status_code == 403, pii.text


def test_the_sdk_saves_profiles_and_checks_drift(ops: Ops) -> None:
    with ops.client("alice") as alice:
        stored = alice.save_profile("sdk-ref", project="fraud", dataset="tx:1", columns=["amount"])
        assert (stored["num_columns"], stored["source"]) == (1, "tx:1")
        again = alice.save_profile("sdk-ref", project="fraud", path=ops.batch)
        assert again["version"] == 2 and alice.profile("sdk-ref")["version"] == 2
        report = alice.check_drift("profile:sdk-ref@1", ops.batch, domain_classifier=False)
        assert report["drifted_columns"] == ["amount"]
        assert [p["version"] for p in alice.profiles("sdk-ref")] == [1, 2]
        with pytest.raises(NotFoundError):
            alice.profile("sdk-ref@9")


def test_another_project_sees_none_of_the_profiles(ops: Ops) -> None:
    with ops.http("alice") as alice:
        made = alice.post("/projects/fraud/profiles", json={"name": "tx-ref", "dataset": "tx:1"})
        assert made.status_code == 201, made.text
    with ops.http("rita") as rita:
        assert rita.get("/profiles").json() == {"profiles": []}
        assert rita.get("/profiles", params={"name": "tx-ref"}).json() == {"profiles": []}
        for answer in (
            rita.get("/profiles/tx-ref"),
            rita.get("/profiles/tx-ref@1"),
            rita.post("/drift", json={"reference": "profile:tx-ref", "current": "profile:tx-ref"}),
            rita.post(
                "/drift/batch",
                content=ops.batch.read_bytes(),
                params={"reference": "profile:tx-ref"},
                headers={"content-type": "application/octet-stream"},
            ),
            # fraud's dataset is not there for her either
            rita.post("/projects/retail/profiles", json={"name": "stolen", "dataset": "tx:1"}),
            rita.post("/drift", json={"reference": "tx:1", "current": "tx:2"}),
        ):
            assert answer.status_code == 404, answer.text
        # her project may not take over the name: drift checks of fraud would read her data
        taken = rita.post(
            "/projects/retail/profiles/tx-ref/data",
            content=ops.batch.read_bytes(),
            headers={"content-type": "application/octet-stream"},
        )
        assert taken.status_code == 409, taken.text
        assert (
            rita.post("/projects/fraud/profiles", json={"name": "x", "dataset": "tx:1"}).status_code
            == 403
        )
        # a profile of her own lives in her project, and is all she lists
        mine = rita.post(
            "/projects/retail/profiles/retail-ref/data",
            content=ops.batch.read_bytes(),
            headers={"content-type": "application/octet-stream"},
        )
        assert mine.status_code == 201 and mine.json()["project"] == "retail", mine.text
        listed = rita.get("/profiles").json()["profiles"]
        assert [(p["name"], p["project"]) for p in listed] == [("retail-ref", "retail")]
        assert rita.get("/profiles/retail-ref").json() == mine.json()
    with ops.http("alice") as alice:
        listed = alice.get("/profiles").json()["profiles"]
        assert [(p["name"], p["version"], p["project"]) for p in listed] == [("tx-ref", 1, "fraud")]
        assert alice.get("/profiles/retail-ref").status_code == 404


def test_bad_monitoring_input_is_a_400_naming_the_field(ops: Ops, tmp_path: Path) -> None:
    before = _audit(ops.platform)[0]
    octet = {"content-type": "application/octet-stream"}
    with ops.http("alice") as alice:
        for body, field in (
            ({"reference": "/etc/passwd", "current": "tx:1"}, "reference"),
            ({"reference": "tx:1", "current": "../../home/x.parquet"}, "current"),
            ({"reference": "tx:1", "current": "tx:2", "alpha": 2}, "alpha"),
            ({"reference": "tx:1"}, "current"),
        ):
            answer = alice.post("/drift", json=body)
            assert answer.status_code == 400, answer.text
            assert answer.json()["errors"][0]["field"] == field
        for body, field in (
            ({"name": "a/b", "dataset": "tx:1"}, "name"),
            ({"name": "ok", "dataset": "/etc/passwd"}, "dataset"),
        ):
            answer = alice.post("/projects/fraud/profiles", json=body)
            assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == field
        not_parquet = alice.post(
            "/projects/fraud/profiles/junk/data", content=b"not parquet", headers=octet
        )
        assert not_parquet.status_code == 400
        assert "not a readable Parquet file" in not_parquet.json()["title"]
        wrong_ref = alice.post(
            "/drift/batch",
            content=ops.batch.read_bytes(),
            params={"reference": "/etc/passwd"},
            headers=octet,
        )
        assert (
            wrong_ref.status_code == 400
            and wrong_ref.json()["errors"][0]["field"] == "query.reference"
        )
        missing = alice.post("/drift", json={"reference": "profile:none", "current": "tx:1"})
        assert missing.status_code == 404 and "no stored profile" in missing.json()["title"]
        assert alice.get("/profiles").json() == {"profiles": []}
    assert _audit(ops.platform)[0] == before  # refused before anything was done


# The CLI against the server prints what it prints on the home

TIMES = ("created_at", "updated_at", "seconds")


def _both(ops: Ops, *command: str) -> tuple[subprocess.CompletedProcess[str], ...]:
    token = ops.tokens["alice"]
    local = ghaf_cli("--home", str(ops.platform.settings.home), "--token", token, *command)
    remote = ghaf_cli("--url", ops.server.url, "--token", token, *command)
    return local, remote


def _timeless(document: Any) -> Any:
    if isinstance(document, dict):
        return {k: _timeless(v) for k, v in document.items() if k not in TIMES}
    if isinstance(document, list):
        return [_timeless(v) for v in document]
    return document


def test_cli_reads_print_the_same_in_both_modes(ops: Ops, tmp_path: Path) -> None:
    with ops.http("alice") as alice:
        _deploy(alice)
        saved = alice.post("/projects/fraud/profiles", json={"name": "tx-ref", "dataset": "tx:1"})
        assert saved.status_code == 201, saved.text
    for command in (
        ("deployments", "list"),
        ("deployments", "show", "fraud-live"),
        ("monitor", "profiles"),
        ("monitor", "profiles", "tx-ref"),
        ("monitor", "profiles", "tx-ref@1"),
    ):
        for output in ((), ("--output", "json")):
            local, remote = _both(ops, *command, *output)
            assert local.returncode == remote.returncode == 0, (
                command,
                local.stderr,
                remote.stderr,
            )
            assert remote.stdout == local.stdout, command
            if output:
                json.loads(remote.stdout)
    for current in (str(ops.batch), "tx:2"):
        check = ("monitor", "drift", "--reference", "profile:tx-ref", "--current", current)
        local, remote = _both(ops, *check, "--no-domain", "--output", "json")
        assert local.returncode == remote.returncode, (local.stderr, remote.stderr)
        assert _timeless(json.loads(remote.stdout)) == _timeless(json.loads(local.stdout))
        local, remote = _both(ops, *check, "--no-domain")
        assert remote.stdout == local.stdout and "column(s) drifted" in local.stdout
    assert local.returncode == 0 and remote.returncode == 0  # tx:2 did not drift
    drifted = _both(ops, "monitor", "drift", "--reference", "profile:tx-ref", "--current",
                    str(ops.batch), "--no-domain")  # fmt: skip
    assert [r.returncode for r in drifted] == [1, 1]  # drift found: exit 1 in both modes
    html = tmp_path / "drift.html"
    token = ops.tokens["alice"]
    remote_html = ghaf_cli("--url", ops.server.url, "--token", token, "monitor", "drift",
                           "--reference", "profile:tx-ref", "--current", str(ops.batch),
                           "--no-domain", "--html", str(html))  # fmt: skip
    assert remote_html.returncode == 1, remote_html.stderr
    assert "<svg" in html.read_text() and "amount" in html.read_text()


def test_cli_writes_and_errors_are_the_same_in_both_modes(ops: Ops) -> None:
    made = []
    for mode, name in (("local", "fraud-a"), ("remote", "fraud-b")):
        where = (
            ("--home", str(ops.platform.settings.home))
            if mode == "local"
            else ("--url", ops.server.url)
        )
        base = (*where, "--token", ops.tokens["alice"])
        models = (f"{MODEL}:1=3", f"{MODEL}:2=1")
        steps = [
            ("deployments", "create", name, *models, "--project", "fraud", "-o", "json"),
            ("deployments", "update", name, "--status", "stopped", "-o", "json"),
            (
                "monitor",
                "profile",
                str(ops.batch),
                "--name",
                f"p-{name}",
                "--project",
                "fraud",
                "-o",
                "json",
            ),
        ]
        outputs = []
        for step in steps:
            run = ghaf_cli(*base, *step)
            assert run.returncode == 0, (mode, step, run.stderr)
            outputs.append(_timeless(json.loads(run.stdout)))
        made.append(outputs)
    local, remote = made
    assert local[0] == {**remote[0], "name": "fraud-a"}
    assert local[1] == {**remote[1], "name": "fraud-a"} and local[1]["revision"] == 2
    assert local[2] == {**remote[2], "name": "p-fraud-a"} and local[2]["project"] == "fraud"
    for missing in (("deployments", "show", "nope"), ("monitor", "profiles", "nope@1")):
        local_run, remote_run = _both(ops, *missing)
        assert local_run.returncode == remote_run.returncode == 4
        assert remote_run.stderr.splitlines()[0] == local_run.stderr.splitlines()[0]
    token = ops.tokens["alice"]
    local_file = ghaf_cli("--url", ops.server.url, "--token", token, "monitor", "drift",
                          "--reference", str(ops.batch), "--current", "tx:1")  # fmt: skip
    assert local_file.returncode != 0 and "profile:NAME" in local_file.stderr
    assert "Traceback" not in local_file.stderr
