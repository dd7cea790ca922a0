"""Quotas and the job queue through their doors: ``ghaf jobs`` and ``ghaf quotas`` as a
user types them on a home, and ``ghaf server``'s routes (one server for the module).
Over quota: exit 7 and one line; over HTTP a 403 problem naming the quota and the fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from ghaf.home import init_home
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.scheduling import set_quota, submit_job
from ghaf.scheduling.queue import claim_next, finish_job
from ghaf.settings import load_settings
from ghaf.testing.people import mint
from tests.unit.server.cli_runner import ghaf
from tests.unit.serving.server_processes import ServerProcess, audit_records

pytestmark = pytest.mark.slow
PIPELINE = "ghaf.pipelines.examples:numbers"
ENV = {"GHAF_PIPELINES": json.dumps([PIPELINE])}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A home where project vision spent 1.33 GPU-hours of its 1 GPU-hour quota."""
    root = tmp_path_factory.mktemp("doors") / "home"
    with init_home(load_settings(home=root, pipelines=[PIPELINE])) as platform:
        admin = platform.admin()
        set_quota(platform, admin, "vision", gpu_hours=1.0, period="30d")
        start = utcnow() - timedelta(hours=2)
        job = submit_job(platform, admin, "pipeline", PIPELINE, project="vision", gpus=2, at=start)
        assert claim_next(platform, admin, "h:1:1", at=start) is not None
        finish_job(platform, admin, job.id, "h:1:1", status="succeeded",
                   at=start + timedelta(minutes=40))  # fmt: skip
        yield platform


@pytest.fixture(scope="module")
def server(home: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("doors-log") / "server.log"
    running = ServerProcess(home.settings.home, ("server",), "/health", log, env=ENV).start()
    try:
        yield running.url
    finally:
        assert "Traceback" not in running.stop()


def test_the_cli_refuses_over_quota_and_shows_the_queue(home: Platform) -> None:
    env = {**ENV, "GHAF_HOME": str(home.settings.home)}
    refused = ghaf("jobs", "submit", PIPELINE, "--project", "vision", "--gpus", "1", env=env)
    assert refused.returncode == 7, refused.stderr
    error, hint = refused.stderr.strip().splitlines()  # the error's line and its fix
    assert error.startswith("error: project 'vision' is over its GPU-hours quota: 1.33 of 1 ")
    assert "ghaf quotas set vision --gpu-hours" in hint and "Traceback" not in refused.stderr

    queued = ghaf("jobs", "submit", PIPELINE, "--project", "vision", "-o", "json", env=env)
    assert queued.returncode == 0, queued.stderr
    job = json.loads(queued.stdout)
    assert job["status"] == "queued" and job["position"] == 1
    listed = json.loads(ghaf("jobs", "list", "--status", "queued", "-o", "json", env=env).stdout)
    assert [(j["id"], j["position"], j["project"]) for j in listed["jobs"]] == [
        (job["id"], 1, "vision")
    ]
    moved = ghaf("jobs", "priority", job["id"][:10], "7", "-o", "json", env=env)
    assert json.loads(moved.stdout)["priority"] == 7
    done = ghaf("jobs", "cancel", job["id"][:10], env=env)
    assert done.returncode == 0 and "cancelled" in done.stdout
    shown = json.loads(ghaf("quotas", "show", "vision", "-o", "json", env=env).stdout)
    assert shown["gpu_hours"] == 1.0 and shown["usage"]["gpu_hours"] == pytest.approx(4 / 3)
    bad = ghaf("quotas", "set", "vision", "--period", "fortnight", env=env)
    assert bad.returncode == 3 and "period 'fortnight' is not a duration" in bad.stderr


def test_the_routes_refuse_over_quota_and_queue_cancel_and_reorder(
    home: Platform, server: str
) -> None:
    dana = mint(home, "dana", ["data_engineer"], project="vision", bind_on="vision")
    vic = mint(home, "vic", ["viewer"], project="other", bind_on="other")
    pat = mint(home, "pat", ["project_admin"], project="vision", bind_on="vision")
    root = mint(home, "root", ["project_admin"], project="*", bind_on="*")
    api = f"{server}/api/v1"

    def call(token: str, method: str, path: str, body: object = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"}
        return httpx.request(method, api + path, json=body, headers=headers, timeout=30)

    ask = {"pipeline": PIPELINE, "project": "vision", "gpus": 1}
    refused = call(dana, "POST", "/jobs", ask)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert "over its GPU-hours quota" in problem["title"]
    assert "ghaf quotas set vision --gpu-hours" in problem["hint"]
    denied = audit_records(home, outcome="denied", action="job.submit")[-1]
    assert denied.actor == "dana" and "GPU-hours quota" in denied.details

    first = call(dana, "POST", "/jobs", {**ask, "gpus": 0})
    second = call(dana, "POST", "/jobs", {**ask, "gpus": 0})
    assert (first.status_code, second.status_code) == (202, 202), first.text
    a, b = first.json(), second.json()
    assert (a["position"], b["position"]) == (1, 2)
    assert call(dana, "PUT", f"/jobs/{b['id']}/priority", {"priority": 5}).json()["position"] == 1
    queue = call(dana, "GET", "/jobs?status=queued").json()["jobs"]
    assert [(j["id"], j["position"], j["priority"]) for j in queue] == [
        (b["id"], 1, 5), (a["id"], 2, 0),
    ]  # fmt: skip
    assert call(vic, "GET", "/jobs").json()["jobs"] == []
    assert call(vic, "POST", f"/jobs/{a['id']}/cancel").status_code == 404
    assert call(dana, "POST", f"/jobs/{a['id']}/cancel").json()["status"] == "cancelled"
    bad = call(dana, "PUT", f"/jobs/{b['id']}/priority", {"priority": 5000})
    assert bad.status_code == 400 and "priority" in bad.text

    # Quotas: a project's own admin may not raise it; a home-wide one may.
    assert call(pat, "PUT", "/projects/vision/quota", {"gpu_hours": 100}).status_code == 403
    raised = call(root, "PUT", "/projects/vision/quota", {"gpu_hours": 2, "weight": 3})
    assert raised.status_code == 200, raised.text
    assert raised.json()["weight"] == 3 and raised.json()["usage"]["gpu_hours"] > 1
    assert call(dana, "POST", "/jobs", ask).status_code == 202  # GPU work accepted again
    assert call(dana, "GET", "/projects/vision/quota").json()["gpu_hours"] == 2
    assert call(vic, "GET", "/projects/vision/quota").status_code == 403
    [made] = audit_records(home, outcome="allowed", action="quota.set")[-1:]
    assert made.actor == "root" and made.project == "*"
