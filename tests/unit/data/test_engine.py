"""The shared contract database: every cursor, on any thread, runs with its settings."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from ghaf.data import engine

SETTINGS = (
    "SELECT current_setting('disabled_optimizers'), "
    "current_setting('disable_parquet_prefetching'), "
    "current_setting('enable_external_file_cache'), "
    "current_setting('enable_progress_bar')"
)


def _settings() -> tuple[object, ...]:
    with engine.cursor() as cursor:
        row = cursor.execute(SETTINGS).fetchone()
    assert row is not None
    return tuple(row)


def test_cursors_on_any_thread_see_the_exact_one_pass_settings() -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        seen = {_settings(), *pool.map(lambda _: _settings(), range(4))}
    assert len(seen) == 1
    optimizers, prefetching, file_cache, progress_bar = seen.pop()
    assert set(str(optimizers).split(",")) == {"filter_pushdown", "statistics_propagation"}
    assert (prefetching, file_cache, progress_bar) == (True, False, False)


def test_cursors_share_one_database_until_the_process_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with engine.cursor() as first, engine.cursor() as second:
        first.execute("CREATE TEMP TABLE mine AS SELECT 1 AS x")  # temp: this cursor only
        second.execute("CREATE OR REPLACE TABLE shared_probe AS SELECT 2 AS x")
        assert first.execute("SELECT x FROM shared_probe").fetchall() == [(2,)]
    pid = os.getpid()
    monkeypatch.setattr(engine.os, "getpid", lambda: pid + 1)  # as in a forked child
    with engine.cursor() as child:
        tables = child.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        assert ("shared_probe",) not in tables
    monkeypatch.setattr(engine.os, "getpid", lambda: pid)
    with engine.cursor() as again:
        assert again.execute("SELECT x FROM shared_probe").fetchall() == [(2,)]
        again.execute("DROP TABLE shared_probe")
