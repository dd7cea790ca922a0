"""Measuring what work uses: CPU-seconds, memory (sampled: peak and GB-hours) and GPU time.

A :class:`ProcessMeter` reads this process (and, for a server of worker processes, its
children) between :meth:`~ProcessMeter.start` and :meth:`~ProcessMeter.stop`; one
daemon thread per process samples every running meter's memory. CPU time is the
process's: two runs metered at once in one process each count the other's CPU too (the
record says so only by overlapping in time).

:func:`metered_scope` marks work whose resources an enclosing record already counts (a
pipeline step's worker), so a tracked run inside it is recorded ``within`` that step
and is never summed twice.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import psutil

_GB = float(1 << 30)
_scope: ContextVar[str | None] = ContextVar("ghaf_usage_scope", default=None)


def enclosing_scope() -> str | None:
    """``kind:ref`` of the metered work this code runs inside, if any."""
    return _scope.get()


@contextmanager
def metered_scope(node: str) -> Iterator[None]:
    """Run the block as part of the work ``node`` (``kind:ref``) records."""
    token = _scope.set(node)
    try:
        yield
    finally:
        _scope.reset(token)


@dataclass(frozen=True)
class Reading:
    """What a meter measured from its start: totals, and the peak of memory."""

    wall_s: float
    cpu_s: float
    memory_peak_gb: float
    memory_gb_hours: float
    gpu_s: float
    gpu_class: str | None


def gpu_in_use() -> str | None:
    """The machine class (``nvidia-h100``...) of the CUDA device this process has
    initialised, or None: no CUDA context here (torch never imported, or CPU only).

    Only a module already imported is asked: metering never imports PyTorch.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
            return None
        name = str(torch.cuda.get_device_name(torch.cuda.current_device())).lower()
    except Exception:  # noqa: BLE001 - a broken driver means no GPU to charge
        return None
    match = re.search(r"\b([a-z]\d{2,4}[a-z]?)\b", name)
    return f"nvidia-{match.group(1)}" if match else re.sub(r"[^a-z0-9]+", "-", name).strip("-")


class ProcessMeter:
    """CPU, memory and GPU time this process (``children``: and its descendants) uses."""

    def __init__(self, *, children: bool = False, sample_interval: float = 1.0) -> None:
        self.children = children
        self.sample_interval = sample_interval
        self._process = psutil.Process()
        self._lock = threading.Lock()
        self._started = 0.0
        self._cpu0 = 0.0
        self._last_t = 0.0
        self._last_rss = 0.0
        self._gb_seconds = 0.0
        self._peak = 0.0
        self._gpu_since: float | None = None
        self._gpu_class: str | None = None
        self._stopped: Reading | None = None

    def _cpu(self) -> float:
        times = self._process.cpu_times()
        total = times.user + times.system
        if self.children:
            total += times.children_user + times.children_system  # those already reaped
            for child in self._descendants():
                try:
                    child_times = child.cpu_times()
                except psutil.Error:
                    continue
                total += child_times.user + child_times.system
        return float(total)

    def _descendants(self) -> list[psutil.Process]:
        try:
            return list(self._process.children(recursive=True))
        except psutil.Error:
            return []

    def _rss_gb(self) -> float:
        try:
            rss = float(self._process.memory_info().rss)
        except psutil.Error:
            return 0.0
        if self.children:
            for child in self._descendants():
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    continue
        return rss / _GB

    def start(self) -> ProcessMeter:
        """Begin measuring now; returns the meter."""
        now = time.monotonic()
        with self._lock:
            self._started = self._last_t = now
            self._cpu0 = self._cpu()
            self._last_rss = self._peak = self._rss_gb()
        self._look_at_gpu(now)
        _sampler().add(self)
        return self

    def _look_at_gpu(self, now: float) -> None:
        if self._gpu_since is None:
            found = gpu_in_use()
            if found is not None:
                # First seen now; a context made before the meter started counts from it.
                self._gpu_since = self._started if now == self._started else now
                self._gpu_class = found

    def sample(self) -> None:
        """Take one memory sample (the sampler thread calls this)."""
        rss = self._rss_gb()
        now = time.monotonic()
        with self._lock:
            if self._stopped is not None:
                return
            self._gb_seconds += (now - self._last_t) * (self._last_rss + rss) / 2
            self._last_t, self._last_rss = now, rss
            self._peak = max(self._peak, rss)
        self._look_at_gpu(now)

    def read(self) -> Reading:
        """What was used from the start until now (the meter keeps running)."""
        if self._stopped is not None:
            return self._stopped
        self.sample()
        now = time.monotonic()
        with self._lock:
            wall = now - self._started
            gpu_s = 0.0 if self._gpu_since is None else now - self._gpu_since
            return Reading(
                wall_s=wall,
                cpu_s=max(self._cpu() - self._cpu0, 0.0),
                memory_peak_gb=self._peak,
                memory_gb_hours=self._gb_seconds / 3600.0,
                gpu_s=gpu_s,
                gpu_class=self._gpu_class,
            )

    def stop(self) -> Reading:
        """Stop measuring; returns the final reading (the same on every later call)."""
        if self._stopped is None:
            reading = self.read()
            with self._lock:
                self._stopped = reading
            _sampler().discard(self)
        return self._stopped


class _Sampler:
    """One daemon thread sampling every running meter of this process."""

    def __init__(self) -> None:
        self._meters: weakref.WeakSet[ProcessMeter] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, meter: ProcessMeter) -> None:
        with self._lock:
            self._meters.add(meter)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="ghaf-usage-sampler", daemon=True
                )
                self._thread.start()

    def discard(self, meter: ProcessMeter) -> None:
        with self._lock:
            self._meters.discard(meter)

    def _run(self) -> None:
        while True:
            with self._lock:
                meters = list(self._meters)
            if not meters:
                with self._lock:
                    if not self._meters:
                        self._thread = None
                        return
                continue
            interval = min(m.sample_interval for m in meters)
            time.sleep(interval)  # a sampling period, not a wait on a condition
            for meter in meters:
                meter.sample()


_SAMPLER = _Sampler()


def _sampler() -> _Sampler:
    return _SAMPLER
