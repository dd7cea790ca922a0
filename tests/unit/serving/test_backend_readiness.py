"""The model server's readiness includes its backends: one that is reconnecting makes
/v2/health/ready 503 with the reason, while /v2/health/live stays 200."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import ghaf.health
from ghaf.health import BackendHealth
from ghaf.platform import Platform
from ghaf.serving.app import Deployment, ServingApp
from ghaf.serving.base import ModelSpec
from ghaf.serving.models import load_served
from ghaf.serving.server import background_server


class Bus:
    """An event bus client that reports like NatsEventBus.health()."""

    def __init__(self) -> None:
        self.state = "connected"
        self.since = datetime.now(UTC).isoformat()

    def health(self) -> dict[str, Any]:
        return {"backend": "nats", "state": self.state, "since": self.since, "reconnects": 0}


class Broken:
    """A client whose health probe itself fails."""

    def health(self) -> dict[str, Any]:
        raise OSError("connection refused")


class Embedded:
    """A backend without health() (SQLite, the in-process bus): it cannot be unreachable."""


@pytest.fixture(autouse=True)
def no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ghaf.health, "CACHE_S", 0.0)  # each probe asks the backends again


def test_readiness_names_each_backend_that_is_not_connected() -> None:
    bus = Bus()
    health = BackendHealth({"event_bus": bus, "online_store": Broken(), "local": Embedded()})
    assert set(health.backends) == {"event_bus", "online_store"}
    first = health.check()
    assert not first.ready
    assert first.reasons == ("online_store did not report its health: OSError: connection refused",)
    assert first.backends["event_bus"]["state"] == "connected"

    only_bus = BackendHealth({"event_bus": bus})
    assert only_bus.check().ready
    bus.state = "reconnecting"
    down = only_bus.check()
    assert not down.ready
    assert down.reasons == (f"event_bus (nats) is reconnecting since {bus.since}",)
    assert down.to_json()["reasons"] == list(down.reasons)
    assert not BackendHealth({"local": Embedded()})  # nothing to ask: always ready


def test_a_backend_slower_than_the_timeout_is_not_ready() -> None:
    class Slow:
        def health(self) -> dict[str, Any]:
            time.sleep(1.0)
            return {"state": "connected"}

    late = asyncio.run(BackendHealth({"store": Slow()}).acheck(timeout=0.05))
    assert not late.ready and "within 0.05 s" in late.reasons[0]


def test_model_server_ready_is_503_while_its_bus_reconnects(
    platform: Platform, hgb_spec: ModelSpec
) -> None:
    bus = Bus()
    served = load_served(hgb_spec, platform=platform)
    app = ServingApp([Deployment.of(served)], backends=BackendHealth({"event_bus": bus}))
    with background_server(app) as url:
        ready = httpx.get(f"{url}/v2/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["ready"] is True
        assert ready.json()["backends"]["event_bus"]["state"] == "connected"

        bus.state = "reconnecting"
        ready = httpx.get(f"{url}/v2/health/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert ready.json()["reasons"] == [f"event_bus (nats) is reconnecting since {bus.since}"]
        assert httpx.get(f"{url}/v2/health/live").status_code == 200

        bus.state = "connected"
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200


def test_a_server_without_remote_backends_answers_as_before(
    platform: Platform, hgb_spec: ModelSpec
) -> None:
    app = ServingApp([Deployment.of(load_served(hgb_spec, platform=platform))])
    with background_server(app) as url:
        ready = httpx.get(f"{url}/v2/health/ready")
        assert ready.status_code == 200 and ready.json() == {"ready": True}
