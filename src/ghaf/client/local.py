"""The embedded SDK: the remote :class:`~ghaf.client.http.Client` over an in-process
transport to the control plane's own app, so both modes share every shape and error.

    client = ghaf.connect()            # the home in GHAF_HOME, as its OS owner
    client = ghaf.connect(home="~/h")  # another home you own

The app is built once per client on an event loop in a thread of this process and
closed with the client. Who calls is the home's owner, proven by the kernel's account
(:meth:`~ghaf.platform.Platform.admin`); the transport hands that actor to the app in
the ASGI scope (:data:`~ghaf.server.auth.LOCAL_PRINCIPAL`), a key only code in this
process can set: no header or body of a request over the network can claim it. With a
token, the token's principal acts instead, exactly as ``ghaf --token`` on a home.
"""

from __future__ import annotations

import atexit
import functools
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import anyio.from_thread
import anyio.to_thread
import httpx
import orjson

from ghaf.errors import BackendUnavailableError
from ghaf.logs import get_logger
from ghaf.security.identity import Actor

LOCAL_URL = "http://ghaf.local"
"""The base URL an embedded client's requests carry (they never leave the process)."""
_RESPONSE_BUFFER = 16
"""Body chunks the app may send ahead of the reader (a refusal fits, so the app never
waits on a caller still sending its body)."""
_log = get_logger(__name__)

Message = dict[str, Any]


class LocalTransport(httpx.BaseTransport):
    """httpx requests served by an ASGI app on an event loop in a thread of this process.

    Bodies stream both ways (an upload is read as the app asks for it, a download as the
    caller reads it), so memory stays flat for large artifacts.
    """

    def __init__(self, app: Any, *, principal: Actor | None) -> None:
        """Start the loop and run the app's startup.

        Args:
            principal: the proven actor every request carries out of band (None: a
                request proves itself with its Authorization header).

        Raises:
            BackendUnavailableError: the app's startup failed (naming why).
        """
        self._app = app
        self._principal = principal
        self._state: dict[str, Any] = {}
        self._body_reader = anyio.CapacityLimiter(4)
        self._closed = False
        # A daemon thread: a script that never closes its client still exits (a pool
        # thread would be joined before atexit runs, and wait for the loop forever).
        ready: Future[anyio.from_thread.BlockingPortal] = Future()
        self._thread = threading.Thread(
            target=_serve_portal, args=(ready,), name="ghaf-embedded", daemon=True
        )
        self._thread.start()
        self._portal = ready.result()
        self._lifespan: AbstractContextManager[None] = self._portal.wrap_async_context_manager(
            _lifespan(app, self._state)
        )
        try:
            self._lifespan.__enter__()
        except BaseException:
            self._stop_loop()
            raise
        atexit.register(self.close)  # shut the app down (the platform closes) at exit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        from ghaf.server.auth import LOCAL_PRINCIPAL
        from ghaf.server.gateway import IN_PROCESS

        url = request.url
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": unquote(url.path),
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "client": None,
            "server": ("ghaf.local", 80),
            "extensions": {},
            "state": dict(self._state),
            IN_PROCESS: True,
        }
        if self._principal is not None:
            scope[LOCAL_PRINCIPAL] = self._principal
        exchange: _Exchange = self._portal.call(_Exchange.create)
        reader = functools.partial(_next_chunk, iter(request.stream))  # type: ignore[arg-type]
        done = self._portal.start_task_soon(
            exchange.run, self._app, scope, reader, self._body_reader
        )
        self._portal.call(exchange.started.wait)
        if exchange.status is None:  # the app failed before it answered
            done.result()
            self._portal.call(exchange.chunks_out.aclose)
            return httpx.Response(
                500,
                headers={"content-type": "application/problem+json"},
                content=orjson.dumps(
                    {
                        "type": "about:blank",
                        "title": "the embedded app did not answer",
                        "status": 500,
                    }
                ),
                request=request,
            )
        return httpx.Response(
            exchange.status,
            headers=exchange.headers,
            stream=_ResponseStream(self._portal, exchange, done),
            request=request,
        )

    def close(self) -> None:
        """Run the app's shutdown (it closes the platform) and stop the loop."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            self._lifespan.__exit__(None, None, None)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._portal.call(self._portal.stop)
        self._thread.join()


def _serve_portal(ready: Future[anyio.from_thread.BlockingPortal]) -> None:
    """Run an event loop with a portal into it until the portal is stopped."""

    async def serve() -> None:
        async with anyio.from_thread.BlockingPortal() as portal:
            ready.set_result(portal)
            await portal.sleep_until_stopped()

    try:
        anyio.run(serve)
    except BaseException as exc:  # the loop could not start: the caller hears why
        if not ready.done():
            ready.set_exception(exc)
        raise


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


class _Exchange:
    """One request's messages between the caller's thread and the app's task."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.finished = anyio.Event()
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks_in, self.chunks_out = anyio.create_memory_object_stream[bytes](_RESPONSE_BUFFER)
        self.scope = anyio.CancelScope()
        self.complete = False

    @classmethod
    async def create(cls) -> _Exchange:
        return cls()  # events belong to the loop: made on it

    async def run(
        self, app: Any, scope: dict[str, Any], reader: Any, limiter: anyio.CapacityLimiter
    ) -> None:
        body_done = False

        async def receive() -> Message:
            nonlocal body_done
            if body_done:
                await self.finished.wait()  # the caller closed the response: gone
                return {"type": "http.disconnect"}
            # The body is read off the loop: a file being uploaded blocks on its disk.
            chunk = await anyio.to_thread.run_sync(reader, limiter=limiter)
            if chunk is None:
                body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": chunk, "more_body": True}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = int(message["status"])
                self.headers = list(message.get("headers", []))
                self.started.set()
            elif message["type"] == "http.response.body":
                body = bytes(message.get("body", b""))
                if body:
                    await self.chunks_in.send(body)
                if not message.get("more_body", False):
                    self.complete = True
                    await self.chunks_in.aclose()

        try:
            with self.scope:
                await app(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - a server's last resort, as uvicorn's
            # As a server would: logged, and the caller gets the 500 the app sent, if any.
            _log.error("embedded request failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.started.set()
            await self.chunks_in.aclose()

    def close(self) -> None:
        if not self.complete:  # the caller stopped reading: the app stops writing
            self.scope.cancel()
        self.finished.set()


class _ResponseStream(httpx.SyncByteStream):
    """A response body read from the app's task as the caller iterates it."""

    def __init__(
        self, portal: anyio.from_thread.BlockingPortal, exchange: _Exchange, done: Future[None]
    ) -> None:
        self._portal = portal
        self._exchange = exchange
        self._done = done

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = self._portal.call(self._exchange.chunks_out.receive)
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return
            yield chunk

    def close(self) -> None:
        self._portal.call(self._exchange.close)
        self._portal.call(self._exchange.chunks_out.aclose)
        self._done.result()


@asynccontextmanager
async def _lifespan(app: Any, state: dict[str, Any]) -> AsyncIterator[None]:
    """The ASGI lifespan protocol: startup before the first request, shutdown at close."""
    to_app, app_inbox = anyio.create_memory_object_stream[Message](2)
    app_outbox, from_app = anyio.create_memory_object_stream[Message](2)
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}
    async with to_app, app_inbox, app_outbox, from_app, anyio.create_task_group() as tasks:
        tasks.start_soon(app, scope, app_inbox.receive, app_outbox.send)
        await to_app.send({"type": "lifespan.startup"})
        answer = await from_app.receive()
        if answer["type"] != "lifespan.startup.complete":
            raise BackendUnavailableError(
                f"the embedded control plane did not start: {answer.get('message', answer)}",
                hint="ghaf doctor names the backend that is down",
            )
        try:
            yield
        finally:
            await to_app.send({"type": "lifespan.shutdown"})
            await from_app.receive()


def connect_home(
    home: str | Path | None, *, token: str | None
) -> tuple[httpx.BaseTransport, str | None]:
    """The in-process transport to the home ``home`` (default ``GHAF_HOME``) and the bearer
    credential its requests carry (``token``, or None: the home's owner acts).

    Raises:
        PermissionDeniedError: no token, and this OS account is not the home's owner.
        ConfigError: the settings or the home cannot be read.
    """
    from ghaf.platform import Platform
    from ghaf.server.app import ServerOptions, create_app
    from ghaf.settings import load_settings

    settings = load_settings(home=Path(home).expanduser() if home is not None else None)
    platform = Platform(settings)
    try:
        principal = None if token else platform.admin()
        # One person's process: no rate limit to share out (the gateway's other limits hold).
        app = create_app(platform, ServerOptions(rate=0))
        return LocalTransport(app, principal=principal), token
    except BaseException:
        platform.close()
        raise
