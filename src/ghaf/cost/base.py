"""What a piece of work held and used: the usage record every run, step, batch job and
deployment segment leaves, and its units."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from ghaf.errors import InvalidInputError

KINDS = ("run", "pipeline_step", "batch", "deployment")
"""What records usage: a tracked run, a pipeline step attempt, a batch scoring job, and a
segment of a running ``ghaf serve`` (one per recording interval)."""

_MAX_NUMBER = 1e15


@dataclass(frozen=True)
class Usage:
    """The resources one piece of work held (requests) and used, over its wall time.

    Held quantities are rates (vCPUs, GB, GPUs held for the whole wall time); used ones
    are totals (CPU-seconds, GB-hours, GPU-seconds). The project and the user are the
    operation's that records it, never fields a caller sets.
    """

    kind: str
    ref: str
    started_at: datetime
    ended_at: datetime
    wall_s: float
    cpu_s: float = 0.0
    cpu_request: float = 0.0
    memory_peak_gb: float = 0.0
    memory_gb_hours: float = 0.0
    memory_request_gb: float = 0.0
    gpu_class: str | None = None
    gpu_s: float = 0.0
    gpu_request: float = 0.0
    replicas: int = 1
    predictions: int = 0
    model: str | None = None
    deployment: str | None = None
    parent: str | None = None
    """What this is part of (a step's pipeline run), for reading back."""
    within: str | None = None
    """``kind:ref`` of an enclosing record that already counts these resources (a run
    inside a pipeline step, a nested run): shown, never summed twice."""
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInputError(
                f"usage kind {self.kind!r} is unknown", hint=f"use one of {', '.join(KINDS)}"
            )
        if not self.ref or len(self.ref) > 200:
            raise InvalidInputError("usage ref must be 1-200 characters", hint="e.g. a run id")
        numbers = {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "cpu_request": self.cpu_request,
            "memory_peak_gb": self.memory_peak_gb,
            "memory_gb_hours": self.memory_gb_hours,
            "memory_request_gb": self.memory_request_gb,
            "gpu_s": self.gpu_s,
            "gpu_request": self.gpu_request,
            "replicas": self.replicas,
            "predictions": self.predictions,
        }
        for name, value in numbers.items():
            if not 0 <= value <= _MAX_NUMBER:  # NaN fails this too
                raise InvalidInputError(
                    f"usage field {name} is {value!r}", hint="give a finite number >= 0"
                )
        if self.replicas > 100_000:
            raise InvalidInputError(
                f"usage field replicas is {self.replicas}", hint="give at most 100000"
            )
        if self.ended_at < self.started_at:
            raise InvalidInputError(
                "usage ended_at is before started_at", hint="give the interval in time order"
            )

    @property
    def node(self) -> str:
        return f"{self.kind}:{self.ref}"

    @property
    def hours(self) -> float:
        return self.wall_s / 3600.0

    @property
    def replica_hours(self) -> float:
        return self.replicas * self.hours

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Usage:
        """A record from its JSON fields (times in ISO 8601 with a zone).

        Raises:
            InvalidInputError: an unknown or missing field, or a value of the wrong type,
                naming the field.
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(body) - set(known))
        if unknown:
            raise InvalidInputError(
                f"usage field {unknown[0]!r} is unknown", hint=f"use: {', '.join(sorted(known))}"
            )
        values = dict(body)
        for name in ("kind", "ref", "started_at", "ended_at", "wall_s"):
            if name not in values:
                raise InvalidInputError(
                    f"usage field {name} is missing",
                    hint="give kind, ref, started_at, ended_at and wall_s",
                )
        for name in ("started_at", "ended_at"):
            values[name] = _time(name, values[name])
        for name, spec in known.items():
            if name in values and spec.type in ("float", "int"):
                value = values[name]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise InvalidInputError(
                        f"usage field {name} is not a number", hint="give a number >= 0"
                    )
                if spec.type == "int" and value != int(value):
                    raise InvalidInputError(
                        f"usage field {name} is not a whole number", hint="e.g. 3"
                    )
                values[name] = int(value) if spec.type == "int" else float(value)
        for name in ("kind", "ref", "gpu_class", "model", "deployment", "parent", "within"):
            value = values.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidInputError(f"usage field {name} is not text", hint="give a string")
        labels = values.get("labels", {})
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise InvalidInputError(
                "usage field labels is not an object of strings", hint='e.g. {"team": "risk"}'
            )
        return cls(**values)


def _time(name: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            raise InvalidInputError(
                f"usage field {name} is not an ISO 8601 time", hint="e.g. 2026-12-01T10:00:00Z"
            ) from None
    if parsed.tzinfo is None:
        raise InvalidInputError(f"usage field {name} has no time zone", hint="end it in Z")
    return parsed


@dataclass(frozen=True)
class StoredUsage:
    """A usage record as stored: the record, and who recorded it in which project."""

    usage: Usage
    project: str
    user: str
    recorded_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.usage.to_dict(),
            "project": self.project,
            "user": self.user,
            "recorded_at": self.recorded_at,
        }
