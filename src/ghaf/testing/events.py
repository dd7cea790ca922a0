"""Contract suite for event buses. Provide an ``event_bus`` fixture (fresh, empty)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from ghaf.errors import InvalidInputError
from ghaf.events.base import DurableConsumer, Event, EventBus

WAIT_S = 30.0
"""How long a test waits for deliveries it expects: generous, as it ends once they arrive."""


def take(consumer: DurableConsumer, count: int, timeout: float = WAIT_S) -> list[int]:
    """Fetch and ack until ``count`` events arrived (never more); their ``i`` values."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        for delivery in consumer.fetch(count - len(seen), timeout=0.5):
            seen.append(delivery.event.data["i"])
            delivery.ack()
    return seen


class EventBusContract:
    """Behaviour every event bus must show."""

    def test_durable_consumer_gets_everything_in_order(self, event_bus: EventBus) -> None:
        name = f"c{uuid.uuid4().hex[:8]}"
        consumer = event_bus.durable_consumer("orders.>", name)
        for i in range(25):
            event_bus.publish(f"orders.{'eu' if i % 2 else 'ae'}", {"i": i})
        event_bus.publish("other.thing", {"i": -1})
        assert take(consumer, 25) == list(range(25))
        assert consumer.fetch(10, timeout=0.2) == []  # "other.thing" is not for it

    def test_durable_consumer_resumes_after_reopen(self, event_bus: EventBus) -> None:
        name = f"c{uuid.uuid4().hex[:8]}"
        first = event_bus.durable_consumer("jobs.*", name)
        for i in range(6):
            event_bus.publish("jobs.train", {"i": i})
        assert take(first, 3) == [0, 1, 2]
        again = event_bus.durable_consumer("jobs.*", name)
        assert take(again, 3) == [3, 4, 5]

    def test_duplicate_message_id_is_stored_once(self, event_bus: EventBus) -> None:
        name = f"c{uuid.uuid4().hex[:8]}"
        consumer = event_bus.durable_consumer("dedup.>", name)
        event_bus.publish("dedup.x", {"i": 1}, msg_id="same-id-" + name)
        event_bus.publish("dedup.x", {"i": 2}, msg_id="same-id-" + name)
        event_bus.publish("dedup.x", {"i": 3})
        assert take(consumer, 2) == [1, 3]
        assert consumer.fetch(10, timeout=0.2) == []  # the duplicate never comes

    def test_subscribe_pushes_matching_events(self, event_bus: EventBus) -> None:
        got: list[Event] = []
        done = threading.Event()

        def handler(event: Event) -> None:
            got.append(event)
            if len(got) == 2:
                done.set()

        sub = event_bus.subscribe("drift.*", handler)
        try:
            event_bus.publish("drift.detected", {"model": "fraud"})
            event_bus.publish("alerts.opened", {"n": 1})
            event_bus.publish("drift.cleared", {"model": "fraud"})
            assert done.wait(WAIT_S)
        finally:
            sub.close()
        assert [e.subject for e in got] == ["drift.detected", "drift.cleared"]
        assert got[0].data == {"model": "fraud"}

    def test_bad_subjects_are_refused(self, event_bus: EventBus) -> None:
        with pytest.raises(InvalidInputError, match="subject"):
            event_bus.publish("has space", {})
        with pytest.raises(InvalidInputError, match="pattern"):
            event_bus.subscribe("a.>.b", lambda _e: None)
