"""Shared fixtures: an isolated environment and home for every test, and real services."""

from __future__ import annotations

import os
import secrets
import socket
import sys
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, text

from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.settings import GhafSettings, load_settings

PG_ADMIN_URL = os.environ.get(
    "GHAF_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
QUIET_SERVERS = ("GHAF_SERVER__LIVE_LOOP", "false")
"""A ``ghaf server`` a test starts runs no live loop of its own (it would run monitors and
retraining beside what the test does); the tests of the loop turn it on by name."""
os.environ.setdefault(*QUIET_SERVERS)  # for module-scoped servers, started before any test
REDIS_URL = os.environ.get("GHAF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("GHAF_TEST_NATS_URL", "nats://127.0.0.1:4222")


def service_missing(
    name: str, detail: str, fix: str = "`make test` starts it (scripts/prepare_tests.sh)"
) -> NoReturn:
    """Fail, naming the fix: a missing service is a broken test run, here as in CI.

    ``make test`` prepares what CI prepares (services, browser, Node packages, load
    generators); a test that still finds its service missing must not pass silently.
    """
    pytest.fail(f"{name} is not available ({detail}); {fix}")


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


SHARED_SCOPES = frozenset({"class", "module", "package"})


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Generator[None, None, None]:
    """xdist groups that hold: a module's shared fixtures are made on one worker only.

    CI runs ``-n 2 --dist loadgroup``, which hands each ungrouped test to whichever
    worker is free: a module's tests were split over both workers, and each worker
    started the module's servers and homes again. Before the other hooks, a module whose
    tests use a module- (or class-) scoped fixture becomes one ``xdist_group`` named
    after its file (an explicit ``xdist_group`` mark is kept as it is; session-scoped
    fixtures do not group).

    After them, each grouped test's id gets its ``@group`` suffix if xdist's own hook
    could not give it: xdist 3.8 writes ``item._nodeid``, which pytest 9.2 no longer
    reads (its node ids are structured), so every group, the explicit ones included,
    was silently ignored (pytest-dev/pytest-xdist#1386). Drop that half once xdist
    sets the id itself.
    """
    for item in items:
        if item.get_closest_marker("xdist_group") is None and _uses_shared_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    result = yield
    if getattr(config.option, "loadgroup", False):  # an xdist worker under loadgroup
        for item in items:
            _suffix_group(item)
    return result


def _uses_shared_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.values() if info is not None else ()
    return any(defs and defs[-1].scope in SHARED_SCOPES for defs in definitions)


def _suffix_group(item: pytest.Item) -> None:
    """``item``'s id as xdist's loadgroup scheduler reads it: ``NODEID@GROUP``."""
    names = {
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    }
    if not names:
        return
    suffix = "@" + "_".join(sorted(names))
    if item.nodeid.endswith(suffix):  # xdist did it (pytest before 9.2)
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pragma: no cover - a pytest without structured ids
        return
    item._id = NodeId.parse(item.nodeid + suffix)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No GHAF_* from the outside; a fresh home per test."""
    for key in list(os.environ):
        if key.startswith("GHAF_") and not key.startswith("GHAF_TEST_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("GHAF_HOME", str(home))
    monkeypatch.setenv(*QUIET_SERVERS)
    return home


@pytest.fixture
def settings(isolated_env: Path) -> GhafSettings:
    return load_settings(home=isolated_env)


@pytest.fixture
def platform(settings: GhafSettings) -> Iterator[Platform]:
    with init_home(settings) as opened:
        yield opened


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    if not port_open("127.0.0.1", 5432):
        service_missing("PostgreSQL", "127.0.0.1:5432")
    name = f"ghaf_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def nats_url() -> str:
    if not port_open("127.0.0.1", 4222):
        service_missing("NATS", "127.0.0.1:4222")
    return NATS_URL


@pytest.fixture
def redis_url() -> str:
    if not port_open("127.0.0.1", 6379):
        service_missing("Redis", "127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 *emulator* on 127.0.0.1 (AWS itself cannot be reached here)."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ray_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One Ray auth token per test process, in a file of its own, token mode on.

    Every cluster a test starts inherits it and every driver in this process reads it,
    so they agree; ``~/.ray/auth_token`` is never used (two workers starting clusters at
    once raced on creating it, and a driver then held the other cluster's token).
    """
    token_file = tmp_path_factory.mktemp("ray-auth") / "auth_token"
    token_file.write_text(secrets.token_hex(32))
    token_file.chmod(0o600)
    keys = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")
    saved = {key: os.environ.get(key) for key in keys}
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token_file)
    _refresh_ray_config()
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _refresh_ray_config()


@pytest.fixture(scope="session")
def ray_cluster(ray_auth: None) -> Iterator[object]:
    """The loopback Ray cluster the Ray modules share (tests/integration/ray_cluster.py);
    a module using it carries ``pytest.mark.xdist_group("ray-cluster")``."""
    from tests.integration.ray_cluster import start_cluster

    yield from start_cluster()


def _refresh_ray_config() -> None:
    """Ray caches its config (auth mode included) when first imported; an earlier test of
    this process may have imported it before the token was set, so re-read it here."""
    raylet = sys.modules.get("ray._raylet")
    if raylet is not None:
        raylet.Config.initialize("")
