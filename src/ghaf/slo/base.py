"""SLO definitions: what counts as good, the objective, and the burn-rate window pairs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ghaf.errors import InvalidInputError

SLI_KINDS = ("availability", "latency", "quality")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
MIN_REQUESTS_PER_HOUR = 100
"""Below this many requests an hour (scaled to the long window) nothing pages."""
MAX_MIN_REQUESTS = 10**9


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window rule: fire when BOTH windows burn faster than ``factor``.

    The long window measures how much budget went; the short one confirms it is still
    going, so the alert stops soon after the burning does (SRE workbook, ch. 5).
    ``for_s`` is how long the condition must hold (Prometheus ``for:``).
    """

    severity: str
    factor: float
    long_s: int
    short_s: int
    for_s: int

    @property
    def name(self) -> str:
        return duration(self.long_s)


DEFAULT_WINDOWS = (
    BurnWindow("page", 14.4, 3600, 300, 120),
    BurnWindow("page", 6.0, 6 * 3600, 1800, 900),
    BurnWindow("ticket", 1.0, 3 * 86400, 6 * 3600, 3600),
)
"""The SRE workbook's defaults for a 30-day SLO (14.4x burns 2% of it in an hour)."""


def duration(seconds: int) -> str:
    """``3600`` -> ``1h``: the Prometheus duration of a whole number of seconds."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class SLO:
    """A service level objective of one deployment.

    ``availability``: good = a response that is not 5xx. ``latency``: good = answered in
    under ``threshold_ms``. ``quality``: good = a labelled outcome the model got right.
    """

    name: str
    deployment: str
    sli: str
    objective: float
    window_days: int = 30
    threshold_ms: float | None = None
    min_requests_per_hour: int = MIN_REQUESTS_PER_HOUR
    windows: tuple[BurnWindow, ...] = field(default=DEFAULT_WINDOWS)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidInputError(
                f"SLO field 'name' is {self.name!r}",
                hint="use lower-case letters, digits, '.', '_' or '-' (at most 63)",
            )
        if not self.deployment:
            raise InvalidInputError("SLO field 'deployment' is empty", hint="name a deployment")
        if self.sli not in SLI_KINDS:
            raise InvalidInputError(
                f"SLO field 'sli' is {self.sli!r}", hint=f"use one of {', '.join(SLI_KINDS)}"
            )
        if not 0.0 < self.objective < 1.0:
            raise InvalidInputError(
                f"SLO field 'objective' is {self.objective!r}",
                hint="give a fraction between 0 and 1, e.g. 0.999 for 99.9%",
            )
        if not 1 <= self.window_days <= 366:
            raise InvalidInputError(
                f"SLO field 'window_days' is {self.window_days!r}", hint="use 1 to 366 days"
            )
        if self.sli == "latency" and (self.threshold_ms is None or self.threshold_ms <= 0):
            raise InvalidInputError(
                "SLO field 'threshold_ms' is missing for a latency SLO",
                hint="give the latency under which a request is good, e.g. 250",
            )
        if not 0 <= self.min_requests_per_hour <= MAX_MIN_REQUESTS:
            raise InvalidInputError(
                f"SLO field 'min_requests_per_hour' is {self.min_requests_per_hour}",
                hint=f"use 0 to {MAX_MIN_REQUESTS:,}",
            )
        if self.threshold_ms is not None and not 0 < self.threshold_ms <= 1e7:
            raise InvalidInputError(
                f"SLO field 'threshold_ms' is {self.threshold_ms}",
                hint="give milliseconds above 0, e.g. 250",
            )

    @property
    def budget(self) -> float:
        """The error budget: the fraction of events allowed to be bad."""
        return 1.0 - self.objective

    def threshold(self, window: BurnWindow) -> float:
        """The error ratio above which ``window`` burns too fast: ``factor * budget``.

        Rounded to 12 digits so Ghaf and the exported rules compare with one number.
        """
        return round(window.factor * self.budget, 12)

    def min_requests(self, window: BurnWindow) -> float:
        """The minimum traffic in ``window``'s long window for it to alert."""
        return self.min_requests_per_hour * window.long_s / 3600

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "deployment": self.deployment,
            "sli": self.sli,
            "objective": self.objective,
            "window_days": self.window_days,
            "threshold_ms": self.threshold_ms,
            "min_requests_per_hour": self.min_requests_per_hour,
            "budget": self.budget,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> SLO:
        """The SLO :meth:`to_dict` wrote (default windows; the budget is derived)."""
        fields = ("name", "deployment", "sli", "objective", "window_days", "threshold_ms")
        return cls(
            **{k: doc[k] for k in fields if k in doc},
            min_requests_per_hour=int(doc.get("min_requests_per_hour", MIN_REQUESTS_PER_HOUR)),
        )
