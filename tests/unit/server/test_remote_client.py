"""The remote SDK against ``ghaf server`` as a real process: the embedded API's shape and
errors, every point durable once ``end()`` returns, nothing lost silently."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import ghaf
from ghaf.access.tokens import revoke_token
from ghaf.errors import ConfigError, InvalidInputError, NotFoundError, PermissionDeniedError
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.testing.people import mint
from ghaf.tracking.service import get_metric_history, get_run
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def served(platform: Platform, tmp_path: Path) -> Iterator[tuple[Platform, str, str]]:
    create_project(platform, platform.admin(), "fraud")
    token = mint(platform, "alice", ["data_scientist"], project="fraud", bind_on="fraud")
    server = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start()
    try:
        yield platform, server.url, token
    finally:
        log = server.stop()
    assert "Traceback" not in log


def test_every_point_is_durable_when_end_returns(served: tuple[Platform, str, str]) -> None:
    platform, url, token = served
    points = 45_000  # more than one request's worth (BATCH_POINTS)
    with ghaf.connect(url, token=token) as client:
        run = client.start_run("churn", project="fraud", flush_interval=0.05)
        for i in range(points):
            run.log_metric("loss", 1.0 / (i + 1))
        run.log_params({"lr": 0.1, "depth": 3})
        run.set_tag("team", "risk")
        run.end()
        remote = client.get_run(run.run_id)
    history = get_metric_history(platform, run.run_id, "loss")
    assert [p.step for p in history] == list(range(points))
    assert history[-1].value == 1.0 / points
    stored = get_run(platform, run.run_id)
    assert (stored.status, stored.user, stored.project) == ("finished", "alice", "fraud")
    assert stored.params == {"lr": "0.1", "depth": "3"} and stored.tags["team"] == "risk"
    assert remote["metrics"] == {"loss": 1.0 / points}


def test_errors_are_embedded_mode_s_errors(served: tuple[Platform, str, str]) -> None:
    _, url, token = served
    with ghaf.connect(url, token=token) as client:
        with pytest.raises(NotFoundError, match=r"run 0{32} does not exist"):
            client.get_run("0" * 32)
        with pytest.raises(PermissionDeniedError, match="alice"):
            client.start_run("x", project="retail")
        with pytest.raises(InvalidInputError, match="project"):
            client.start_run("x", project="Bad Name")
        run = client.start_run("e", project="fraud")
        with pytest.raises(InvalidInputError, match="finite"):
            run.log_metric("loss", float("nan"))
        run.log_param("lr", 1)
        with pytest.raises(InvalidInputError, match="already '1'"):
            run.log_param("lr", 2)
        run.end()
    with (
        ghaf.connect(url, token="ghaf_" + "0" * 16 + "_" + "x" * 43) as forged,
        pytest.raises(PermissionDeniedError, match="not valid"),
    ):
        forged.whoami()
    with pytest.raises(ConfigError, match="GHAF_TOKEN"):
        ghaf.connect(url)


def test_a_refused_flush_keeps_the_points_and_end_says_so(
    served: tuple[Platform, str, str],
) -> None:
    platform, url, token = served
    with ghaf.connect(url, token=token) as client:
        run = client.start_run("e", project="fraud", flush_interval=3600)
        run.log_metric("loss", 0.5)
        token_id = token.split("_")[1]
        revoke_token(platform, platform.admin(), token_id, project="fraud")
        run.log_metric("loss", 0.4)
        deadline = time.monotonic() + 60  # the server reuses a proven credential for 5 s
        while time.monotonic() < deadline:
            try:
                client.whoami()
            except PermissionDeniedError:
                break
            time.sleep(0.2)
        with pytest.raises(PermissionDeniedError, match="revoked"):
            run.end()
        assert run.status == "running"
        with pytest.raises(PermissionDeniedError):
            run.flush()  # still queued: both points, nothing dropped
    assert get_run(platform, run.run_id).status == "running"
    assert get_metric_history(platform, run.run_id, "loss") == []


def test_the_remote_client_never_imports_the_ml_stack(
    served: tuple[Platform, str, str], tmp_path: Path
) -> None:
    _, url, token = served
    (tmp_path / "weights.bin").write_bytes(b"w" * 1000)
    code = (
        "import sys, ghaf\n"
        "c = ghaf.connect(sys.argv[1], token=sys.argv[2])\n"
        "run = c.start_run('light', project='fraud')\n"
        "run.log_metric('m', 1.0)\n"
        "run.end()\n"
        "c.search_runs('metrics.m > 0'); c.models(); c.whoami()\n"
        "c.upload_file(sys.argv[3], 'fraud')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, url, token, str(tmp_path / "weights.bin")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.strip().strip("[]").replace("'", "").split(", "))
    heavy = {"sklearn", "torch", "duckdb", "pyarrow", "numpy", "pandas", "sqlalchemy", "skops"}
    assert not loaded & heavy, f"the remote client imported {sorted(loaded & heavy)}"
