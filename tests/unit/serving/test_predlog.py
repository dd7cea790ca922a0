"""The prediction log: columnar batches keep every value, group per model version, never
block, and a slow or down sink costs bounded memory and is counted."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from ghaf.serving.predlog import ParquetSink, PredictionBatch, PredictionLogger


def _record(i: int, rows: int, width: int, model: str = "m", version: str = "1") -> dict[str, Any]:
    rng = np.random.default_rng(i)
    return {
        "request_id": f"r{i}",
        "ts": float(i),
        "model": model,
        "version": version,
        "variant": "primary" if i % 2 else "shadow",
        "latency_ms": i / 10,
        "features": rng.standard_normal((rows, width)).astype(np.float32),
        "outputs": {"predictions": rng.random(rows), "probabilities": rng.random((rows, 2))},
    }


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=12))
def test_batch_round_trips_every_value(row_counts: list[int]) -> None:
    records = [_record(i, rows, 3) for i, rows in enumerate(row_counts)]
    batch = PredictionBatch.from_records(records)
    table = batch.to_arrow().to_pylist()
    for want, got_plain, got_arrow in zip(records, batch.records(), table, strict=True):
        features = want["features"].astype(np.float64).tolist()
        probabilities = want["outputs"]["probabilities"].tolist()
        predictions = want["outputs"]["predictions"].reshape(-1, 1).tolist()
        for got in (got_plain, got_arrow):
            assert got["request_id"] == want["request_id"] and got["variant"] == want["variant"]
            assert got["latency_ms"] == want["latency_ms"] and got["features"] == features
        assert got_plain["outputs"] == {"predictions": predictions, "probabilities": probabilities}
        assert dict(got_arrow["outputs"]) == got_plain["outputs"]


def test_ragged_feature_widths_are_padded_not_lost() -> None:
    batch = PredictionBatch.from_records([_record(0, 1, 2), _record(1, 1, 4)])
    rows = batch.to_arrow().column("features").to_pylist()
    assert len(rows[0][0]) == 4 and np.isnan(rows[0][0][2:]).all() and len(rows[1][0]) == 4


def test_logger_writes_one_file_per_model_version(tmp_path: Path) -> None:
    logger = PredictionLogger([ParquetSink(tmp_path)], flush_every=60)
    for i in range(6):
        logger.log(_record(i, 1, 3, model="a" if i < 4 else "b", version=str(i % 2)))
    logger.close()
    tables = [pq.read_table(f) for f in sorted(tmp_path.glob("*.parquet"))]
    groups = sorted((t["model"][0].as_py(), t["version"][0].as_py(), t.num_rows) for t in tables)
    assert groups == [("a", "0", 2), ("a", "1", 2), ("b", "0", 1), ("b", "1", 1)]
    assert logger.written == 6 and logger.dropped == 0


class _SlowSink:
    """Holds the first write until released (at most five minutes: a stuck test still ends)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.seen = 0

    def write(self, batch: PredictionBatch) -> None:
        self.entered.set()
        self.release.wait(300)
        self.seen += len(batch)

    def close(self) -> None:
        pass


def test_slow_sink_drops_beyond_capacity_and_never_blocks_the_caller() -> None:
    sink = _SlowSink()
    logger = PredictionLogger([sink], capacity=100, flush_every=0.01, chunk=10)
    logger.log(_record(0, 1, 3))
    assert sink.entered.wait(60)  # the drain thread now waits inside the sink with one record
    for i in range(1, 501):
        logger.log(_record(i, 1, 3))
    # All 500 calls returned while the sink still holds its first write: none waited for it.
    assert sink.seen == 0 and not sink.release.is_set()
    assert logger.dropped == 400  # the buffer holds 100, the rest is counted, not queued
    sink.release.set()
    logger.close()
    assert sink.seen == 101 and logger.written == 101


class _BrokenSink:
    def write(self, batch: PredictionBatch) -> None:
        raise OSError("disk full")

    def close(self) -> None:
        pass


def test_a_failing_sink_is_counted_and_the_other_sink_still_gets_the_batch(tmp_path: Path) -> None:
    logger = PredictionLogger([_BrokenSink(), ParquetSink(tmp_path)], flush_every=60)
    logger.log(_record(0, 2, 3))
    logger.close()
    assert logger.failed_writes == 1
    assert pq.read_table(next(tmp_path.glob("*.parquet"))).num_rows == 1
