"""An alert storm through a real ``ghaf server`` on PostgreSQL: 10,000 alerts with 50
fingerprints, sent as Alertmanager sends them (batches, re-sent until answered), while
the server is killed -9 midway and restarted. Exactly 50 open incidents result, each
with its priority and a count of 200: an answered batch was committed, an unanswered
one is re-sent, and a re-sent occurrence is counted once."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from ghaf.alerts.tables import AlertReceiptRow
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.settings import load_settings
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

pytestmark = [pytest.mark.service, pytest.mark.slow]

ALERTS, FINGERPRINTS, BATCH = 10_000, 50, 100
MATRIX = [[1, 2, 3], [2, 3, 4], [3, 4, 5]]


def _levels(k: int) -> tuple[int, int]:
    return k % 3 + 1, (k // 3) % 3 + 1


def _batch(start: int) -> list[dict[str, object]]:
    alerts = []
    for i in range(start, start + BATCH):
        k = i % FINGERPRINTS
        impact, urgency = _levels(k)
        alerts.append(
            {
                "name": f"Storm{k:02d}",
                "labels": {"deployment": f"svc{k:02d}", "team": "fraud"},
                "severity": "warning",
                "summary": f"storm on svc{k:02d}",
                "impact": impact,
                "urgency": urgency,
                "id": f"occurrence-{i}",
            }
        )
    return alerts


def _anchor(base: str, headers: dict[str, str]) -> float:
    """Seconds the server takes to answer as many authenticated small reads as there were
    batches (the per-request cost of auth, RBAC and a query, without the ingest)."""

    def read(_: int) -> None:
        with httpx.Client(timeout=30) as client:
            got = client.get(
                f"{base}/api/v1/projects/default/alerts",
                params={"status": "inhibited"},
                headers=headers,
            )
            assert got.status_code == 200

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(read, range(ALERTS // BATCH)))
    return time.monotonic() - began


@pytest.fixture
def pg_home(postgres_url: str, isolated_env: Path) -> Iterator[Platform]:
    with init_home(load_settings(home=isolated_env, metadata_url=postgres_url)) as platform:
        yield platform


def _received(platform: Platform) -> int:
    with platform.read_session() as session:
        return int(session.execute(select(func.count()).select_from(AlertReceiptRow)).scalar_one())


def test_ten_thousand_alerts_through_a_killed_server_make_fifty_incidents(
    pg_home: Platform, postgres_url: str, tmp_path: Path
) -> None:
    token = mint(pg_home, "alertmanager", ["sre"], kind="service")
    env = {"GHAF_METADATA_URL": postgres_url}
    home = pg_home.settings.home
    server = ServerProcess(home, ("server",), "/health", tmp_path / "first.log", env=env).start()
    url = f"{server.url}/api/v1/projects/default/alerts"
    headers = {"authorization": f"Bearer {token}"}
    answered: set[int] = set()
    refused: list[str] = []
    lock = threading.Lock()
    sends = 0

    def send(start: int) -> None:
        """Send one batch until the server answers it (as Alertmanager retries)."""
        nonlocal sends
        body = {"alerts": _batch(start)}
        deadline = time.monotonic() + 240
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                with lock:
                    sends += 1
                try:
                    response = client.post(url, json=body, headers=headers)
                except httpx.TransportError:
                    time.sleep(0.2)  # back off while the server is down, as a sender does
                    continue
                if response.status_code == 200:
                    with lock:
                        answered.add(start)
                    return
                if response.status_code >= 500 or response.status_code == 429:
                    time.sleep(0.2)
                    continue
                refused.append(f"{response.status_code} {response.text}")
                return
        refused.append(f"batch {start} never answered")

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(send, start) for start in range(0, ALERTS, BATCH)]
        # kill the ingesting process once a third of the alerts are in, mid-stream
        deadline = time.monotonic() + 120
        while _received(pg_home) < ALERTS // 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.process is not None
        server.process.kill()  # SIGKILL: no shutdown, no flush
        server.process.wait(timeout=30)
        killed_at = time.monotonic()
        in_at_kill = _received(pg_home)
        answered_at_kill = len(answered)
        restarted = ServerProcess(
            home, ("server",), "/health", tmp_path / "second.log", env=env, port=server.port
        ).start()
        restart_s = time.monotonic() - killed_at
        try:
            for future in futures:
                future.result(timeout=300)
            wall = time.monotonic() - began
            api = httpx.Client(base_url=restarted.url + "/api/v1", headers=headers, timeout=30)
            with api:
                listed = api.get("/incidents", params={"state": "New"}).json()
            anchor_s = _anchor(restarted.url, headers)
        finally:
            log = restarted.stop()
    assert "Traceback" not in log
    assert refused == []
    assert len(answered) == ALERTS // BATCH
    assert 0 < in_at_kill < ALERTS and answered_at_kill * BATCH <= in_at_kill
    assert _received(pg_home) == ALERTS

    incidents = listed["incidents"]
    assert len(incidents) == FINGERPRINTS
    for incident in incidents:
        k = int(incident["title"][-2:])
        impact, urgency = _levels(k)
        assert (incident["impact"], incident["urgency"]) == (impact, urgency)
        assert incident["priority"] == MATRIX[impact - 1][urgency - 1]
        assert incident["alert_count"] == ALERTS // FINGERPRINTS
    ingest_s = wall - restart_s
    rate = ALERTS / ingest_s
    report = (
        f"alert storm on PostgreSQL: {ALERTS} alerts in {wall:.1f} s wall "
        f"({restart_s:.1f} s restarting the killed server), {rate:.0f} alerts/s while up, "
        f"{sends} POSTs of {BATCH} for {ALERTS // BATCH} batches, {in_at_kill} in at the kill; "
        f"anchor: the same server answers {ALERTS // BATCH} authenticated reads of the alert "
        f"list in {anchor_s:.2f} s ({ALERTS // BATCH / anchor_s:.0f} requests/s, 4 callers)"
    )
    print(report)
    Path(os.environ.get("GHAF_TEST_REPORT_DIR", tmp_path)).joinpath("storm.txt").write_text(report)
    assert ingest_s < 60, report
