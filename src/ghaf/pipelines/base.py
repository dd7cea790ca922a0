"""The ``Executor`` Protocol and the records of pipeline and step runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ghaf.pipelines.worker import StepResult, StepTask

RUN_STATUSES = ("running", "succeeded", "failed", "cancelled")
STEP_STATUSES = ("pending", "running", "succeeded", "cached", "failed", "cancelled", "skipped")


class Executor(Protocol):
    """Runs step attempts somewhere (local processes, a Ray cluster); the runner decides
    what runs when, and handles retries, timeouts and cancellation through this interface."""

    name: str
    capacity: int
    """How many attempts may run at once."""

    def submit(self, task: StepTask) -> Any:
        """Start one attempt; returns a handle."""
        ...

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, StepResult]]:
        """Attempts that finished within ``timeout`` seconds, with their results."""
        ...

    def cancel(self, handle: Any) -> None:
        """Stop an attempt now (its worker is killed); it yields no result."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class StepRun:
    """A recorded step run."""

    id: str
    run_id: str
    step: str
    status: str
    attempts: int
    cache_key: str
    output_digest: str | None
    output_kind: str | None
    log_digest: str | None
    error: str | None
    cpu_s: float | None
    max_rss_mb: float | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None


@dataclass(frozen=True)
class PipelineRun:
    """A recorded pipeline run with its step runs."""

    id: str
    pipeline: str
    project: str
    status: str
    executor: str
    trigger: str
    params: dict[str, Any]
    error: str | None
    created_by: str
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    steps: tuple[StepRun, ...] = ()

    def step(self, name: str) -> StepRun:
        return next(s for s in self.steps if s.step == name)

    @property
    def executed(self) -> list[str]:
        """Steps that ran (not served from the cache)."""
        return [s.step for s in self.steps if s.status == "succeeded"]
