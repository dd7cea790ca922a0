"""Prediction logging: every prediction to the event bus and a Parquet sink, never blocking.

``PredictionLogger.log`` only appends to a bounded in-memory buffer (a ``deque`` append
on the event loop). A background thread drains it in chunks to the sinks. When the
buffer is full (a slow or down sink), the record is dropped and counted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ghaf.logs import get_logger

SUBJECT = "serving.prediction"
_log = get_logger(__name__)


class PredictionSink(Protocol):
    """Where drained prediction records go; ``write`` may be slow or raise."""

    def write(self, records: Sequence[Mapping[str, Any]]) -> None: ...

    def close(self) -> None: ...


class EventBusSink:
    """Publishes one event per record on ``serving.prediction.<model>``."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        for record in records:
            self.bus.publish(f"{SUBJECT}.{record['model']}", record, msg_id=record["request_id"])

    def close(self) -> None:
        """The bus belongs to the platform; nothing to close here."""


class ParquetSink:
    """Appends records to Parquet files under ``directory``, one file per flush."""

    def __init__(self, directory: Path, prefix: str = "predictions") -> None:
        self.directory = directory
        self.prefix = prefix
        self._seq = 0
        directory.mkdir(parents=True, exist_ok=True)

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        import orjson
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = {
            "request_id": [r["request_id"] for r in records],
            "ts": [r["ts"] for r in records],
            "model": [r["model"] for r in records],
            "version": [r["version"] for r in records],
            "variant": [r.get("variant") for r in records],
            "latency_ms": [r["latency_ms"] for r in records],
            "features": [orjson.dumps(r["features"]).decode() for r in records],
            "outputs": [orjson.dumps(r["outputs"]).decode() for r in records],
        }
        self._seq += 1
        final = self.directory / f"{self.prefix}-{self._seq:08d}.parquet"
        partial = final.with_suffix(".partial")
        pq.write_table(pa.table(rows), partial)
        partial.replace(final)  # readers never see a half-written file

    def close(self) -> None:
        """Each flush is a complete file; nothing is held open."""


class PredictionLogger:
    """Bounded buffer + background flusher over a list of sinks."""

    def __init__(
        self,
        sinks: Sequence[PredictionSink],
        *,
        capacity: int = 100_000,
        flush_every: float = 0.5,
        chunk: int = 5_000,
    ) -> None:
        self.sinks = list(sinks)
        self.capacity = capacity
        self.flush_every = flush_every
        self.chunk = chunk
        self.dropped = 0
        self.written = 0
        self.failed_writes = 0
        self._buffer: deque[dict[str, Any]] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="ghaf-predlog", daemon=True)
        self._thread.start()

    def log(self, record: dict[str, Any]) -> None:
        """Queue one record; O(1), never blocks; drops (and counts) when the buffer is full."""
        if len(self._buffer) >= self.capacity:
            self.dropped += 1
            return
        self._buffer.append(record)

    def _drain(self) -> None:
        while not self._stop.wait(self.flush_every):
            self.flush()
        self.flush()

    def flush(self) -> None:
        """Write whatever is buffered (called by the background thread and at close)."""
        while self._buffer:
            batch: list[dict[str, Any]] = []
            while self._buffer and len(batch) < self.chunk:
                batch.append(_plain(self._buffer.popleft()))
            for sink in self.sinks:
                try:
                    sink.write(batch)
                except Exception as exc:  # noqa: BLE001 - a down sink must not take serving down
                    self.failed_writes += 1
                    _log.warning("prediction sink failed", sink=type(sink).__name__, error=str(exc))
            self.written += len(batch)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        for sink in self.sinks:
            sink.close()


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """Arrays to lists, off the event loop (the hot path stores array views only)."""
    for key in ("features", "outputs"):
        value = record.get(key)
        if isinstance(value, dict):
            record[key] = {k: v.tolist() if hasattr(v, "tolist") else v for k, v in value.items()}
        elif value is not None and hasattr(value, "tolist"):
            record[key] = value.tolist()
    return record


def now_ms() -> float:
    return time.time() * 1000.0
