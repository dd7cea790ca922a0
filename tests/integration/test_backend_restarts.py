"""A running client outlives its backend's restart: the same bus, store or engine works again.

Each test starts a private nats-server, redis-server or PostgreSQL on a free loopback
port, kills it with SIGKILL and starts it again on the same port; the shared services
other tests use are never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import text
from structlog.testing import capture_logs

from ghaf.errors import BackendUnavailableError
from ghaf.events.base import Event
from ghaf.events.nats import NatsEventBus
from ghaf.features.base import ViewLayout
from ghaf.features.online_redis import RedisOnlineStore
from ghaf.metadata.engine import create_metadata_engine
from tests.conftest import port_open, service_missing

pytestmark = [pytest.mark.service, pytest.mark.slow]
WAIT_S = 180.0  # generous: the machine may be busy; each wait returns as soon as it holds


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up after {timeout:g}s waiting for {what}"
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateServer:
    """One server process on a fixed port that can be killed and started again."""

    def __init__(self, binary: str, args: list[str], port: int, *, user: str = "") -> None:
        path = shutil.which(binary) or (f"/usr/sbin/{binary}" if binary == "nats-server" else None)
        if path is None or not Path(path).exists():
            service_missing(binary, "binary not found", "apt-get install " + binary)
        self.command = [path, *args]
        self.user = user or None  # PostgreSQL refuses to run as root
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # Our own child (not under runuser), so we reap it: a dead server left a zombie
        # that PostgreSQL took for a live postmaster holding its lock file.
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so a crash takes every child
            user=self.user,
            group=self.user,
        )
        wait_for(lambda: port_open("127.0.0.1", self.port), f"{self.command[0]} to listen")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # no goodbye to the clients
            self.process.wait(timeout=30)
        wait_for(lambda: not port_open("127.0.0.1", self.port), "the port to close")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[PrivateServer]:
    port = free_port()
    args = ["-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path / "js")]
    server = PrivateServer("nats-server", args, port)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateServer]:
    port = free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = PrivateServer("redis-server", [*args, "--dir", str(tmp_path)], port)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_nats_bus_reconnects_after_a_restart_and_says_so(nats_server: PrivateServer) -> None:
    pushed: list[Event] = []
    with capture_logs() as logs:
        bus = NatsEventBus(
            f"nats://127.0.0.1:{nats_server.port}", stream="RESTART", reconnect_wait_max=0.5
        )
        try:
            consumer = bus.durable_consumer("jobs.>", "worker")
            subscription = bus.subscribe("jobs.*", pushed.append)
            seen: list[int] = []

            def consumed(count: int) -> bool:
                for delivery in consumer.fetch(10, timeout=0.5):
                    seen.append(delivery.event.data["i"])
                    delivery.ack()
                return len(seen) >= count

            bus.publish("jobs.a", {"i": 0})
            wait_for(lambda: consumed(1), "the first event")
            assert bus.health()["state"] == "connected"

            nats_server.kill()
            wait_for(lambda: bus.health()["state"] == "reconnecting", "the bus to notice")
            with pytest.raises(BackendUnavailableError, match="reconnecting since"):
                bus.publish("jobs.a", {"i": -1})  # refused at once, not buffered

            nats_server.start()
            wait_for(lambda: bus.health()["state"] == "connected", "the bus to reconnect")
            assert bus.health()["reconnects"] == 1
            bus.publish("jobs.b", {"i": 1})
            wait_for(lambda: consumed(2), "the event published after the restart")
            assert seen == [0, 1]  # the durable consumer resumed where it was
            wait_for(lambda: len(pushed) == 2, "the push subscription to be replayed")
            assert [e.data["i"] for e in pushed] == [0, 1]
            subscription.close()
        finally:
            bus.close()
    said = [(entry["log_level"], entry["event"]) for entry in logs]
    assert ("warning", "event bus lost NATS; reconnecting with backoff") in said
    assert ("warning", "event bus reconnected to NATS") in said


LAYOUT = ViewLayout("restart_view", ("id",), ("int64",), (("score", "float64"),))


def rows(scores: list[float]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(len(scores)), pa.int64()),
            "__ev": pa.array([1] * len(scores), pa.int64()),
            "score": pa.array(scores, pa.float64()),
        }
    )


def test_redis_store_works_again_after_a_restart(redis_server: PrivateServer) -> None:
    store = RedisOnlineStore(f"redis://127.0.0.1:{redis_server.port}/0")
    now = datetime.now(UTC)
    try:
        store.write_view(LAYOUT, rows([0.5, 1.5]), watermark=now, replace=True)
        assert store.read_many(LAYOUT, [0, 1], ["score"]) == [(1, 0.5), (1, 1.5)]

        redis_server.kill()
        with pytest.raises(BackendUnavailableError, match="Redis online store read failed"):
            store.read_many(LAYOUT, [0], ["score"])  # after the retries, a clear error
        assert store.health()["state"] == "unreachable"

        redis_server.start()  # without persistence: back empty
        # The pooled connections died with the server; the retry replaces them.
        store.write_view(LAYOUT, rows([2.5]), watermark=now, replace=True)
        assert store.read_many(LAYOUT, [0, 1], ["score"]) == [(1, 2.5), None]
        assert store.health() == {"backend": "redis", "state": "connected"}
    finally:
        store.close()


@pytest.fixture
def postgres_server() -> Iterator[PrivateServer]:
    binaries = [shutil.which(name) for name in ("initdb", "postgres")]
    if None in binaries or os.geteuid() != 0:
        service_missing("a private PostgreSQL", "needs initdb, postgres, and root to switch user")
    import pwd

    owner = pwd.getpwnam("postgres")
    data = Path(tempfile.mkdtemp(prefix="ghaf-pg-"))
    os.chown(data, owner.pw_uid, owner.pw_gid)
    subprocess.run(
        ["initdb", "-D", str(data / "db"), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True, capture_output=True, timeout=300, user="postgres", group="postgres",
    )  # fmt: skip
    port = free_port()
    args = ["-D", str(data / "db"), "-p", str(port), "-k", str(data)]
    args += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
    server = PrivateServer("postgres", args, port, user="postgres")
    server.start()
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(data, ignore_errors=True)


def accepts_queries(port: int) -> bool:
    """Whether a fresh connection (not the engine's) gets an answer: recovery is over."""
    import psycopg

    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres", connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False


def test_metadata_engine_works_again_after_a_postgres_crash(postgres_server: PrivateServer) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{postgres_server.port}/postgres"
    engine = create_metadata_engine(url)
    try:
        with engine.connect() as conn:  # leaves a pooled connection behind
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
        postgres_server.kill()  # the whole server, as in a crash
        postgres_server.start()
        wait_for(lambda: accepts_queries(postgres_server.port), "crash recovery to finish")
        # The pooled connection died with the server: the pre-ping finds out and replaces it.
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
