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


def test_a_nats_address_with_nothing_listening_fails_at_once_naming_it() -> None:
    """nats-py retries a first connection forever when reconnects are unbounded: the bus
    answers at once instead (it waited 30 s), naming each address it tried."""
    import socket
    import time

    from ghaf.errors import BackendUnavailableError

    with socket.socket() as held:  # a port that is ours and listens nowhere
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match=f"127.0.0.1:{port}") as caught:
            NatsEventBus(f"nats://127.0.0.1:{port},nats://127.0.0.1:{port}")
    assert time.monotonic() - started < 5.0
    assert "event_bus_url" in str(caught.value.hint)
