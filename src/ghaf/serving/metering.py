"""What scoring holds and uses: a batch job's usage record, and a running server's
segments (its replicas, their CPU and memory, and the predictions it served)."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from types import TracebackType
from typing import Any

from ghaf.cost.base import Usage
from ghaf.cost.meter import ProcessMeter
from ghaf.cost.recorder import SegmentRecorder
from ghaf.cost.store import record_quietly
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor


class BatchMeter:
    """Meter a batch scoring job; a job that completes records its usage (``usage.record``)
    with ``predictions`` rows, holding ``workers`` scoring threads for its wall time."""

    def __init__(self, platform: Platform, actor: Actor, model: str, workers: int | None) -> None:
        self.platform, self.actor, self.model = platform, actor, model
        self.workers = workers or os.cpu_count() or 1
        self.predictions = 0
        self.usage: Usage | None = None
        self._meter = ProcessMeter(sample_interval=platform.settings.cost.sample_interval_s)

    def __enter__(self) -> BatchMeter:
        self._started = utcnow()
        self._meter.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        reading = self._meter.stop()
        if exc_type is not None:
            return  # refused or failed: nothing was scored for anyone
        self.usage = Usage(
            kind="batch",
            ref=uuid.uuid4().hex,
            started_at=self._started,
            ended_at=self._started + timedelta(seconds=reading.wall_s),
            wall_s=reading.wall_s,
            cpu_s=reading.cpu_s,
            cpu_request=float(self.workers),
            memory_peak_gb=reading.memory_peak_gb,
            memory_gb_hours=reading.memory_gb_hours,
            gpu_class=reading.gpu_class,
            gpu_s=reading.gpu_s,
            predictions=self.predictions,
            model=self.model,
        )
        record_quietly(self.platform, self.actor, self.usage)


def rows_scored(metrics: Any) -> int:
    """Rows a server's versions scored so far (``ghaf_batch_rows`` summed), in-process."""
    for _ in range(3):  # the event loop may add a series while this thread reads
        try:
            return int(sum(h.total for h in list(metrics.batch_rows.values())))
        except RuntimeError:
            continue
    return 0


def rows_scored_in(metrics_dir: str) -> int:
    """Rows every worker of a multi-worker server scored so far (its shared metric files)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
    total = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "ghaf_batch_rows_sum":
                total += sample.value
    return int(total)


def deployment_recorder(
    platform: Platform,
    actor: Actor,
    deployment: str,
    model: str,
    *,
    workers: int,
    threads: int,
) -> SegmentRecorder:
    """The recorder of a ``ghaf serve`` of ``deployment``: ``workers`` replicas, each
    holding ``threads`` vCPUs; a multi-worker server meters its worker processes."""
    return SegmentRecorder(
        platform,
        actor,
        deployment=deployment,
        model=model,
        replicas=workers,
        cpu_request=float(workers * threads),
        children=workers > 1,
    )
