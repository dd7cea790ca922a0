"""NATS JetStream event bus: durable, de-duplicated events between processes and machines.

nats-py is asyncio-only; this backend runs one event loop in a daemon thread and
exposes the synchronous :class:`~ghaf.events.base.EventBus` interface over it.

The connection outlives a NATS restart: the client reconnects for ever, waiting
0.1 s doubling up to ``reconnect_wait_max`` (with jitter) between attempts, logs the
loss and the recovery, and replays subscriptions; :meth:`NatsEventBus.health` says
where it stands. During an outage :meth:`NatsEventBus.publish` raises
:class:`~ghaf.errors.BackendUnavailableError` at once instead of buffering: a
JetStream event is only stored once the server acknowledges it, and publishing again
with the same ``msg_id`` stores it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
import uuid
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

from ghaf.errors import BackendUnavailableError, MissingDependencyError
from ghaf.events.base import Delivery, Event, check_pattern, check_subject
from ghaf.logs import get_logger

T = TypeVar("T")
_log = get_logger(__name__)
RECONNECT_WAIT_MIN = 0.1
"""Seconds before the first reconnect attempt; each failure doubles it."""
DRAIN_TIMEOUT = 2.0


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
        from nats.errors import Error as NatsError
        from nats.errors import TimeoutError as NatsTimeout

        self._bus._check_connected("fetch")
        try:
            messages = self._bus._run(
                self._sub.fetch(max_messages, timeout=timeout), timeout=timeout + 30.0
            )
        except (NatsTimeout, TimeoutError):
            return []
        except (NatsError, OSError) as exc:  # closed, reconnecting, no responders...
            raise self._bus._unavailable("fetch", exc) from exc
        return [_NatsDelivery(self._bus, msg, self._bus._decode(msg)) for msg in messages]


class _NatsSubscription:
    def __init__(self, bus: NatsEventBus, subscription: Any) -> None:
        self._bus = bus
        self._sub = subscription

    def close(self) -> None:
        self._bus._run(self._sub.unsubscribe())


def probe_servers(url: str, timeout: float) -> None:
    """Return when a server of ``url`` (one or a comma-separated list) accepts a TCP
    connection; raise :class:`OSError` naming each address otherwise.

    nats-py retries a first connection as long as it retries a lost one (forever here, so
    that a running server survives a NATS restart): with nothing listening, the caller
    waited for the 30-s call timeout instead of hearing at once that NATS is down.
    """
    errors = []
    for server in url.split(","):
        text = server.strip()
        parsed = urlsplit(text if "://" in text else f"nats://{text}")
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 4222
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except OSError as exc:
            errors.append(f"{host}:{port}: {exc.strerror or exc}")
    raise OSError("; ".join(errors))


class NatsEventBus:
    """Events in a JetStream stream named ``stream`` holding ``ghaf.>`` subjects."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = "GHAF",
        connect_timeout: float = 5.0,
        reconnect_wait_max: float = 5.0,
        publish_timeout: float = 5.0,
    ) -> None:
        try:
            import nats
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingDependencyError("nats-py", "nats") from exc
        try:
            probe_servers(url, connect_timeout)
        except OSError as exc:
            raise BackendUnavailableError(
                f"cannot reach NATS JetStream at {url}: {exc}",
                hint="start nats-server with -js, or set event_bus_url to memory://",
            ) from exc
        self.url = url
        self.stream = stream
        # Each stream owns its own subject space (GHAF -> "ghaf.>"), so streams never overlap.
        self._prefix = stream.lower()
        self._reconnect_wait_max = reconnect_wait_max
        self._publish_timeout = publish_timeout
        self._state = "connecting"
        self._since = datetime.now(UTC)
        self._reconnects = 0
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self._nc = self._run(
                nats.connect(
                    url,
                    connect_timeout=connect_timeout,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=RECONNECT_WAIT_MIN,
                    reconnect_to_server_handler=self._next_attempt,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    closed_cb=self._on_closed,
                    # A pull subscription whose last fetch timed out never drains: cap it.
                    drain_timeout=DRAIN_TIMEOUT,
                )
            )
            self._set_state("connected")
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

    def health(self) -> dict[str, Any]:
        """Where the connection stands, for ``/health`` and ``ghaf doctor``.

        ``state`` is ``connected``, ``reconnecting`` (the client keeps trying) or
        ``closed``; ``since`` is when it got there; ``reconnects`` counts recoveries.
        """
        return {
            "backend": "nats",
            "url": self.url,
            "state": self._state,
            "since": self._since.isoformat(),
            "reconnects": self._reconnects,
        }

    def _set_state(self, state: str) -> None:
        self._state = state
        self._since = datetime.now(UTC)

    def _next_attempt(self, servers: list[Any], _info: dict[str, Any]) -> tuple[Any, float]:
        # Exponential backoff with jitter, so restarted servers are not hit all at once.
        server = servers[0]
        wait = min(self._reconnect_wait_max, RECONNECT_WAIT_MIN * 2 ** min(server.reconnects, 16))
        return server, wait * random.uniform(0.5, 1.0)  # nosec B311 - jitter, not a secret

    @staticmethod
    async def _on_error(exc: Exception) -> None:
        # nats-py prints a traceback by default; the caller gets a clear error instead.
        _log.debug("nats client error", error=repr(exc))

    async def _on_disconnected(self) -> None:
        if self._state == "connected" and not self._closing:
            self._set_state("reconnecting")
            _log.warning("event bus lost NATS; reconnecting with backoff", url=self.url)

    async def _on_reconnected(self) -> None:
        self._reconnects += 1
        down = (datetime.now(UTC) - self._since).total_seconds()
        self._set_state("connected")
        _log.warning("event bus reconnected to NATS", url=self.url, down_s=round(down, 3))

    async def _on_closed(self) -> None:
        self._set_state("closed")

    def _check_connected(self, what: str) -> None:
        if self._state != "connected":
            raise BackendUnavailableError(
                f"cannot {what} on NATS at {self.url}: {self._state} since "
                f"{self._since.isoformat(timespec='seconds')}",
                hint="the bus reconnects by itself: retry later (the same msg_id is stored once)",
            )

    def _unavailable(self, what: str, exc: BaseException) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"cannot {what} on NATS at {self.url}: {type(exc).__name__} {exc}".rstrip(),
            hint="the bus reconnects by itself: retry later (the same msg_id is stored once)",
        )

    async def _ensure_stream(self) -> None:
        from nats.js.errors import NotFoundError

        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(name=self.stream, subjects=[f"{self._prefix}.>"])

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()  # do not leave it running on the loop
            raise

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
        from nats.errors import Error as NatsError

        self._check_connected("publish")
        try:
            self._run(
                self._js.publish(
                    f"{self._prefix}.{subject}",
                    payload,
                    timeout=self._publish_timeout,
                    headers={"Nats-Msg-Id": event_id},
                ),
                timeout=self._publish_timeout + 5.0,
            )
        except (NatsError, OSError) as exc:  # no ack (timeout, closed...): not stored
            raise self._unavailable("publish", exc) from exc

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
        self._closing = True
        with contextlib.suppress(Exception):  # closing must not raise
            self._run(self._nc.drain(), timeout=DRAIN_TIMEOUT + 10.0)
        if not self._nc.is_closed:  # drain refuses while reconnecting
            with contextlib.suppress(Exception):
                self._run(self._nc.close(), timeout=10.0)
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
