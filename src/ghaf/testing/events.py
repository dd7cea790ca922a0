"""Contract suite for event buses. Provide an ``event_bus`` fixture (fresh, empty)."""

from __future__ import annotations

import threading
import uuid

import pytest

from ghaf.errors import InvalidInputError
from ghaf.events.base import Event, EventBus


class EventBusContract:
    """Behaviour every event bus must show."""

    def test_durable_consumer_gets_everything_in_order(self, event_bus: EventBus) -> None:
        name = f"c{uuid.uuid4().hex[:8]}"
        consumer = event_bus.durable_consumer("orders.>", name)
        for i in range(25):
            event_bus.publish(f"orders.{'eu' if i % 2 else 'ae'}", {"i": i})
        event_bus.publish("other.thing", {"i": -1})
        seen: list[int] = []
        for _ in range(20):
            batch = consumer.fetch(10, timeout=0.5)
            for delivery in batch:
                seen.append(delivery.event.data["i"])
                delivery.ack()
            if len(seen) >= 25:
                break
        assert seen == list(range(25))

    def test_durable_consumer_resumes_after_reopen(self, event_bus: EventBus) -> None:
        name = f"c{uuid.uuid4().hex[:8]}"
        first = event_bus.durable_consumer("jobs.*", name)
        for i in range(6):
            event_bus.publish("jobs.train", {"i": i})
        batch = first.fetch(3, timeout=1.0)
        for delivery in batch:
            delivery.ack()
        again = event_bus.durable_consumer("jobs.*", name)
        rest: list[int] = []
        for _ in range(10):
            for delivery in again.fetch(10, timeout=0.5):
                rest.append(delivery.event.data["i"])
                delivery.ack()
            if len(rest) >= 3:
                break
        assert rest == [3, 4, 5]

    def test_duplicate_message_id_is_stored_once(self, event_bus: EventBus) -> None:
        name = f"c{uuid.uuid4().hex[:8]}"
        consumer = event_bus.durable_consumer("dedup.>", name)
        event_bus.publish("dedup.x", {"v": 1}, msg_id="same-id-" + name)
        event_bus.publish("dedup.x", {"v": 2}, msg_id="same-id-" + name)
        event_bus.publish("dedup.x", {"v": 3})
        values = []
        for _ in range(10):
            for delivery in consumer.fetch(10, timeout=0.5):
                values.append(delivery.event.data["v"])
                delivery.ack()
            if len(values) >= 2:
                break
        assert values == [1, 3]

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
            assert done.wait(5.0)
        finally:
            sub.close()
        assert [e.subject for e in got] == ["drift.detected", "drift.cleared"]
        assert got[0].data == {"model": "fraud"}

    def test_bad_subjects_are_refused(self, event_bus: EventBus) -> None:
        with pytest.raises(InvalidInputError, match="subject"):
            event_bus.publish("has space", {})
        with pytest.raises(InvalidInputError, match="pattern"):
            event_bus.subscribe("a.>.b", lambda _e: None)
