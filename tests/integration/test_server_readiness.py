"""Both servers tell the truth about their online store: while a private Redis is down,
readiness is 503 naming it and liveness stays 200; once Redis is back, ready again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from ghaf.platform import Platform
from ghaf.serving.models import resolve_model
from ghaf.serving.server import ServeConfig, background_server, build_app, model_entry
from ghaf.settings import load_settings
from tests.integration.test_backend_restarts import PrivateServer, free_port, wait_for
from tests.unit.serving.server_processes import ServerProcess, register_champion

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PrivateServer]:
    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = PrivateServer("redis-server", [*args, "--dir", str(tmp_path)], port)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=10).status_code
    except httpx.HTTPError:
        return 0


def test_feature_server_readiness_follows_redis(
    platform: Platform, redis: PrivateServer, tmp_path: Path
) -> None:
    store = f"redis://127.0.0.1:{redis.port}/0"
    server = ServerProcess(
        platform.settings.home,
        ("features", "serve"),
        "/health",
        tmp_path / "features.log",
        env={"GHAF_ONLINE_STORE_URL": store},
    ).start()
    try:
        ready = httpx.get(f"{server.url}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["backends"]["online_store"] == {
            "backend": "redis",
            "state": "connected",
        }

        redis.kill()
        wait_for(lambda: _status(f"{server.url}/health/ready") == 503, "readiness to fail")
        down = httpx.get(f"{server.url}/health/ready", timeout=10).json()
        assert down["ready"] is False
        assert down["reasons"][0].startswith("online_store (redis) is unreachable")
        live = httpx.get(f"{server.url}/health", timeout=10)
        assert live.status_code == 200  # liveness: restarting would not bring Redis back
        assert live.json()["status"] == "degraded"

        redis.start()
        wait_for(lambda: _status(f"{server.url}/health/ready") == 200, "readiness to return")
        assert httpx.get(f"{server.url}/health", timeout=10).json()["status"] == "ok"
    finally:
        output = server.stop()
    assert "Traceback" not in output


def test_model_server_readiness_follows_its_feature_store(
    platform: Platform, redis: PrivateServer, tmp_path: Path
) -> None:
    x = np.random.default_rng(5).normal(size=(60, 3)).astype(np.float32)
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    register_champion(platform, model, tmp_path / "saved", x[:3])
    settings = load_settings(
        home=platform.settings.home, online_store_url=f"redis://127.0.0.1:{redis.port}/0"
    )
    with Platform(settings) as served_platform:
        spec = resolve_model(served_platform, "fraud@champion", tmp_path / "served")
        features = {"entity_key": "customer_id", "refs": ["customer_stats:spend"]}
        app = build_app(ServeConfig([model_entry(spec, features=features)]), served_platform)
        with background_server(app) as url:
            ready = httpx.get(f"{url}/v2/health/ready", timeout=10)
            assert ready.status_code == 200, ready.text
            assert ready.json()["backends"]["online_store"]["state"] == "connected"

            redis.kill()
            wait_for(lambda: _status(f"{url}/v2/health/ready") == 503, "readiness to fail")
            reasons = httpx.get(f"{url}/v2/health/ready", timeout=10).json()["reasons"]
            assert reasons[0].startswith("online_store (redis) is unreachable")
            assert httpx.get(f"{url}/v2/health/live", timeout=10).status_code == 200

            redis.start()
            wait_for(lambda: _status(f"{url}/v2/health/ready") == 200, "readiness to return")
