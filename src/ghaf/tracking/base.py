"""Tracking records as callers see them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

RunStatus = Literal["running", "finished", "failed", "killed"]
RUN_STATUSES: tuple[str, ...] = ("running", "finished", "failed", "killed")


@dataclass(frozen=True)
class MetricPoint:
    """One point of a metric series."""

    key: str
    value: float
    step: int
    timestamp: float
    """Seconds since the epoch when it was logged."""


@dataclass(slots=True)
class Run:
    """A run with its latest metrics, params, tags, inputs and artifacts."""

    run_id: str
    experiment: str
    name: str
    status: str
    user: str
    project: str
    start_time: datetime
    end_time: datetime | None
    parent_run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    """Latest value per key (highest step)."""
    metric_min: dict[str, float] = field(default_factory=dict)
    metric_max: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    artifacts: dict[str, str] = field(default_factory=dict)
    """Artifact path -> digest."""
    env: dict[str, Any] = field(default_factory=dict)

    @property
    def node(self) -> str:
        """The run's lineage node id."""
        return f"run:{self.run_id}"
