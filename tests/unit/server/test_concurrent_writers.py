"""20 remote clients write at once for 60 s through a 2-worker ``ghaf server`` on
PostgreSQL: no 5xx, no lost or duplicated record, and the audit chain verifies after."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from ghaf.access.audit import verify_trail
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.settings import load_settings
from ghaf.testing.people import mint
from ghaf.tracking.service import get_metric_history, get_run
from tests.unit.serving.server_processes import ServerProcess, free_port

pytestmark = pytest.mark.slow
CLIENTS = 20
SECONDS = float(os.environ.get("GHAF_TEST_CONCURRENCY_SECONDS", "60"))


@pytest.fixture
def pg_platform(isolated_env: Path, postgres_url: str) -> Iterator[Platform]:
    with init_home(load_settings(home=isolated_env, metadata_url=postgres_url)) as platform:
        yield platform


def test_twenty_clients_for_a_minute_lose_and_duplicate_nothing(
    pg_platform: Platform, postgres_url: str, tmp_path: Path
) -> None:
    platform = pg_platform
    create_project(platform, platform.admin(), "fraud")
    tokens = [
        mint(platform, f"user{i}", ["data_scientist"], project="fraud", bind_on="fraud")
        for i in range(CLIENTS)
    ]
    port = free_port()
    server = ServerProcess(
        platform.settings.home,
        ("server", "--workers", "2", "--rate", "0"),
        "/health",
        tmp_path / "server.log",
        env={"GHAF_METADATA_URL": postgres_url},
        port=port,
    ).start()
    runs: dict[str, tuple[str, int]] = {}  # run id -> (user, points it was sent)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client(index: int) -> None:
        headers = {"authorization": f"Bearer {tokens[index]}"}
        with httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=120) as http:
            step = 0
            while time.monotonic() < deadline:
                made = http.post("/runs", json={"experiment": f"e{index % 4}", "project": "fraud"})
                with lock:
                    statuses[made.status_code] += 1
                if made.status_code != 201:
                    failures.append(f"create: {made.status_code} {made.text[:200]}")
                    continue
                run_id = made.json()["run_id"]
                sent = 0
                for _ in range(3):
                    n = 50
                    batch = {
                        "metrics": {
                            "key": ["loss"] * n,
                            "value": [float(step + i) for i in range(n)],
                            "step": list(range(sent, sent + n)),
                            "timestamp": [time.time()] * n,
                        },
                        "params": {f"p{sent}": str(index)},
                    }
                    answer = http.post(f"/runs/{run_id}/batch", json=batch)
                    with lock:
                        statuses[answer.status_code] += 1
                    if answer.status_code != 200:
                        failures.append(f"batch: {answer.status_code} {answer.text[:200]}")
                        break
                    sent += n
                    step += n
                ended = http.post(f"/runs/{run_id}/end", json={"status": "finished"})
                with lock:
                    statuses[ended.status_code] += 1
                    runs[run_id] = (f"user{index}", sent)
                if ended.status_code != 200:
                    failures.append(f"end: {ended.status_code} {ended.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log = server.stop()
    assert not failures, (failures[:5], log[-4000:])
    assert set(statuses) <= {200, 201}, statuses
    assert len(runs) >= CLIENTS, "every client finished at least one run"
    for run_id, (user, sent) in runs.items():
        run = get_run(platform, run_id, with_env=False)
        assert (run.user, run.status, run.project) == (user, "finished", "fraud")
        history = get_metric_history(platform, run_id, "loss")
        assert [p.step for p in history] == list(range(sent)), run_id
        assert len(run.params) == sent // 50
    with platform.read_session() as session:
        counted = dict(
            session.execute(
                select(AuditRecordRow.action, func.count())
                .where(AuditRecordRow.outcome == "allowed")
                .group_by(AuditRecordRow.action)
            ).all()
        )
    assert counted["run.create"] == len(runs)
    assert counted["run.end"] == len(runs)
    assert counted["run.log_batch"] == sum(sent // 50 for _, sent in runs.values())
    report = verify_trail(platform)
    assert report.status in ("valid", "pending"), [f.message for f in report.findings]
    assert not report.failures
    assert "Traceback" not in log
