"""Prometheus metrics of the server, rendered in the text exposition format.

Kept in-process and lock-free (the event loop is single-threaded; batch observations
arrive on the loop too). With ``--workers N`` every worker also writes each observation
to its own memory-mapped files in a directory the parent made for this server
(prometheus_client's multiprocess mode), and ``/metrics`` answers from all of them
summed, whichever worker takes the scrape: one series per model, version and code, so a
counter never jumps between scrapes. A worker's counters outlive it (the totals stay
monotonic); its gauges go with it (``livesum``).
"""

from __future__ import annotations

import bisect
import os
import shutil
import stat
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ghaf.errors import ConfigError

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
    """Request counts, latencies, batch sizes and queue depths per model version.

    ``shared_dir``: the directory of a multi-worker server's metric files (see
    :func:`shared_metrics_dir`); this process must have started with
    ``PROMETHEUS_MULTIPROC_DIR`` naming it (``ghaf serve --workers N`` sets it for each
    worker), and :meth:`render` then sums every worker's series. ``worker`` is this
    process's index, for its logs; the series carry no worker label in either mode.
    """

    def __init__(self, worker: str = "0", shared_dir: str | None = None) -> None:
        self.worker = worker
        self.requests: dict[Labels, int] = defaultdict(int)
        self.latency: dict[Labels, Histogram] = {}
        self.batch_rows: dict[Labels, Histogram] = {}
        self.predict_seconds: dict[Labels, Histogram] = {}
        self.queue_depth: dict[Labels, Callable[[], int]] = {}
        self.dropped_logs: Callable[[], int] = lambda: 0
        self._shared = _SharedSeries(shared_dir) if shared_dir else None

    def observe_request(self, model: str, version: str, code: int, seconds: float) -> None:
        self.requests[(("model", model), ("version", version), ("code", str(code)))] += 1
        key = (("model", model), ("version", version))
        hist = self.latency.get(key)
        if hist is None:
            hist = self.latency[key] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)
        if self._shared is not None:
            self._shared.request(model, version, str(code), seconds)

    def observe_batch(self, model: str, version: str, rows: int, seconds: float) -> None:
        key = (("model", model), ("version", version))
        if key not in self.batch_rows:
            self.batch_rows[key] = Histogram(BATCH_BUCKETS)
            self.predict_seconds[key] = Histogram(LATENCY_BUCKETS)
        self.batch_rows[key].observe(rows)
        self.predict_seconds[key].observe(seconds)
        if self._shared is not None:
            self._shared.batch(model, version, rows, seconds)
            self._shared.sync_gauges(self)

    def track_queue(self, model: str, version: str, depth: Callable[[], int]) -> None:
        self.queue_depth[(("model", model), ("version", version))] = depth
        if self._shared is not None:
            self._shared.sync_gauges(self)

    def render(self) -> str:
        """The Prometheus text exposition of every series (of every worker, when shared)."""
        if self._shared is not None:
            self._shared.sync_gauges(self)
            return self._shared.render()
        lines: list[str] = []
        lines += _header("ghaf_requests_total", "counter", REQUESTS_HELP)
        for labels, value in sorted(self.requests.items()):
            lines.append(f"ghaf_requests_total{_fmt(labels)} {value}")
        _histograms(lines, "ghaf_request_seconds", LATENCY_HELP, self.latency)
        _histograms(lines, "ghaf_batch_rows", BATCH_HELP, self.batch_rows)
        _histograms(lines, "ghaf_predict_seconds", PREDICT_HELP, self.predict_seconds)
        lines += _header("ghaf_queue_rows", "gauge", QUEUE_HELP)
        for labels, depth in sorted(self.queue_depth.items()):
            lines.append(f"ghaf_queue_rows{_fmt(labels)} {depth()}")
        lines += _header("ghaf_prediction_log_dropped_total", "counter", DROPPED_HELP)
        lines.append(f"ghaf_prediction_log_dropped_total {self.dropped_logs()}")
        return "\n".join(lines) + "\n"


REQUESTS_HELP = "Inference requests by status code."
LATENCY_HELP = "Request latency."
BATCH_HELP = "Rows per scored batch."
PREDICT_HELP = "Model time per batch."
QUEUE_HELP = "Rows waiting to be batched."
DROPPED_HELP = "Prediction log records dropped."
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""What prometheus_client reads, at import, to write values to per-process files."""


class _SharedSeries:
    """The series as prometheus_client multiprocess metrics (one file set per process).

    Each observation costs a few microseconds (a lock and an mmap write per value), paid
    only by multi-worker servers; children are cached per label set.
    """

    def __init__(self, path: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, values
        from prometheus_client import Histogram as PromHistogram

        if values.ValueClass is values.MutexValue:
            raise ConfigError(
                "this worker writes no shared metric files: it started without "
                f"{MULTIPROC_VARIABLE}",
                hint="start workers with ghaf serve --workers N, which sets it",
            )
        self.path = path
        registry = CollectorRegistry()  # the definitions only; render reads the files
        model = ["model", "version"]
        self._requests = Counter(
            "ghaf_requests", REQUESTS_HELP, [*model, "code"], registry=registry
        )
        self._latency = PromHistogram(
            "ghaf_request_seconds", LATENCY_HELP, model, registry=registry, buckets=LATENCY_BUCKETS
        )
        self._rows = PromHistogram(
            "ghaf_batch_rows", BATCH_HELP, model, registry=registry, buckets=BATCH_BUCKETS
        )
        self._predict = PromHistogram(
            "ghaf_predict_seconds", PREDICT_HELP, model, registry=registry, buckets=LATENCY_BUCKETS
        )
        self._queue = Gauge(
            "ghaf_queue_rows", QUEUE_HELP, model, registry=registry, multiprocess_mode="livesum"
        )
        self._dropped = Counter("ghaf_prediction_log_dropped", DROPPED_HELP, registry=registry)
        self._dropped.inc(0)  # the series exists from the start, as in one process
        self._dropped_seen = 0
        if not (Path(path) / f"counter_{os.getpid()}.db").is_file():
            raise ConfigError(
                f"this worker's metric files are not in {path}",
                hint=f"start it with {MULTIPROC_VARIABLE} naming the server's metrics directory",
            )
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, model: str, version: str, code: str, seconds: float) -> None:
        self._child(self._requests, model, version, code).inc()
        self._child(self._latency, model, version).observe(seconds)

    def batch(self, model: str, version: str, rows: int, seconds: float) -> None:
        self._child(self._rows, model, version).observe(rows)
        self._child(self._predict, model, version).observe(seconds)

    def sync_gauges(self, metrics: Metrics) -> None:
        """Write this process's queue depths and dropped-record count to its files."""
        for labels, depth in metrics.queue_depth.items():
            self._child(self._queue, *(v for _, v in labels)).set(depth())
        dropped = metrics.dropped_logs()
        if dropped > self._dropped_seen:
            self._dropped.inc(dropped - self._dropped_seen)
            self._dropped_seen = dropped

    def render(self) -> str:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.path)  # type: ignore[no-untyped-call]
        return generate_latest(registry).decode()


_PREFIX = "ghaf-serve-metrics-"


@contextmanager
def shared_metrics_dir(parent: str | None = None) -> Iterator[Path]:
    """A private (0700) directory for one multi-worker server's metric files, removed
    when the block ends; directories that servers killed before their cleanup left
    behind (this account's, their process gone) are removed first."""
    root = Path(parent or tempfile.gettempdir())
    _remove_orphans(root)
    path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _remove_orphans(root: Path) -> None:
    for entry in root.glob(f"{_PREFIX}*"):
        owner = entry.name[len(_PREFIX) :].split("-", 1)[0]
        with suppress(OSError, ValueError):
            info = entry.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue  # a link or another account's: not ours to remove
            if _alive(int(owner)):
                continue
            shutil.rmtree(entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_worker_dead(path: str, pid: int) -> None:
    """Drop a finished worker's live gauges (its counters keep counting in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def _header(name: str, kind: str, text: str) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def _fmt(labels: Labels) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _histograms(lines: list[str], name: str, text: str, series: dict[Labels, Histogram]) -> None:
    lines += _header(name, "histogram", text)
    for labels, hist in sorted(series.items()):
        running = 0
        for bound, count in zip(hist.bounds, hist.counts, strict=False):
            running += count
            lines.append(f"{name}_bucket{_fmt((*labels, ('le', repr(bound))))} {running}")
        lines.append(f"{name}_bucket{_fmt((*labels, ('le', '+Inf')))} {hist.count}")
        lines.append(f"{name}_sum{_fmt(labels)} {hist.total}")
        lines.append(f"{name}_count{_fmt(labels)} {hist.count}")
