"""Records of scheduled monitors: a schedule, its thresholds, and what each run found."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from ghaf.errors import InvalidInputError
from ghaf.monitoring.tables import MonitorResultRow, MonitorScheduleRow

SEVERITIES = ("critical", "high", "warning", "low", "info")


@dataclass(frozen=True)
class MonitorOptions:
    """When a monitor run counts as a breach (each is a threshold a person can tune).

    A feature alarms when its drift test says so (Benjamini-Hochberg at ``alpha`` across
    features) and its PSI is at least ``min_psi``: a window large enough for the test to
    call a tiny shift does not page anyone for it. The same rule holds for the model's
    scores. Quality breaches when a feature's missing rate rises by more than
    ``max_missing_increase`` over the reference's, or more than ``max_out_of_range`` of
    its values fall outside the reference's range (``max_unseen``: categories it never
    saw), or a column is missing. ``min_accuracy``/``min_auc`` (binary classifiers) hold
    the realized metric once labels are in, else the CBPE estimate.
    """

    alpha: float = 0.01
    min_psi: float = 0.1
    min_rows: int = 100
    max_missing_increase: float = 0.05
    max_out_of_range: float = 0.05
    max_unseen: float = 0.05
    threshold: float = 0.5
    min_accuracy: float | None = None
    min_auc: float | None = None
    label_metric: str = "outcome"
    label_horizon_s: int = 7 * 86_400
    severity: str = "warning"

    def __post_init__(self) -> None:
        unit = {"alpha", "min_psi", "max_missing_increase", "max_out_of_range", "max_unseen"}
        for name in unit | {"threshold", "min_accuracy", "min_auc"}:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInputError(f"option {name} must be a number", hint=f"e.g. {name}=0.1")
            bounds = (0.0, 1.0) if name != "min_psi" else (0.0, math.inf)
            if not bounds[0] <= float(value) <= bounds[1] or (name == "alpha" and value == 0):
                raise InvalidInputError(
                    f"option {name}={value} is out of range",
                    hint=f"{name} is a rate in (0, 1]" if name != "min_psi" else "min_psi >= 0",
                )
        if (
            isinstance(self.min_rows, bool)
            or not isinstance(self.min_rows, int)
            or self.min_rows < 1
        ):
            raise InvalidInputError("option min_rows must be a whole number >= 1", hint="e.g. 100")
        if (
            not isinstance(self.label_horizon_s, int)
            or not 0 <= self.label_horizon_s <= 366 * 86_400
        ):
            raise InvalidInputError(
                "option label_horizon_s must be 0 to 366 days in seconds", hint="e.g. 604800"
            )
        if self.severity not in SEVERITIES:
            raise InvalidInputError(
                f"option severity {self.severity!r} is unknown", hint=f"use {', '.join(SEVERITIES)}"
            )
        if not isinstance(self.label_metric, str) or not 0 < len(self.label_metric) <= 128:
            raise InvalidInputError("option label_metric must be a short name", hint="e.g. outcome")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> MonitorOptions:
        """Options from a JSON object, naming an unknown key.

        Raises:
            InvalidInputError: an unknown option or a value out of range.
        """
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidInputError(
                f"unknown monitor option {unknown[0]!r}", hint=f"known: {', '.join(sorted(known))}"
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MonitorSchedule:
    """A deployment's monitor: what it reads, how often, over what window."""

    deployment: str
    project: str
    model: str
    reference: str | None
    """A pinned reference (``profile:NAME@V``); None: each version's training profile."""
    log_dir: str
    interval_s: int
    window_s: int
    options: MonitorOptions
    enabled: bool
    next_run_at: datetime
    last_run_at: datetime | None
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    id: int = 0


def schedule_record(row: MonitorScheduleRow) -> MonitorSchedule:
    return MonitorSchedule(
        deployment=row.deployment,
        project=row.project,
        model=row.model,
        reference=row.reference,
        log_dir=row.log_dir,
        interval_s=row.interval_s,
        window_s=row.window_s,
        options=MonitorOptions.from_dict(json.loads(row.options)),
        enabled=row.enabled,
        next_run_at=row.next_run_at,
        last_run_at=row.last_run_at,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
        id=row.id,
    )


@dataclass(frozen=True)
class MonitorResult:
    """What one run found for one model version of a deployment over one window.

    ``status``: ``ok``, ``breached`` (see ``breaches``: drift, prediction_drift,
    quality, performance), ``insufficient data``, ``no predictions`` or ``no reference``.
    ``report`` holds the summaries: ``drift`` (per feature), ``quality``,
    ``prediction_drift`` and ``estimate`` (CBPE); ``performance`` the realized metrics
    on the labels that came in (``labels`` of ``predictions`` rows).
    """

    id: int
    deployment: str
    project: str
    model_version: str
    window_start: datetime
    window_end: datetime
    run_at: datetime
    status: str
    breaches: tuple[str, ...]
    predictions: int
    requests: int
    drifted_features: tuple[str, ...]
    report: dict[str, Any]
    performance: dict[str, Any] | None
    labels: int
    alerts: tuple[str, ...]
    seconds: float
    note: str = ""

    @property
    def label_coverage(self) -> float:
        return self.labels / self.predictions if self.predictions else 0.0

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["label_coverage"] = round(self.label_coverage, 6)
        return body


def result_record(row: MonitorResultRow) -> MonitorResult:
    return MonitorResult(
        id=row.id,
        deployment=row.deployment,
        project=row.project,
        model_version=row.model_version,
        window_start=row.window_start,
        window_end=row.window_end,
        run_at=row.run_at,
        status=row.status,
        breaches=tuple(json.loads(row.breaches)),
        predictions=row.predictions,
        requests=row.requests,
        drifted_features=tuple(json.loads(row.drifted_features)),
        report=json.loads(row.report),
        performance=json.loads(row.performance) if row.performance else None,
        labels=row.labels,
        alerts=tuple(json.loads(row.alerts)),
        seconds=row.seconds,
        note=row.note,
    )


@dataclass(frozen=True)
class MonitorRun:
    """One run of one deployment's monitor: the window's results, the earlier windows
    whose performance it filled in as labels arrived, and the events it published."""

    deployment: str
    project: str
    window_start: datetime
    window_end: datetime
    results: tuple[MonitorResult, ...]
    updated: tuple[MonitorResult, ...] = ()
    events: tuple[str, ...] = field(default=())
    seconds: float = 0.0

    @property
    def breached(self) -> bool:
        return any(r.breaches for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "project": self.project,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "results": [r.to_dict() for r in self.results],
            "updated": [r.to_dict() for r in self.updated],
            "events": list(self.events),
            "seconds": self.seconds,
            "breached": self.breached,
        }
