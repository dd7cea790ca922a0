"""``ghaf pipelines`` against ``ghaf server`` (``--url``) prints what it prints on the home:
the same tables and JSON for the same runs, the same errors and exit codes; ``run``
submits to the server and follows the run there, ``cancel`` stops one."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ghaf.client import Client
from ghaf.platform import Platform
from ghaf.testing.people import mint
from tests.unit.server.cli_runner import ghaf
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow
NUMBERS = "ghaf.pipelines.examples:numbers"
SLEEPY = "ghaf.pipelines.examples:sleepy"


@dataclass
class Served:
    home: str
    url: str
    token: str

    def local(self, *args: str) -> subprocess.CompletedProcess[str]:
        return ghaf("--home", self.home, "--token", self.token, *args)

    def remote(self, *args: str) -> subprocess.CompletedProcess[str]:
        return ghaf("--url", self.url, "--token", self.token, *args)


@pytest.fixture
def served(platform: Platform, tmp_path: Path) -> Iterator[Served]:
    token = mint(platform, "alice", ["data_engineer"])
    server = ServerProcess(
        platform.settings.home,
        ("server",),
        "/health",
        tmp_path / "server.log",
        env={"GHAF_PIPELINES": json.dumps([NUMBERS, SLEEPY])},
    ).start()
    try:
        yield Served(str(platform.settings.home), server.url, token)
    finally:
        log = server.stop()
    assert "Traceback" not in log, log


def test_runs_print_the_same_in_both_modes(served: Served) -> None:
    submitted = served.remote("pipelines", "run", NUMBERS, "-p", "rows=20", "--output", "json")
    assert submitted.returncode == 0, submitted.stderr
    run = json.loads(submitted.stdout)
    assert (run["status"], run["created_by"], run["project"]) == ("succeeded", "alice", "default")
    assert [s["status"] for s in run["steps"]] == ["succeeded"] * 4
    followed = served.remote("pipelines", "run", NUMBERS, "-p", "rows=20")
    assert followed.returncode == 0, followed.stderr
    last = followed.stdout.strip().splitlines()[-1]
    assert last.startswith("run ") and last.endswith(": succeeded")
    assert "cached" in followed.stdout  # the progress table: every step from the cache
    commands = [
        ("pipelines", "list"),
        ("pipelines", "list", "--pipeline", "numbers", "--limit", "1"),
        ("pipelines", "show", run["id"]),
        ("pipelines", "logs", run["id"]),
        ("pipelines", "logs", run["id"][:12], "--step", "column_sum"),
        ("pipelines", "triggers", "fired"),
    ]
    for command in commands:
        for output in ((), ("--output", "json")):
            local = served.local(*command, *output)
            remote = served.remote(*command, *output)
            assert local.returncode == remote.returncode == 0, (
                command,
                local.stderr,
                remote.stderr,
            )
            assert remote.stdout == local.stdout, command
    shown = json.loads(served.remote("pipelines", "show", run["id"], "--output", "json").stdout)
    assert shown == run
    logs = json.loads(served.remote("pipelines", "logs", run["id"], "--output", "json").stdout)
    assert [entry["step"] for entry in logs["logs"]] == [s["step"] for s in run["steps"]]
    assert all(entry["log"].startswith("--- attempt 1 ---") for entry in logs["logs"])


def test_errors_read_the_same_and_a_cancel_stops_a_run(served: Served, tmp_path: Path) -> None:
    for command in (
        ("pipelines", "show", "0" * 12),
        ("pipelines", "logs", "0" * 12),
    ):
        local, remote = served.local(*command), served.remote(*command)
        assert local.returncode == remote.returncode != 0, command
        assert "does not exist" in local.stderr and "does not exist" in remote.stderr
    # A module the server does not declare is refused as a module that is not there is.
    local = served.local("pipelines", "run", "nosuch.module:pipeline")
    remote = served.remote("pipelines", "run", "nosuch.module:pipeline")
    assert local.returncode == remote.returncode != 0
    assert "not one this server runs" in remote.stderr
    on_home = served.local("pipelines", "cancel", "0" * 12)
    assert on_home.returncode != 0 and "works against a server" in on_home.stderr
    marker = tmp_path / "marker"
    with Client(served.url, served.token) as alice:
        run = alice.submit_pipeline(
            SLEEPY, project="default", params={"marker_dir": str(marker), "seconds": 120}
        )
        deadline = time.monotonic() + 60
        while not (marker / "pid-1").is_file():
            assert time.monotonic() < deadline, "the slow step did not start"
            time.sleep(0.1)
        cancelled = served.remote("pipelines", "cancel", run["id"][:12], "--output", "json")
        assert cancelled.returncode == 0, cancelled.stderr
        assert json.loads(cancelled.stdout)["status"] == "cancelled"
        ended = alice.wait_pipeline_run(run["id"], timeout=30)
    assert {s["step"]: s["status"] for s in ended["steps"]}["slow"] == "cancelled"
