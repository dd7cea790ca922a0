"""Scheduled monitors end to end over a real ``ghaf serve``: real HTTP traffic is logged
with its feature names, a feature shifted in the traffic is detected (that one only), an
alert and an incident open on the deployment and version, ``drift.detected`` reaches the
bus and a pipeline trigger reacts; labels reported later through ``/v2/feedback`` fill in
the same window's performance. The doors: the CLI as a user types it, the SDK over the
control plane's routes, and the monitors pipeline step."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import ghaf
from ghaf.errors import NotFoundError
from ghaf.events.base import Event
from ghaf.home import init_home
from ghaf.incidents.records import list_incidents
from ghaf.monitoring.monitors import list_results, run_monitor
from ghaf.monitoring.steps import monitors
from ghaf.pipelines.examples import whoami
from ghaf.pipelines.pipeline import Pipeline
from ghaf.pipelines.runner import run_pipeline
from ghaf.pipelines.triggers import EventTrigger, TriggerLoop
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.serving.predlog import prediction_log_keys, read_prediction_windows
from ghaf.settings import load_settings
from ghaf.testing.people import mint
from tests.unit.monitoring.monitor_home import FEATURES, Seeded, features, labels_for, seed_home
from tests.unit.server.cli_runner import ghaf as ghaf_cli
from tests.unit.serving.server_processes import ServerProcess, bearer

pytestmark = pytest.mark.slow
N = 400


@dataclass
class Served:
    home: Path
    platform: Platform
    server: ServerProcess
    token: str
    seeded: Seeded

    @property
    def log_dir(self) -> Path:
        return self.home / "predictions"

    def cli(self, *args: str) -> Any:
        return ghaf_cli("--home", str(self.home), *args, env={"GHAF_HOME": str(self.home)})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("monitor-served")
    home = root / "home"
    with init_home(load_settings(home=home)) as platform:
        seeded = seed_home(platform, root)
        token = mint(platform, "scoring-app", ["model_server"], bind_on=platform.default_project)
        args = ("serve", "fraud@champion", "--log-dir", str(home / "predictions"),
                "--metrics-public")  # fmt: skip
        server = ServerProcess(home, args, "/v2/health/ready", root / "serve.log").start()
        try:
            yield Served(home, platform, server, token, seeded)
        finally:
            output = server.stop()
            assert "Traceback" not in output, output


def _score(served: Served, x: np.ndarray, tag: str) -> list[str]:
    """One OIP request per row, each with its own request id."""
    ids = [f"{tag}-{i}" for i in range(len(x))]
    with httpx.Client(base_url=served.server.url, headers=bearer(served.token)) as http:
        for request_id, row in zip(ids, x, strict=True):
            body = {
                "id": request_id,
                "inputs": [
                    {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": row.tolist()}
                ],
            }
            answer = http.post("/v2/models/fraud/infer", json=body, timeout=30)
            assert answer.status_code == 200, answer.text
    return ids


def _wait_logged(served: Served, requests: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = read_prediction_windows(
            served.log_dir, "fraud", features=False, keys=prediction_log_keys(served.platform)
        ).get("1")
        if found is not None and found.requests >= requests:
            return
        time.sleep(0.1)
    raise AssertionError(f"the server did not log {requests} predictions in 30 s")


def _reaction() -> Pipeline:
    """What a drift trigger starts here: one step (a retraining pipeline in production)."""
    pipeline = Pipeline("react", "reacts to drift.detected")
    pipeline.add(whoami)
    return pipeline


def _json(done: Any) -> Any:
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def test_served_traffic_drift_is_caught_and_late_labels_fill_in_its_window(
    served: Served,
) -> None:
    platform, admin = served.platform, served.platform.admin()
    project = platform.default_project
    made = _json(served.cli("monitor", "schedule", "fraud", "--every", "1h", "--output", "json"))
    assert (made["interval_s"], made["window_s"], made["log_dir"]) == (
        3600,
        3600,
        str(served.log_dir),
    )

    baseline = features(20, N)
    baseline_ids = _score(served, baseline, "base")
    _wait_logged(served, N)
    keys = prediction_log_keys(platform)  # ghaf serve encrypts the log with the home's KEK
    window = read_prediction_windows(served.log_dir, "fraud", keys=keys)["1"]
    assert window.features.column_names == list(FEATURES)  # the log knows the names
    np.testing.assert_array_equal(
        window.features.column("age").to_numpy(), baseline[:, FEATURES.index("age")]
    )

    # The first run makes the version's training profile and reference scores.
    [first] = run_monitor(platform, admin, "fraud").results
    assert (first.model_version, first.status, first.predictions) == ("fraud:1", "ok", N)
    assert first.report["reference"] == "profile:fraud-v1-training@1"

    shifted = features(21, N, shift={"amount": 2.5})
    shifted_ids = _score(served, shifted, "shift")
    _wait_logged(served, 2 * N)
    events: list[Event] = []
    platform.events.subscribe("drift.detected", events.append)
    trigger = EventTrigger("retrain", "drift.detected", _reaction, {"model": "fraud"})
    loop = TriggerLoop(platform, admin, [trigger])
    try:
        drifted = run_monitor(platform, admin, "fraud")
        decisions = loop.tick()
    finally:
        loop.stop()
    [result] = drifted.results
    assert result.status == "breached" and result.drifted_features == ("amount",)
    assert "drift" in result.breaches and "prediction_drift" in result.breaches
    assert result.predictions == 2 * N and result.performance is None
    [event] = events
    assert (event.data["deployment"], event.data["model_version"]) == ("fraud", "fraud:1")
    assert event.data["features"] == ["amount"] and event.data["result"] == result.id
    [decision] = decisions
    assert decision.fired and decision.run is not None and decision.run.status == "succeeded"
    drift_incidents = [i for i in list_incidents(platform) if i.title.startswith("drift on")]
    [incident] = drift_incidents
    assert (incident.deployment, incident.model_version) == ("fraud", "fraud:1")
    assert incident.fingerprint in result.alerts

    # The labels come in later, reported by the scoring application.
    x = np.concatenate([baseline, shifted])
    outcomes = [
        {"request_id": r, "outcome": int(y)}
        for r, y in zip(baseline_ids + shifted_ids, labels_for(22, x), strict=True)
    ]
    with httpx.Client(base_url=served.server.url, headers=bearer(served.token)) as http:
        stored = http.post("/v2/feedback", json={"model": "fraud", "outcomes": outcomes})
    assert stored.status_code == 201, stored.text
    # The monitors pipeline (a worker process) runs next: it fills in both windows.
    piped = run_pipeline(platform, admin, monitors("fraud"))
    assert piped.status == "succeeded", piped
    history = {r.id: r for r in list_results(platform, "fraud")}
    assert history[first.id].labels == N and history[result.id].labels == 2 * N
    performance = history[result.id].performance
    assert performance is not None and history[result.id].label_coverage == 1.0
    estimate = result.report["estimate"]
    assert performance["accuracy"] == pytest.approx(estimate["accuracy"], abs=0.06)
    assert performance["roc_auc"] == pytest.approx(estimate["roc_auc"], abs=0.06)
    assert history[result.id].window_end == result.window_end

    done = served.cli("monitor", "run", "fraud", "--output", "json")
    assert done.returncode == 1, done.stderr  # the window still holds the shifted traffic
    later = _json(done)
    assert later["results"][0]["labels"] == 2 * N and later["updated"] == []
    table = served.cli("monitor", "status")
    assert table.returncode == 0 and "fraud:1" in table.stdout and "amount" in table.stdout

    with ghaf.connect(home=served.home) as client:  # the SDK over the control plane's routes
        assert [m["deployment"] for m in client.monitors(project)] == ["fraud"]
        [latest] = client.monitor_status(project)
        assert latest["id"] == later["results"][0]["id"] and latest["labels"] == 2 * N
        [newest, same] = client.monitor_results(project, "fraud", limit=2)
        assert newest["id"] == latest["id"] and same["id"] < newest["id"]
        [again] = client.run_monitors(project, "fraud")
        assert again["results"][0]["drifted_features"] == ["amount"]


def test_the_cli_names_what_is_wrong_and_loops_boundedly(served: Served) -> None:
    missing = served.cli("monitor", "schedule", "nope")
    assert missing.returncode == 4 and "deployment 'nope' does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = served.cli("monitor", "schedule", "fraud", "--every", "soon")
    assert bad.returncode == 3 and "--every 'soon' is not a duration" in bad.stderr
    looped = served.cli("monitor", "run", "--loop", "--every", "1s", "--for", "2s")
    assert looped.returncode == 0, looped.stderr


def test_another_project_s_deployment_reads_as_unknown(served: Served) -> None:
    """An SRE of another project gets, for this project's deployment, the answers an
    unknown name gets (with the name swapped), and sees none of its results."""
    platform = served.platform
    create_project(platform, platform.admin(), "beta")
    token = mint(platform, "beta-sre", ["sre"], project="beta", bind_on="beta")
    with ghaf.connect(home=served.home, token=token) as client:
        answers = []
        for name in ("fraud", "ghost"):
            with pytest.raises(NotFoundError) as caught:
                client.schedule_monitor("beta", name)
            answers.append(str(caught.value).replace(name, "NAME"))
            with pytest.raises(NotFoundError) as caught:
                client.run_monitors("beta", name)
            answers.append(str(caught.value).replace(name, "NAME"))
            assert client.monitor_results("beta", name) == []
        assert answers[:2] == answers[2:]
        assert client.monitor_status("beta") == [] and client.monitors("beta") == []


def test_ghaf_server_runs_the_live_loop_by_itself(served: Served, tmp_path: Path) -> None:
    """Started with its live loop on, ``ghaf server`` runs the due monitor and reads the
    scheduled SLO's counters from the model server with no one asking, as the home's
    owner (audited); ``/health/ready`` says it runs, and how many passes it made."""
    from ghaf.slo import SLO
    from ghaf.slo.schedule import list_slo_scrapes, schedule_slo
    from ghaf.slo.store import define_slo

    platform, owner = served.platform, served.platform.admin()
    define_slo(platform, owner, SLO("fraud-up", "fraud", "availability", 0.99))
    schedule_slo(platform, owner, "fraud-up", [served.server.url], every=10)
    made = _json(served.cli("monitor", "schedule", "fraud", "--every", "5s", "-o", "json"))
    before = {r.id for r in list_results(platform, "fraud")}
    env = {"GHAF_SERVER__LIVE_LOOP": "true", "GHAF_SERVER__LIVE_LOOP_EVERY_S": "1"}
    server = ServerProcess(served.home, ("server",), "/health", tmp_path / "server.log", env=env)
    server.start(timeout=300)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ran = [r for r in list_results(platform, "fraud") if r.id not in before]
            [scrape] = list_slo_scrapes(platform)
            ready = httpx.get(server.url + "/health/ready", timeout=10).json()["live_loop"]
            # a pass is counted when it ends: its monitor run commits before that
            if ran and scrape.updated_at < scrape.next_due and ready["passes"] >= 1:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the server's loop did nothing: {server.output()[-3000:]}")
        assert scrape.last_error == "", scrape.last_error
        assert ready["running"] and ready["last_error"] is None, ready
    finally:
        output = server.stop()
    assert "Traceback" not in output, output
    assert made["interval_s"] == 5
    with platform.read_session() as session:
        from sqlalchemy import select

        from ghaf.security.audit_tables import AuditRecordRow

        actors = set(
            session.execute(
                select(AuditRecordRow.actor).where(
                    AuditRecordRow.action.in_(["monitoring.run", "slo.scrape"]),
                    AuditRecordRow.outcome == "allowed",  # another test's refusals are kept
                )
            ).scalars()
        )
    assert actors == {owner.name}
