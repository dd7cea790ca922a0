"""``ghaf serve MODEL@ALIAS --workers 2`` as a real subprocess on a free loopback port."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ghaf.platform import Platform
from ghaf.serving.deployments import get_deployment
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import bearer, register_champion


def _answered(text: str) -> float:
    """fraud:1's 200 answers in a /metrics exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    want = {"model": "fraud", "version": "1", "code": "200"}
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "ghaf_requests_total" and s.labels == want
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"ghaf serve exited: {process.communicate()[1]}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError("ghaf serve did not become ready")


@pytest.mark.slow
def test_serve_two_workers(platform: Platform, trained: Any, tmp_path: Path) -> None:
    register_champion(platform, trained.model, tmp_path / "saved", trained.X[:3])
    # The server refuses anonymous calls: a service account that scores and reads metrics.
    token = mint(platform, "svc-scorer", ["model_server", "viewer"], kind="service")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    home = str(platform.settings.home)
    command = [sys.executable, "-m", "ghaf", "--home", home, "serve", "fraud@champion"]
    process = subprocess.Popen(
        [*command, "--workers", "2", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_ready(url, process)
        rows = trained.X[:32]
        body = {"inputs": [{"name": "input", "shape": [32, 8], "datatype": "FP32",
                            "data": rows.ravel().tolist()}]}  # fmt: skip
        want = trained.model.predict_proba(rows)
        workers: set[str] = set()
        sent = 0
        deadline = time.monotonic() + 120  # generous: one worker may start much later
        while len(workers) < 2:
            assert time.monotonic() < deadline, f"only workers {workers} answered"
            with httpx.Client(headers=bearer(token)) as fresh:  # the kernel picks a worker
                reply = fresh.post(f"{url}/v2/models/fraud/infer", json=body)
                assert reply.status_code == 200
                workers.add(reply.headers["x-ghaf-worker"])
                sent += 1

        # /metrics sums both workers' files, whichever worker answers the scrape (a worker
        # flushes what it counted within 0.2 s: wait for that, then every scrape agrees).
        def scraped() -> float:
            with httpx.Client(headers=bearer(token)) as fresh:
                return _answered(fresh.get(f"{url}/metrics").text)

        deadline = time.monotonic() + 30
        while scraped() != sent:
            assert time.monotonic() < deadline, f"/metrics never counted the {sent} requests"
            time.sleep(0.05)
        assert [scraped() for _ in range(4)] == [sent] * 4
        with httpx.Client(base_url=url, headers=bearer(token)) as client:
            for _ in range(5):
                reply = client.post("/v2/models/fraud/infer", json=body)
                assert reply.status_code == 200
                got = np.reshape(reply.json()["outputs"][0]["data"], (32, 2))
                np.testing.assert_allclose(got, want)
            # Keep-alive requests are not held by Nagle: the workers run the same server as
            # test_app.py's test_tcp_nodelay_on_accepted_sockets, which checks the sockets.
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode is not None
    record = get_deployment(platform, "fraud")
    assert record.models == {"fraud:1": 1.0} and record.status == "active"


@pytest.mark.slow
def test_serve_bad_input_stores_nothing(platform: Platform) -> None:
    from ghaf.serving.deployments import list_deployments

    def ghaf(*args: str) -> subprocess.CompletedProcess[str]:
        home = str(platform.settings.home)
        return subprocess.run(
            [sys.executable, "-m", "ghaf", "--home", home, "serve", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    unknown = ghaf("fraud@champion", "--port", str(_free_port()))
    assert unknown.returncode == 4 and "not registered" in unknown.stderr
    half = ghaf("fraud@champion", "--entity-key", "customer_id")
    assert half.returncode == 3 and "--features" in half.stderr
    assert list_deployments(platform) == []
