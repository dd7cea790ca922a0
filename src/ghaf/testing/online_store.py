"""Contract suite for online feature stores, and small feature fixtures for tests.

Subclass :class:`OnlineStoreContract` and provide an ``online_store`` fixture (a fresh,
empty store).
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ghaf.features.base import OnlineStore, ViewLayout
from ghaf.features.definitions import Definition, Entity, FeatureService, FeatureView, Field

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def make_source(path: Path, entities: int = 50, per_entity: int = 20, seed: int = 7) -> Path:
    """A seeded Parquet feature source: customer_id, event_ts, spend, count, segment."""
    rng = np.random.default_rng(seed)
    n = entities * per_entity
    ids = np.repeat(np.arange(1, entities + 1), per_entity)
    offsets = np.sort(rng.integers(0, 10 * 86_400, (entities, per_entity)), axis=1).ravel()
    ts = np.datetime64("2026-01-01T00:00:00", "us") + (offsets * 1_000_000).astype(
        "timedelta64[us]"
    )
    table = pa.table(
        {
            "customer_id": ids.astype(np.int64),
            "event_ts": pa.array(ts, TS),
            "spend": rng.random(n) * 100,
            "count": rng.integers(0, 10, n).astype(np.int64),
            "segment": rng.choice(["a", "b"], n),
        }
    )
    pq.write_table(table, path)
    return path


def sample_definitions(source: Path, ttl_days: float = 3.0) -> list[Definition]:
    """An entity, a view over :func:`make_source`'s file, and a service."""
    customer = Entity("customer", ("customer_id",))
    view = FeatureView(
        name="customer_stats",
        entities=(customer,),
        source=str(source),
        features=(Field("spend"), Field("count", "int64"), Field("segment", "string")),
        ttl=timedelta(days=ttl_days),
        owner="risk",
        tags={"team": "fraud"},
    )
    service = FeatureService("fraud_v1", ("customer_stats:spend", "customer_stats:count"))
    return [customer, view, service]


LAYOUT = ViewLayout(
    "contract_view",
    ("customer_id",),
    ("int64",),
    (("score", "float64"), ("n", "int64"), ("label", "string"), ("flag", "bool")),
)
PAIR = ViewLayout("contract_pair", ("a", "b"), ("int64", "string"), (("score", "float64"),))


def _rows(ids: list[int], ev: list[int], scores: list[float | None]) -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "__ev": pa.array(ev, pa.int64()),
            "score": pa.array(scores, pa.float64()),
            "n": pa.array([i * 10 for i in ids], pa.int64()),
            "label": pa.array([f"c{i}" for i in ids]),
            "flag": pa.array([i % 2 == 0 for i in ids]),
        }
    )


class OnlineStoreContract:
    """Behaviour every online store must show."""

    def test_write_then_read_many_in_key_order(self, online_store: OnlineStore) -> None:
        online_store.write_view(
            LAYOUT, _rows([1, 2, 3], [10, 20, 30], [0.5, None, 2.25]), watermark=T0, replace=True
        )
        rows = online_store.read_many(LAYOUT, [3, 99, 1], ["score", "label", "n", "flag"])
        assert rows == [(30, 2.25, "c3", 30, False), None, (10, 0.5, "c1", 10, False)]
        assert online_store.read_many(LAYOUT, [2], ["score"]) == [(20, None)]
        assert online_store.watermark(LAYOUT.name) == T0

    def test_read_many_follows_request_order_with_repeats_and_misses(
        self, online_store: OnlineStore
    ) -> None:
        ids = list(range(0, 60, 2))  # even ids stored, odd ids absent
        online_store.write_view(
            LAYOUT, _rows(ids, [i + 1 for i in ids], [i / 4 for i in ids]), watermark=T0,
            replace=True,
        )  # fmt: skip
        rng = random.Random(11)
        for size in (2, 3, 17, 100, 257):
            keys = [rng.randrange(70) for _ in range(size)]
            got = online_store.read_many(LAYOUT, keys, ["score", "n"])
            want = [(k + 1, k / 4, k * 10) if k in ids else None for k in keys]
            assert got == want, size

    def test_unknown_view_reads_as_missing(self, online_store: OnlineStore) -> None:
        assert online_store.read_many(LAYOUT, [1, 2], ["score"]) == [None, None]
        assert online_store.watermark("never_written") is None

    def test_incremental_keeps_newer_values_and_replace_drops_the_rest(
        self, online_store: OnlineStore
    ) -> None:
        online_store.write_view(
            LAYOUT, _rows([1, 2], [10, 50], [1.0, 2.0]), watermark=T0, replace=True
        )
        later = T0 + timedelta(hours=1)
        online_store.write_view(
            LAYOUT, _rows([1, 2, 3], [20, 40, 5], [1.5, 9.0, 3.0]), watermark=later, replace=False
        )
        rows = online_store.read_many(LAYOUT, [1, 2, 3], ["score"])
        assert rows == [(20, 1.5), (50, 2.0), (5, 3.0)]
        assert online_store.watermark(LAYOUT.name) == later
        online_store.write_view(LAYOUT, _rows([3], [60], [7.0]), watermark=later, replace=True)
        assert online_store.read_many(LAYOUT, [1, 2, 3], ["score"]) == [None, None, (60, 7.0)]
        dump = online_store.read_all(LAYOUT)
        assert dump.column("customer_id").to_pylist() == [3]
        assert dump.column("score").to_pylist() == [7.0]

    def test_composite_keys(self, online_store: OnlineStore) -> None:
        rows = pa.table(
            {
                "a": pa.array([1, 1], pa.int64()),
                "b": ["x", "y"],
                "__ev": pa.array([1, 2], pa.int64()),
                "score": [0.25, 0.75],
            }
        )
        online_store.write_view(PAIR, rows, watermark=T0, replace=True)
        got = online_store.read_many(PAIR, [(1, "y"), (2, "x"), (1, "x")], ["score"])
        assert got == [(2, 0.75), None, (1, 0.25)]

    def test_reads_during_writes_see_old_or_new_never_a_mix(
        self, online_store: OnlineStore
    ) -> None:
        ids = list(range(1, 201))
        online_store.write_view(
            LAYOUT, _rows(ids, [1] * 200, [1.0] * 200), watermark=T0, replace=True
        )
        seen: set[frozenset[float | None]] = set()
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                rows = online_store.read_many(LAYOUT, ids, ["score"])
                seen.add(frozenset(r[1] if r else None for r in rows))

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for gen in range(2, 8):
                online_store.write_view(
                    LAYOUT, _rows(ids, [gen] * 200, [float(gen)] * 200), watermark=T0, replace=False
                )
        finally:
            stop.set()
            thread.join()
        assert all(len(values) == 1 for values in seen), seen
