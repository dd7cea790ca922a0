"""Pii feature values in online stores are sealed (or refused, per policy), never in clear.

Issue 17, finding 5: the online store held pii values in clear. A view whose data is
pii is now written with each value AES-256-GCM sealed under a per-view key that the
home's KEK wraps; readers with the right to read it get the values back, the store's
own file or Redis hash shows none of them.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from ghaf.errors import ConfigError, IntegrityError, PolicyViolationError
from ghaf.features.definitions import Definition, FeatureView
from ghaf.features.materialize import check_consistency, materialize
from ghaf.features.online import OnlineReader, open_online_store
from ghaf.features.online_redis import RedisOnlineStore
from ghaf.features.registry import apply_definitions
from ghaf.features.sealing import SEALED_PREFIX
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.settings import GhafSettings, load_settings
from ghaf.testing.online_store import make_source, sample_definitions
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

FEATURES = ["customer_stats:spend", "customer_stats:count", "customer_stats:segment"]


def _defs(path: Path, **changes: Any) -> list[Definition]:
    customer, view, service = sample_definitions(path, ttl_days=10_000)
    assert isinstance(view, FeatureView)  # nosec B101 - type narrowing
    return [customer, dataclasses.replace(view, **changes), service]


def _apply(platform: Platform, path: Path, **changes: Any) -> None:
    apply_definitions(platform, platform.admin(), _defs(path, **changes))


def _expected(source: Path) -> dict[int, tuple[float, int, str]]:
    """The latest (spend, count, segment) of each customer, from the source file."""
    latest: dict[int, tuple[object, ...]] = {}
    rows = pq.read_table(source).sort_by("event_ts").to_pylist()
    for row in rows:
        latest[row["customer_id"]] = (row["spend"], row["count"], row["segment"])
    return latest  # type: ignore[return-value]


def _read(platform: Platform, reader: OnlineReader | None = None) -> dict[str, list[object]]:
    reader = reader or OnlineReader(
        platform, open_online_store(platform.settings.resolved_online_store_url)
    )
    return reader.get_online_features({"customer_id": [1, 2, 3]}, FEATURES).columns


def _sqlite_values(platform: Platform) -> list[tuple[object, ...]]:
    path = platform.settings.resolved_online_store_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute('SELECT "spend", "count", "segment" FROM fv_customer_stats').fetchall()


@pytest.fixture(autouse=True)
def settings(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> GhafSettings:
    """A home whose stores are in the UAE, where pii may live (the default policy)."""
    monkeypatch.setenv("GHAF_ARTIFACT_REGION", "ae-auh-1")
    return load_settings(home=isolated_env)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_source(tmp_path / "stats.parquet")


def test_a_pii_view_is_sealed_in_sqlite_and_reads_back_exactly(
    platform: Platform, source: Path
) -> None:
    _apply(platform, source, classification="pii")
    [result] = materialize(platform, platform.admin())
    assert result.sealed and result.rows == 50
    stored = _sqlite_values(platform)
    assert len(stored) == 50
    assert all(isinstance(v, str) and v.startswith(SEALED_PREFIX) for row in stored for v in row)
    expected = _expected(source)
    clear = {repr(v) for row in expected.values() for v in row}
    assert not clear & {repr(v) for row in stored for v in row}
    got = _read(platform)
    assert list(zip(got["spend"], got["count"], got["segment"], strict=True)) == [
        expected[1],
        expected[2],
        expected[3],
    ]
    assert check_consistency(platform, "customer_stats").ok


def test_a_view_over_pii_data_is_sealed_without_declaring_it(
    platform: Platform, tmp_path: Path, source: Path
) -> None:
    """The classification comes from the data's lineage too, not only the view."""
    from ghaf.data import write_dataset

    write_dataset(
        platform,
        platform.admin(),
        "stats",
        pq.read_table(source),
        source="t",
        column_tags={"segment": "pii"},
    )
    _apply(platform, source, source="dataset:stats")
    [result] = materialize(platform, platform.admin())
    assert result.sealed
    assert all(str(v).startswith(SEALED_PREFIX) for row in _sqlite_values(platform) for v in row)


def test_an_unclassified_view_stays_in_clear(platform: Platform, source: Path) -> None:
    _apply(platform, source)
    [result] = materialize(platform, platform.admin())
    assert not result.sealed
    assert any(row[2] in ("a", "b") for row in _sqlite_values(platform))


def test_a_moved_or_injected_value_is_refused_by_name(platform: Platform, source: Path) -> None:
    _apply(platform, source, classification="pii")
    materialize(platform, platform.admin())
    path = platform.settings.resolved_online_store_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:  # someone with the file: spend's seal into segment
        conn.execute('UPDATE fv_customer_stats SET "segment" = "spend" WHERE __k = 1')
    with pytest.raises(IntegrityError, match=r"feature customer_stats:segment does not open"):
        _read(platform)
    with sqlite3.connect(path) as conn:  # a clear value written around Ghaf
        conn.execute("UPDATE fv_customer_stats SET \"segment\" = 'a' WHERE __k = 1")
    with pytest.raises(IntegrityError, match=r"holds a value of feature 'segment' in clear"):
        _read(platform)


def test_a_reader_that_started_before_the_view_became_pii_follows_it(
    platform: Platform, source: Path
) -> None:
    """A long-running feature server sees the view sealed, then opened, and keeps up."""
    _apply(platform, source)
    materialize(platform, platform.admin())
    reader = OnlineReader(platform, open_online_store(platform.settings.resolved_online_store_url))
    before = _read(platform, reader)
    _apply(platform, source, classification="pii")
    [sealed] = materialize(platform, platform.admin())
    assert sealed.sealed and sealed.mode == "full"  # the clear rows were all replaced
    assert _read(platform, reader) == before
    _apply(platform, source, classification=None)
    [opened] = materialize(platform, platform.admin())
    assert not opened.sealed and opened.mode == "full"
    assert any(row[2] in ("a", "b") for row in _sqlite_values(platform))
    assert _read(platform, reader) == before


def test_refuse_policy_keeps_pii_out_and_writes_nothing(isolated_env: Path, source: Path) -> None:
    settings = load_settings(home=isolated_env, security={"online_pii": "refuse"})
    with init_home(settings) as platform:
        _apply(platform, source, classification="pii")
        with pytest.raises(PolicyViolationError, match=r"'customer_stats' holds pii .*online_pii"):
            materialize(platform, platform.admin())
        store = open_online_store(platform.settings.resolved_online_store_url)
        assert store.watermark("customer_stats") is None


def test_without_artifact_encryption_a_pii_view_is_refused(
    isolated_env: Path, source: Path
) -> None:
    settings = load_settings(home=isolated_env, security={"encrypt_artifacts": False})
    with init_home(settings) as platform:
        _apply(platform, source, classification="pii")
        with pytest.raises(ConfigError, match=r"security\.encrypt_artifacts is off"):
            materialize(platform, platform.admin())


def test_the_sealing_key_survives_kek_rotation_and_shredding(
    platform: Platform, source: Path
) -> None:
    from ghaf.access.rotation import destroy_key_version, rotate_keys

    _apply(platform, source, classification="pii")
    materialize(platform, platform.admin())
    before = _read(platform)
    rotation = rotate_keys(platform, platform.admin())
    destroy_key_version(platform, platform.admin(), rotation.version - 1)
    assert _read(platform) == before


@pytest.fixture
def redis_platform(isolated_env: Path, redis_url: str) -> Iterator[tuple[Platform, str]]:
    prefix = f"ghafseal{isolated_env.name[-8:]}"
    url = f"{redis_url}?prefix={prefix}"
    with init_home(load_settings(home=isolated_env, online_store_url=url)) as platform:
        yield platform, prefix
    RedisOnlineStore(url).drop_all()


def test_a_pii_view_is_sealed_in_redis(redis_platform: tuple[Platform, str], source: Path) -> None:
    import redis

    platform, prefix = redis_platform
    _apply(platform, source, classification="pii")
    [result] = materialize(platform, platform.admin())
    assert result.sealed
    raw = redis.Redis.from_url(platform.settings.resolved_online_store_url.split("?")[0])
    stored: dict[bytes, bytes] = raw.hgetall(f"{prefix}:fv:customer_stats:1")  # type: ignore[assignment]
    features = {k: v for k, v in stored.items() if k != b"__ev"}
    assert set(features) == {b"spend", b"count", b"segment"}
    assert all(v.startswith(SEALED_PREFIX.encode()) for v in features.values())
    expected = _expected(source)
    got = _read(platform)
    assert (got["spend"][0], got["count"][0], got["segment"][0]) == expected[1]
    assert check_consistency(platform, "customer_stats").ok


@pytest.mark.slow
def test_the_doors_serve_pii_values_to_whom_may_read_them(
    platform: Platform, source: Path, tmp_path: Path
) -> None:
    """``ghaf features materialize`` says it sealed; ``ghaf features get`` and the
    feature server give the values back to a caller allowed to read pii."""
    _apply(platform, source, classification="pii")
    home = platform.settings.home

    def ghaf(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ghaf", "--home", str(home), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = ghaf("features", "materialize")
    assert done.returncode == 0, done.stderr
    assert "full, pii sealed, 50 rows" in done.stdout
    expected = _expected(source)
    got = ghaf("features", "get", "--features", ",".join(FEATURES), "--entity", "customer_id=2")
    assert got.returncode == 0, got.stderr
    assert f'"segment":["{expected[2][2]}"]' in got.stdout and SEALED_PREFIX not in got.stdout
    engineer = mint(platform, "dee", ["data_engineer"])
    viewer = mint(platform, "vic", ["viewer"])
    body = {"entities": {"customer_id": [2]}, "features": FEATURES}
    server = ServerProcess(home, ("features", "serve"), "/health", tmp_path / "f.log").start()
    try:
        answer = httpx.post(
            f"{server.url}/get-online-features",
            json=body,
            headers={"authorization": f"Bearer {engineer}"},
        )
        refused = httpx.post(
            f"{server.url}/get-online-features",
            json=body,
            headers={"authorization": f"Bearer {viewer}"},
        )
    finally:
        server.stop()
    assert refused.status_code == 403 and "features.read_pii" in refused.text
    assert answer.status_code == 200, answer.text
    assert answer.json()["features"]["spend"] == [expected[2][0]]
    assert answer.json()["features"]["segment"] == [expected[2][2]]
