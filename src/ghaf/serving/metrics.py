"""Prometheus metrics of the server, rendered in the text exposition format.

Kept in-process and lock-free (the event loop is single-threaded; batch observations
arrive on the loop too). With ``--workers N`` each worker reports its own series,
labelled with its ``worker`` id.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)

Labels = tuple[tuple[str, str], ...]


class Histogram:
    """Cumulative-bucket histogram."""

    def __init__(self, buckets: Iterable[float]) -> None:
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1


class Metrics:
    """Request counts, latencies, batch sizes and queue depths per model version."""

    def __init__(self, worker: str = "0") -> None:
        self.worker = worker
        self.requests: dict[Labels, int] = defaultdict(int)
        self.latency: dict[Labels, Histogram] = {}
        self.batch_rows: dict[Labels, Histogram] = {}
        self.predict_seconds: dict[Labels, Histogram] = {}
        self.queue_depth: dict[Labels, Callable[[], int]] = {}
        self.dropped_logs: Callable[[], int] = lambda: 0

    def observe_request(self, model: str, version: str, code: int, seconds: float) -> None:
        self.requests[(("model", model), ("version", version), ("code", str(code)))] += 1
        key = (("model", model), ("version", version))
        hist = self.latency.get(key)
        if hist is None:
            hist = self.latency[key] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def observe_batch(self, model: str, version: str, rows: int, seconds: float) -> None:
        key = (("model", model), ("version", version))
        if key not in self.batch_rows:
            self.batch_rows[key] = Histogram(BATCH_BUCKETS)
            self.predict_seconds[key] = Histogram(LATENCY_BUCKETS)
        self.batch_rows[key].observe(rows)
        self.predict_seconds[key].observe(seconds)

    def track_queue(self, model: str, version: str, depth: Callable[[], int]) -> None:
        self.queue_depth[(("model", model), ("version", version))] = depth

    def render(self) -> str:
        """The Prometheus text exposition of every series."""
        lines: list[str] = []
        worker = (("worker", self.worker),)
        lines += _header("ghaf_requests_total", "counter", "Inference requests by status code.")
        for labels, value in sorted(self.requests.items()):
            lines.append(f"ghaf_requests_total{_fmt(labels + worker)} {value}")
        _histograms(lines, "ghaf_request_seconds", "Request latency.", self.latency, worker)
        _histograms(lines, "ghaf_batch_rows", "Rows per scored batch.", self.batch_rows, worker)
        _histograms(
            lines, "ghaf_predict_seconds", "Model time per batch.", self.predict_seconds, worker
        )
        lines += _header("ghaf_queue_rows", "gauge", "Rows waiting to be batched.")
        for labels, depth in sorted(self.queue_depth.items()):
            lines.append(f"ghaf_queue_rows{_fmt(labels + worker)} {depth()}")
        lines += _header(
            "ghaf_prediction_log_dropped_total", "counter", "Prediction log records dropped."
        )
        lines.append(f"ghaf_prediction_log_dropped_total{_fmt(worker)} {self.dropped_logs()}")
        return "\n".join(lines) + "\n"


def _header(name: str, kind: str, text: str) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def _fmt(labels: Labels) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _histograms(
    lines: list[str], name: str, text: str, series: dict[Labels, Histogram], extra: Labels
) -> None:
    lines += _header(name, "histogram", text)
    for labels, hist in sorted(series.items()):
        running = 0
        for bound, count in zip(hist.bounds, hist.counts, strict=False):
            running += count
            lines.append(f"{name}_bucket{_fmt((*labels, *extra, ('le', repr(bound))))} {running}")
        lines.append(f"{name}_bucket{_fmt((*labels, *extra, ('le', '+Inf')))} {hist.count}")
        lines.append(f"{name}_sum{_fmt(labels + extra)} {hist.total}")
        lines.append(f"{name}_count{_fmt(labels + extra)} {hist.count}")
