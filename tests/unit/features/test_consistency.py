"""The online/offline consistency check, with timestamp-typed features."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ghaf.features import Entity, FeatureView, Field
from ghaf.features.base import ViewLayout
from ghaf.features.materialize import check_consistency, materialize
from ghaf.features.online import open_online_store
from ghaf.features.registry import apply_definitions
from ghaf.platform import Platform
from ghaf.testing.online_store import T0, TS


def _source(path: Path) -> Path:
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(1, 21, dtype=np.int64), 5)
    start = np.datetime64("2026-01-01T00:00:00", "us")
    ev = start + (np.sort(rng.integers(0, 5 * 86_400, (20, 5)), axis=1).ravel() * 1_000_000).astype(
        "timedelta64[us]"
    )
    # A timestamp feature in milliseconds (not the store's microseconds), some nulls.
    seen = (ev - np.timedelta64(90, "m")).astype("datetime64[ms]")
    seen_arr = pa.array(seen, pa.timestamp("ms", tz="UTC"))
    mask = pa.array(rng.random(ids.size) < 0.2)
    table = pa.table(
        {
            "customer_id": ids,
            "event_ts": pa.array(ev, TS),
            "spend": rng.random(ids.size),
            "last_seen": pa.compute.if_else(mask, pa.scalar(None, seen_arr.type), seen_arr),
        }
    )
    pq.write_table(table, path)
    return path


def _apply(platform: Platform, source: Path) -> FeatureView:
    customer = Entity("customer", ("customer_id",))
    view = FeatureView(
        "seen",
        (customer,),
        str(source),
        (Field("spend"), Field("last_seen", "timestamp")),
        ttl=timedelta(days=30),
    )
    apply_definitions(platform, platform.admin(), [customer, view])
    return view


def test_timestamp_features_compare_equal_when_consistent(
    platform: Platform, tmp_path: Path
) -> None:
    _apply(platform, _source(tmp_path / "seen.parquet"))
    [result] = materialize(platform, platform.admin(), until=T0 + timedelta(days=3))
    assert result.rows > 0
    report = check_consistency(platform, "seen")
    assert report.checked == 20
    assert report.ok, report.mismatches


def test_a_changed_timestamp_online_is_reported(platform: Platform, tmp_path: Path) -> None:
    view = _apply(platform, _source(tmp_path / "seen.parquet"))
    until = T0 + timedelta(days=6)
    materialize(platform, platform.admin(), until=until)
    store = open_online_store(platform.settings.resolved_online_store_url)
    try:
        layout = ViewLayout.of(view)
        stored = store.read_all(layout).slice(0, 1)
        key = stored.column("customer_id")[0].as_py()
        tampered = pa.table(
            {
                "customer_id": stored.column("customer_id"),
                "__ev": stored.column("__ev"),
                "spend": stored.column("spend"),
                "last_seen": pa.array([T0 + timedelta(seconds=1)], TS),
            }
        )
        store.write_view(layout, tampered, watermark=until, replace=False)
    finally:
        store.close()
    report = check_consistency(platform, "seen")
    assert not report.ok
    assert [m["key"] for m in report.mismatches] == [(str(key),)]
    [mismatch] = report.mismatches
    assert mismatch["online"][1] == int((T0 + timedelta(seconds=1)).timestamp() * 1_000_000)
