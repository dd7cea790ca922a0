"""The event-bus contract on every backend: in-process and NATS JetStream (real server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from ghaf.events.base import EventBus
from ghaf.events.memory import InProcessEventBus
from ghaf.events.nats import NatsEventBus
from ghaf.testing import EventBusContract


@pytest.fixture(params=["memory", "nats"])
def event_bus(request: pytest.FixtureRequest) -> Iterator[EventBus]:
    if request.param == "memory":
        yield InProcessEventBus()
        return
    url = request.getfixturevalue("nats_url")
    bus = NatsEventBus(url, stream=f"GHAFTEST{uuid.uuid4().hex[:8].upper()}")
    try:
        yield bus
    finally:
        bus.delete_stream()
        bus.close()


class TestEventBus(EventBusContract):
    pass
