"""NATS JetStream event bus: durable, de-duplicated events between processes and machines.

nats-py is asyncio-only; this backend runs one event loop in a daemon thread and
exposes the synchronous :class:`~ghaf.events.base.EventBus` interface over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from ghaf.errors import BackendUnavailableError, MissingDependencyError
from ghaf.events.base import Delivery, Event, check_pattern, check_subject
from ghaf.logs import get_logger

T = TypeVar("T")
_log = get_logger(__name__)


class _NatsDelivery:
    def __init__(self, bus: NatsEventBus, msg: Any, event: Event) -> None:
        self._bus = bus
        self._msg = msg
        self.event = event

    def ack(self) -> None:
        self._bus._run(self._msg.ack())


class _NatsConsumer:
    def __init__(self, bus: NatsEventBus, subscription: Any) -> None:
        self._bus = bus
        self._sub = subscription

    def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[Delivery]:
        from nats.errors import TimeoutError as NatsTimeout

        try:
            messages = self._bus._run(self._sub.fetch(max_messages, timeout=timeout))
        except (NatsTimeout, TimeoutError):
            return []
        return [_NatsDelivery(self._bus, msg, self._bus._decode(msg)) for msg in messages]


class _NatsSubscription:
    def __init__(self, bus: NatsEventBus, subscription: Any) -> None:
        self._bus = bus
        self._sub = subscription

    def close(self) -> None:
        self._bus._run(self._sub.unsubscribe())


class NatsEventBus:
    """Events in a JetStream stream named ``stream`` holding ``ghaf.>`` subjects."""

    def __init__(self, url: str, *, stream: str = "GHAF", connect_timeout: float = 5.0) -> None:
        try:
            import nats
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingDependencyError("nats-py", "nats") from exc
        self.url = url
        self.stream = stream
        # Each stream owns its own subject space (GHAF -> "ghaf.>"), so streams never overlap.
        self._prefix = stream.lower()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self._nc = self._run(
                nats.connect(
                    url,
                    connect_timeout=connect_timeout,
                    max_reconnect_attempts=2,
                    allow_reconnect=False,
                    error_cb=self._on_error,
                )
            )
            self._js = self._nc.jetstream()
            self._run(self._ensure_stream())
        except Exception as exc:
            with contextlib.suppress(Exception):
                self._run(self._nc.close(), timeout=5.0)
            self._stop_loop()
            raise BackendUnavailableError(
                f"cannot reach NATS JetStream at {url}: {exc}",
                hint="start nats-server with -js, or set event_bus_url to memory://",
            ) from exc

    @staticmethod
    async def _on_error(exc: Exception) -> None:
        # nats-py prints a traceback by default; the caller gets a clear error instead.
        _log.debug("nats client error", error=repr(exc))

    async def _ensure_stream(self) -> None:
        from nats.js.errors import NotFoundError

        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(name=self.stream, subjects=[f"{self._prefix}.>"])

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def _decode(self, msg: Any) -> Event:
        body = orjson.loads(msg.data)
        return Event(
            subject=msg.subject.removeprefix(f"{self._prefix}."),
            data=body["data"],
            id=body["id"],
            ts=datetime.fromisoformat(body["ts"]).astimezone(UTC),
        )

    def publish(self, subject: str, data: Mapping[str, Any], *, msg_id: str | None = None) -> None:
        check_subject(subject)
        event_id = msg_id or uuid.uuid4().hex
        payload = orjson.dumps(
            {"id": event_id, "ts": datetime.now(UTC).isoformat(), "data": dict(data)}
        )
        self._run(
            self._js.publish(
                f"{self._prefix}.{subject}", payload, headers={"Nats-Msg-Id": event_id}
            )
        )

    def subscribe(self, pattern: str, handler: Callable[[Event], None]) -> _NatsSubscription:
        check_pattern(pattern)

        async def on_message(msg: Any) -> None:
            await asyncio.get_running_loop().run_in_executor(None, handler, self._decode(msg))

        sub = self._run(self._nc.subscribe(f"{self._prefix}.{pattern}", cb=on_message))
        return _NatsSubscription(self, sub)

    def durable_consumer(self, pattern: str, name: str) -> _NatsConsumer:
        check_pattern(pattern)
        sub = self._run(
            self._js.pull_subscribe(f"{self._prefix}.{pattern}", durable=name, stream=self.stream)
        )
        return _NatsConsumer(self, sub)

    def delete_stream(self) -> None:
        """Remove the stream and everything in it (tests, resets)."""
        self._run(self._js.delete_stream(self.stream))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing must not raise
            self._run(self._nc.drain(), timeout=5.0)
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
