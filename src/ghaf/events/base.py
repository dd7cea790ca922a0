"""The event bus interface: publish, subscribe, and durable pull consumers."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ghaf.errors import InvalidInputError
from ghaf.metadata.base import utcnow

_SUBJECT = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_PATTERN = re.compile(r"^([A-Za-z0-9_-]+|\*)(\.([A-Za-z0-9_-]+|\*))*(\.>)?$|^>$")


@dataclass(frozen=True)
class Event:
    """One message: a dotted subject, a JSON-able payload, an id for de-duplication."""

    subject: str
    data: Mapping[str, Any]
    id: str
    ts: datetime = field(default_factory=utcnow)


class Delivery(Protocol):
    """An event handed to a durable consumer; acknowledge it once processed."""

    event: Event

    def ack(self) -> None: ...


class Subscription(Protocol):
    """A live push subscription; close it to stop receiving."""

    def close(self) -> None: ...


class DurableConsumer(Protocol):
    """A named cursor over a subject that survives restarts (at-least-once delivery)."""

    def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[Delivery]: ...


class EventBus(Protocol):
    """Publish events and consume them live or durably.

    Implementations: :class:`~ghaf.events.memory.InProcessEventBus` (default) and
    :class:`~ghaf.events.nats.NatsEventBus` (JetStream).
    """

    def publish(self, subject: str, data: Mapping[str, Any], *, msg_id: str | None = None) -> None:
        """Publish; a repeated ``msg_id`` is stored once (de-duplication)."""
        ...

    def subscribe(self, pattern: str, handler: Callable[[Event], None]) -> Subscription:
        """Call ``handler`` for each new event matching ``pattern`` (``*`` and ``>`` wildcards)."""
        ...

    def durable_consumer(self, pattern: str, name: str) -> DurableConsumer:
        """A durable consumer ``name`` over ``pattern``, resuming where it left off."""
        ...

    def close(self) -> None: ...


def check_subject(subject: str) -> str:
    """Validate a concrete subject (no wildcards)."""
    if not _SUBJECT.match(subject):
        raise InvalidInputError(
            f"event subject {subject!r} is invalid",
            hint="use dotted tokens of letters, digits, '-' or '_', e.g. drift.detected",
        )
    return subject


def check_pattern(pattern: str) -> str:
    """Validate a subscription pattern (``*`` matches one token, a final ``>`` the rest)."""
    if not _PATTERN.match(pattern):
        raise InvalidInputError(
            f"event pattern {pattern!r} is invalid",
            hint="use dotted tokens, '*' for one token and a final '>' for the rest",
        )
    return pattern


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a trailing ``>`` one or more tokens."""
    want = pattern.split(".")
    have = subject.split(".")
    for index, part in enumerate(want):
        if part == ">":
            return len(have) > index
        if index >= len(have) or (part not in ("*", have[index])):
            return False
    return len(have) == len(want)
