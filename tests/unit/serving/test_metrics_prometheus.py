"""A real Prometheus scraping ``ghaf serve --workers 2``: the request counter it stores is
the number of requests sent, whichever worker answered them, and it never goes down.

Before the workers shared their metric files, each scrape showed the one worker that took
it, so the stored total was that worker's share and moved as scrapes changed worker.
"""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 - prometheus is a fixed local binary
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ghaf.platform import Platform
from ghaf.testing.people import mint
from tests.conftest import service_missing
from tests.unit.serving.server_processes import (
    ServerProcess,
    bearer,
    free_port,
    register_champion,
)

pytestmark = pytest.mark.slow
SCRAPE = "1s"


def _prometheus() -> str:
    path = shutil.which("prometheus")
    if path is None:
        service_missing("Prometheus", "no prometheus on PATH", "apt-get install prometheus")
    return path


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]

    def query(self, expr: str) -> list[dict[str, Any]]:
        reply = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        reply.raise_for_status()
        body = reply.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def scalar(self, expr: str) -> float | None:
        """The one value of an instant query, None when it has no result yet."""
        found = self.query(expr)
        return float(found[0]["value"][1]) if found else None


def wait_until(condition: Any, what: str, timeout: float = 60.0) -> Any:
    """Poll ``condition`` until it returns something truthy (bounded; no fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def start_prometheus(tmp: Path, target: str, token: str) -> Prometheus:
    """Prometheus on 127.0.0.1 with its storage in ``tmp``, scraping ``target`` every
    second with ``token`` (the server's /metrics needs monitoring.read)."""
    credentials = tmp / "token"
    credentials.write_text(token)
    credentials.chmod(0o600)
    config = {
        "global": {"scrape_interval": SCRAPE, "scrape_timeout": SCRAPE},
        "scrape_configs": [
            {
                "job_name": "ghaf",
                "static_configs": [{"targets": [target]}],
                "authorization": {"type": "Bearer", "credentials_file": str(credentials)},
            }
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        _prometheus(),
        f"--config.file={tmp / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with (tmp / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # nosec B603
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process)

    def ready() -> bool:
        assert process.poll() is None, (tmp / "prometheus.log").read_text()
        try:
            return httpx.get(f"{prometheus.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, "prometheus to start")
    return prometheus


@pytest.fixture
def served(platform: Platform, trained: Any, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``ghaf serve fraud@champion --workers 2`` and a token that scores and reads metrics."""
    register_champion(platform, trained.model, tmp_path / "saved", trained.X[:3])
    token = mint(platform, "svc-scorer", ["model_server", "viewer"], kind="service")
    server = ServerProcess(
        platform.settings.home,
        ("serve", "fraud@champion", "--workers", "2"),
        "/v2/health/ready",
        tmp_path / "serve.log",
    ).start()
    try:
        yield server.url, token
    finally:
        server.stop()


def test_prometheus_counts_every_request_of_two_workers(
    served: tuple[str, str], trained: Any, tmp_path: Path
) -> None:
    url, token = served
    prometheus = start_prometheus(tmp_path, url.removeprefix("http://"), token)
    try:
        wait_until(lambda: prometheus.scalar('up{job="ghaf"}') == 1.0, "the first scrape")
        rows = trained.X[:1]
        body = {"inputs": [{"name": "input", "shape": [1, 8], "datatype": "FP32",
                            "data": rows.ravel().tolist()}]}  # fmt: skip
        workers: dict[str, int] = {}
        deadline = time.monotonic() + 60  # both workers answer (the kernel spreads connections)
        while len(workers) < 2 or sum(workers.values()) < 40:
            assert time.monotonic() < deadline, f"only workers {workers} answered"
            with httpx.Client(headers=bearer(token)) as fresh:
                reply = fresh.post(f"{url}/v2/models/fraud/infer", json=body)
            assert reply.status_code == 200, reply.text
            pid = reply.headers["x-ghaf-worker"]
            workers[pid] = workers.get(pid, 0) + 1
        sent = sum(workers.values())
        total = 'sum(ghaf_requests_total{job="ghaf",model="fraud"})'
        wait_until(lambda: prometheus.scalar(total) == sent, f"Prometheus to store {sent}")
        # More scrapes after the traffic: each still says exactly what was sent.
        samples = 'count_over_time(ghaf_requests_total{job="ghaf",code="200"}[10m])'
        seen = prometheus.scalar(samples) or 0
        wait_until(lambda: (prometheus.scalar(samples) or 0) >= seen + 3, "three more scrapes")
        assert prometheus.scalar(total) == sent
        # Every scrape stored, in order: never lower than the one before it.
        [series] = prometheus.query('ghaf_requests_total{job="ghaf",code="200"}[10m]')
        values = [float(v) for _, v in series["values"]]
        assert values == sorted(values), values
        assert values[-1] == sent and len(values) >= 4
        assert prometheus.scalar('resets(ghaf_requests_total{job="ghaf"}[10m])') == 0.0
        # Scrapes over fresh connections reach either worker: each answers the same total.
        for _ in range(6):
            with httpx.Client(headers=bearer(token)) as fresh:
                text = fresh.get(f"{url}/metrics").text
            assert _answered(text) == sent
    finally:
        prometheus.process.terminate()
        prometheus.process.wait(timeout=30)


def _answered(text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "ghaf_requests_total" and s.labels.get("code") == "200"
    )
