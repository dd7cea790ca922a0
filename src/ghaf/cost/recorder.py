"""Recording long-running work (a ``ghaf serve``) as segments: one usage record soon after
it starts, then at growing gaps up to ``cost.record_interval_s``, and a last one when it
stops. Each segment holds what was used since the previous one, so a report over any
window counts only the segments that ended in it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType

from ghaf.cost.base import Usage
from ghaf.cost.meter import ProcessMeter, Reading
from ghaf.cost.store import record_quietly
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor

FIRST_GAP_S = 5.0
"""Seconds before the first segment: a new server shows up in reports at once."""


class SegmentRecorder:
    """Meter a running server and record its usage in segments (a context manager)."""

    def __init__(
        self,
        platform: Platform,
        actor: Actor,
        *,
        deployment: str,
        model: str | None,
        replicas: int,
        cpu_request: float,
        memory_request_gb: float = 0.0,
        gpu_request: float = 0.0,
        children: bool = False,
    ) -> None:
        self.platform, self.actor = platform, actor
        self.deployment, self.model = deployment, model
        self.replicas, self.cpu_request = replicas, cpu_request
        self.memory_request_gb, self.gpu_request = memory_request_gb, gpu_request
        settings = platform.settings.cost
        self.interval = settings.record_interval_s
        self.session = uuid.uuid4().hex
        self.meter = ProcessMeter(children=children, sample_interval=settings.sample_interval_s)
        self.predictions: Callable[[], int] = lambda: 0
        self.segments = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last: Reading | None = None
        self._last_at: datetime = utcnow()
        self._last_predictions = 0

    def count_predictions(self, count: Callable[[], int]) -> None:
        """Where the running total of predictions served comes from."""
        self.predictions = count

    def __enter__(self) -> SegmentRecorder:
        self._last_at = utcnow()
        self.meter.start()
        self._last = Reading(0.0, 0.0, 0.0, 0.0, 0.0, None)
        self._thread = threading.Thread(target=self._run, name="ghaf-usage-recorder", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        gap = FIRST_GAP_S
        while not self._stop.wait(min(gap, self.interval)):
            self.record_segment()
            gap *= 2

    def record_segment(self) -> Usage | None:
        """Record what was used since the last segment now; None when no time passed."""
        with self._lock:
            last = self._last
            if last is None:
                raise RuntimeError("a segment is recorded only inside `with recorder:`")
            reading = self.meter.read()
            try:
                predictions = int(self.predictions())
            except Exception:  # noqa: BLE001 - a count we cannot read is not a reason to lose usage
                predictions = self._last_predictions
            wall = reading.wall_s - last.wall_s
            if wall <= 0:
                return None
            ended = self._last_at + timedelta(seconds=wall)
            self.segments += 1
            usage = Usage(
                kind="deployment",
                ref=f"{self.session}:{self.segments:06d}",
                started_at=self._last_at,
                ended_at=ended,
                wall_s=wall,
                cpu_s=max(reading.cpu_s - last.cpu_s, 0.0),
                cpu_request=self.cpu_request,
                memory_peak_gb=reading.memory_peak_gb,
                memory_gb_hours=max(reading.memory_gb_hours - last.memory_gb_hours, 0.0),
                memory_request_gb=self.memory_request_gb,
                gpu_class=reading.gpu_class,
                gpu_s=max(reading.gpu_s - last.gpu_s, 0.0),
                gpu_request=self.gpu_request,
                replicas=self.replicas,
                predictions=max(predictions - self._last_predictions, 0),
                model=self.model,
                deployment=self.deployment,
                parent=self.session,
            )
            self._last, self._last_at, self._last_predictions = reading, ended, predictions
        record_quietly(self.platform, self.actor, usage)
        return usage

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.record_segment()
        self.meter.stop()
