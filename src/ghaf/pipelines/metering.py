"""What a step attempt held (its resource request) and used (its worker's meter), as the
usage record its ``pipeline.step_update`` stores."""

from __future__ import annotations

from datetime import timedelta

from ghaf.cost.base import Usage
from ghaf.metadata.base import utcnow
from ghaf.pipelines.step import Resources
from ghaf.pipelines.worker import StepResult


def step_usage(
    step_run_id: str,
    attempt: int,
    run_id: str,
    resources: Resources,
    result: StepResult,
    elapsed_s: float,
) -> Usage:
    """The usage of one attempt ending now: held for its wall time (the worker's, or
    ``elapsed_s`` when the worker never reported: killed, timed out)."""
    wall = result.wall_s if result.wall_s > 0 else max(elapsed_s, 0.0)
    ended = utcnow()
    return Usage(
        kind="pipeline_step",
        ref=f"{step_run_id}:{attempt}",
        started_at=ended - timedelta(seconds=wall),
        ended_at=ended,
        wall_s=wall,
        cpu_s=max(result.cpu_s, 0.0),
        cpu_request=resources.cpu,
        memory_peak_gb=max(result.max_rss_mb, 0.0) / 1024.0,
        memory_gb_hours=result.memory_gb_hours,
        memory_request_gb=(resources.memory_mb or 0) / 1024.0,
        gpu_class=result.gpu_class,
        gpu_s=result.gpu_s,
        gpu_request=resources.gpu,
        parent=run_id,
    )
