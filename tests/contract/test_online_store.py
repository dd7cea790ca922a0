"""The online-store contract on every backend: SQLite (with and without cache) and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghaf.features.base import OnlineStore
from ghaf.features.online_redis import RedisOnlineStore
from ghaf.features.online_sqlite import SqliteOnlineStore
from ghaf.testing import OnlineStoreContract


@pytest.fixture(params=["sqlite", "sqlite-cached", "redis"])
def online_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        store = RedisOnlineStore(url, prefix=f"ghaftest{uuid.uuid4().hex[:8]}")
        try:
            yield store
        finally:
            store.drop_all()
            store.close()
        return
    query = "?cache_seconds=0.001" if request.param == "sqlite-cached" else ""
    sqlite_store = SqliteOnlineStore(f"sqlite:///{tmp_path / 'online.db'}{query}")
    try:
        yield sqlite_store
    finally:
        sqlite_store.close()


class TestOnlineStore(OnlineStoreContract):
    pass
