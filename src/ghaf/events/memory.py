"""In-process event bus: the embedded default, with the same semantics as the NATS one."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ghaf.events.base import Delivery, Event, check_pattern, check_subject, subject_matches


@dataclass
class _MemoryDelivery:
    event: Event
    _consumer: _MemoryConsumer
    _position: int

    def ack(self) -> None:
        self._consumer._ack(self._position)


@dataclass
class _MemoryConsumer:
    bus: InProcessEventBus
    pattern: str
    acked: set[int] = field(default_factory=set)
    floor: int = 0

    def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.bus._pending(self, max_messages)
            if found or time.monotonic() >= deadline:
                return list(found)
            with self.bus._changed:
                self.bus._changed.wait(timeout=max(0.0, deadline - time.monotonic()))

    def _ack(self, position: int) -> None:
        with self.bus._lock:
            self.acked.add(position)
            while self.floor in self.acked:
                self.acked.discard(self.floor)
                self.floor += 1


class _MemorySubscription:
    def __init__(self, bus: InProcessEventBus, key: int) -> None:
        self._bus = bus
        self._key = key

    def close(self) -> None:
        with self._bus._lock:
            self._bus._handlers.pop(self._key, None)


class InProcessEventBus:
    """Keeps events in memory for the life of the process; handlers run synchronously."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._log: list[Event] = []
        self._seen_ids: set[str] = set()
        self._handlers: dict[int, tuple[str, Callable[[Event], None]]] = {}
        self._consumers: dict[str, _MemoryConsumer] = {}
        self._next_key = 0

    def publish(self, subject: str, data: Mapping[str, Any], *, msg_id: str | None = None) -> None:
        check_subject(subject)
        event = Event(subject=subject, data=dict(data), id=msg_id or uuid.uuid4().hex)
        with self._lock:
            if event.id in self._seen_ids:
                return
            self._seen_ids.add(event.id)
            self._log.append(event)
            handlers = [h for p, h in self._handlers.values() if subject_matches(p, subject)]
            self._changed.notify_all()
        for handler in handlers:
            handler(event)

    def subscribe(self, pattern: str, handler: Callable[[Event], None]) -> _MemorySubscription:
        check_pattern(pattern)
        with self._lock:
            key = self._next_key
            self._next_key += 1
            self._handlers[key] = (pattern, handler)
        return _MemorySubscription(self, key)

    def durable_consumer(self, pattern: str, name: str) -> _MemoryConsumer:
        check_pattern(pattern)
        with self._lock:
            return self._consumers.setdefault(name, _MemoryConsumer(self, pattern))

    def _pending(self, consumer: _MemoryConsumer, limit: int) -> list[_MemoryDelivery]:
        with self._lock:
            out: list[_MemoryDelivery] = []
            for position in range(consumer.floor, len(self._log)):
                event = self._log[position]
                if position in consumer.acked:
                    continue
                if not subject_matches(consumer.pattern, event.subject):
                    consumer.acked.add(position)
                    continue
                out.append(_MemoryDelivery(event, consumer, position))
                if len(out) >= limit:
                    break
            return out

    def close(self) -> None:
        with self._lock:
            self._handlers.clear()
