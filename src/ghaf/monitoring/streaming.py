"""Change detectors for a metric over time (Page-Hinkley, ADWIN), using river's implementations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ghaf.errors import InvalidInputError, MissingDependencyError

DetectorName = Literal["page_hinkley", "adwin"]


@dataclass
class MetricMonitor:
    """Feeds one metric's values to a river drift detector; remembers where it fired.

    ``params`` go to ``river.drift.PageHinkley`` or ``river.drift.ADWIN`` unchanged.
    """

    method: DetectorName = "adwin"
    params: dict[str, Any] = field(default_factory=dict)
    seen: int = 0
    changes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            from river import drift
        except ImportError as exc:  # pragma: no cover - river is a declared dependency
            raise MissingDependencyError("river", "ml") from exc
        factories = {"page_hinkley": drift.PageHinkley, "adwin": drift.ADWIN}
        if self.method not in factories:
            raise InvalidInputError(
                f"unknown change detector {self.method!r}", hint="use page_hinkley or adwin"
            )
        try:
            self._detector = factories[self.method](**self.params)  # type: ignore[no-untyped-call]
        except TypeError as exc:
            raise InvalidInputError(
                f"bad parameters for {self.method}: {exc}", hint="see river.drift's docs"
            ) from exc

    def update(self, value: float) -> bool:
        """Add one observation; True when the detector signals a change at it."""
        self._detector.update(float(value))
        self.seen += 1
        fired = bool(self._detector.drift_detected)
        if fired:
            self.changes.append(self.seen - 1)
        return fired

    def update_many(self, values: Iterable[float]) -> list[int]:
        """Add observations in order; returns the indices (since start) where it fired."""
        start = len(self.changes)
        for value in values:
            self.update(value)
        return self.changes[start:]


def detect_changes(
    values: Iterable[float], method: DetectorName = "adwin", **params: Any
) -> list[int]:
    """Indices at which ``method`` signals a change in the series ``values``."""
    return MetricMonitor(method, dict(params)).update_many(values)
