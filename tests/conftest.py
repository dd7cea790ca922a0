"""Shared fixtures: an isolated environment and home for every test, and real services."""

from __future__ import annotations

import os
import secrets
import socket
import sys
import uuid
from collections.abc import Iterator
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


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No GHAF_* from the outside; a fresh home per test."""
    for key in list(os.environ):
        if key.startswith("GHAF_") and not key.startswith("GHAF_TEST_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("GHAF_HOME", str(home))
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


def _refresh_ray_config() -> None:
    """Ray caches its config (auth mode included) when first imported; an earlier test of
    this process may have imported it before the token was set, so re-read it here."""
    raylet = sys.modules.get("ray._raylet")
    if raylet is not None:
        raylet.Config.initialize("")
