"""Prometheus metrics of the server, rendered in the text exposition format.

Kept in-process and lock-free (the event loop is single-threaded; batch observations
arrive on the loop too). With ``--workers N`` each worker also flushes what it counted,
at most 0.2 s later, to its own memory-mapped files in a directory the parent made for
this server (prometheus_client's multiprocess mode), and ``/metrics`` answers from all
of them summed, whichever worker takes the scrape: one series per model, version and
code, so a counter never jumps between scrapes. A worker's counters outlive it (the
totals stay monotonic); its gauges go with it (``livesum``).
"""

from __future__ import annotations

import asyncio
import atexit
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
        self._shared = _SharedSeries(shared_dir, self) if shared_dir else None

    def observe_request(self, model: str, version: str, code: int, seconds: float) -> None:
        self.requests[(("model", model), ("version", version), ("code", str(code)))] += 1
        key = (("model", model), ("version", version))
        hist = self.latency.get(key)
        if hist is None:
            hist = self.latency[key] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)
        if self._shared is not None and not self._shared.pending:
            self._shared.schedule(self)

    def observe_batch(self, model: str, version: str, rows: int, seconds: float) -> None:
        key = (("model", model), ("version", version))
        if key not in self.batch_rows:
            self.batch_rows[key] = Histogram(BATCH_BUCKETS)
            self.predict_seconds[key] = Histogram(LATENCY_BUCKETS)
        self.batch_rows[key].observe(rows)
        self.predict_seconds[key].observe(seconds)
        if self._shared is not None and not self._shared.pending:
            self._shared.schedule(self)

    def track_queue(self, model: str, version: str, depth: Callable[[], int]) -> None:
        self.queue_depth[(("model", model), ("version", version))] = depth
        if self._shared is not None:
            self._shared.flush(self)

    def render(self) -> str:
        """The Prometheus text exposition of every series (of every worker, when shared)."""
        if self._shared is not None:
            self._shared.flush(self)  # this worker's series are current; the others' are
            return self._shared.render()  # at most FLUSH_SECONDS old
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


FLUSH_SECONDS = 0.2
"""How long a worker's observations wait, at most, before its files show them."""


class _SharedSeries:
    """This worker's series in prometheus_client's multiprocess files (one set per process).

    Requests and batches count in the lock-free in-process series as in one process; what
    they added reaches the files in one flush, at most :data:`FLUSH_SECONDS` later (on the
    event loop), before this worker renders a scrape, and at exit. A flush writes only the
    series that grew, so the request path never waits on a file (a write per value costs
    a lock and an mmap store: several microseconds for each of a request's seven values).
    """

    def __init__(self, path: str, metrics: Metrics) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, values
        from prometheus_client import Histogram as PromHistogram

        if values.ValueClass is values.MutexValue:
            raise ConfigError(
                "this worker writes no shared metric files: it started without "
                f"{MULTIPROC_VARIABLE}",
                hint="start workers with ghaf serve --workers N, which sets it",
            )
        self.path = path
        self.pending = False
        registry = CollectorRegistry()  # the definitions only; render reads the files
        model = ["model", "version"]
        self._requests = Counter(
            "ghaf_requests", REQUESTS_HELP, [*model, "code"], registry=registry
        )
        self._histograms = [
            (metrics.latency, PromHistogram(
                "ghaf_request_seconds", LATENCY_HELP, model, registry=registry,
                buckets=LATENCY_BUCKETS)),
            (metrics.batch_rows, PromHistogram(
                "ghaf_batch_rows", BATCH_HELP, model, registry=registry, buckets=BATCH_BUCKETS)),
            (metrics.predict_seconds, PromHistogram(
                "ghaf_predict_seconds", PREDICT_HELP, model, registry=registry,
                buckets=LATENCY_BUCKETS)),
        ]  # fmt: skip
        self._queue = Gauge(
            "ghaf_queue_rows", QUEUE_HELP, model, registry=registry, multiprocess_mode="livesum"
        )
        self._dropped = Counter("ghaf_prediction_log_dropped", DROPPED_HELP, registry=registry)
        self._dropped.inc(0)  # the series exists from the start, as in one process
        if not (Path(path) / f"counter_{os.getpid()}.db").is_file():
            raise ConfigError(
                f"this worker's metric files are not in {path}",
                hint=f"start it with {MULTIPROC_VARIABLE} naming the server's metrics directory",
            )
        self._written: dict[tuple[int, Labels], Any] = {}
        """What the files hold of each series: a count, (bucket counts, sum), a depth."""
        self._children: dict[tuple[int, Labels], Any] = {}
        atexit.register(self.flush, metrics)  # a worker stopped gracefully loses nothing

    def schedule(self, metrics: Metrics) -> None:
        """Flush once, soon (on the running event loop; at once outside one)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush(metrics)
            return
        self.pending = True
        loop.call_later(FLUSH_SECONDS, self.flush, metrics)

    def _child(self, metric: Any, labels: Labels) -> Any:
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*(v for _, v in labels))
        return child

    def flush(self, metrics: Metrics) -> None:
        """Write what grew since the last flush, and the current gauges."""
        self.pending = False
        requests = id(self._requests)
        for labels, value in list(metrics.requests.items()):
            before = self._written.get((requests, labels), 0)
            if value > before:
                self._child(self._requests, labels).inc(value - before)
                self._written[(requests, labels)] = value
        for series, family in self._histograms:
            for labels, hist in list(series.items()):
                key = (id(family), labels)
                counts, total = list(hist.counts), hist.total
                before, before_total = self._written.get(key, ([0] * len(counts), 0.0))
                if counts == before:
                    continue
                child = self._child(family, labels)
                for i, (now, then) in enumerate(zip(counts, before, strict=True)):
                    if now > then:
                        child._buckets[i].inc(now - then)  # one bucket, as observe() does
                child._sum.inc(total - before_total)
                self._written[key] = (counts, total)
        queue = id(self._queue)
        for labels, depth in list(metrics.queue_depth.items()):
            now = depth()
            if self._written.get((queue, labels)) != now:
                self._child(self._queue, labels).set(now)
                self._written[(queue, labels)] = now
        dropped = metrics.dropped_logs()
        before = self._written.get((id(self._dropped), ()), 0)
        if dropped > before:
            self._dropped.inc(dropped - before)
            self._written[(id(self._dropped), ())] = dropped

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
